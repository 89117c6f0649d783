// depot.hpp - a lock-free stack of page chains: a pool's depot of free
// order-0 pages. Thread caches drain a batch of pages here as one chain with one
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
// Magazines (pinned pools without SCRUB, POISON, GUARD or PKEYS): a pushed
// chain of 2..Magazine::kMax pages also lists its pages in its first page,
// which is free and the pool's to write, and its first page's word says so
// (state MAGAZINE instead of DEPOT). A thread that pops such a chain reads
// the list (a few lines, fetched in parallel) instead of following the links
// one dependent load at a time, and it neither reads nor writes the chain's
// other side-table words: when another CPU drained the chain, each of those
// is a cache miss, and 64 of them would be most of a refill's latency.
//
// Why a list can be believed without checking it against the side table:
//  - it is fresh: only push() marks a word MAGAZINE, right after writing the
//    list, and the release CAS that publishes the chain publishes the list.
//    Every other publish (push_linked: the rest of a popped chain; a single
//    page) marks the first page DEPOT, so a list left behind in a page by an
//    earlier chain is never read;
//  - while the chain is on the list nobody else owns its pages, so the list
//    cannot change under the popper, except by a write after free into the
//    first page (a user's bug). Against that, the list carries a checksum
//    (position-weighted: any one changed entry is caught, and so is a swap
//    of two pages less than 16 GiB apart; other changes pass with odds of
//    about 2^-32), every entry must be a page of the arena, and its second
//    entry must match the first page's link. A list that fails is ignored and the links are followed:
//    they are still all in the side table.
// Pages taken through a magazine keep their chain words (see thread_cache.cpp).
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
  // `counted`: announce(count) already added them to pages().
  void push(PageAt page_at, std::size_t count, bool counted = false) {
    if (count == 0) return;
    const std::size_t first = page_at(0);
    std::uint64_t first_next = side::kNoPage;
    std::size_t prev = first;
    for (std::size_t i = 1; i < count; ++i) {
      const std::size_t cur = page_at(i);
      if (i == 1) first_next = cur;
      else meta_[prev].store(side::chain_word(state_, cur, side::kNoPage), std::memory_order_relaxed);
      prev = cur;
    }
    if (count > 1)
      meta_[prev].store(side::chain_word(state_, side::kNoPage, side::kNoPage),
                        std::memory_order_relaxed);
    side::State head_state = state_;
    if (arena_ && count > 1 && count <= Magazine::kMax) {
      Magazine *m = magazine_of(first);
      std::uint32_t sum = 0;
      for (std::size_t i = 1; i < count; ++i) {
        const auto page = static_cast<std::uint32_t>(page_at(i));
        __atomic_store_n(&m->page[i], page, __ATOMIC_RELAXED);
        sum += weighed(page, i);
      }
      __atomic_store_n(&m->first, static_cast<std::uint32_t>(first), __ATOMIC_RELAXED);
      __atomic_store_n(&m->count, static_cast<std::uint32_t>(count), __ATOMIC_RELAXED);
      __atomic_store_n(&m->sum, seal(sum, first, count), __ATOMIC_RELAXED);
      head_state = side::MAGAZINE;
    }
    publish(first, first_next, counted ? 0 : count, head_state);  // the release CAS publishes the magazine too
  }

  // For a chain this thread popped: if its first page's word says it holds
  // the chain's magazine and the magazine passes its checks (see above), put
  // the first min(length, max) pages into out[], set *rest to the page after
  // them (kNoPage if none) and return the chain's length; else return 0
  // (follow the links instead). Only loads: no side-table word is changed,
  // and the only one read is the first page's.
  std::size_t take_magazine(std::size_t first, void **out, std::size_t max, std::size_t *rest) const {
    if (!arena_ || max == 0) return 0;
    const std::uint64_t w = meta_[first].load(std::memory_order_relaxed);
    if (side::state(w) != side::MAGAZINE) return 0;  // none was written for this chain
    const Magazine *m = magazine_of(first);
    const std::size_t n = __atomic_load_n(&m->count, __ATOMIC_RELAXED);
    if (__atomic_load_n(&m->first, __ATOMIC_RELAXED) != first || n < 2 || n > Magazine::kMax ||
        __atomic_load_n(&m->page[1], __ATOMIC_RELAXED) != side::chain_next_page(w))
      return 0;
    // Read and check everything before anything is handed out: out[] is the
    // caller's scratch until we return n.
    std::uint32_t sum = 0;
    bool in_arena = true;
    out[0] = arena_ + (first << kPageShift);
    for (std::size_t k = 1; k < n; ++k) {
      const std::uint32_t page = __atomic_load_n(&m->page[k], __ATOMIC_RELAXED);
      in_arena &= page < npages_;
      sum += weighed(page, k);
      if (k < max) out[k] = arena_ + (std::size_t{page} << kPageShift);
    }
    if (!in_arena || seal(sum, first, n) != __atomic_load_n(&m->sum, __ATOMIC_RELAXED)) return 0;
    *rest = n > max ? __atomic_load_n(&m->page[max], __ATOMIC_RELAXED) : side::kNoPage;
    return n;
  }

  // Push a chain that is already linked through its words (the rest of a
  // popped chain): only its first page's word is rewritten.
  void push_linked(std::size_t first, std::size_t count) {
    if (count == 0) return;
    std::uint64_t w = meta_[first].load(std::memory_order_relaxed);
    publish(first, side::chain_next_page(w), count, state_);
  }

 private:
  // `head_state`: the first page's state, MAGAZINE if push() wrote its list.
  // `count`: pages to add to pages() (0 if they were announced).
  void publish(std::size_t first, std::uint64_t first_next, std::size_t count, side::State head_state) {
    pages_.fetch_add(count, std::memory_order_relaxed);
    std::uint64_t old = head_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t top = old & 0xFFFFFFFFu;
      meta_[first].store(side::chain_word(head_state, first_next, top ? top - 1 : side::kNoPage),
                         std::memory_order_relaxed);
      std::uint64_t next = (((old >> 32) + 1) << 32) | (first + 1);
      if (head_.compare_exchange_weak(old, next, std::memory_order_release,
                                      std::memory_order_relaxed))
        break;
    }
  }

 public:

  // Pop one whole chain; returns its first page or side::kNoPage if empty.
  // Follow it with chain_next_page() on each page's word; pages_.sub is the
  // caller's job through taken().
  std::size_t pop_chain() {
    std::uint64_t old = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint64_t top = old & 0xFFFFFFFFu;
      if (top == 0) return side::kNoPage;
      std::size_t first = top - 1;
      // Start fetching the chain's magazine now, in parallel with its first
      // word and the CAS, rather than after them: when another CPU drained
      // the chain that is one cross-CPU transfer less on the refill's path
      // (the slowest refills about a quarter faster in paired runs). Only a
      // prefetch: if the CAS fails the page may be someone else's by then,
      // and nothing was read.
      if (arena_) {
        const char *m = reinterpret_cast<const char *>(magazine_of(first));
        for (std::size_t line = 0; line < kPrefetchLines; ++line) __builtin_prefetch(m + 64 * line, 0, 3);
      }
      // May read a word another thread has just changed: then the tag has
      // moved on and the CAS below fails.
      std::uint64_t w = meta_[first].load(std::memory_order_relaxed);
      std::uint64_t nc = side::chain_next_chain(w);
      std::uint64_t next = (((old >> 32) + 1) << 32) | (nc == side::kNoPage ? 0 : nc + 1);
      if (head_.compare_exchange_weak(old, next, std::memory_order_acquire,
                                      std::memory_order_acquire))
        return first;
    }
  }

  // Replace the whole list at once with `count` single-page chains, the pages
  // page_at(0..count) (the caller's, e.g. taken from the buddy allocator),
  // and return the old list: the first page of its first chain, or kNoPage if
  // it was empty. Its chains are now the caller's, linked as on the list
  // (the next chain from each chain's first word); the caller calls taken()
  // for their pages. Poppers and pushers see the old list or the new one,
  // never an empty one in between.
  template <typename PageAt>
  std::size_t replace(PageAt page_at, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      meta_[page_at(i)].store(side::chain_word(state_, side::kNoPage, i + 1 < count ? page_at(i + 1) : side::kNoPage),
                              std::memory_order_relaxed);
    pages_.fetch_add(count, std::memory_order_relaxed);
    std::uint64_t old = head_.load(std::memory_order_relaxed);
    const std::uint64_t top = count ? page_at(0) + 1 : 0;
    while (!head_.compare_exchange_weak(old, (((old >> 32) + 1) << 32) | top,
                                        std::memory_order_acq_rel, std::memory_order_relaxed)) {
    }
    const std::uint64_t was = old & 0xFFFFFFFFu;
    return was ? was - 1 : side::kNoPage;
  }

  // How many pages the chain from `page` has left, following its links.
  std::size_t length_from(std::size_t page) const {
    std::size_t n = 0;
    for (; page != side::kNoPage; page = side::chain_next_page(meta_[page].load(std::memory_order_relaxed))) ++n;
    return n;
  }

  // One page off the list (the first of a popped chain; the rest of the
  // chain goes back), or kNoPage if the list is empty. Its word is left as
  // it was: the caller relabels it.
  std::size_t pop_page() {
    const std::size_t first = pop_chain();
    if (first == side::kNoPage) return first;
    const std::size_t rest = side::chain_next_page(meta_[first].load(std::memory_order_relaxed));
    const std::size_t n = length_from(rest);
    taken(n + 1);
    if (n) push_linked(rest, n);
    return first;
  }

  // Count `count` pages that this thread will push with counted = true, ahead
  // of the push: pages taken from elsewhere under a lock stay counted as free
  // while the lock is released before they are pushed.
  void announce(std::size_t count) { pages_.fetch_add(count, std::memory_order_relaxed); }

  // The caller took `count` pages out of popped chains.
  void taken(std::size_t count) { pages_.fetch_sub(count, std::memory_order_relaxed); }

  std::size_t pages() const { return pages_.load(std::memory_order_relaxed); }
  bool empty() const { return (head_.load(std::memory_order_relaxed) & 0xFFFFFFFFu) == 0; }

 private:
  // In the first page of a chain (see above).
  struct Magazine {
    static constexpr std::size_t kMax = (kPageSize - 12) / 4;
    std::uint32_t first;  // the page it describes
    std::uint32_t count;
    std::uint32_t sum;    // seal(sum of weighed(page[k], k) for k >= 1, first, count)
    std::uint32_t page[kMax];  // the chain's pages in order (page[0], the first, is not written)
  };
  static_assert(sizeof(Magazine) == kPageSize, "a magazine fills one page at most");
  // Entry k weighed by an odd number, a bijection mod 2^32: changing any one
  // entry changes the sum. Swapping pages a and b at positions i and j
  // changes it by 2(a - b)(i - j), zero mod 2^32 only if (a - b)(i - j) is a
  // multiple of 2^31: with |i - j| < 2^10, pages at least 2^22 apart (16 GiB).
  static std::uint32_t weighed(std::uint32_t page, std::size_t k) {
    return page * (2 * static_cast<std::uint32_t>(k) + 1);
  }
  static std::uint32_t seal(std::uint32_t sum, std::size_t first, std::size_t count) {
    return (sum ^ 0x9E3779B9u) + static_cast<std::uint32_t>(first) * 0x85EBCA6Bu +
           static_cast<std::uint32_t>(count) * 0xC2B2AE35u;
  }
  // Lines of a magazine prefetched by pop_chain: enough for 77 pages, more
  // than the default batch of 64.
  static constexpr std::size_t kPrefetchLines = 5;
  Magazine *magazine_of(std::size_t page) const {
    return reinterpret_cast<Magazine *>(arena_ + (page << kPageShift));
  }

  std::atomic<std::uint64_t> *meta_ = nullptr;
  std::uint8_t *arena_ = nullptr;
  std::size_t npages_ = 0;
  side::State state_ = side::DEPOT;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::size_t> pages_{0};
};

