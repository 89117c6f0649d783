// arena.hpp - the operating-system side of a pool: reserving, aligning,
// pinning and advising the arena and the side table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.hpp"

namespace lab {

struct Arena {
  std::uint8_t *base = nullptr;  // kArenaAlign-aligned
  std::size_t size = 0;
  bool pinned = false;
  bool huge_pages = false;
};

// Reserve `size` bytes aligned to kArenaAlign, MADV_DONTFORK, optionally
// MADV_HUGEPAGE, NUMA binding and mlock (PIN: or fail; PIN_BEST_EFFORT: or
// run unpinned with one line on stderr; out->pinned says which). On failure
// sets the error (with the reason: RLIMIT_MEMLOCK and its value, errno names,
// the fix) and returns it.
labyrinth_status arena_map(std::size_t size, std::uint32_t flags, int numa_node, Arena *out);
void arena_unmap(Arena *arena);

// strerror's text for errno value e (any int), written into buf if needed.
const char *errno_text(int e, char *buf, std::size_t len);

// Anonymous zeroed memory for metadata, never inherited by a fork child.
void *meta_map(std::size_t bytes);
void meta_unmap(void *p, std::size_t bytes);

}  // namespace lab
