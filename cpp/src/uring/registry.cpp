// registry.cpp - registering a pool's arena as io_uring fixed buffers on any
// ring (the application's or a managed one), the page -> buffer index map,
// and the messages that explain why io_uring is unavailable.
//
// The arena is split into as few fixed buffers as the kernel allows: pieces
// of at most 1 GiB (the kernel's limit per buffer) whose inner boundaries
// are aligned to the largest block (4 MiB), so every block of the pool lies
// in exactly one buffer. The split depends only on the arena, so a page has
// the same index on every ring.
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "boundary.hpp"
#include "uring/uring_internal.hpp"

namespace lab {
namespace uring {

namespace {

struct Registration {
  labyrinth_pool *pool;
  int fd;
  labyrinth_ring *managed;  // null: the application's ring
};

struct ManagedRing {
  labyrinth_ring *ring;
  int fd;
  labyrinth_pool *pool;
};

std::mutex &registry_mutex() {
  static std::mutex m;
  return m;
}
std::vector<Registration> &registrations() {
  static std::vector<Registration> v;
  return v;
}
std::vector<ManagedRing> &managed_rings() {
  static std::vector<ManagedRing> v;
  return v;
}

bool has_cap_ipc_lock() {
  __user_cap_header_struct hdr{};
  __user_cap_data_struct data[2]{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1u;
}

int read_sysctl_int(const char *path) {
  FILE *f = std::fopen(path, "r");
  if (!f) return -1;
  int v = -1;
  if (std::fscanf(f, "%d", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

}  // namespace

const char *errno_name(int e) {
  switch (e) {
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case ENXIO: return "ENXIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINTR: return "EINTR";
    case EEXIST: return "EEXIST";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOBUFS: return "ENOBUFS";
    case ECANCELED: return "ECANCELED";
    default: return "errno";
  }
}

labyrinth_status explain_unavailable(int err, const char *what, const char *syscall_name) {
  if (err == ENOSYS)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: io_uring is not available: %s returned ENOSYS (a kernel built without "
                     "CONFIG_IO_URING, or a seccomp policy that hides it)",
                     what, syscall_name);
  if (err == EPERM) {
    int disabled = read_sysctl_int("/proc/sys/kernel/io_uring_disabled");
    if (disabled == 2)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: io_uring is disabled: %s returned EPERM because sysctl "
                       "kernel.io_uring_disabled is 2 (set it to 0 to allow io_uring)",
                       what, syscall_name);
    if (disabled == 1)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: io_uring is restricted: %s returned EPERM because sysctl "
                       "kernel.io_uring_disabled is 1 (only CAP_SYS_ADMIN and members of the "
                       "group kernel.io_uring_group may use it)",
                       what, syscall_name);
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: io_uring is forbidden: %s returned EPERM although "
                     "kernel.io_uring_disabled is 0; a seccomp policy (e.g. a container "
                     "runtime's default profile) blocks it",
                     what, syscall_name);
  }
  return set_error(LABYRINTH_ERR_SYSTEM, "%s: %s failed (%s, errno %d: %s)", what, syscall_name,
                   errno_name(err), err, std::strerror(err));
}

labyrinth_status explain_memlock(int err, const char *what, std::uint64_t bytes) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY || has_cap_ipc_lock())
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "%s: registering %llu bytes as io_uring fixed buffers failed (%s, errno %d) "
                     "although RLIMIT_MEMLOCK does not apply (unlimited or CAP_IPC_LOCK): the "
                     "system is short of memory to pin; use a smaller pool",
                     what, static_cast<unsigned long long>(bytes), errno_name(err), err);
  // Messages hold 223 characters: keep it to the facts and the remedy.
  return set_error(LABYRINTH_ERR_NOMEM,
                   "%s: pinning %llu bytes failed (%s): above RLIMIT_MEMLOCK %llu bytes "
                   "(no CAP_IPC_LOCK); raise it: ulimit -l, prlimit --memlock, limits.conf",
                   what, static_cast<unsigned long long>(bytes), errno_name(err),
                   static_cast<unsigned long long>(rl.rlim_cur));
}

