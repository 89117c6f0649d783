// uring_internal.hpp - shared between the registration code (registry.cpp)
// and the managed ring (ring.cpp). Not installed.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

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

// How register_arena registers. `managed`: the managed ring that owns
// ring_fd (its table is tagged with encode(kKindTag, i) and counted in its
// buffers_pinned), or null for an application's ring, tagged with
// tag_base + i when tag_base is not 0. memlock_refused (may be null) is set
// when RLIMIT_MEMLOCK refused the pinning, beforehand or in the kernel.
struct RegisterArgs {
  labyrinth_ring *managed = nullptr;
  std::uint64_t tag_base = 0;
  bool *memlock_refused = nullptr;
};

// Register / unregister pool's arena with ring_fd. `what` names the public
// call for messages.
labyrinth_status register_arena(labyrinth_pool *pool, int ring_fd, const RegisterArgs &args,
                                const char *what);
labyrinth_status unregister_arena(labyrinth_pool *pool, int ring_fd, const char *what,
                                  bool from_ring_destroy);
// Give dst_fd the fixed buffers of src_fd, with which pool is registered.
labyrinth_status clone_arena(labyrinth_pool *pool, int src_fd, int dst_fd, const char *what);
// An application's tag completion (user_data) after unregistering a tagged
// registration.
labyrinth_status tag_released(labyrinth_pool *pool, int ring_fd, std::uint64_t user_data,
                              const char *what);

// rsrc.cpp: the kernel calls. The iovecs of the arena's fixed buffers.
std::vector<iovec> arena_iovecs(std::uintptr_t base, std::size_t size);
// err: 0 or the errno; no_sparse: the kernel has no sparse tables (5.19).
struct TableResult {
  int err;
  bool no_sparse;
};
// Install iov as ring fd's table: tagged (sparse, then updated) when tags is
// not null, else plain IORING_REGISTER_BUFFERS. Nothing stays on failure.
TableResult kernel_register(int fd, const std::vector<iovec> &iov,
                            const std::vector<std::uint64_t> *tags);
int kernel_unregister(int fd);                // 0 or errno
int kernel_clone(int dst_fd, int src_fd);     // 0 or errno

// Live managed rings, so that the public registration calls recognise their
// fds. Called by ring.cpp at create and destroy.
void managed_ring_add(labyrinth_ring *ring, int fd, labyrinth_pool *pool);
void managed_ring_remove(labyrinth_ring *ring);

// Implemented in ring.cpp, used by the registry under its lock.
std::uint64_t ring_pages_inflight(const labyrinth_ring *ring);
void ring_set_registered(labyrinth_ring *ring, bool registered);
// n tagged fixed buffers were installed on the managed ring's table.
void ring_add_pinned(labyrinth_ring *ring, std::uint32_t n);
// The tag of a managed ring's fixed buffer i (user_data of its release CQE).
std::uint64_t ring_buffer_tag(std::uint32_t i);

// Turn an io_uring_setup / io_uring_register errno into a status with a
// message that says which of ENOSYS / seccomp / sysctl it is.
labyrinth_status explain_unavailable(int err, const char *what, const char *syscall_name);
// The RLIMIT_MEMLOCK explanation for a failed registration of `bytes`.
labyrinth_status explain_memlock(int err, const char *what, std::uint64_t bytes);
// NOMEM with the limit and the remedies when pinning `bytes` more, beside
// `pinned_already` bytes this process's registrations pin, would exceed
// RLIMIT_MEMLOCK (not for CAP_IPC_LOCK or an unlimited limit); else OK.
labyrinth_status memlock_precheck(const char *what, std::uint64_t bytes,
                                  std::uint64_t pinned_already);

}  // namespace uring
}  // namespace lab
