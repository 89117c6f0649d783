// zones_lock.hpp - test scaffolding: every zone's mutex held at once, the
// way threads preempted in the middle of their holds (one per zone) would
// hold them. The library itself never holds two (zones.hpp).
#pragma once

#include "pool.hpp"

namespace labtest {

class ZonesLock {
 public:
  explicit ZonesLock(lab::Pool *p) : p_(p) {
    for (unsigned z = 0; z < p_->nzones; ++z) p_->zones[z].mu.lock();
  }
  ~ZonesLock() {
    for (unsigned z = p_->nzones; z-- > 0;) p_->zones[z].mu.unlock();
  }
  ZonesLock(const ZonesLock &) = delete;
  ZonesLock &operator=(const ZonesLock &) = delete;

 private:
  lab::Pool *p_;
};

}  // namespace labtest
