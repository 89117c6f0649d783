// thread_cache.hpp - per-thread page caches, in the manner of Linux's
// per-cpu pagesets. Each (thread, pool) pair gets one ThreadCache: a stack of
// free order-0 pages only that thread touches, so the owner's alloc and free
// are a pop/push with no atomic read-modify-write and no lock. (One
// exception: a non-ATOMIC allocation that would fail takes back the caches
// of threads outside a call, reclaim_caches below.) When it runs
// dry it refills a batch from the depot (lock-free) or the buddy (under
// a zone's mutex, in whole blocks; an empty depot gets two batches
// more); when it reaches its high mark it drains a batch to the
// depot. A pool preallocates max_thread_caches of them; a thread claims
// one (lock-free) on first use and gives it back when it exits.
//
// The high mark adapts to the thread's bursts, as tcmalloc's thread caches
// do: it starts at min(512, capacity) pages, and when the cache runs dry
// after it drained pages past its high mark (the thread allocates and frees
// in bursts larger than the cache, so it keeps handing pages to the depot
// that it takes back moments later), the high mark rises by what was
// drained, up to the capacity (or 1/16 of the pool if that is less, so a
// few bursty threads cannot park a small pool in their caches). A burst that
// fits then costs no refill and no drain at all: a refill from pages another
// CPU drained costs a few cross-CPU cache misses, many times an allocation
// from the cache. Memory pressure, labyrinth_pool_trim, the
// thread's exit and a reclaim put it back to its start. It never falls on
// its own: a thread that once had a large burst keeps its larger cache
// (pages it holds are not lost, only idle: trim gives them back, and so
// does a reclaim when another thread's allocation would fail).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common.hpp"
#include "side_table.hpp"

namespace lab {

struct Pool;

// Where a cache's high mark starts (never above its capacity, never below a
// batch).
constexpr std::uint32_t kCacheStartPages = 512;

// The thread cache's layout is labyrinth.h's labyrinth_thread_cache (one
// definition, read by the inline code): `count` free order-0 pages, and
// the order cache, one labyrinth_order_slots line per order 1..kMaxOrder:
// free blocks the thread freed, kept for its next allocation of the same
// order, as Linux's per-cpu lists keep small orders. A cached block's first
// word is CACHED with the block's order; its other pages stay UNUSED, so
// handing it out again is one side-table store, not one per page, and it
// never takes a zone's mutex. Bounded: LABYRINTH_ORDER_CACHE_SLOTS blocks
// per order, and each order's `limit` at most that; the library raises an
// order's limit when a free finds it full (order_cache_push), keeping
//   sum over orders k of limit[k] << k  <=  budget (order_cache_budget),
// so the inline free checks only its own order's count against its limit.
// Nothing is cached while the pool is under pressure (`limit` 0).
using OrderSlots = labyrinth_order_slots;

// The order cache's budget, in pages, for a pool of `npages` pages: 1/32 of
// the pool, raised to one block of the largest order where that block is at
// most 1/16 of the pool (pools from 64 MiB): a thread's page slots may
// already hold 1/16 (Pool::cache_high_max), and without it a pool under
// 128 MiB could never keep a 4 MiB block, so every such pair would take a
// zone's mutex twice. What a thread keeps stays within reach of the pool:
// the thread's own allocation of order >= 1 gives its cache back before it
// fails, and another thread's non-ATOMIC one takes it back (reclaim_caches).
constexpr std::uint64_t order_cache_budget(std::uint64_t npages) {
  const std::uint64_t largest = std::uint64_t{1} << kMaxOrder;
  return npages / 32 >= largest || largest > npages / 16 ? npages / 32 : largest;
}
static_assert(order_cache_budget((std::uint64_t{64} << 20) / kPageSize) == (std::uint64_t{1} << kMaxOrder),
              "a 64 MiB pool keeps one largest block");
static_assert(order_cache_budget((std::uint64_t{32} << 20) / kPageSize) == (std::uint64_t{32} << 20) / kPageSize / 32,
              "below 64 MiB: 1/32 of the pool");
static_assert(sizeof(OrderSlots) == 64, "one line per order");
static_assert(offsetof(labyrinth_thread_cache, orders) == 64, "the order lines start on the second line");
static_assert(side::kOwnerShift == LABYRINTH_SIDE_OWNER_SHIFT_V1, "labyrinth.h: owner field");
static_assert(side::ALLOC == LABYRINTH_SIDE_ALLOC_V1 && side::CACHED == LABYRINTH_SIDE_CACHED_V1,
              "side-table states named in labyrinth.h (ABI 1.x)");

// A pool's cache: the library's bookkeeping, then (on its own line) the part
// the inline code reads, `pub`, whose page slots follow this object.
// The thread's record points at `pub`.
class alignas(64) ThreadCache {
 public:
  // `capacity` page slots, `batch_pages` a refill or drain, high mark at
  // `start`, at most `budget_pages` in the order cache (all limits 0).
  ThreadCache(std::uint32_t capacity, std::uint32_t batch_pages, std::uint32_t start, std::uint64_t budget_pages)
      : batch(batch_pages), budget(budget_pages), high(start) {
    pub.capacity = capacity;
    pub.limit = start;
  }
  // Bytes one cache of `capacity` page slots takes, a multiple of 64.
  static std::size_t bytes(std::uint32_t capacity) {
    return (sizeof(ThreadCache) + std::size_t{capacity} * sizeof(void *) + 63) & ~std::size_t{63};
  }

