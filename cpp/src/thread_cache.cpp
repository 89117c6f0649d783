// thread_cache.cpp - claiming, refilling and draining per-thread caches.
// See thread_cache.hpp.
#include "thread_cache.hpp"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

#include "process.hpp"
#include "pool.hpp"
#include "waiters.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
// A refill that takes a zone's mutex and finds the depot empty puts
// two batches there, at most this many pages.
constexpr std::size_t kStockPages = 128;
// ...and gives the atomic reserve at most this many pages it lacks.
constexpr std::size_t kReserveTopUp = 64;

// A Buddy::alloc_pages emitter that lists the pages' numbers from `to` on.
struct ListPages {
  std::uint32_t *to;
  void operator()(std::size_t first, std::size_t pages) {
    for (std::size_t i = 0; i < pages; ++i) *to++ = static_cast<std::uint32_t>(first + i);
  }
};
}

// Point the thread's inline fast-path record at (p, c). Written while the
// record says BUSY, pool last, so a signal handler never sees half of it.
// Called only outside calls (never while the record is BUSY).
// Not while another thread reclaims the cache: read under BUSY, as
// reclaim_caches' protocol needs (the record then stays as it was, and the
// next call tries again).
static void fast_setup(Pool *p, ThreadCache *c) {
  labyrinth_fast_record &f = fast();
  const labyrinth_pool *before = fast_pool();
  set_fast_pool(LABYRINTH_FAST_BUSY_V1);
  signal_fence();
  if (c->reclaim.load(std::memory_order_acquire)) {
    signal_fence();
    __atomic_store_n(&f.pool, before, __ATOMIC_RELEASE);
    return;
  }
  __atomic_store_n(&f.cache, &c->pub, __ATOMIC_RELEASE);
  f.side_table = reinterpret_cast<std::uint64_t *>(p->meta);
  f.arena = reinterpret_cast<std::uintptr_t>(p->base);
  f.arena_pages = p->npages;
  f.alloc_word = tls.alloc_word;
  signal_fence();
  __atomic_store_n(&f.pool, static_cast<const labyrinth_pool *>(p), __ATOMIC_RELEASE);
}

ThreadCache *cache_for(Pool *p) {
  CacheSlot &slot = tls_slot(p);
  if (LAB_LIKELY(slot.pool_id == p->id)) {
    // The record names another pool, or this pool with the empty cache a
    // reclaim left there (reclaim_caches).
    if (slot.cache && p->fast_ok &&
        (fast_pool() != p ||
         __atomic_load_n(&fast().cache, __ATOMIC_RELAXED) != &slot.cache->pub))
      fast_setup(p, slot.cache);
    return slot.cache;
  }
  // Not the parent's pool in a forked child: every call that reaches here
  // entered through the C boundary's usable-pool check (boundary.hpp,
  // usable_pool; tests/cpp/lifetime_test.cpp).
  if (!p->use_caches) return nullptr;
  ensure_exit_hook();
  const std::uint64_t me = tls.owner;
  ThreadCache *found = nullptr;
  for (std::uint32_t i = 0; i < p->max_caches && !found; ++i)
    if (p->cache_at(i)->user.load(kRelaxed) == me) found = p->cache_at(i);
  for (std::uint32_t i = 0; i < p->max_caches && !found; ++i) {
    std::uint64_t expected = 0;
    ThreadCache *c = p->cache_at(i);
    if (c->user.load(kRelaxed) == 0 &&
        c->user.compare_exchange_strong(expected, me, std::memory_order_acquire)) {
      found = c;
      c->record.store(&fast(), kRelaxed);
      p->caches_in_use.fetch_add(1, kRelaxed);
    }
  }
  // Remember the answer, including "no cache left", so we do not rescan.
  slot.cache = found;
  signal_fence();
  slot.pool_id = p->id;
  if (found && p->fast_ok) fast_setup(p, found);
  return found;
}

