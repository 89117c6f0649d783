// zones.hpp - the buddy allocator in zones, each under its own mutex.
//
// A pool of 8 MiB or more splits its arena into 2 to 4 zones, each a buddy
// allocator with its own mutex, at multiples of 4 MiB (the largest block),
// so the free blocks are exactly one buddy allocator's. A block goes back to
// the zone it came from. Allocations try the zones in the order one buddy
// allocator would take from them (in_zones), ATOMIC ones with try_lock only:
// a zone whose mutex holder was preempted refuses no ATOMIC caller that
// another zone can serve. A pool under 8 MiB has one zone, and there a
// preempted holder refuses them until it runs again. No code holds two
// zones' mutexes at once: what spans zones (trim, the reserve's place and
// renewal, flushing the depot) takes them one at a time, so one preempted
// thread keeps ATOMIC callers out of one zone at most (zones_test).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "buddy.hpp"
#include "common.hpp"

namespace lab {

struct Pool;

constexpr unsigned kMaxZones = 4;
constexpr std::size_t kZoneUnit = std::size_t{1} << kMaxOrder;  // pages: zones start at multiples

#ifdef LABYRINTH_CHECK_ZONE_NESTING
// How many times a thread took a zone's mutex while it held another: never,
// by design (see above). Counted in test builds only (cpp/CMakeLists.txt),
// checked by zones_test and reclaim_test.
extern std::atomic<std::uint64_t> g_zone_nesting;
#endif

// A zone's mutex: a std::mutex that, in test builds, counts per thread how
// many zone mutexes the thread holds (tls.zones_held) and counts in
// g_zone_nesting each time one is taken while another is held. (An ATOMIC
// call from a signal handler that interrupted a holder counts too, if its
// try succeeds on another zone: harmless, it never waits.)
class ZoneMutex {
 public:
  void lock() {
    note_taken();
    mu_.lock();
  }
  bool try_lock() {
    if (!mu_.try_lock()) return false;
    note_taken();
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
    note_released();
  }

 private:
#ifdef LABYRINTH_CHECK_ZONE_NESTING
  void note_taken() {
    if (tls.zones_held++ != 0) g_zone_nesting.fetch_add(1, std::memory_order_relaxed);
  }
  void note_released() { --tls.zones_held; }
#else
  void note_taken() {}
  void note_released() {}
#endif
  std::mutex mu_;
};

struct Zone {
  alignas(64) ZoneMutex mu;
  Buddy buddy;  // pages [begin, end), under mu
  std::size_t begin = 0, end = 0;
};

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
bool in_zones(Zone *zones, unsigned nzones, unsigned order, bool atomic, Take take) {
  unsigned rank[kMaxZones];
  int fit[kMaxZones];
  unsigned n = 0;
  for (unsigned z = 0; z < nzones; ++z) {
    const int o = zones[z].buddy.smallest_free_order_relaxed(order);
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
      Zone &zone = zones[rank[k]];
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

// Blocks from and to a pool's zones (zones.cpp).

// A block of `order` from the buddy allocator, zone by zone (in_zones);
// non-ATOMIC callers keep the min watermark. ATOMIC: try-locks only.
bool take_block(Pool *pool, unsigned order, bool atomic, std::size_t *idx);

// Take a block of `order` where one buddy allocator over the whole arena
// would (in_zones' order) and keep its first `used` pages: the rest goes back
// in the same hold of that zone's mutex. May block. False if no zone has one.
bool take_smallest(Pool *pool, unsigned order, std::size_t used, std::size_t *idx);

// Give a block to the buddy allocator under its zone's mutex. May block.
void buddy_free_block(Pool *pool, std::size_t idx, unsigned order);

}  // namespace lab
