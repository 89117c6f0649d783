// ring_binding.hpp - the pieces of labyrinth.Ring (ring.cpp) that its
// completions and slices (ring_slice.cpp) share. Everything here runs with
// the GIL held.
#pragma once

#include <cstdint>

#include "binding.hpp"
#include "labyrinth/labyrinth_uring.h"

namespace labpy {

// A slice of a provided block (LABYRINTH_COMPLETION_SLICE).
struct SliceObj {
  py::object ring;  // the Ring object: kept alive while the slice is
  labyrinth_ring *r = nullptr;
  void *ptr = nullptr;
  size_t len = 0;
  uint32_t gen = 0;  // the completion's slice_gen: names this slice, not a later one at ptr
  long exports = 0;  // live buffer exports (memoryview, ...)
  bool released = false;
  ~SliceObj() {
    // Best effort: a slice dropped unreleased by its owner thread goes back.
    if (!released && r) labyrinth_ring_slice_release_gen(r, ptr, gen);
  }
};

struct Completion {
  uint64_t user_data = 0;
  py::object page;  // Page, Slice or None
  int32_t result = 0;
  uint32_t op = 0;
  uint32_t flags = 0;
};

// The Slice object of completion c (a LABYRINTH_COMPLETION_SLICE) taken from
// ring r, whose Ring object `ring` the Slice keeps alive.
py::object make_slice(py::object ring, labyrinth_ring *r, const labyrinth_completion &c);

// labyrinth.Completion, labyrinth.Slice and the RING_OP_* / COMPLETION_*
// constants.
void register_completion(py::module_ &m);

}  // namespace labpy