std::uint32_t buffer_index(std::uintptr_t base, std::uintptr_t p) {
  // Greedy split: the first buffer ends at the last 4 MiB boundary within
  // 1 GiB of the base, the following ones are exactly 1 GiB.
  std::uintptr_t first_end = (base + kBufBytes) & ~(std::uintptr_t{kMaxBlockBytes} - 1);
  if (p < first_end) return 0;
  return 1 + static_cast<std::uint32_t>((p - first_end) / kBufBytes);
}

std::uint32_t buffer_count(std::uintptr_t base, std::size_t size) {
  if (size == 0) return 0;
  if (size <= kBufBytes) return 1;
  return buffer_index(base, base + size - 1) + 1;
}

namespace {

// The iovecs for the arena's fixed buffers.
std::vector<iovec> arena_iovecs(std::uintptr_t base, std::size_t size) {
  std::uint32_t n = buffer_count(base, size);
  std::vector<iovec> iov(n);
  std::uintptr_t end = base + size, start = base;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uintptr_t stop;
    if (n == 1) {
      stop = end;
    } else if (i == 0) {
      stop = (base + kBufBytes) & ~(std::uintptr_t{kMaxBlockBytes} - 1);
    } else {
      stop = std::min<std::uintptr_t>(end, start + kBufBytes);
    }
    iov[i].iov_base = reinterpret_cast<void *>(start);
    iov[i].iov_len = stop - start;
    start = stop;
  }
  return iov;
}

}  // namespace

labyrinth_status register_arena(labyrinth_pool *pool, int ring_fd, labyrinth_ring *managed,
                                const char *what) {
  if (ring_fd < 0) return set_error(LABYRINTH_ERR_INVALID, "%s: ring_fd %d is not a file descriptor", what, ring_fd);
  auto base = reinterpret_cast<std::uintptr_t>(pool_arena_base(pool));
  std::size_t size = pool_arena_size(pool);
  std::uint32_t n = buffer_count(base, size);
  if (n > LABYRINTH_URING_MAX_BUFFERS)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: the arena (%zu bytes) needs %u fixed buffers, more than io_uring's "
                     "limit of %u",
                     what, size, n, LABYRINTH_URING_MAX_BUFFERS);
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &regs = registrations();
  for (const Registration &r : regs) {
    if (r.fd != ring_fd) continue;
    if (r.pool == pool)
      return set_error(LABYRINTH_ERR_BUSY, "%s: the pool is already registered with io_uring fd %d",
                       what, ring_fd);
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: io_uring fd %d already has another pool's arena (%p) as its fixed "
                     "buffers; a ring holds one table of fixed buffers",
                     what, ring_fd, static_cast<void *>(r.pool));
  }
  if (!managed) {
    for (const ManagedRing &m : managed_rings()) {
      if (m.fd != ring_fd) continue;
      if (m.pool != pool)
        return set_error(LABYRINTH_ERR_INVALID,
                         "%s: io_uring fd %d belongs to a labyrinth_ring of another pool", what,
                         ring_fd);
      managed = m.ring;
    }
  }
  std::vector<iovec> iov = arena_iovecs(base, size);
  long rc;
  do {
    rc = syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, iov.data(),
                 static_cast<unsigned>(iov.size()));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    switch (e) {
      case ENOSYS:
      case EPERM:
        return explain_unavailable(e, what, "io_uring_register");
      case EBADF:
        return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not open (EBADF)", what, ring_fd);
      case EOPNOTSUPP:
        return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not an io_uring (EOPNOTSUPP)",
                         what, ring_fd);
      case EBUSY:
        return set_error(LABYRINTH_ERR_BUSY,
                         "%s: io_uring fd %d already has fixed buffers registered (EBUSY); a "
                         "ring holds one table, unregister it first",
                         what, ring_fd);
      case ENOMEM:
        return explain_memlock(e, what, size);
      case EFAULT:
        return set_error(LABYRINTH_ERR_SYSTEM,
                         "%s: the kernel could not pin the arena (EFAULT); pools in the "
                         "GUARD or PKEYS debug modes (pages made inaccessible) cannot be "
                         "registered",
                         what);
      default:
        return set_error(LABYRINTH_ERR_SYSTEM,
                         "%s: io_uring_register(fd %d, IORING_REGISTER_BUFFERS, %u buffers, "
                         "%zu bytes) failed (%s, errno %d: %s)",
                         what, ring_fd, n, size, errno_name(e), e, std::strerror(e));
    }
  }
  try {
    regs.push_back(Registration{pool, ring_fd, managed});
  } catch (const std::bad_alloc &) {
    syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, nullptr, 0);
    return set_error(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);
  }
  pool_hold(pool);
  if (managed) ring_set_registered(managed, true);
  return LABYRINTH_OK;
}

