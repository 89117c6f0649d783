// depot.hpp - a lock-free stack of page chains, the pool's shared order-0
// free list. Thread caches drain a batch of pages here as one chain with one
// compare-and-swap and refill from it the same way, so a page freed on one
// thread reaches an allocating thread without a lock (the remote-free path).
// The atomic reserve is a second Depot.
//
// Chains are linked through the side table (see side_table.hpp): each page's
// word holds the next page of its chain, and a chain's first page also holds
// the first page of the next chain. The head word packs a 32-bit tag with the
// first page + 1 (0: empty); the tag changes on every push and pop, so a
// stale compare-and-swap fails (ABA) unless exactly 2^32 operations happened
// between one thread's load and its CAS.
//
// Magazines (pinned pools without SCRUB, POISON, GUARD or PKEYS): a pushed chain
// also lists its pages in its first page, which is free and the pool's to
// write. A thread that pops the chain reads the list and checks every link
// against the side table with independent loads, instead of following the
// links one dependent load at a time (a cache miss each when another CPU
// drained the chain). The side table stays the truth: a list that does not
// match it link for link (a stale one, or one a write after free changed)
// is ignored and the links are followed.
//
// Every operation is lock-free and async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common.hpp"
#include "side_table.hpp"

namespace lab {

class Depot {
 public:
  // `arena` non-null: write and read magazines in the arena's pages.
  void init(std::atomic<std::uint64_t> *meta, side::State node_state, std::uint8_t *arena = nullptr,
            std::size_t npages = 0) {
    meta_ = meta;
    state_ = node_state;
    arena_ = arena;
    npages_ = npages;
    head_.store(0, std::memory_order_relaxed);
    pages_.store(0, std::memory_order_relaxed);
  }

  // Push the chain of `count` pages whose indexes are pages[0..count): links
  // them (writing their words) and publishes them with one CAS.
  // `page_at(i)` gives the i-th page index.
  template <typename PageAt>
  void push(PageAt page_at, std::size_t count) {
    if (count == 0) return;
    const std::size_t first = page_at(0);
    std::uint64_t first_next = side::kNil30;
    std::size_t prev = first;
    for (std::size_t i = 1; i < count; ++i) {
      const std::size_t cur = page_at(i);
      if (i == 1) first_next = cur;
      else meta_[prev].store(side::chain_word(state_, cur, side::kNil30), std::memory_order_relaxed);
      prev = cur;
    }
    if (count > 1)
      meta_[prev].store(side::chain_word(state_, side::kNil30, side::kNil30),
                        std::memory_order_relaxed);
    if (arena_ && count > 1 && count <= Magazine::kMax && scattered(page_at, count)) {
      Magazine *m = magazine_of(first);
      for (std::size_t i = 0; i < count; ++i)
        __atomic_store_n(&m->page[i], static_cast<std::uint32_t>(page_at(i)), __ATOMIC_RELAXED);
      __atomic_store_n(&m->count, static_cast<std::uint32_t>(count), __ATOMIC_RELAXED);
      __atomic_store_n(&m->first, static_cast<std::uint32_t>(first), __ATOMIC_RELAXED);
    }
    publish(first, first_next, count);  // the release CAS publishes the magazine too
  }

  // Whether a chain's pages are scattered over the arena. Only then does a
  // magazine pay: following a chain of neighbouring pages reads few
  // side-table lines (8 words a line), in an order the CPU prefetches, and
  // writing and reading a magazine would cost more than it saves. Cheap on
  // purpose (three pages looked at): it runs on every drain. A chain whose
  // second page does not neighbour its first is always scattered, which is
  // what take_magazine() looks at before it reads any magazine.
  static bool neighbours(std::size_t a, std::size_t b) { return a + 1 == b || b + 1 == a; }
  template <typename PageAt>
  static bool scattered(PageAt page_at, std::size_t count) {
    const std::size_t a = page_at(0), z = page_at(count - 1);
    return !neighbours(a, page_at(1)) || (z > a ? z - a : a - z) >= 2 * count;
  }

