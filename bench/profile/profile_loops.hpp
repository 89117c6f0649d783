// profile_loops.hpp - what the callgrind loops of profile_loops.cpp
// (Labyrinth) and profile_dpdk.cpp (DPDK's mempool) share, so that both
// sides count the same loop around the allocator.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

// Each loop is a function of its own named loop_*, for
//   valgrind --tool=callgrind --toggle-collect='loop_*'
#define NOINLINE extern "C" __attribute__((noinline))

namespace profile {
// One 8-byte store at an offset that varies across the page's lines (as the
// bench's touch does).
inline void touch(void *p, std::uint64_t k) {
  *reinterpret_cast<volatile std::uint64_t *>(static_cast<char *>(p) +
                                              ((((k * 13) & 63) << 6) | (((k >> 6) & 7) << 3))) = k;
}

// MODE N from the command line; false (usage printed) if they are not there.
inline bool args(int argc, char **argv, std::string *mode, long *n) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODE N\n", argv[0]);
    return false;
  }
  *mode = argv[1];
  *n = std::atol(argv[2]);
  return true;
}
}  // namespace profile