  std::uint32_t batch = 0;     // pages per refill / drain
  std::uint32_t drained = 0;   // pages drained past the high mark since the last refill (owner)
  std::uint64_t budget = 0;    // most pages the order cache may hold (its limits' sum)
  // Shared: the owner id of the thread using this cache, 0 when free.
  std::atomic<std::uint64_t> user{0};
  // That thread's inline fast-path record, so destroying the pool can clear it.
  std::atomic<labyrinth_fast_record *> record{nullptr};
  // Statistics, written by the owner thread only (atomic so that statistics
  // may read them): here rather than in the pool, so two threads refilling
  // and draining do not pass a counter's cache line back and forth.
  std::atomic<std::uint64_t> refills{0}, drains{0};
  // The high mark (see above): from the pool's cache_start up to its
  // cache_high_max. The owner raises it; memory pressure (any thread) puts
  // it back. `limit` is this, or 0.
  std::atomic<std::uint32_t> high{0};
  // Nonzero while another thread reclaims this cache (reclaim_caches): the
  // owner's calls then treat it as absent (enter_cache) and leave it alone.
  std::atomic<std::uint32_t> reclaim{0};
  // The inline code's part (labyrinth.h). Its counters are plain fields that
  // the owner writes with relaxed atomic stores; the accessors below read
  // and write them atomically, so statistics may read them from any thread.
  alignas(64) labyrinth_thread_cache pub{};  // its page slots follow this object