// ---- Between a pool's depot and its zones (depot.cpp) ----
// Each page goes to the buddy allocator under its zone's mutex, held from
// one page to the next while they share a zone (a chain's pages mostly came
// from one refill, so from one zone), never two at once. ATOMIC callers only
// try the mutexes and stop at a busy one (noted in tls.mutex_busy).

struct Pool;

// Give up to `most` pages of the chain from *page (a popped chain, the
// caller's) to the buddy allocator, following its links. *page becomes the
// first page not given (kNoPage at the end). Returns how many were given.
std::size_t free_chain(Pool *pool, std::size_t *page, std::size_t most, bool atomic = false);

// Give every page of the chains from `first` (chains linked as on a Depot,
// now the caller's) to the buddy allocator; returns how many. May block.
std::size_t free_chains(Pool *pool, std::size_t first);

// Pull the depot's chains into the buddy allocator, as many pages as it
// held when the flush began (frees on other threads cannot keep it going).
// An ATOMIC caller stops at the first busy zone: the rest of that chain
// goes back to the depot. No system call.
void flush_depot(Pool *pool, bool atomic);

// labyrinth_pool_trim's flush: the pages the depot held when it began, a
// slice at a time, each page under its own zone's mutex (so ATOMIC callers,
// which only try the mutexes, find the other zones free). May block.
void trim_depot(Pool *pool);

// A block of any order from the buddy allocator (take_block); if there is
// none, the depot may hold the pages that would merge into one: it is
// flushed (flush_depot) and the zones tried again.
bool take_block_flushing(Pool *pool, unsigned order, bool atomic, std::size_t *idx);

}  // namespace lab
