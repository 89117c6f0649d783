// pool.hpp - a pool: the arena, the ownership side table, the buddy
// allocator, the shared lock-free free list and the atomic reserve, the
// thread caches, watermarks and waiters.
//
// Where a free order-0 page can be, from fastest to slowest to reach:
//   thread cache (owner thread only) -> shared list (lock-free, batched)
//   -> buddy allocator (a zone's mutex) ; the atomic reserve (lock-free) is
//   used only by ATOMIC callers when everything else is empty.
// Blocks of order > 0 live in the buddy allocator, except a few per thread
// that the thread freed, kept in its order cache (thread_cache.hpp).
//
// Zones: a pool of 8 MiB or more splits its arena into 2 to 4 zones, each a
// buddy allocator with its own mutex, at multiples of 4 MiB (the largest
// block), so the free blocks are exactly one buddy allocator's. A block goes
// back to the zone it came from. Allocations try the zones in the order one
// buddy allocator would take from them (in_zones), ATOMIC ones with
// try_lock only: a zone whose mutex holder was preempted (for a whole time
// slice) no longer refuses every ATOMIC caller whose cache ran dry; the
// next zone serves them. A pool under 8 MiB has one zone, and there a
// preempted holder still refuses them until it runs again. No code holds two zones' mutexes at once:
// what spans zones (trim, the reserve's place and renewal, flushing the
// shared list) takes them one at a time, so one preempted thread can keep
// ATOMIC callers out of one zone at most.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "arena.hpp"
#include "buddy.hpp"
#include "common.hpp"
#include "depot.hpp"
#include "owner.hpp"
#include "side_table.hpp"
#include "thread_cache.hpp"

struct labyrinth_pool {};  // the public handle is a Pool (derived below)

namespace lab {

struct Waiter;

constexpr unsigned kMaxZones = 4;
constexpr std::size_t kZoneUnit = std::size_t{1} << kMaxOrder;  // pages: zones start at multiples

// How many times a thread took a zone's mutex while it held another: the
// design says never (see above; the tests check it). Counted, not enforced.
extern std::atomic<std::uint64_t> g_zone_nesting;

// A zone's mutex: a std::mutex that counts, per thread, how many zone
// mutexes the thread holds (one thread-local increment per lock), and
// counts in g_zone_nesting each time one is taken while another is held.
// (An ATOMIC call from a signal handler that interrupted a holder counts
// too, if its try succeeds on another zone: harmless, it never waits.)
class ZoneMutex {
 public:
  void lock() {
    note();
    mu_.lock();
  }
  bool try_lock() {
    if (!mu_.try_lock()) return false;
    note();
    return true;
  }
  // Lock as a caller may: ATOMIC ones only try, and a failure is noted for
  // the NOMEM message (tls.mutex_busy); others wait.
  bool acquire(bool atomic) {
    if (!atomic) {
      lock();
      return true;
    }
    if (try_lock()) return true;
    tls.mutex_busy = 1;
    return false;
  }
  void unlock() {
    mu_.unlock();
    --tls.zones_held;
  }

 private:
  void note() {
    if (tls.zones_held++ != 0) g_zone_nesting.fetch_add(1, std::memory_order_relaxed);
  }
  std::mutex mu_;
};

struct Zone {
  alignas(64) ZoneMutex mu;
  Buddy buddy;  // pages [begin, end), under mu
  std::size_t begin = 0, end = 0;
};

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

