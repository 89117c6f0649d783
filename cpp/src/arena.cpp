// arena.cpp - mmap, alignment, MADV_DONTFORK / MADV_HUGEPAGE, mbind and
// mlock for a pool's arena, with errors that say what to do.
#include "arena.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

// Why mlock refused: RLIMIT_MEMLOCK's value, or "unlimited" (then the
// system is short of memory). Writes a NUL-terminated phrase into buf;
// returns whether a finite limit is in force.
bool describe_mlock_failure(int err, std::size_t size, char *buf, std::size_t len) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY) {
    std::snprintf(buf, len,
                  "mlock of %zu bytes failed (%s, errno %d) although RLIMIT_MEMLOCK is "
                  "unlimited: the system is short of memory",
                  size, errno_name(err), err);
    return false;
  }
  std::snprintf(buf, len,
                "mlock of %zu bytes failed (%s): RLIMIT_MEMLOCK is %lu bytes without "
                "CAP_IPC_LOCK",
                size, errno_name(err), static_cast<unsigned long>(rl.rlim_cur));
  return true;
}

// Strict pinning (LABYRINTH_POOL_PIN) refused: the caller's error.
labyrinth_status refuse_pin(int err, std::size_t size) {
  char why[200];
  const bool limited = describe_mlock_failure(err, size, why, sizeof why);
  return set_error(limited ? LABYRINTH_ERR_NOMEM : LABYRINTH_ERR_SYSTEM,
                   "%s; raise it (ulimit -l) or replace LABYRINTH_POOL_PIN with "
                   "LABYRINTH_POOL_PIN_BEST_EFFORT or no pin flag",
                   why);
}

// Best-effort pinning refused: one line on stderr, the pool runs unpinned.
void warn_unpinned(int err, std::size_t size) {
  char why[200];
  describe_mlock_failure(err, size, why, sizeof why);
  std::fprintf(stderr,
               "labyrinth: warning: the pool runs unpinned: %s. Its pages may fault on first "
               "touch and be swapped out, and io_uring registration pins them itself and may "
               "fail the same way. To pin, raise the limit (ulimit -l); to silence this, ask "
               "for strict pinning or none (C: LABYRINTH_POOL_PIN or no pin flag; Python: "
               "pin=True or pin=False; CLI: --pin strict or --pin off)\n",
               why);
}

// mlock the arena as the flags ask. Returns OK with a->pinned set or left
// false (best effort refused, or no pin flag), or the strict refusal.
labyrinth_status pin_arena(Arena *a, std::uint32_t flags) {
  if (!(flags & (LABYRINTH_POOL_PIN | LABYRINTH_POOL_PIN_BEST_EFFORT))) return LABYRINTH_OK;
  if (mlock(a->base, a->size) == 0) {
    a->pinned = true;
    return LABYRINTH_OK;
  }
  const int e = errno;
  munlock(a->base, a->size);  // a refused mlock may have locked a prefix
  if (flags & LABYRINTH_POOL_PIN) return refuse_pin(e, a->size);
  warn_unpinned(e, a->size);
  return LABYRINTH_OK;
}

}  // namespace

labyrinth_status arena_map(std::size_t size, std::uint32_t flags, int numa_node, Arena *out) {
  if ((flags & LABYRINTH_POOL_PIN) && (flags & LABYRINTH_POOL_PIN_BEST_EFFORT))
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: LABYRINTH_POOL_PIN (strict) and "
                     "LABYRINTH_POOL_PIN_BEST_EFFORT exclude each other; set one of them, or "
                     "neither to never pin");
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
  const labyrinth_status pinned = pin_arena(&a, flags);
  if (pinned != LABYRINTH_OK) {
    arena_unmap(&a);
    return pinned;
  }
  *out = a;
  return LABYRINTH_OK;
}

void arena_unmap(Arena *a) {
  if (a->base) munmap(a->base, a->size);
  *a = Arena{};
}

const char *errno_text(int e, char *buf, std::size_t len) { return strerror_r(e, buf, len); }

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
