// stats.cpp - labyrinth_pool_stats: every counter of a pool, in one struct.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "pool.hpp"
#include "thread_cache.hpp"

namespace lab {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

labyrinth_status pool_stats(const Pool *cp, labyrinth_stats *out) {
  Pool *p = const_cast<Pool *>(cp);
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  s.total_pages = p->npages;
  // The zones' counters, read without their mutexes (exact when no other
  // thread is changing them).
  for (unsigned z = 0; z < p->nzones; ++z)
    for (unsigned o = 0; o <= kMaxOrder; ++o) s.free_blocks[o] += p->zones[z].buddy.free_blocks(o);
  s.free_pages = p->free_pages();
  s.shared_free_pages = p->depot.pages();
  s.reserve_pages = p->reserve.pages();
  s.reserve_target = p->reserve_target;
  s.cached_pages = cached_pages(p);
  std::uint64_t not_allocated = s.free_pages + s.reserve_pages + s.cached_pages;
  s.allocated_pages = s.total_pages > not_allocated ? s.total_pages - not_allocated : 0;
  s.inflight_pages = p->inflight_pages.load(kRelaxed);
  {
    std::lock_guard<std::mutex> reg(registry_mutex());
    s.orphaned_pages = count_orphaned_pages(p);
  }
  s.reserve_uses = p->reserve_uses.load(kRelaxed);
  for (unsigned i = 0; i < LABYRINTH_STATUS_COUNT; ++i) s.failures[i] = p->failures[i].load(kRelaxed);
  s.waits = p->waits.load(kRelaxed);
  s.timeouts = p->timeouts.load(kRelaxed);
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {  // every cache, in use or not
    s.refills += p->cache_at(i)->refills.load(kRelaxed);
    s.drains += p->cache_at(i)->drains.load(kRelaxed);
  }
  s.pressure_events = p->pressure_events.load(kRelaxed);
  s.watermark_min = p->wm_min;
  s.watermark_low = p->wm_low;
  s.watermark_high = p->wm_high;
  s.thread_caches_in_use = p->caches_in_use.load(kRelaxed);
  s.metadata_bytes = p->npages * sizeof(std::uint64_t);
  s.flags = p->flags;
  s.huge_pages = p->arena.huge_pages ? 1 : 0;
  s.cache_reclaims = p->cache_reclaims.load(kRelaxed);
  s.reclaimed_pages = p->reclaimed_pages.load(kRelaxed);
  const Arena &a = p->arena;
  s.arena_provider = a.provider.map ? a.provider.name : "anonymous";
  s.arena_unused_bytes = a.provider.map ? a.mapped_size - a.size : 0;
  s.arena_flags = a.provider.flags;
  *out = s;
  return LABYRINTH_OK;
}

}  // namespace lab