ThreadCache *enter_cache(Pool *p) {
  if (in_call()) return nullptr;
  ThreadCache *c = cache_for(p);
  if (!c) return nullptr;
  enter_call();
  // After the BUSY store (reclaim_caches, step 2).
  if (LAB_UNLIKELY(c->reclaim.load(std::memory_order_acquire))) {
    leave_call();
    return nullptr;
  }
  return c;
}

// ---------------------------------------------------------------------------
// Reclaiming other threads' caches (thread_cache.hpp, reclaim_caches)
// ---------------------------------------------------------------------------

namespace {
// What a reclaimed cache's owner finds in its inline record: a cache with
// no pages, no room (limit 0, capacity 0) and an empty order cache, so every
// inline path falls through to the library. Never written.
alignas(64) labyrinth_thread_cache g_empty_cache;
labyrinth_thread_cache *empty_cache() { return &g_empty_cache; }

// membarrier(PRIVATE_EXPEDITED), registered once per process (and again in
// a forked child). Guarded by the registry mutex.
int g_membarrier = 0;  // 0: not yet asked; 1: registered; -1: unavailable
std::uint64_t g_membarrier_generation = 0;

long membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0U, 0); }

bool membarrier_ready() {
  if (g_membarrier_generation != fork_generation()) {
    g_membarrier_generation = fork_generation();
    g_membarrier = 0;
  }
  if (g_membarrier == 0) {
    const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    g_membarrier = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                           membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
                       ? 1
                       : -1;
  }
  return g_membarrier == 1;
}

// How long a reclaim waits, per round, for owners inside a call to leave it.
constexpr std::int64_t kQuiesceNs = 200000;
// Rounds (step 4 of the protocol): a second is needed only when an owner's
// call from before the first barrier pointed its record back at its cache.
constexpr int kReclaimRounds = 3;

// Step 1 for one cache: point its owner's record at the empty cache if it
// names this one (a compare-and-swap: the owner may be changing it).
void redirect_record(ThreadCache *c) {
  labyrinth_fast_record *rec = c->record.load(kRelaxed);
  labyrinth_thread_cache *mine = &c->pub;
  // Load first: a record that does not name the cache is not written at all.
  if (__atomic_load_n(&rec->cache, __ATOMIC_ACQUIRE) != mine) return;
  __atomic_compare_exchange_n(&rec->cache, &mine, empty_cache(), false, __ATOMIC_SEQ_CST,
                              __ATOMIC_ACQUIRE);
}
}  // namespace

