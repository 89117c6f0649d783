// release.cpp - returning blocks: what the pool's modes do to a freed
// block (SCRUB, POISON, GUARD, PKEYS), then the caller's thread cache or
// order cache, the depot or the reserve, or the block's zone.
#include <sys/mman.h>

#include <cstring>
#include <mutex>

#include "pkeys.hpp"
#include "poison.hpp"
#include "pool.hpp"
#include "thread_cache.hpp"
#include "waiters.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

// What every mode does to a block that is becoming free, before any free
// list can hand it out again.
static void treat_freed_block(Pool *p, std::size_t idx, std::size_t pages, std::uint64_t last_owner) {
  if (p->flags & LABYRINTH_POOL_POISON) poison_block(p, idx, pages, last_owner);
  else if (p->flags & LABYRINTH_POOL_SCRUB) std::memset(p->page_at(idx), 0, pages * kPageSize);
}

void release_block(Pool *p, std::size_t idx, unsigned order) {
  const std::size_t pages = std::size_t{1} << order;
  void *page = p->page_at(idx);
  if (p->flags & (LABYRINTH_POOL_POISON | LABYRINTH_POOL_SCRUB)) {
    // The word still names the owner of an exclusive block; a shared block
    // was last held by the thread freeing it.
    std::uint64_t w = p->meta[idx].load(kRelaxed);
    treat_freed_block(p, idx, pages, exclusive(w) ? side::owner(w) : owner_self());
  }
  if (order == 0 && p->use_caches) {
    ThreadCache *c = enter_cache(p);
    if (c && !p->pressure.load(kRelaxed)) {
      cache_put_page(p, c, idx);
      leave_call();
      return;
    }
    // Under pressure the pages this thread keeps cached are what other
    // threads lack: the first free it makes under pressure gives them all
    // back (lock-free, like a drain; its later frees find the cache empty).
    if (c) {
      if (c->n()) cache_drain(p, c, c->n());
      leave_call();
    }
    // Under pressure, without a cache or re-entered: straight to the depot
    // (or the reserve, if it is short), lock-free, and wake waiters.
    if (p->reserve.pages() < p->reserve_target)
      p->reserve.push([idx](std::size_t) { return idx; }, 1);
    else
      p->depot.push([idx](std::size_t) { return idx; }, 1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (p->nwaiters.load(kRelaxed)) wake_waiters(p);
    update_pressure(p);
    return;
  }
  if (order > 0 && p->use_caches) {
    if (ThreadCache *c = enter_cache(p)) {
      bool kept = order_cache_push(p, c, idx, order);
      leave_call();
      if (kept) return;
    }
  }
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    const std::uint64_t w = p->meta[idx].load(kRelaxed);
    pkeys::protect(page, pages * kPageSize, pkeys::free_key());
    if (exclusive(w)) pkeys::drop(side::owner(w));
  }
  {
    Zone &zone = p->zone_of(idx);
    std::lock_guard<ZoneMutex> lock(zone.mu);
    if (p->flags & LABYRINTH_POOL_GUARD) mprotect(page, pages * kPageSize, PROT_NONE);
    zone.buddy.free(idx, order);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (p->nwaiters.load(kRelaxed)) wake_waiters(p);
  update_pressure(p);
}

void release_orphan_block(Pool *p, std::size_t idx, unsigned order, std::uint64_t owner) {
  const std::size_t pages = std::size_t{1} << order;
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    // The dead owner's key: this thread has no access. Free key first, then
    // scrub or poison with access to free pages for the moment.
    pkeys::protect(p->page_at(idx), pages * kPageSize, pkeys::free_key());
    pkeys::drop(owner);
    pkeys::FreePageAccess access;
    treat_freed_block(p, idx, pages, owner);
  } else {
    treat_freed_block(p, idx, pages, owner);
  }
  Zone &zone = p->zone_of(idx);
  std::lock_guard<ZoneMutex> lock(zone.mu);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(p->page_at(idx), pages * kPageSize, PROT_NONE);
  zone.buddy.free(idx, order);
}

}  // namespace lab
