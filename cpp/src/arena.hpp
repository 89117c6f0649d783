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
  bool pinned = false;       // every page resident: mlocked here, or the provider's PINNED
  bool huge_pages = false;   // MADV_HUGEPAGE accepted
  bool locked_here = false;  // mlocked by the pool: munlocked before it goes back
  bool advised = false;      // MADV_DONTFORK set by the pool: undone before it goes back
  std::uint32_t pool_flags = 0;  // the pool's flags: GUARD/PKEYS protection undone likewise
  // From a provider (provider.map set): what its map gave, exactly once,
  // and goes back through its unmap exactly once. [base, base + size) is
  // the kArenaAlign-aligned window inside [mapped, mapped + mapped_size).
  labyrinth_arena_provider provider{};
  void *mapped = nullptr;
  std::size_t mapped_size = 0;
};

// A provider's fields (struct_size already checked and the struct copied
// in full): INVALID with a message naming labyrinth_pool_create if they
// cannot make an arena.
labyrinth_status check_provider(const labyrinth_arena_provider &provider, int numa_node);

// Reserve `size` bytes aligned to kArenaAlign, anonymously or (provider not
// NULL: checked, copied into *out) from the provider; MADV_DONTFORK,
// optionally MADV_HUGEPAGE (neither with the provider's NO_ADVICE), NUMA
// binding and mlock (PIN: or fail; PIN_BEST_EFFORT: or run unpinned with
// one line on stderr; a PINNED provider's memory is not locked again;
// out->pinned says which). On failure sets the error (with the reason:
// RLIMIT_MEMLOCK and its value, errno names, the provider's name and
// strerror, the fix), gives back whatever was mapped and returns it.
labyrinth_status arena_map(std::size_t size, std::uint32_t flags, int numa_node,
                           const labyrinth_arena_provider *provider, Arena *out);
// Give the arena back: munmap, or (provider) undo what the pool did to the
// memory and call the provider's unmap once. Leaves *arena empty.
void arena_unmap(Arena *arena);

// strerror's text for errno value e (any int), written into buf if needed.
const char *errno_text(int e, char *buf, std::size_t len);

// Anonymous zeroed memory for metadata, never inherited by a fork child.
void *meta_map(std::size_t bytes);
void meta_unmap(void *p, std::size_t bytes);

}  // namespace lab
