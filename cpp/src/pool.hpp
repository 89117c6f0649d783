// pool.hpp - a pool: its arena, side table, zones, depot, reserve and
// thread caches, and the calls on it that the C boundary makes.
//
// Glossary (each word means this and nothing else, in code and comments):
//   page          4 KiB of the arena, the unit of everything; a page index is
//                 its number from the arena's start.
//   block         2^order pages starting at a multiple of 2^order pages: what
//                 an allocation hands out and a free gives back.
//   order         log2 of a block's pages: 0 (one page) to kMaxOrder (4 MiB).
//   zone          a 4 MiB-aligned part of the arena with its own buddy
//                 allocator and mutex (zones.hpp).
//   buddy         the buddy allocator of a zone: free blocks of every order,
//                 split and merged with their buddies (buddy.hpp).
//   depot         the lock-free stack of order-0 page chains that thread caches
//                 drain to and refill from (depot.hpp; shared_free_pages in
//                 labyrinth_stats counts it).
//   thread cache  one thread's stack of free order-0 pages in one pool, pushed
//                 and popped by that thread only (thread_cache.hpp).
//   order cache   a few free blocks of order >= 1 beside a thread cache, for
//                 the same thread's next allocation of that order.
//   reserve       order-0 pages only ATOMIC callers take (reserve.hpp).
//   side table    one 64-bit word per page, outside the pages: its state, the
//                 free lists' links, an allocated block's order and owner
//                 (side_table.hpp).
//   owner         the thread that holds an exclusive block, by its owner id
//                 (never reused; process.hpp).
//
// Where a free order-0 page can be, from fastest to slowest to reach:
//   thread cache (owner thread only) -> depot (lock-free, batched)
//   -> buddy (a zone's mutex); the reserve (lock-free) is used only by
//   ATOMIC callers when everything else is empty.
// Blocks of order > 0 live in the buddy, except a few per thread that the
// thread freed, kept in its order cache.
// Data flows one way: the C boundary -> this pool's lifecycle (pool.cpp),
// allocation (alloc.cpp) and release (release.cpp) -> thread caches ->
// depot and reserve -> zones and buddy -> arena, side table at the bottom.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "arena.hpp"
#include "common.hpp"
#include "depot.hpp"
#include "process.hpp"
#include "side_table.hpp"
#include "zones.hpp"

struct labyrinth_pool {};  // the public handle is a Pool (derived below)

namespace lab {

struct Waiter;

struct Pool : labyrinth_pool {
  // ---- read-mostly, read on every call (keep together) ----
  std::uint8_t *base = nullptr;                 // arena start
  std::size_t size = 0;                         // arena bytes
  std::atomic<std::uint64_t> *meta = nullptr;   // side table, one word per page
  std::uint64_t id = 0;                         // never reused in this process
  bool fast_ok = false;                         // owner fast paths allowed (no debug mode, no scrub)
  bool use_caches = false;                      // order-0 pages may sit in thread caches
  std::atomic<bool> pressure{false};            // below the low mark or waiters present

  // ---- configuration ----
  std::size_t npages = 0;
  std::uint32_t flags = 0;
  std::size_t reserve_target = 0;
  std::size_t wm_min = 0, wm_low = 0, wm_high = 0;
  std::uint32_t cache_capacity = 0, cache_batch = 0, max_caches = 0;
  std::uint32_t cache_start = 0;     // where each cache's high mark starts (thread_cache.hpp)
  std::uint32_t cache_high_max = 0;  // how far it may rise: capacity, or 1/16 of the pool
  std::uint64_t fork_gen = 0;
  // Destroyed: the object stays as a tombstone, never freed (boundary.hpp).
  std::atomic<bool> destroyed{false};
  Pool *next_tombstone = nullptr;
  Arena arena;
  // POISON only (else nullptr): per page, the last owner of a free page that
  // holds the poison pattern; 0 if the page is not poisoned (never freed, or
  // handed out since). Outside the pages, like the side table.
  std::uint64_t *poison_owner = nullptr;

  // ---- the buddy allocator, in zones; waiters ----
  Zone zones[kMaxZones];
  unsigned nzones = 1;
  alignas(64) std::mutex wait_mu;  // the wait list; a waiter takes zones' mutexes under it
  Waiter *wait_head = nullptr, *wait_tail = nullptr;

  // ---- lock-free structures ----
  Depot depot;    // order-0 pages returned by thread caches
  Depot reserve;  // the atomic reserve
  // The i-th thread cache (thread_cache.hpp).
  ThreadCache *cache_at(std::uint32_t i) const {
    return reinterpret_cast<ThreadCache *>(static_cast<char *>(cache_mem) + std::size_t{i} * cache_stride);
  }
  std::size_t cache_stride = 0;  // bytes per cache: header + slots
  void *cache_mem = nullptr;
  std::size_t cache_mem_bytes = 0;
  std::atomic<std::uint32_t> caches_in_use{0};
  alignas(64) std::atomic<std::uint32_t> wait_seq{0};  // futex word: bumped when pages return
  std::atomic<std::uint32_t> nwaiters{0};
  std::atomic<std::uint64_t> holds{0};           // io_uring registrations, managed rings
  std::atomic<std::uint64_t> inflight_pages{0};