std::size_t reclaim_caches(Pool *p, std::size_t want) {
  // The library calls this from pool_alloc only, behind the boundary's
  // usable-pool check (boundary.hpp, usable_pool): never on the parent's
  // pool in a forked child.
  if (!p->use_caches || (p->flags & LABYRINTH_POOL_NO_RECLAIM)) return 0;
  std::lock_guard<std::mutex> registry(registry_mutex());
  const std::uint64_t me = tls.owner;
  // Caches of other live threads that hold something.
  ThreadCache *pending[1024];
  std::size_t npending = 0, cached = 0;
  for (std::uint32_t i = 0; i < p->max_caches && npending < 1024; ++i) {
    ThreadCache *c = p->cache_at(i);
    const std::uint64_t user = c->user.load(std::memory_order_acquire);
    if (user == 0 || user == me || !c->record.load(kRelaxed)) continue;
    const std::uint64_t in_cache = c->held();
    if (in_cache == 0) continue;
    cached += in_cache;
    pending[npending++] = c;
  }
  if (npending == 0 || cached < want || !membarrier_ready()) return 0;
  for (std::size_t k = 0; k < npending; ++k) pending[k]->reclaim.store(1, std::memory_order_seq_cst);
  std::size_t given = 0;
  for (int round = 0; round < kReclaimRounds && npending; ++round) {
    for (std::size_t k = 0; k < npending; ++k) redirect_record(pending[k]);
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) break;  // take nothing
    const std::int64_t deadline = now_ns() + kQuiesceNs;
    std::size_t again = 0;
    for (std::size_t k = 0; k < npending; ++k) {
      ThreadCache *c = pending[k];
      labyrinth_fast_record *rec = c->record.load(kRelaxed);
      bool quiet = true;
      for (unsigned spins = 0; __atomic_load_n(&rec->pool, __ATOMIC_ACQUIRE) == LABYRINTH_FAST_BUSY_V1; ++spins) {
        if (now_ns() > deadline) {
          quiet = false;
          break;
        }
        if (spins > 64) sched_yield();  // the owner may need this CPU to leave its call
      }
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!quiet) {  // still inside a call: left alone
        c->reclaim.store(0, std::memory_order_release);
        continue;
      }
      if (__atomic_load_n(&rec->cache, __ATOMIC_ACQUIRE) == &c->pub) {
        pending[again++] = c;  // pointed back by a call from before the barrier
        continue;
      }
      const std::uint64_t taken = c->held();
      given += taken;
      p->cache_reclaims.fetch_add(1, kRelaxed);
      p->reclaimed_pages.fetch_add(taken, kRelaxed);
      give_back_cache(p, c);  // as the owner's exit would
      c->reclaim.store(0, std::memory_order_release);
    }
    npending = again;
  }
  for (std::size_t k = 0; k < npending; ++k) pending[k]->reclaim.store(0, std::memory_order_release);
  return given;
}

void cache_sync_limit(Pool *p, ThreadCache *c) {
  c->set_limit(c->high.load(kRelaxed));
  // set_pressure() sets `pressure`, then zeroes every limit: either it zeroes
  // ours after our store, or we see `pressure` here (both sides seq_cst).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (p->pressure.load(kRelaxed)) c->set_limit(0);
}

void cache_reset_mark(Pool *p, ThreadCache *c) {
  c->high.store(p->cache_start, kRelaxed);
  c->drained = 0;
  cache_sync_limit(p, c);
}

void cache_overflow(Pool *p, ThreadCache *c) {
  const std::uint32_t n = c->n(), high = c->high.load(kRelaxed);
  // Down to a batch below the high mark (the high mark may have dropped
  // under memory pressure while the cache held more).
  const std::uint32_t count = n - high + (c->batch < high ? c->batch : high);
  cache_drain(p, c, count);
  c->drained = c->drained + count < c->capacity() ? c->drained + count : c->capacity();
}

