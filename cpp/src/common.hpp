// common.hpp - small pieces every core file uses: branch hints, the
// thread-local state, and error reporting.
#pragma once

#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "labyrinth/labyrinth.h"

#define LAB_LIKELY(x) __builtin_expect(!!(x), 1)
#define LAB_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace lab {

class ThreadCache;

constexpr std::size_t kPageShift = 12;
constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
constexpr unsigned kMaxOrder = LABYRINTH_MAX_ORDER;
constexpr std::size_t kArenaAlign = kPageSize << kMaxOrder;  // 4 MiB: blocks are size-aligned
constexpr unsigned kTlsSlots = 4;                            // pools remembered per thread
constexpr std::size_t kMessageBytes = 224;

// One remembered (pool -> this thread's cache) pair. Pool ids are never
// reused, so a slot for a destroyed pool can never match again.
struct CacheSlot {
  std::uint64_t pool_id;
  ThreadCache *cache;
};

// Everything Labyrinth keeps per thread. Plain data, zero-initialised, in the
// initial-exec TLS model: reading it is one instruction, never allocates and
// is async-signal-safe.
struct ThreadLocal {
  std::uint64_t alloc_word;        // side-table word of an order-0 exclusive page owned by us
  std::uint64_t owner;             // our owner id, 0 until first needed
  CacheSlot slots[kTlsSlots];      // direct-mapped by pool id
  const labyrinth_pool *stash;     // the fast-path record's pool while we are inside a call
  std::uint8_t exit_hook_set;      // thread-exit destructor registered
  std::uint8_t mutex_busy;         // this allocation found a zone's mutex held (ATOMIC try-lock failed)
  std::uint8_t zones_held;         // zone mutexes this thread holds (test builds; zones.hpp)
  labyrinth_status status;         // last failure
  char message[kMessageBytes];     // its message
};

extern __thread ThreadLocal tls __attribute__((tls_model("initial-exec")));

// The public per-thread record of the inline fast path (labyrinth.h). Its
// pool field doubles as the thread's re-entry guard for the whole library:
// LABYRINTH_FAST_BUSY_V1 while the thread modifies its cache, so a signal
// handler that interrupts it (inline code or library) takes the depot,
// lock-free, instead of the cache.
inline labyrinth_fast_record &fast() { return labyrinth_thread_fast; }
inline const labyrinth_pool *fast_pool() {
  return __atomic_load_n(&labyrinth_thread_fast.pool, __ATOMIC_RELAXED);
}
inline void set_fast_pool(const labyrinth_pool *p) {
  __atomic_store_n(&labyrinth_thread_fast.pool, p, __ATOMIC_RELAXED);
}
inline bool in_call() { return fast_pool() == LABYRINTH_FAST_BUSY_V1; }
inline void enter_call() {
  tls.stash = fast_pool();
  set_fast_pool(LABYRINTH_FAST_BUSY_V1);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
// A release store, as the inline leave's: see reclaim_caches.
inline void leave_call() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  __atomic_store_n(&labyrinth_thread_fast.pool, tls.stash, __ATOMIC_RELEASE);
}
// Forget the record (no pool), e.g. at thread exit or fork.
void fast_forget();

// CLOCK_MONOTONIC in nanoseconds (deadlines of waits and reclaims).
inline std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Compiler-only barrier: orders our TLS guard against the cache update as
// seen by a signal handler on this thread.
inline void signal_fence() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Record a failure for this thread (async-signal-safe formatter: %s %d %u
// %ld %lu %zu %llu %p %x %c, no widths). Returns status.
labyrinth_status set_error(labyrinth_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Own snprintf subset used by set_error; async-signal-safe.
// The symbolic name of an errno value ("ENOMEM"), or "errno" for one not
// listed. Async-signal-safe.
const char *errno_name(int e);
std::size_t format_message(char *out, std::size_t cap, const char *fmt, __builtin_va_list ap);

// This thread's owner id (assigned on first use). Async-signal-safe.
std::uint64_t owner_self();

}  // namespace lab
