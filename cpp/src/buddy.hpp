// buddy.hpp - the buddy allocator over a pool's arena: free blocks of
// 2^order pages (order 0..10), split on allocation, merged with their free
// buddy on free. Its free lists are doubly linked through the side table, so
// removing a block's buddy when merging is O(1) and no page is written.
//
// Not thread-safe: the pool calls it with its zone's mutex held. The
// counters are atomics only so that statistics and the zones' ranking can
// read them without the mutex. A pool has one per zone (pool.hpp), over a
// part of the arena.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common.hpp"
#include "side_table.hpp"

namespace lab {

class Buddy {
 public:
  // Carve [begin, end) into the largest aligned blocks; every page is free.
  // Page numbers stay the arena's (meta[i] is page i's word); `begin` must be
  // a multiple of 2^kMaxOrder, so that no block and no merge crosses it.
  void init(std::atomic<std::uint64_t> *meta, std::size_t begin, std::size_t end);
  void init(std::atomic<std::uint64_t> *meta, std::size_t npages) { init(meta, 0, npages); }

  // Take a free block of exactly `order`, splitting a larger one if needed.
  // On success *idx is its first page; that page's word is TAKEN (not yet
  // labelled: the caller writes it) and the other pages' words are UNUSED,
  // as they stay while the block is allocated (side_table.hpp). O(1) words
  // written besides one split per order. False if no block of that order or
  // larger is free.
  bool alloc(unsigned order, std::size_t *idx);

  // Take up to `want` order-0 pages for a thread cache as whole free blocks,
  // smallest first: a block larger than what is left is split only when no
  // smaller one fits, so holes are filled before large blocks are broken, as
  // alloc(0) repeated would, in one list operation per block rather than one
  // or two per page. Each block goes to emit(first, pages) with its words as
  // alloc() leaves them (first TAKEN, the others UNUSED). Returns how many
  // pages were taken: less than `want` only if no free page is left.
  template <typename Emit>
  std::size_t alloc_pages(std::size_t want, Emit emit) {
    std::size_t got = 0;
    while (got < want) {
      const std::size_t left = want - got;
      unsigned fit = 0;  // the largest order that fits in what is left
      while (fit < kMaxOrder && (std::size_t{2} << fit) <= left) ++fit;
      unsigned o = 0;
      while (o <= fit && head_[o] == side::kNoBlock) ++o;
      std::size_t block;
      if (o <= fit) {
        block = head_[o];
        remove(block, o);
        meta_[block].store(side::TAKEN, std::memory_order_relaxed);
      } else if (alloc(fit, &block)) {
        o = fit;
      } else {
        break;
      }
      emit(block, std::size_t{1} << o);
      got += std::size_t{1} << o;
    }
    return got;
  }

  // Give back the block [idx, idx + 2^order), whose pages other than the
  // first must be UNUSED (side_table.hpp): only its first word is rewritten,
  // and it merges with its buddy as long as the buddy is free and whole (the
  // higher of the two first pages becomes UNUSED).
  void free(std::size_t idx, unsigned order);

  std::size_t free_pages() const { return pages_.load(std::memory_order_relaxed); }
  std::uint64_t free_blocks(unsigned order) const {
    return count_[order].load(std::memory_order_relaxed);
  }
  // Largest order with a free block, or -1. Safe without the mutex.
  int largest_free_order() const;
  // Smallest order >= `order` with a free block (the one alloc(order) would
  // split), or -1. From the counters: safe without the mutex, and exact
  // under it.
  int smallest_free_order_relaxed(unsigned order) const {
    for (unsigned o = order; o <= kMaxOrder; ++o)
      if (count_[o].load(std::memory_order_relaxed) != 0) return static_cast<int>(o);
    return -1;
  }

 private:
  void push(std::size_t idx, unsigned order);
  void remove(std::size_t idx, unsigned order);
  void set_next(std::size_t idx, std::uint64_t next);
  void set_prev(std::size_t idx, std::uint64_t prev);

  std::atomic<std::uint64_t> *meta_ = nullptr;
  std::size_t begin_ = 0, end_ = 0;
  std::uint64_t head_[kMaxOrder + 1] = {};
  std::atomic<std::uint64_t> count_[kMaxOrder + 1] = {};
  std::atomic<std::size_t> pages_{0};
};

}  // namespace lab