namespace {

// Dry after draining past the high mark: the thread's bursts are larger
// than its cache. Raise the mark by what was drained (thread_cache.hpp).
void raise_high_mark(Pool *p, ThreadCache *c) {
  if (!c->drained) return;
  std::uint32_t high = c->high.load(kRelaxed);
  const std::uint32_t most = p->cache_high_max;
  if (!p->pressure.load(kRelaxed) && high < most) {
    high = most - high > c->drained ? high + c->drained : most;
    c->high.store(high, kRelaxed);
    cache_sync_limit(p, c);
  }
  c->drained = 0;
}

// Non-ATOMIC callers stop at the min watermark; ATOMIC ones may go to zero.
std::size_t refill_allowed(const Pool *p, std::size_t want, bool atomic) {
  if (atomic) return want;
  const std::size_t free = p->free_pages();
  if (free <= p->wm_min) return 0;
  return free - p->wm_min < want ? free - p->wm_min : want;
}

// 1. The depot: one CAS for a whole chain, up to `take` pages of it into the
// slots from `to` on; what is left of the chain goes back. The pages keep
// their chain words (DEPOT or MAGAZINE, see side_table.hpp): not writing
// them saves a refill one cache-line transfer per 8 pages when another CPU
// drained the chain; the free that puts a page back writes CACHED. Returns
// the pages taken. Lock-free.
std::uint32_t refill_from_depot(Pool *p, void **to, std::size_t take) {
  const std::size_t first = p->depot.pop_chain();
  if (first == kNoPage) return 0;
  std::uint32_t added = 0;
  std::size_t i = kNoPage, rest;  // i: the first page left over, rest: how many
  if (const std::size_t length = p->depot.take_magazine(first, to, take, &i)) {
    // The chain's pages, read from its magazine (depot.hpp).
    added = static_cast<std::uint32_t>(length < take ? length : take);
    rest = length - added;
  } else {
    for (i = first; i != kNoPage && added < take; ++added) {
      const std::size_t next = chain_next_page(p->meta[i].load(kRelaxed));
      to[added] = p->page_at(i);
      i = next;
    }
    rest = p->depot.length_from(i);
  }
  p->depot.taken(added + rest);
  if (rest) p->depot.push_linked(i, rest);  // longer than our room: give the rest back
  return added;
}

// 2. The buddy allocator, zone by zone (in_zones: ATOMIC callers take only
// a zone whose mutex is free now; the first zone that gives pages ends the
// search, even if fewer than a batch), into the slots from `to` on. If the
// depot is empty, every other thread's next refill needs a zone's mutex as
// well, and an ATOMIC one that finds them busy (their holders may have been
// preempted) falls back on the small reserve, then fails: so the holder also
// puts a few batches in the depot, lock-free for the others, and tops the
// reserve up if ATOMIC callers have been using it (otherwise only frees
// refill it, and a run of allocations spends it for good). Returns the
// pages taken.
std::uint32_t refill_from_zones(Pool *p, ThreadCache *c, void **to, std::size_t want, bool atomic) {
  std::uint32_t stock[kStockPages], spare[kReserveTopUp];
  std::size_t stocked = 0, spares = 0;
  std::uint32_t added = 0;
  in_zones(p->zones, p->nzones, 0, atomic, [&](Zone &zone) {
    const std::size_t limit = refill_allowed(p, want, atomic);
    void **slots = to;
    added = static_cast<std::uint32_t>(zone.buddy.alloc_pages(limit, [p, &slots](std::size_t first, std::size_t pages) {
      for (std::size_t i = 0; i < pages; ++i) {
        p->meta[first + i].store(CACHED, kRelaxed);
        *slots++ = p->page_at(first + i);
      }
    }));
    if (added == want && p->depot.empty()) {
      const std::size_t most = 2 * std::size_t{c->batch} < kStockPages ? 2 * std::size_t{c->batch} : kStockPages;
      stocked = zone.buddy.alloc_pages(most, ListPages{stock});
      p->depot.announce(stocked);  // counted as free again before the mutex is released; pushed after
    }
    const std::size_t in_reserve = p->reserve.pages();
    if (added == want && in_reserve < p->reserve_target) {
      const std::size_t missing = p->reserve_target - in_reserve;
      spares = zone.buddy.alloc_pages(missing < kReserveTopUp ? missing : kReserveTopUp, ListPages{spare});
    }
    return added != 0 || limit == 0;
  });
  for (std::size_t i = 0; i < spares; ++i) {
    const std::size_t idx = spare[i];
    p->reserve.push([idx](std::size_t) { return idx; }, 1);
  }
  for (std::size_t done = 0; done < stocked;) {  // in chains of a batch, each with its magazine
    const std::size_t k = stocked - done < c->batch ? stocked - done : c->batch;
    const std::uint32_t *from = stock + done;
    p->depot.push([from](std::size_t i) { return std::size_t{from[i]}; }, k, true);
    done += k;
  }
  return added;
}

}  // namespace

