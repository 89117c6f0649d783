// uring_internal.hpp - shared between the registration code (registry.cpp)
// and the managed ring (ring.cpp). Not installed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "internal_api.hpp"
#include "labyrinth/labyrinth_uring.h"

namespace lab {
namespace uring {

// Largest block of the pool: fixed-buffer boundaries are aligned to it so
// that no block straddles two buffers.
constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{LABYRINTH_PAGE_SIZE} << LABYRINTH_MAX_ORDER;
constexpr std::uint64_t kBufBytes = LABYRINTH_URING_MAX_BUFFER_BYTES;

// Number of fixed buffers the arena [base, base + size) is split into, and
// the index of address p in it (p must lie in the arena).
std::uint32_t buffer_count(std::uintptr_t base, std::size_t size);
std::uint32_t buffer_index(std::uintptr_t base, std::uintptr_t p);

// Register / unregister pool's arena with ring_fd. `managed` is the managed
// ring that owns ring_fd, or null for an application's ring. `what` names the
// public call for messages.
labyrinth_status register_arena(labyrinth_pool *pool, int ring_fd, labyrinth_ring *managed,
                                const char *what);
labyrinth_status unregister_arena(labyrinth_pool *pool, int ring_fd, const char *what,
                                  bool from_ring_destroy);

// Live managed rings, so that the public registration calls recognise their
// fds. Called by ring.cpp at create and destroy.
void managed_ring_add(labyrinth_ring *ring, int fd, labyrinth_pool *pool);
void managed_ring_remove(labyrinth_ring *ring);

// Implemented in ring.cpp, used by the registry under its lock.
std::uint64_t ring_pages_inflight(const labyrinth_ring *ring);
void ring_set_registered(labyrinth_ring *ring, bool registered);

// Turn an io_uring_setup / io_uring_register errno into a status with a
// message that says which of ENOSYS / seccomp / sysctl it is.
labyrinth_status explain_unavailable(int err, const char *what, const char *syscall_name);
// The RLIMIT_MEMLOCK explanation for a failed registration of `bytes`.
labyrinth_status explain_memlock(int err, const char *what, std::uint64_t bytes);
const char *errno_name(int err);

}  // namespace uring
}  // namespace lab
