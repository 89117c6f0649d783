// thread_cache.hpp - per-thread page caches, in the manner of Linux's
// per-cpu pagesets. Each (thread, pool) pair gets one ThreadCache: a stack of
// free order-0 pages only that thread touches, so the owner's alloc and free
// are a pop/push with no atomic read-modify-write and no lock. When it runs
// dry it refills a batch from the shared list (lock-free) or the buddy (under
// the pool mutex); when it reaches its high mark it drains a batch to the
// shared list. A pool preallocates max_thread_caches of them; a thread claims
// one (lock-free) on first use and gives it back when it exits.
#pragma once

#include <atomic>
#include <cstdint>

#include "common.hpp"

namespace lab {

struct Pool;

class alignas(64) ThreadCache {
 public:
  // Owner-thread fields. count is atomic only so statistics can read it from
  // other threads; the owner updates it with plain (relaxed) stores.
  // count and limit are read by the inline fast path (labyrinth.h) as
  // cache[0] and cache[1]; the slots start 64 bytes in. Do not move them.
  std::atomic<std::uint32_t> count{0};
  // How many pages frees may leave here now: capacity normally, 0 while the
  // pool is under pressure (so frees take the general path). Set by any thread.
  std::atomic<std::uint32_t> limit{0};
  std::uint32_t capacity = 0;  // the high mark
  std::uint32_t batch = 0;     // pages per refill / drain
  // Shared: the owner id of the thread using this cache, 0 when free.
  std::atomic<std::uint64_t> user{0};
  // That thread's inline fast-path record, so destroying the pool can clear it.
  std::atomic<labyrinth_thread_fast_v1 *> record{nullptr};

  std::uint32_t n() const { return count.load(std::memory_order_relaxed); }
  void set_n(std::uint32_t v) { count.store(v, std::memory_order_relaxed); }
  // The free pages, most recently freed on top: `capacity` pointers stored
  // right after this object, so reaching them costs no extra load.
  void **slots() { return reinterpret_cast<void **>(this + 1); }
};
static_assert(sizeof(ThreadCache) == 64, "one cache line of header before the slots");

// The calling thread's cache for `pool`, claimed on first use; nullptr if
// every cache is taken (the thread then uses the shared lock-free path).
// Async-signal-safe.
ThreadCache *cache_for(Pool *pool);

// Refill an empty cache by one batch. ATOMIC callers never wait for the pool
// mutex (try-lock only). Returns the number of pages added.
std::uint32_t cache_refill(Pool *pool, ThreadCache *cache, bool atomic);

// Move the top `n` pages of the cache to the shared list (topping up the
// atomic reserve first). Lock-free; async-signal-safe.
void cache_drain(Pool *pool, ThreadCache *cache, std::uint32_t n);

}  // namespace lab
