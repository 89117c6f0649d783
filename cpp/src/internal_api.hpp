// internal_api.hpp - what other parts of the library (io_uring support,
// the Python bindings' workload runner, white-box tests) may call on a pool
// beyond the public C ABI. Not installed; not part of the stable ABI.
//
// All functions set the thread's last status/message on failure, like the
// public calls, and never throw.
#pragma once

#include <cstddef>
#include <cstdint>

#include "labyrinth/labyrinth.h"

namespace lab {

// The arena: [base, base + size). Never blocks; async-signal-safe.
void *pool_arena_base(const labyrinth_pool *pool);
std::size_t pool_arena_size(const labyrinth_pool *pool);

// Hand an allocated block to the kernel for I/O: the block must be allocated
// and, if exclusive, owned by `owner` (NOT_OWNER otherwise); BUSY if it is
// already in flight; DOUBLE_FREE / FOREIGN / INVALID as labyrinth_free_pages.
// While in flight, free, transfer and a second begin_io return BUSY.
// Never blocks; async-signal-safe.
labyrinth_status page_begin_io(labyrinth_pool *pool, void *page,
                               labyrinth_owner owner);

// The kernel is done with the block: ownership comes back. With new_owner
// NONE the block goes back to the owner it had at begin_io; otherwise (an
// exclusive block) to new_owner. INVALID if the block is not in flight.
// Never blocks; async-signal-safe.
labyrinth_status page_end_io(labyrinth_pool *pool, void *page,
                             labyrinth_owner new_owner);

// The kernel is done with an in-flight block that nobody will take (ring
// teardown, unclaimed provided buffers): free it back to the pool.
// May block (a zone's mutex).
labyrinth_status page_release_from_io(labyrinth_pool *pool, void *page);

// Registration holds: while a pool has holds (io_uring registrations,
// managed rings), labyrinth_pool_destroy returns BUSY. `what` is kept for
// the message ("registered with io_uring fd 5"). Never blocks.
void pool_hold(labyrinth_pool *pool);
void pool_unhold(labyrinth_pool *pool);
std::uint64_t pool_holds(const labyrinth_pool *pool);

// Set this thread's last status and message (printf-like subset: %s %d %u
// %ld %lu %zu %llu %p %x). Returns `status`. Async-signal-safe.
labyrinth_status set_error(labyrinth_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

}  // namespace lab