std::uint32_t cache_refill(Pool *p, ThreadCache *c, bool atomic) {
  raise_high_mark(p, c);
  const std::uint32_t n = c->n();
  const std::uint32_t room = c->high.load(kRelaxed) - n;  // n is 0: only an empty cache refills
  const std::size_t want = c->batch < room ? c->batch : room;
  const std::size_t limit = refill_allowed(p, want, atomic);
  if (limit == 0) return 0;
  // A full batch may take the depot's whole chain (up to the room left); a
  // non-ATOMIC caller near the min watermark takes only what it may.
  std::uint32_t added = refill_from_depot(p, c->slots() + n, limit == want ? room : limit);
  if (added == 0) added = refill_from_zones(p, c, c->slots() + n, want, atomic);
  if (added) {
    c->set_n(n + added);
    c->refills.store(c->refills.load(kRelaxed) + 1, kRelaxed);
    update_pressure(p);
  }
  return added;
}

bool cache_take_page(Pool *p, ThreadCache *c, bool atomic, std::size_t *idx) {
  std::uint32_t n = c->n();
  if (n == 0 && cache_refill(p, c, atomic) == 0) return false;
  n = c->n();
  *idx = p->index_of(c->slots()[n - 1]);
  c->set_n(n - 1);
  return true;
}

void cache_put_page(Pool *p, ThreadCache *c, std::size_t idx) {
  const std::uint32_t high = c->high.load(kRelaxed);
  if (c->n() >= high) cache_overflow(p, c);
  // A limit left at 0 by pressure that has ended sends every free here.
  if (c->limit() != high) cache_sync_limit(p, c);
  const std::uint32_t n = c->n();
  p->meta[idx].store(CACHED, kRelaxed);
  c->slots()[n] = p->page_at(idx);
  c->set_n(n + 1);
}

// cache_drain without its wake: the pages move, nothing else happens.
static void move_to_depot(Pool *p, ThreadCache *c, std::uint32_t count) {
  std::uint32_t n = c->n();
  if (count > n) count = n;
  std::uint32_t from = n - count;
  // Top up the atomic reserve first: it is what ATOMIC callers fall back on.
  while (count && p->reserve.pages() < p->reserve_target) {
    std::size_t idx = p->index_of(c->slots()[from + count - 1]);
    p->reserve.push([idx](std::size_t) { return idx; }, 1);
    --count;
  }
  // In chains of a batch at most, the cache's newest pages last (on top):
  // a refill pops a whole chain, takes what it has room for and pushes the
  // rest back, and meanwhile the whole chain is hidden from other threads; a
  // chain longer than a magazine lists would make it follow the chain's links
  // to the end (ThreadCache.AWholeCacheGoesBackInChainsOfABatchAtMost).
  for (std::uint32_t done = 0; done < count;) {
    const std::uint32_t k = count - done < c->batch ? count - done : c->batch;
    void **slots = c->slots() + from + done;
    p->depot.push([p, slots](std::size_t i) { return p->index_of(slots[i]); }, k);
    done += k;
  }
  c->set_n(from);
  c->drains.store(c->drains.load(kRelaxed) + 1, kRelaxed);
}

void cache_drain(Pool *p, ThreadCache *c, std::uint32_t count) {
  move_to_depot(p, c, count);
  update_pressure(p);
  if (p->nwaiters.load(std::memory_order_seq_cst)) wake_waiters(p);
}

std::size_t cache_give_back_own(Pool *p, ThreadCache *c, bool atomic) {
  const std::size_t pages = c->n();
  move_to_depot(p, c, c->n());
  const std::size_t blocks = order_cache_flush(p, c, atomic);
  if (pages) update_pressure(p);
  return pages + blocks;
}

void give_back_cache(Pool *p, ThreadCache *c) {
  cache_drain(p, c, c->n());
  order_cache_flush(p, c);
  cache_reset_mark(p, c);
}

std::uint64_t cached_pages(const Pool *p, std::uint64_t *mine) {
  std::uint64_t n = 0, own = 0;
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    const ThreadCache *c = p->cache_at(i);
    const std::uint64_t user = c->user.load(kRelaxed);
    if (!user) continue;
    n += c->held();
    if (user == tls.owner) own += c->held();
  }
  if (mine) *mine = own;
  return n;
}

}  // namespace lab
