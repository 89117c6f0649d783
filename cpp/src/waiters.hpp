// waiters.hpp - memory pressure and the WAIT callers that sleep until
// blocks come back.
//
// Pressure: the pool is below its low watermark, or WAIT callers are
// queued. Under pressure every thread cache's limit is 0, so frees reach
// the depot or the buddy allocator where others can have them, and no block
// is kept in an order cache. Pressure ends at the high watermark with no
// waiter left.
//
// Waiters queue in arrival order (Pool::wait_mu); only the first takes
// blocks. They sleep on a futex word (Pool::wait_seq) that every return of
// pages bumps while anyone waits (wake_waiters).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.hpp"

namespace lab {

struct Pool;

// Wake WAIT callers after pages came back. Async-signal-safe (a futex wake).
void wake_waiters(Pool *pool);

// Update `pressure` from the free count (slow paths).
void update_pressure(Pool *pool);
void set_pressure(Pool *pool);  // pressure on now (waiters present)

// Queue behind earlier waiters and take a block of `order` when it is this
// caller's turn and one is free, or fail with TIMEOUT (and a message) after
// `timeout_ms` (LABYRINTH_TIMEOUT_INFINITE: never). Blocks; not
// async-signal-safe.
labyrinth_status wait_for_block(Pool *pool, unsigned order, std::uint32_t timeout_ms,
                                std::size_t *idx);

}  // namespace lab
