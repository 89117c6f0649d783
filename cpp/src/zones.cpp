// zones.cpp - blocks from and to a pool's zones (zones.hpp).
#include "zones.hpp"

#include "pool.hpp"

namespace lab {

#ifdef LABYRINTH_CHECK_ZONE_NESTING
std::atomic<std::uint64_t> g_zone_nesting{0};
#endif

bool take_block(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  const std::size_t pages = std::size_t{1} << order;
  bool got = false;
  in_zones(p->zones, p->nzones, order, atomic, [&](Zone &zone) {
    if (!atomic && p->free_pages() < p->wm_min + pages) return true;
    return got = zone.buddy.alloc(order, idx);
  });
  return got;
}

// Give back the pages [block + used, block + 2^order) of a block just taken
// (its zone's mutex held), largest pieces first.
static void give_back_tail_locked(Zone &zone, std::size_t block, unsigned order, std::size_t used) {
  const std::size_t end = std::size_t{1} << order;
  while (used < end) {
    unsigned piece = 0;
    while ((used & (std::size_t{1} << piece)) == 0 && used + (std::size_t{2} << piece) <= end) ++piece;
    zone.buddy.free(block + used, piece);
    used += std::size_t{1} << piece;
  }
}

bool take_smallest(Pool *p, unsigned order, std::size_t used, std::size_t *idx) {
  return in_zones(p->zones, p->nzones, order, false, [&](Zone &zone) {
    if (!zone.buddy.alloc(order, idx)) return false;
    give_back_tail_locked(zone, *idx, order, used);
    return true;
  });
}

void buddy_free_block(Pool *p, std::size_t idx, unsigned order) {
  Zone &zone = p->zone_of(idx);
  std::lock_guard<ZoneMutex> lock(zone.mu);
  zone.buddy.free(idx, order);
}

}  // namespace lab