  // ---- counters (slow paths only) ----
  std::atomic<std::uint64_t> failures[LABYRINTH_STATUS_COUNT] = {};
  std::atomic<std::uint64_t> reserve_uses{0}, waits{0}, timeouts{0},
      pressure_events{0}, cache_reclaims{0}, reclaimed_pages{0};

  // Helpers.
  std::size_t index_of(const void *page) const {
    return static_cast<std::size_t>(static_cast<const std::uint8_t *>(page) - base) >> kPageShift;
  }
  void *page_at(std::size_t idx) const { return base + (idx << kPageShift); }
  // The zone a page belongs to.
  Zone &zone_of(std::size_t idx) {
    unsigned z = nzones - 1;
    while (z > 0 && idx < zones[z].begin) --z;
    return zones[z];
  }
  // Free pages in the buddy allocator (every zone; relaxed, without mutexes).
  std::size_t buddy_free_pages() const {
    std::size_t n = 0;
    for (unsigned z = 0; z < nzones; ++z) n += zones[z].buddy.free_pages();
    return n;
  }
  int largest_free_order() const {
    int o = -1;
    for (unsigned z = 0; z < nzones; ++z) o = std::max(o, zones[z].buddy.largest_free_order());
    return o;
  }
  // Free pages outside thread caches and the reserve: the buddy's and the depot's.
  std::size_t free_pages() const { return buddy_free_pages() + depot.pages(); }
  bool forked() const { return fork_gen != fork_generation(); }

  labyrinth_status fail(labyrinth_status s) {
    failures[s].fetch_add(1, std::memory_order_relaxed);
    return s;
  }
};

inline Pool *from_handle(labyrinth_pool *p) { return static_cast<Pool *>(p); }

// Which of the thread's remembered (pool -> cache) slots a pool uses: from
// the pool's address, so it is known without loading anything; the slot then
// names the pool's id, which is never reused, so a slot left over from a
// destroyed pool at the same address never matches.
inline CacheSlot &tls_slot(const labyrinth_pool *p) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  return tls.slots[((a >> 6) ^ (a >> 10) ^ (a >> 14)) % kTlsSlots];
}
inline const Pool *from_handle(const labyrinth_pool *p) { return static_cast<const Pool *>(p); }


// Lifecycle (pool.cpp) and statistics (stats.cpp). The boundary
// (boundary.hpp) has checked the handle and copied versioned structs in full:
// pool_create's opts and pool_stats' out are complete structs of this version.
labyrinth_status pool_create(const labyrinth_pool_options *opts, labyrinth_pool **out);
// Destroy a usable pool (boundary.hpp); `what` names the call for messages.
labyrinth_status pool_destroy(Pool *pool, std::uint32_t flags, const char *what);
labyrinth_status pool_trim(Pool *pool);
labyrinth_status pool_stats(const Pool *pool, labyrinth_stats *out);
void pool_thread_exit(Pool *pool, std::uint64_t owner);  // registry mutex held

// General allocation (alloc.cpp); arguments already validated.
labyrinth_status pool_alloc(Pool *pool, unsigned order, labyrinth_gfp gfp, std::uint32_t timeout_ms,
                            void **out);

// Put a block back (ownership already checked): cache, depot or buddy
// (release.cpp).
void release_block(Pool *pool, std::size_t idx, unsigned order);

// Put the block of an exited owner back, straight into the buddy allocator,
// with what the pool's modes do to every freed block (SCRUB, POISON, GUARD).
void release_orphan_block(Pool *pool, std::size_t idx, unsigned order, std::uint64_t owner);

// Ownership (ownership.cpp).
// Free a block; with order >= 0 (labyrinth_free_pages_order) only if it is
// an allocated block of exactly that order.
labyrinth_status pool_free(Pool *pool, void *page, int order = -1);
labyrinth_status pool_transfer(Pool *pool, void *page, labyrinth_owner new_owner);
labyrinth_status pool_page_info(const Pool *pool, const void *page, labyrinth_owner *owner,
                                unsigned *order);
// Reclaim every orphan; refused with BUSY, nothing reclaimed, if one of the
// n_in_use blocks at in_use is an orphan.
labyrinth_status pool_reclaim_orphans(Pool *pool, std::size_t *reclaimed,
                                      const void *const *in_use = nullptr,
                                      std::size_t n_in_use = 0);
std::uint64_t count_orphaned_pages(const Pool *pool);  // registry mutex held

// Validate a pointer as the first page of an allocated (or in-flight) block:
// OK with *idx and *word, or the error (FOREIGN / INVALID / DOUBLE_FREE)
// with a message naming `what` (the call).
labyrinth_status classify(const Pool *pool, const void *page, const char *what, std::size_t *idx,
                          std::uint64_t *word);

}  // namespace lab
