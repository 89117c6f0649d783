// fault_scenarios.hpp - scenarios shared by the guard modes that make freed
// and never-allocated pages inaccessible (GUARD: PROT_NONE; PKEYS: a key no
// thread may use). Each runs inside a death test's child and is expected to
// die of SIGSEGV at the marked access; a call that fails exits with 2, and
// an access that does not fault exits normally (both fail the death test).
#pragma once

#include <labyrinth/labyrinth.h>

#include <cstddef>
#include <cstdlib>

namespace labtest {

// Allocate an exclusive block of `order`, write its last byte, free it, and
// read that byte again: faults at the read.
inline void read_last_byte_after_free(labyrinth_pool *p, unsigned order) {
  void *b = nullptr;
  if (labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &b) != LABYRINTH_OK) std::exit(2);
  volatile char *last = static_cast<char *>(b) + (std::size_t{4096} << order) - 1;
  *last = 7;
  if (labyrinth_free_pages(p, b) != LABYRINTH_OK) std::exit(2);
  char c = *last;  // faults here
  std::exit(c);
}

// Write to a page of the arena nobody has allocated: faults at the write.
inline void write_never_allocated_page(labyrinth_pool *p) {
  void *base = nullptr;
  if (labyrinth_pool_arena(p, &base, nullptr) != LABYRINTH_OK) std::exit(2);
  static_cast<volatile char *>(base)[4096 * 100] = 1;  // faults here
  std::exit(0);
}

}  // namespace labtest
