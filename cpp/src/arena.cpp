// arena.cpp - a pool's arena: mapped anonymously or by a provider,
// aligned, advised (MADV_DONTFORK / MADV_HUGEPAGE), bound (mbind) and
// locked (mlock), with errors that say what to do; given back exactly once.
#include "arena.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "pkeys.hpp"

namespace lab {

namespace {


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
    a->pinned = a->locked_here = true;
    return LABYRINTH_OK;
  }
  const int e = errno;
  munlock(a->base, a->size);  // a refused mlock may have locked a prefix
  if (flags & LABYRINTH_POOL_PIN) return refuse_pin(e, a->size);
  warn_unpinned(e, a->size);
  return LABYRINTH_OK;
}

// The anonymous arena: an over-sized reservation trimmed to its aligned window.
labyrinth_status map_anonymous(std::size_t size, Arena *a) {
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
  a->base = reinterpret_cast<std::uint8_t *>(aligned);
  a->size = size;
  return LABYRINTH_OK;
}

// Whether [start, start + size) is mapped: mincore refuses a range with
// unmapped parts (ENOMEM). It only reports residency, so it touches and
// changes nothing; asked in slices of 16 MiB to keep its vector small.
bool wholly_mapped(std::uintptr_t start, std::size_t size) {
  constexpr std::size_t kSlicePages = 4096;
  unsigned char residency[kSlicePages];
  for (std::size_t done = 0; done < size;) {
    const std::size_t len = std::min(size - done, kSlicePages * kPageSize);
    if (mincore(reinterpret_cast<void *>(start + done), len, residency) != 0) return false;
    done += len;
  }
  return true;
}

// Why a base the provider returned for `request` bytes cannot hold an arena
// of `size` bytes, or nullptr (then a->base and a->size are its window).
const char *take_window(std::uintptr_t start, std::size_t request, std::size_t size, Arena *a) {
  if (start % kPageSize) return "is not 4096-aligned";
  if (start > UINTPTR_MAX - request) return "wraps around the address space";
  const std::uintptr_t aligned = (start + kArenaAlign - 1) & ~(std::uintptr_t{kArenaAlign} - 1);
  if (!wholly_mapped(aligned, size)) return "is not wholly mapped in this process (mincore refused it)";
  a->base = reinterpret_cast<std::uint8_t *>(aligned);
  a->size = size;
  return nullptr;
}

// The provider's arena: it maps size + kArenaAlign - kPageSize bytes, the
// pool uses the aligned window. Whatever map gave is recorded in *a before
// anything is checked, so that arena_unmap gives it back on every path.
labyrinth_status map_from_provider(std::size_t size, const labyrinth_arena_provider &pv, Arena *a) {
  const char *what = "labyrinth_pool_create";
  const std::size_t request = size + kArenaAlign - kPageSize;
  void *got = nullptr;
  char buf[96];
  if (const int e = pv.map(pv.ctx, request, &got))
    return set_error(e == ENOMEM ? LABYRINTH_ERR_NOMEM : LABYRINTH_ERR_SYSTEM,
                     "%s: arena provider '%s' could not map %zu bytes: %s (returned %d)", what,
                     pv.name, request, errno_text(e, buf, sizeof buf), e);
  if (!got)
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "%s: arena provider '%s' returned 0 but no memory (base NULL) for %zu bytes; "
                     "nothing to give back",
                     what, pv.name, request);
  a->provider = pv;
  a->mapped = got;
  a->mapped_size = request;
  if (const char *why = take_window(reinterpret_cast<std::uintptr_t>(got), request, size, a))
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "%s: arena provider '%s' returned base %p for %zu bytes, which %s; it was "
                     "given back (unmap)",
                     what, pv.name, got, request, why);
  return LABYRINTH_OK;
}

// Bind the arena to a NUMA node (numa_node >= 0).
labyrinth_status bind_arena(Arena *a, int numa_node) {
  unsigned long mask[16] = {};
  if (numa_node >= static_cast<int>(sizeof mask * 8))
    return set_error(LABYRINTH_ERR_INVALID, "numa_node %d is out of range (max %zu)", numa_node,
                     sizeof mask * 8 - 1);
  mask[numa_node / 64] |= 1ul << (numa_node % 64);
  const long kMpolBind = 2;
  if (syscall(SYS_mbind, a->base, a->size, kMpolBind, mask, sizeof mask * 8, 0) != 0) {
    int e = errno;
    return set_error(e == ENOSYS ? LABYRINTH_ERR_UNSUPPORTED : LABYRINTH_ERR_SYSTEM,
                     "mbind of the arena to NUMA node %d failed (%s, errno %d)", numa_node,
                     errno_name(e), e);
  }
  return LABYRINTH_OK;
}

