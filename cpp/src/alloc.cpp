// alloc.cpp - the general allocation path: every order and flag, from the
// caller's thread cache or order cache, the depot, the zones' buddy
// allocators, the atomic reserve, other threads' idle caches, or (WAIT) a
// wait until blocks come back.
#include <sys/mman.h>

#include <cstring>

#include "depot.hpp"
#include "pkeys.hpp"
#include "poison.hpp"
#include "pool.hpp"
#include "reserve.hpp"
#include "thread_cache.hpp"
#include "waiters.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

// Order-0 page from this thread's cache, the depot or the buddy.
static bool take_page(Pool *p, bool atomic, std::size_t *idx) {
  if (ThreadCache *c = enter_cache(p)) {
    const bool ok = cache_take_page(p, c, atomic, idx);
    leave_call();
    return ok;
  }
  // No cache (none left, debug mode, or re-entered from a signal handler):
  // one page from the depot, lock-free.
  if (p->use_caches && (atomic || p->free_pages() > p->wm_min)) {
    const std::size_t first = p->depot.pop_page();
    if (first != kNoPage) {
      *idx = first;
      return true;
    }
  }
  return take_block(p, 0, atomic, idx);
}

// A block of order >= 1 from this thread's order cache.
static bool take_cached_block(Pool *p, unsigned order, std::size_t *idx) {
  ThreadCache *c = enter_cache(p);
  if (!c) return false;
  void *b = order_cache_pop(c, order);
  if (b) c->set_order_hint(order);  // the hint the inline free tries first
  leave_call();
  if (!b) return false;
  *idx = p->index_of(b);
  return true;
}

// When everything else failed: a block of `order` carved out of the
// smallest larger block in this thread's order cache (that block goes to the
// buddy allocator, which splits it). Done only when it succeeds for certain,
// so a failed allocation still changes nothing; blocks of smaller orders that
// might merge into the one asked for stay cached (labyrinth_pool_trim gives
// them back). These are the thread's own free pages: no watermark applies.
static bool carve_cached_block(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  ThreadCache *c = enter_cache(p);
  if (!c) return false;
  unsigned from = order + 1;
  while (from <= kMaxOrder && c->blocks(from) == 0) ++from;
  if (from > kMaxOrder) {
    leave_call();
    return false;
  }
  // The block order_cache_pop will give, so that its zone's mutex is taken
  // first. Inside the call (BUSY) throughout: the cache cannot change
  // meanwhile, not even by a reclaim (which waits for the call to end, or
  // gives up on this cache).
  Zone &zone = p->zone_of(p->index_of(c->order_slots(from).blocks[c->blocks(from) - 1]));
  if (!zone.mu.acquire(atomic)) {
    leave_call();
    return false;
  }
  std::unique_lock<ZoneMutex> lock(zone.mu, std::adopt_lock);
  void *b = order_cache_pop(c, from);
  leave_call();
  zone.buddy.free(p->index_of(b), from);
  return zone.buddy.alloc(order, idx);
}

// An allocation of order >= 1 found no block: the caller's own cache may
// hold the pages that would merge into one (cache_give_back_own). Only when
// they could: with the pool's free pages they make the block (and, unless
// ATOMIC, the min watermark); else the cache stays as it is. True if
// anything moved, so that trying again may succeed.
static bool give_back_own_cache(Pool *p, unsigned order, bool atomic) {
  ThreadCache *c = enter_cache(p);
  if (!c) return false;
  const std::size_t need = (std::size_t{1} << order) + (atomic ? 0 : p->wm_min);
  const std::size_t moved = p->free_pages() + c->held() >= need ? cache_give_back_own(p, c, atomic) : 0;
  leave_call();
  return moved != 0;
}

// Only the block's first word changes: its other pages are UNUSED
// (side_table.hpp).
// `pkey` (PKEYS pools, else -1): the key the block gets, the caller's for an
// exclusive block, 0 (open to all) for a shared one.
static void hand_out(Pool *p, std::size_t idx, unsigned order, labyrinth_gfp gfp, int pkey) {
  const bool excl = gfp & LABYRINTH_GFP_EXCLUSIVE;
  const std::size_t pages = std::size_t{1} << order;
  void *page = p->page_at(idx);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(page, pages * kPageSize, PROT_READ | PROT_WRITE);
  if (pkey >= 0) {
    pkeys::protect(page, pages * kPageSize, pkey);
    if (excl) pkeys::hold(owner_self());
  }
  if (p->flags & LABYRINTH_POOL_POISON) check_poison(p, idx, pages);
  // Fresh pages are zero; freed ones hold zeros (SCRUB) or the pattern
  // (POISON; with SCRUB too, the block is zeroed here instead).
  const bool zero = (p->flags & LABYRINTH_POOL_SCRUB) ? (p->flags & LABYRINTH_POOL_POISON) != 0
                                                       : (gfp & LABYRINTH_GFP_ZERO) != 0;
  if (zero) std::memset(page, 0, pages * kPageSize);
  p->meta[idx].store(alloc_word(order, excl, excl ? owner_self() : 0), std::memory_order_release);
}

