// arena.cpp - mmap, alignment, MADV_DONTFORK / MADV_HUGEPAGE, mbind and
// mlock for a pool's arena, with errors that say what to do.
#include "arena.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lab {

namespace {

const char *errno_name(int e) {
  switch (e) {
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    case EIO: return "EIO";
    default: return "errno";
  }
}

labyrinth_status explain_mlock_failure(int err, std::size_t size) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) {
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "mlock of %zu bytes failed (%s, errno %d) although RLIMIT_MEMLOCK is "
                     "unlimited: the system is short of memory; create the pool without "
                     "LABYRINTH_POOL_PIN or make it smaller",
                     size, errno_name(err), err);
  }
  return set_error(LABYRINTH_ERR_NOMEM,
                   "mlock of %zu bytes failed (%s, errno %d): RLIMIT_MEMLOCK is %lu bytes "
                   "without CAP_IPC_LOCK; raise it (ulimit -l, prlimit --memlock, "
                   "limits.conf) or create the pool without LABYRINTH_POOL_PIN",
                   size, errno_name(err), err, static_cast<unsigned long>(rl.rlim_cur));
}

}  // namespace

labyrinth_status arena_map(std::size_t size, std::uint32_t flags, int numa_node, Arena *out) {
  std::size_t span = size + kArenaAlign;
  void *raw = mmap(nullptr, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    int e = errno;
    return set_error(LABYRINTH_ERR_NOMEM, "mmap of %zu bytes for the arena failed (%s, errno %d)",
                     span, errno_name(e), e);
  }
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (start + kArenaAlign - 1) & ~(std::uintptr_t{kArenaAlign} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  std::uintptr_t end = start + span, used_end = aligned + size;
  if (end > used_end) munmap(reinterpret_cast<void *>(used_end), end - used_end);
  Arena a;
  a.base = reinterpret_cast<std::uint8_t *>(aligned);
  a.size = size;

  if (madvise(a.base, size, MADV_DONTFORK) != 0) {
    int e = errno;
    arena_unmap(&a);
    return set_error(LABYRINTH_ERR_SYSTEM, "madvise(MADV_DONTFORK) failed (%s, errno %d)",
                     errno_name(e), e);
  }
  if (flags & LABYRINTH_POOL_HUGEPAGES) {
    // Refused where THP is disabled or unsupported: not an error, reported in stats.
    a.huge_pages = madvise(a.base, size, MADV_HUGEPAGE) == 0;
  }
  if (numa_node >= 0) {
    unsigned long mask[16] = {};
    if (numa_node >= static_cast<int>(sizeof mask * 8)) {
      arena_unmap(&a);
      return set_error(LABYRINTH_ERR_INVALID, "numa_node %d is out of range (max %zu)", numa_node,
                       sizeof mask * 8 - 1);
    }
    mask[numa_node / 64] |= 1ul << (numa_node % 64);
    const long kMpolBind = 2;
    if (syscall(SYS_mbind, a.base, size, kMpolBind, mask, sizeof mask * 8, 0) != 0) {
      int e = errno;
      arena_unmap(&a);
      return set_error(e == ENOSYS ? LABYRINTH_ERR_UNSUPPORTED : LABYRINTH_ERR_SYSTEM,
                       "mbind of the arena to NUMA node %d failed (%s, errno %d)", numa_node,
                       errno_name(e), e);
    }
  }
  if (flags & LABYRINTH_POOL_PIN) {
    if (mlock(a.base, size) != 0) {
      int e = errno;
      arena_unmap(&a);
      return explain_mlock_failure(e, size);
    }
    a.pinned = true;
  }
  *out = a;
  return LABYRINTH_OK;
}

void arena_unmap(Arena *a) {
  if (a->base) munmap(a->base, a->size);
  *a = Arena{};
}

void *meta_map(std::size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, bytes, MADV_DONTFORK);
  return p;
}

void meta_unmap(void *p, std::size_t bytes) {
  if (p) munmap(p, bytes);
}

}  // namespace lab