labyrinth_status unregister_arena(labyrinth_pool *pool, int ring_fd, const char *what,
                                  bool from_ring_destroy) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &regs = registrations();
  auto it = std::find_if(regs.begin(), regs.end(), [&](const Registration &r) {
    return r.pool == pool && r.fd == ring_fd;
  });
  if (it == regs.end())
    return set_error(LABYRINTH_ERR_INVALID, "%s: the pool is not registered with io_uring fd %d",
                     what, ring_fd);
  if (it->managed && !from_ring_destroy) {
    if (std::uint64_t n = ring_pages_inflight(it->managed))
      return set_error(LABYRINTH_ERR_BUSY,
                       "%s: %llu page(s) are in flight through the labyrinth_ring on io_uring "
                       "fd %d; wait for their completions (or destroy the ring)",
                       what, static_cast<unsigned long long>(n), ring_fd);
  }
  long rc;
  do {
    rc = syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, nullptr, 0);
  } while (rc < 0 && errno == EINTR);
  // EBADF / EOPNOTSUPP / ENXIO: the ring is closed (its buffers went with
  // it) or has none; either way the pool is no longer pinned by it.
  if (it->managed) ring_set_registered(it->managed, false);
  regs.erase(it);
  pool_unhold(pool);
  return LABYRINTH_OK;
}

void managed_ring_add(labyrinth_ring *ring, int fd, labyrinth_pool *pool) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  managed_rings().push_back(ManagedRing{ring, fd, pool});
}

void managed_ring_remove(labyrinth_ring *ring) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &v = managed_rings();
  v.erase(std::remove_if(v.begin(), v.end(), [&](const ManagedRing &m) { return m.ring == ring; }),
          v.end());
}

}  // namespace uring
}  // namespace lab

// ---------------------------------------------------------------------------
// C boundary
// ---------------------------------------------------------------------------
using namespace lab;

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_pool_register_io_uring(labyrinth_pool *pool, int ring_fd) {
  const char *what = "labyrinth_pool_register_io_uring";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::register_arena(pool, ring_fd, nullptr, what); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_unregister_io_uring(labyrinth_pool *pool,
                                                                  int ring_fd) {
  const char *what = "labyrinth_pool_unregister_io_uring";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::unregister_arena(pool, ring_fd, what, false); });
}

LABYRINTH_API labyrinth_status labyrinth_page_buf_index(const labyrinth_pool *pool,
                                                        const void *page,
                                                        uint16_t *buf_index) {
  const char *what = "labyrinth_page_buf_index";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!buf_index) return set_error(LABYRINTH_ERR_INVALID, "%s: buf_index is NULL", what);
  auto base = reinterpret_cast<std::uintptr_t>(pool_arena_base(pool));
  std::size_t size = pool_arena_size(pool);
  auto p = reinterpret_cast<std::uintptr_t>(page);
  if (p < base || p - base >= size)
    return set_error(LABYRINTH_ERR_FOREIGN, "%s: %p is not inside the pool's arena [%p, +%zu)",
                     what, page, reinterpret_cast<void *>(base), size);
  *buf_index = static_cast<uint16_t>(uring::buffer_index(base, p));
  return LABYRINTH_OK;
}

LABYRINTH_API labyrinth_status labyrinth_pool_io_uring_buffers(const labyrinth_pool *pool,
                                                               uint32_t *count) {
  const char *what = "labyrinth_pool_io_uring_buffers";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!count) return set_error(LABYRINTH_ERR_INVALID, "%s: count is NULL", what);
  *count = uring::buffer_count(reinterpret_cast<std::uintptr_t>(pool_arena_base(pool)),
                               pool_arena_size(pool));
  return LABYRINTH_OK;
}

}  // extern "C"