// Advise, bind and pin a mapped arena as the flags and the provider allow.
labyrinth_status prepare_arena(Arena *a, std::uint32_t flags, int numa_node) {
  const std::uint32_t pv_flags = a->provider.flags;
  if (!(pv_flags & LABYRINTH_ARENA_NO_ADVICE)) {
    if (madvise(a->base, a->size, MADV_DONTFORK) != 0) {
      int e = errno;
      return set_error(LABYRINTH_ERR_SYSTEM, "madvise(MADV_DONTFORK) failed (%s, errno %d)%s",
                       errno_name(e), e,
                       a->provider.map ? "; for memory a driver maps, set LABYRINTH_ARENA_NO_ADVICE"
                                       : "");
    }
    a->advised = true;
    // Refused where THP is disabled or unsupported: not an error, reported in stats.
    if (flags & LABYRINTH_POOL_HUGEPAGES) a->huge_pages = madvise(a->base, a->size, MADV_HUGEPAGE) == 0;
  }
  if (numa_node >= 0)
    if (labyrinth_status st = bind_arena(a, numa_node); st != LABYRINTH_OK) return st;
  if (pv_flags & LABYRINTH_ARENA_PINNED) {
    a->pinned = true;  // the provider's promise: the pool does not lock it again
    return LABYRINTH_OK;
  }
  return pin_arena(a, flags);
}

}  // namespace

labyrinth_status check_provider(const labyrinth_arena_provider &pv, int numa_node) {
  const char *what = "labyrinth_pool_create";
  const char *missing = !pv.name ? "name" : !pv.map ? "map" : !pv.unmap ? "unmap" : nullptr;
  if (missing)
    return set_error(LABYRINTH_ERR_INVALID, "%s: arena_provider->%s is NULL", what, missing);
  const std::uint32_t known = LABYRINTH_ARENA_PINNED | LABYRINTH_ARENA_NO_ADVICE;
  if (pv.flags & ~known)
    return set_error(LABYRINTH_ERR_INVALID, "%s: arena provider '%s': unknown flags 0x%x", what,
                     pv.name, pv.flags & ~known);
  if ((pv.flags & LABYRINTH_ARENA_NO_ADVICE) && numa_node >= 0)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: arena provider '%s' has LABYRINTH_ARENA_NO_ADVICE, so the pool cannot "
                     "bind it to NUMA node %d (mbind is advice); bind it in the provider and set "
                     "numa_node to -1",
                     what, pv.name, numa_node);
  return LABYRINTH_OK;
}

labyrinth_status arena_map(std::size_t size, std::uint32_t flags, int numa_node,
                           const labyrinth_arena_provider *provider, Arena *out) {
  if ((flags & LABYRINTH_POOL_PIN) && (flags & LABYRINTH_POOL_PIN_BEST_EFFORT))
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: LABYRINTH_POOL_PIN (strict) and "
                     "LABYRINTH_POOL_PIN_BEST_EFFORT exclude each other; set one of them, or "
                     "neither to never pin");
  Arena a;
  labyrinth_status st = provider ? map_from_provider(size, *provider, &a) : map_anonymous(size, &a);
  if (st == LABYRINTH_OK) st = prepare_arena(&a, flags, numa_node);
  if (st != LABYRINTH_OK) {
    arena_unmap(&a);
    return st;
  }
  a.pool_flags = flags;
  *out = a;
  return LABYRINTH_OK;
}

void arena_unmap(Arena *a) {
  if (!a->provider.map) {
    if (a->base) munmap(a->base, a->size);
    *a = Arena{};
    return;
  }
  if (a->base) {
    if (a->locked_here) munlock(a->base, a->size);
    if (a->advised) madvise(a->base, a->size, MADV_DOFORK);
    if (a->pool_flags & LABYRINTH_POOL_PKEYS) pkeys::protect(a->base, a->size, 0);
    else if (a->pool_flags & LABYRINTH_POOL_GUARD) mprotect(a->base, a->size, PROT_READ | PROT_WRITE);
  }
  if (a->mapped) a->provider.unmap(a->provider.ctx, a->mapped, a->mapped_size);
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
