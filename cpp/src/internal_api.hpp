// internal_api.hpp - what other parts of the library (io_uring support,
// the Python bindings' workload runner, white-box tests) may call on a pool
// beyond the public C ABI. Not installed; not part of the stable ABI.
//
// All functions set the thread's last status/message on failure, like the
// public calls, and never throw. The pool passed must be usable here
// (boundary.hpp: pool_usable): callers check it at their own C boundary.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.hpp"
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

// labyrinth_pool_reclaim_orphans, except that it is refused with BUSY, and
// reclaims nothing, if one of the n_in_use blocks at in_use is an orphan:
// blocks whose memory the caller still lends out (the Python binding's
// buffer exports). May block (the registry mutex); not async-signal-safe.
labyrinth_status pool_reclaim_orphans_unless_in_use(labyrinth_pool *pool,
                                                    const void *const *in_use,
                                                    std::size_t n_in_use, std::size_t *reclaimed);

// Registration holds: while a pool has holds (io_uring registrations,
// managed rings), labyrinth_pool_destroy returns BUSY. Never blocks.
void pool_hold(labyrinth_pool *pool);
void pool_unhold(labyrinth_pool *pool);

}  // namespace lab