// The message budget is tls.message (224 bytes, initial-exec TLS: kept small
// so the library still fits glibc's static TLS surplus when dlopen()ed), so
// the pieces are terse: the typical worst case (ATOMIC, busy mutex) is ~210.
// Free pages in other threads' caches are out of this call's reach; a
// non-ATOMIC caller is told how many (a scan of every cache: up to two cache
// misses per cache in use), an ATOMIC one only how many caches are in use,
// so that its refusal stays as quick as the rest of its path.
static labyrinth_status nomem(Pool *p, unsigned order, labyrinth_gfp gfp) {
  const char *busy = tls.mutex_busy ? "; the mutex of a zone with free blocks was busy (ATOMIC "
                                      "never waits for it)"
                                    : "";
  if (gfp & LABYRINTH_GFP_ATOMIC)
    return set_error(p->fail(LABYRINTH_ERR_NOMEM),
                     "no free block of order %u (ATOMIC): %zu free outside the %u thread caches "
                     "in use, reserve %zu/%zu, min watermark %zu, largest free order %d%s",
                     order, p->free_pages(), p->caches_in_use.load(kRelaxed), p->reserve.pages(),
                     p->reserve_target, p->wm_min, p->largest_free_order(), busy);
  std::uint64_t mine = 0;
  const std::uint64_t cached = cached_pages(p, &mine);
  return set_error(p->fail(LABYRINTH_ERR_NOMEM),
                   "no free block of order %u (without waiting): %zu free, %llu in thread caches "
                   "(%llu this thread's), reserve %zu/%zu, min watermark %zu, largest free order %d%s",
                   order, p->free_pages(), static_cast<unsigned long long>(cached),
                   static_cast<unsigned long long>(mine), p->reserve.pages(), p->reserve_target,
                   p->wm_min, p->largest_free_order(), busy);
}

labyrinth_status pool_alloc(Pool *p, unsigned order, labyrinth_gfp gfp, std::uint32_t timeout_ms,
                            void **out) {
  const bool atomic = gfp & LABYRINTH_GFP_ATOMIC;
  std::size_t idx = 0;
  bool got = false;
  tls.mutex_busy = 0;
  // PKEYS: the key the block will carry, known before any block is taken
  // (no key left: UNSUPPORTED, nothing changed).
  int pkey = -1;
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    if (gfp & LABYRINTH_GFP_EXCLUSIVE) {
      labyrinth_status st = pkeys::self_key("labyrinth_alloc_pages", &pkey);
      if (st != LABYRINTH_OK) return p->fail(st);
    } else {
      pkey = 0;
      pkeys::refresh_rights();
    }
  }
  // WAIT callers queue behind earlier waiters rather than overtake them.
  const bool queue_first = (gfp & LABYRINTH_GFP_WAIT) && p->nwaiters.load(kRelaxed) > 0;
  if (!queue_first) {
    auto attempt = [&] {
      return (order == 0 ? take_page(p, atomic, &idx) : take_block_flushing(p, order, atomic, &idx)) ||
             carve_cached_block(p, order, atomic, &idx);
    };
    got = order > 0 && take_cached_block(p, order, &idx);
    if (!got) got = attempt();
    if (!got && order > 0 && give_back_own_cache(p, order, atomic)) got = attempt();
    if (!got && atomic && order == 0) got = take_reserve(p, &idx);
    // Free pages may sit in the caches of threads that have gone idle: a
    // caller that may block takes them back (reclaim_caches) and tries once
    // more, before it fails or sleeps.
    if (!got && !atomic && reclaim_caches(p, std::size_t{1} << order) != 0) got = attempt();
  }
  if (!got) {
    if (!(gfp & LABYRINTH_GFP_WAIT)) return nomem(p, order, gfp);
    labyrinth_status st = wait_for_block(p, order, timeout_ms, &idx);
    if (st != LABYRINTH_OK) return st;
  }
  hand_out(p, idx, order, gfp, pkey);
  *out = p->page_at(idx);
  return LABYRINTH_OK;
}

}  // namespace lab
