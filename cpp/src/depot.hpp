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
// Every operation is lock-free and async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "side_table.hpp"

namespace lab {

class Depot {
 public:
  void init(std::atomic<std::uint64_t> *meta, side::State node_state) {
    meta_ = meta;
    state_ = node_state;
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
    publish(first, first_next, count);
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

  // The caller took `count` pages out of popped chains.
  void taken(std::size_t count) { pages_.fetch_sub(count, std::memory_order_relaxed); }

  std::size_t pages() const { return pages_.load(std::memory_order_relaxed); }
  bool empty() const { return (head_.load(std::memory_order_relaxed) & 0xFFFFFFFFu) == 0; }

 private:
  std::atomic<std::uint64_t> *meta_ = nullptr;
  side::State state_ = side::SHARED;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::size_t> pages_{0};
};

}  // namespace lab