  // For a chain this thread popped: if its first page holds the chain's
  // magazine and every link in it matches the side table, put the first
  // min(length, max) pages into out[], set *rest to the page after them
  // (kNil30 if none) and return the chain's length; else return 0 and
  // change nothing (follow the links instead). Only loads: the chain's words
  // are unchanged either way.
  std::size_t take_magazine(std::size_t first, void **out, std::size_t max, std::size_t *rest) const {
    if (!arena_) return 0;
    const std::size_t second = side::chain_next_page(meta_[first].load(std::memory_order_relaxed));
    if (second == side::kNil30 || neighbours(first, second)) return 0;  // none was written
    const Magazine *m = magazine_of(first);
    if (__atomic_load_n(&m->first, __ATOMIC_RELAXED) != first) return 0;
    const std::size_t n = __atomic_load_n(&m->count, __ATOMIC_RELAXED);
    if (n < 2 || n > Magazine::kMax) return 0;
    std::size_t cur = first;
    *rest = side::kNil30;
    for (std::size_t k = 0; k < n; ++k) {
      // Each page's index was checked before its word is read; the next one
      // must be a page too, and the last link must end the chain.
      std::size_t next = side::kNil30;
      if (k + 1 < n) {
        next = __atomic_load_n(&m->page[k + 1], __ATOMIC_RELAXED);
        if (next >= npages_) return 0;
      }
      if (side::chain_next_page(meta_[cur].load(std::memory_order_relaxed)) != next) return 0;
      if (k < max) out[k] = arena_ + (cur << kPageShift);
      else if (k == max) *rest = cur;
      cur = next;
    }
    return n;
  }

  // Push a chain that is already linked through its words (the rest of a
  // popped chain): only its first page's word is rewritten.
  void push_linked(std::size_t first, std::size_t count) {
    if (count == 0) return;
    std::uint64_t w = meta_[first].load(std::memory_order_relaxed);
    publish(first, side::chain_next_page(w), count);
  }

 private:
  void publish(std::size_t first, std::uint64_t first_next, std::size_t count) {
    pages_.fetch_add(count, std::memory_order_relaxed);
    std::uint64_t old = head_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t top = old & 0xFFFFFFFFu;
      meta_[first].store(side::chain_word(state_, first_next, top ? top - 1 : side::kNil30),
                         std::memory_order_relaxed);
      std::uint64_t next = (((old >> 32) + 1) << 32) | (first + 1);
      if (head_.compare_exchange_weak(old, next, std::memory_order_release,
                                      std::memory_order_relaxed))
        break;
    }
  }

 public:

  // Pop one whole chain; returns its first page or side::kNil30 if empty.
  // Follow it with chain_next_page() on each page's word; pages_.sub is the
  // caller's job through taken().
  std::size_t pop_chain() {
    std::uint64_t old = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint64_t top = old & 0xFFFFFFFFu;
      if (top == 0) return side::kNil30;
      std::size_t first = top - 1;
      // May read a word another thread has just changed: then the tag has
      // moved on and the CAS below fails.
      std::uint64_t w = meta_[first].load(std::memory_order_relaxed);
      std::uint64_t nc = side::chain_next_chain(w);
      std::uint64_t next = (((old >> 32) + 1) << 32) | (nc == side::kNil30 ? 0 : nc + 1);
      if (head_.compare_exchange_weak(old, next, std::memory_order_acquire,
                                      std::memory_order_acquire))
        return first;
    }
  }

  // How many pages the chain from `page` has left, following its links.
  std::size_t length_from(std::size_t page) const {
    std::size_t n = 0;
    for (; page != side::kNil30; page = side::chain_next_page(meta_[page].load(std::memory_order_relaxed))) ++n;
    return n;
  }

  // One page off the list (the first of a popped chain; the rest of the
  // chain goes back), or kNil30 if the list is empty. Its word is left as
  // it was: the caller relabels it.
  std::size_t pop_page() {
    const std::size_t first = pop_chain();
    if (first == side::kNil30) return first;
    const std::size_t rest = side::chain_next_page(meta_[first].load(std::memory_order_relaxed));
    const std::size_t n = length_from(rest);
    taken(n + 1);
    if (n) push_linked(rest, n);
    return first;
  }

  // The caller took `count` pages out of popped chains.
  void taken(std::size_t count) { pages_.fetch_sub(count, std::memory_order_relaxed); }

  std::size_t pages() const { return pages_.load(std::memory_order_relaxed); }
  bool empty() const { return (head_.load(std::memory_order_relaxed) & 0xFFFFFFFFu) == 0; }

 private:
  // In the first page of a chain (see above).
  struct Magazine {
    static constexpr std::size_t kMax = (kPageSize - 8) / 4;
    std::uint32_t first;  // the page it describes (a stale magazine names another)
    std::uint32_t count;
    std::uint32_t page[kMax];  // the chain's pages in order (page[0], the first, is not read)
  };
  static_assert(sizeof(Magazine) == kPageSize, "a magazine fills one page at most");
  Magazine *magazine_of(std::size_t page) const {
    return reinterpret_cast<Magazine *>(arena_ + (page << kPageShift));
  }

  std::atomic<std::uint64_t> *meta_ = nullptr;
  std::uint8_t *arena_ = nullptr;
  std::size_t npages_ = 0;
  side::State state_ = side::SHARED;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::size_t> pages_{0};
};

}  // namespace lab
