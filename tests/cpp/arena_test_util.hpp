// Arena providers for the core tests (labyrinth_arena.h), and the one the
// shared suites run on: LABYRINTH_TEST_ARENA names it ("memfd",
// "unaligned"; unset or "anonymous": none), so that ownership, misuse and
// lifetime suites run unchanged over each (tests/cpp/CMakeLists.txt).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "labyrinth/labyrinth.h"

namespace labtest {

// How often a test provider's calls ran, and what unmap got.
struct ProviderCounts {
  std::atomic<int> maps{0}, unmaps{0}, unmap_mismatches{0};
};

// The address space of size + LABYRINTH_ARENA_ALIGN bytes, and in it the
// first LABYRINTH_ARENA_ALIGN-aligned address (nullptr if mmap failed).
inline std::uintptr_t reserve_aligned(std::size_t size, int prot, std::uintptr_t *start) {
  void *raw = mmap(nullptr, size + LABYRINTH_ARENA_ALIGN, prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return 0;
  *start = reinterpret_cast<std::uintptr_t>(raw);
  return (*start + LABYRINTH_ARENA_ALIGN - 1) & ~(std::uintptr_t{LABYRINTH_ARENA_ALIGN} - 1);
}

// Keep [keep, keep + size) of a reserve_aligned() reservation, unmap the rest.
inline void trim_to(std::uintptr_t start, std::size_t size, std::uintptr_t keep) {
  const std::uintptr_t end = start + size + LABYRINTH_ARENA_ALIGN;
  if (keep > start) munmap(reinterpret_cast<void *>(start), keep - start);
  if (end > keep + size) munmap(reinterpret_cast<void *>(keep + size), end - keep - size);
}

// A memfd mapped shared at an aligned base; the fd is closed at once (the
// mapping keeps the file), so one provider serves any number of pools.
inline int memfd_map(void *ctx, std::size_t size, void **base) {
  int fd = memfd_create("labyrinth-test-arena", MFD_CLOEXEC);
  if (fd < 0) return errno;
  std::uintptr_t start = 0, aligned = 0;
  void *file = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(size)) == 0 &&
      (aligned = reserve_aligned(size, PROT_NONE, &start)) != 0)
    file = mmap(reinterpret_cast<void *>(aligned), size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_FIXED, fd, 0);
  const int e = errno;
  close(fd);
  if (file == MAP_FAILED) {
    if (aligned) munmap(reinterpret_cast<void *>(start), size + LABYRINTH_ARENA_ALIGN);
    return e;
  }
  trim_to(start, size, aligned);
  *base = file;
  if (ctx) static_cast<ProviderCounts *>(ctx)->maps++;
  return 0;
}

// Anonymous memory at a base one page past a LABYRINTH_ARENA_ALIGN
// boundary, exactly `size` bytes: the pool must align it itself, and its
// window then ends at the very end of what it asked for.
inline int unaligned_map(void *ctx, std::size_t size, void **base) {
  std::uintptr_t start = 0;
  const std::uintptr_t aligned = reserve_aligned(size, PROT_READ | PROT_WRITE, &start);
  if (!aligned) return errno;
  trim_to(start, size, aligned + 4096);
  *base = reinterpret_cast<void *>(aligned + 4096);
  if (ctx) static_cast<ProviderCounts *>(ctx)->maps++;
  return 0;
}

inline void plain_unmap(void *ctx, void *base, std::size_t size) {
  munmap(base, size);
  if (ctx) static_cast<ProviderCounts *>(ctx)->unmaps++;
}

inline labyrinth_arena_provider provider(const char *name,
                                         int (*map)(void *, std::size_t, void **),
                                         void *ctx = nullptr, std::uint32_t flags = 0) {
  labyrinth_arena_provider p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.name = name;
  p.ctx = ctx;
  p.flags = flags;
  p.map = map;
  p.unmap = plain_unmap;
  return p;
}

// The provider LABYRINTH_TEST_ARENA names, or nullptr (anonymous arenas).
inline const labyrinth_arena_provider *arena_under_test() {
  static const labyrinth_arena_provider memfd = provider("memfd", memfd_map);
  static const labyrinth_arena_provider unaligned = provider("unaligned", unaligned_map);
  const char *env = std::getenv("LABYRINTH_TEST_ARENA");
  if (!env) return nullptr;
  if (std::strcmp(env, "memfd") == 0) return &memfd;
  if (std::strcmp(env, "unaligned") == 0) return &unaligned;
  return nullptr;
}

}  // namespace labtest