  // ---- lock-free shared structures ----
  Depot shared;   // order-0 pages returned by thread caches
  Depot reserve;  // the atomic reserve
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
  // Free pages outside thread caches and the reserve.
  std::size_t free_pages() const { return buddy_free_pages() + shared.pages(); }
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


// Run take(zone) under each zone's mutex in turn until it returns true
// (done: it got what it wanted, or must stop), holding one mutex at a time.
// The zones go in the order one buddy allocator over the whole arena would
// take from them: the smallest free block of `order` or more first (zone
// order among equals); zones without one are skipped. That ranking reads
// the zones' counters without their mutexes: a block freed at this moment
// may be missed, as a block freed a moment later would be. First pass: the
// zones whose mutex is free this moment; then, unless ATOMIC, waiting for
// each. An ATOMIC caller that finds a mutex busy notes it (tls.mutex_busy).
template <typename Take>
bool in_zones(Pool *p, unsigned order, bool atomic, Take take) {
  unsigned rank[kMaxZones];
  int fit[kMaxZones];
  unsigned n = 0;
  for (unsigned z = 0; z < p->nzones; ++z) {
    const int o = p->zones[z].buddy.smallest_free_order_relaxed(order);
    if (o < 0) continue;
    unsigned k = n++;
    for (; k > 0 && fit[k - 1] > o; --k) {
      rank[k] = rank[k - 1];
      fit[k] = fit[k - 1];
    }
    rank[k] = z;
    fit[k] = o;
  }
  for (int pass = 0; pass < (atomic ? 1 : 2); ++pass) {
    for (unsigned k = 0; k < n; ++k) {
      Zone &zone = p->zones[rank[k]];
      std::unique_lock<ZoneMutex> lock(zone.mu, std::defer_lock);
      if (pass == 0 && !lock.try_lock()) {
        if (atomic) tls.mutex_busy = 1;
        continue;
      }
      if (pass == 1) lock.lock();
      if (take(zone)) return true;
    }
  }
  return false;
}

// Every zone's mutex, taken in zone order: for tests that play a thread
// preempted while it holds them (the library itself never holds two).
class ZonesLock {
 public:
  explicit ZonesLock(Pool *p) : p_(p) {
    for (unsigned z = 0; z < p_->nzones; ++z) p_->zones[z].mu.lock();
  }
  ~ZonesLock() {
    for (unsigned z = p_->nzones; z-- > 0;) p_->zones[z].mu.unlock();
  }
  ZonesLock(const ZonesLock &) = delete;
  ZonesLock &operator=(const ZonesLock &) = delete;

 private:
  Pool *p_;
};

// Lifecycle and statistics (pool.cpp). The boundary (boundary.hpp) has
// checked the handle and copied versioned structs in full: pool_create's
// opts and pool_stats' out are complete structs of this version.
labyrinth_status pool_create(const labyrinth_pool_options *opts, labyrinth_pool **out);
// Destroy a usable pool (boundary.hpp); `what` names the call for messages.
labyrinth_status pool_destroy(Pool *pool, std::uint32_t flags, const char *what);
labyrinth_status pool_trim(Pool *pool);
labyrinth_status pool_stats(const Pool *pool, labyrinth_stats *out);
void pool_thread_exit(Pool *pool, std::uint64_t owner);  // registry mutex held

// General allocation (pool.cpp); arguments already validated.
labyrinth_status pool_alloc(Pool *pool, unsigned order, labyrinth_gfp gfp, std::uint32_t timeout_ms,
                            void **out);

// Put a block back (ownership already checked): cache, shared list or buddy.
void release_block(Pool *pool, std::size_t idx, unsigned order);

// Put the block of an exited owner back, straight into the buddy allocator,
// with what the pool's modes do to every freed block (SCRUB, POISON, GUARD).
void release_orphan_block(Pool *pool, std::size_t idx, unsigned order, std::uint64_t owner);

// Memory protection keys, probed at run time (LABYRINTH_POOL_PKEYS).
struct PkeysProbe {
  int cpu = -1;  // 1: the CPU has protection keys, 0: it has none, -1: cannot tell here
  int os = -1;   // 1: the OS enabled them (x86 OSPKE), 0: it did not, -1: cannot tell
  int key = -1;  // the key pkey_alloc() gave (freed again), or -1
  int err = 0;   // errno of pkey_alloc() when it failed
  // PKEYS pools can be created: the CPU and kernel have keys and one was given.
  bool usable() const { return cpu != 0 && os != 0 && key >= 0; }
};
PkeysProbe pkeys_probe();
// Why PKEYS cannot be used, in words, for the UNSUPPORTED message.
void pkeys_explain(const PkeysProbe &probe, char *buf, std::size_t cap);

// Wake WAIT callers after pages came back. Async-signal-safe (a futex wake).
void wake_waiters(Pool *pool);

// Update `pressure` from the free count (slow paths).
void update_pressure(Pool *pool);
void set_pressure(Pool *pool);  // pressure on now (waiters present)

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