  std::uint32_t n() const { return __atomic_load_n(&pub.count, __ATOMIC_RELAXED); }
  void set_n(std::uint32_t v) { __atomic_store_n(&pub.count, v, __ATOMIC_RELAXED); }
  std::uint32_t limit() const { return __atomic_load_n(&pub.limit, __ATOMIC_RELAXED); }
  void set_limit(std::uint32_t v) { __atomic_store_n(&pub.limit, v, __ATOMIC_RELAXED); }
  std::uint32_t capacity() const { return pub.capacity; }
  // The free pages, most recently freed on top.
  void **slots() { return labyrinth_cache_pages_v1_(&pub); }
  // Order `order`'s line of the order cache (1..kMaxOrder).
  OrderSlots &order_slots(unsigned order) { return pub.orders[order - 1]; }
  const OrderSlots &order_slots(unsigned order) const { return pub.orders[order - 1]; }
  std::uint32_t blocks(unsigned order) const {
    return __atomic_load_n(&order_slots(order).count, __ATOMIC_RELAXED);
  }
  // The order the inline free tries first: the order last taken.
  void set_order_hint(unsigned order) { pub.order_hint = order; }
  // Pages in the order cache's blocks (any thread, for statistics).
  std::uint64_t order_pages() const {
    std::uint64_t pages = 0;
    for (unsigned o = 1; o <= kMaxOrder; ++o) pages += std::uint64_t{blocks(o)} << o;
    return pages;
  }
  // Free pages it holds: its page slots and its order cache's blocks.
  std::uint64_t held() const { return n() + order_pages(); }
};
static_assert(offsetof(ThreadCache, pub) == 64, "one line of bookkeeping, then the inline code's part");
static_assert(sizeof(ThreadCache) == 64 + sizeof(labyrinth_thread_cache), "the page slots follow the object");

// The calling thread's cache for `pool`, claimed on first use; nullptr if
// every cache is taken (the thread then uses the depot, lock-free). The
// pool must be usable here (boundary.hpp, usable_pool: not the parent's pool
// in a forked child); every caller is behind that check. Async-signal-safe.
ThreadCache *cache_for(Pool *pool);

// The calling thread's cache for `pool`, entered: the thread's record is
// marked BUSY (enter_call) and the cache is not being reclaimed by another
// thread. nullptr (nothing entered) if the thread has none, is inside a call
// already (a signal handler), or another thread is reclaiming its cache:
// the caller then takes the depot, lock-free. A non-null return is
// paired with leave_call(). Every library access to the calling thread's own
// cache goes through here (reclaim_caches relies on it). Async-signal-safe.
ThreadCache *enter_cache(Pool *pool);

// Take back the free pages and blocks in other threads' caches, for a
// non-ATOMIC allocation that would otherwise fail or wait: a thread that
// went idle with a full cache holds them out of everyone else's reach until
// it trims or exits. Returns the pages given back to the pool; nothing is
// attempted (no system call) unless those caches hold `want` pages at least.
//
// The owner thread changes its cache without atomic read-modify-writes or
// fences (labyrinth.h's inline code), so another thread may only touch the
// cache at a moment when the owner is provably outside every call and
// cannot start using it again unnoticed. Protocol, per cache:
//  1. set `reclaim`, and point the owner's inline record, if it names this
//     cache, at an empty cache (every inline path then falls through to the
//     library, and the library's enter_cache sees `reclaim`);
//  2. membarrier(PRIVATE_EXPEDITED): every thread of the process executes a
//     full memory barrier. The owner marks its record BUSY (a plain store)
//     *before* it reads the record's cache pointer or `reclaim`. So either
//     that store was before its barrier, and is visible to us now, or the
//     reads come after the barrier and see step 1;
//  3. wait (briefly, bounded) until the record is not BUSY: a call that
//     began before the barrier has ended; all later ones see step 1;
//  4. if the record names the cache again (a call from before the barrier
//     pointed it back), repeat from step 1; else drain it as the owner's
//     exit would, and clear `reclaim`.
// A cache whose owner stays BUSY past the wait is left alone. Holds the
// registry mutex throughout (owner threads cannot exit meanwhile, so their
// records stay valid). Without membarrier (old kernels, seccomp), or in a
// pool with LABYRINTH_POOL_NO_RECLAIM, it takes nothing. May block; not
// async-signal-safe.
std::size_t reclaim_caches(Pool *pool, std::size_t want);

// Refill an empty cache by one batch: from the depot, else from the zones.
// ATOMIC callers never wait for a zone's mutex (try-lock only). Returns the
// number of pages added.
std::uint32_t cache_refill(Pool *pool, ThreadCache *cache, bool atomic);

// The only pop and push of a cache's pages in the library (the inline code
// in labyrinth.h has its own). Owner thread, cache entered (enter_cache).
// Take the top page, after a refill if the cache is empty; false if none.
bool cache_take_page(Pool *pool, ThreadCache *cache, bool atomic, std::size_t *idx);
// Put a freed page on top (its word becomes CACHED), after draining a batch
// if the cache is at its high mark. Not while the pool is under pressure.
void cache_put_page(Pool *pool, ThreadCache *cache, std::size_t idx);

// Free pages in thread caches (page slots and order caches); with `mine`,
// also how many of them are in the calling thread's own. Lock-free: only
// loads, so async-signal-safe.
std::uint64_t cached_pages(const Pool *pool, std::uint64_t *mine = nullptr);

// Move the top `n` pages of the cache to the depot (topping up the atomic
// reserve first), and wake waiters. Lock-free; async-signal-safe.
void cache_drain(Pool *pool, ThreadCache *cache, std::uint32_t n);

// The owner's free found its cache at or past the high mark: drain down to a
// batch below it, and remember how much for cache_refill's growth.
void cache_overflow(Pool *pool, ThreadCache *cache);

// Set the cache's limit (what the inline free reads) to its high mark, or to
// 0 if the pool is under memory pressure. Owner thread.
void cache_sync_limit(Pool *pool, ThreadCache *cache);

// Put the high mark back to its start and forget past drains (trim, thread
// exit). Owner thread.
void cache_reset_mark(Pool *pool, ThreadCache *cache);

// Give back everything a cache holds: its pages to the reserve and the
// depot, its order cache's blocks to the buddy allocator (each under
// its zone's mutex), and put its high mark back at the start. Thread exit,
// trim, and a reclaim by another thread.
void give_back_cache(Pool *pool, ThreadCache *cache);

// The owner's allocation of order >= 1 found no block: give back the
// caller's own cache, its pages to the reserve and the depot (lock-free, no
// waiter woken) and its order cache's blocks to the buddy allocator
// (order_cache_flush, ATOMIC: try-locks only), so that they can merge. The
// high mark stays. No system call. Returns the pages moved. Owner thread,
// cache entered (enter_cache).
std::size_t cache_give_back_own(Pool *pool, ThreadCache *cache, bool atomic);

// Order cache (order >= 1). The caller holds the re-entry guard (enter_call).
// pop: a block of `order`, or nullptr. push: false if the block does not fit
// (its order full, over budget, or the pool is under pressure); on true
// the block's first word is CACHED with its order.
inline void *order_cache_pop(ThreadCache *c, unsigned order) {
  OrderSlots &os = c->order_slots(order);
  const std::uint32_t n = os.count;
  if (n == 0) return nullptr;
  __atomic_store_n(&os.count, n - 1, __ATOMIC_RELAXED);
  return os.blocks[n - 1];
}
// An order at its limit gets a higher one if the budget allows, taking back
// other orders' unused limits first, then pushing out their blocks (to the
// buddy allocator, taking their zones' mutexes one at a time).
bool order_cache_push(Pool *pool, ThreadCache *cache, std::size_t idx, unsigned order);
// Give every cached block back to the buddy allocator, each under its
// zone's mutex (hold none). ATOMIC callers only try the mutexes and stop at
// the first busy one (noted in tls.mutex_busy). Returns the pages given.
std::size_t order_cache_flush(Pool *pool, ThreadCache *cache, bool atomic = false);

}  // namespace lab
