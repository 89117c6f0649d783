// waiters.cpp - memory pressure and WAIT callers (waiters.hpp).
#include "waiters.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include "depot.hpp"
#include "pool.hpp"
#include "thread_cache.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

void futex_wake_all(std::atomic<std::uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX,
          nullptr, nullptr, 0);
}

void futex_wait(std::atomic<std::uint32_t> *word, std::uint32_t seen, long max_ns) {
  struct timespec ts {
    max_ns / 1000000000L, max_ns % 1000000000L
  };
  syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAIT_PRIVATE, seen, &ts,
          nullptr, 0);
}

}  // namespace

// A WAIT caller, queued in arrival order under the pool's wait_mu.
struct Waiter {
  unsigned order;
  Waiter *next;
};

void wake_waiters(Pool *p) {
  p->wait_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(&p->wait_seq);
}

// Under pressure, frees must reach the depot, so every cache's limit
// drops to 0 (the inline free path reads it) and its high mark goes back to
// its start; afterwards the limit is the high mark again. An owner raising
// its high mark at the same moment may keep its raise (bounded by the
// capacity); it stores its limit with cache_sync_limit, which re-reads
// `pressure` after the store, so no cache keeps a limit through pressure.
static void set_cache_limits(Pool *p, bool pressure) {
  // Pairs with the fence in cache_sync_limit: `pressure` was set before it.
  if (pressure) std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    ThreadCache *c = p->cache_at(i);
    if (pressure) c->high.store(p->cache_start, kRelaxed);
    c->set_limit(pressure ? 0 : c->high.load(kRelaxed));
  }
}

void set_pressure(Pool *p) {
  if (!p->pressure.exchange(true, std::memory_order_seq_cst)) {
    p->pressure_events.fetch_add(1, kRelaxed);
    set_cache_limits(p, true);
  }
}

void update_pressure(Pool *p) {
  std::size_t free = p->free_pages();
  bool on = p->pressure.load(kRelaxed);
  if (!on && free < p->wm_low) {
    set_pressure(p);
  } else if (on && free >= p->wm_high && p->nwaiters.load(kRelaxed) == 0) {
    if (p->pressure.exchange(false, kRelaxed)) set_cache_limits(p, false);
    // A concurrent set_pressure() may have lost to us: it re-checks next time.
    if (p->free_pages() < p->wm_low) set_pressure(p);
  }
}

labyrinth_status wait_for_block(Pool *p, unsigned order, std::uint32_t timeout_ms, std::size_t *idx) {
  const std::int64_t deadline =
      timeout_ms == LABYRINTH_TIMEOUT_INFINITE ? INT64_MAX : now_ns() + std::int64_t{timeout_ms} * 1000000;
  Waiter self{order, nullptr};
  std::unique_lock<std::mutex> lock(p->wait_mu);
  if (p->wait_tail) p->wait_tail->next = &self;
  else p->wait_head = &self;
  p->wait_tail = &self;
  p->nwaiters.fetch_add(1, std::memory_order_seq_cst);
  set_pressure(p);
  p->waits.fetch_add(1, kRelaxed);
  bool got = false, timed_out = false;
  for (;;) {
    std::uint32_t seen = p->wait_seq.load(std::memory_order_seq_cst);
    if (p->wait_head == &self) {
      // Only the first waiter takes pages: arrival order is service order.
      if (order == 0 && p->use_caches && p->free_pages() > p->wm_min) {
        const std::size_t first = p->depot.pop_page();
        if (first != kNoPage) {
          *idx = first;
          got = true;
        }
      }
      if (!got) got = take_block_flushing(p, order, false, idx);
      if (got) break;
    }
    std::int64_t left = deadline - now_ns();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    lock.unlock();
    // Sleep until pages come back (wait_seq changes), the deadline, or 100 ms:
    // the periodic re-check is a safety net for pages freed into thread caches.
    futex_wait(&p->wait_seq, seen, std::min<std::int64_t>(left, 100000000));
    lock.lock();
  }
  // Dequeue ourselves (we may not be first if we timed out).
  Waiter **link = &p->wait_head;
  Waiter *prev = nullptr;
  while (*link != &self) {
    prev = *link;
    link = &(*link)->next;
  }
  *link = self.next;
  if (p->wait_tail == &self) p->wait_tail = prev;
  p->nwaiters.fetch_sub(1, std::memory_order_seq_cst);
  lock.unlock();
  wake_waiters(p);  // the next waiter is now first
  update_pressure(p);
  if (timed_out) {
    p->timeouts.fetch_add(1, kRelaxed);
    std::uint64_t mine = 0;
    const std::uint64_t cached = cached_pages(p, &mine);
    return set_error(p->fail(LABYRINTH_ERR_TIMEOUT),
                     "no block of order %u became free within %u ms (%zu free pages, %llu in "
                     "thread caches (%llu this thread's), min watermark %zu)",
                     order, timeout_ms, p->free_pages(), static_cast<unsigned long long>(cached),
                     static_cast<unsigned long long>(mine), p->wm_min);
  }
  return LABYRINTH_OK;
}

}  // namespace lab
