// library_ab.hpp - a contender of labyrinth_bench_library_ab: the calls its
// order-N pair makes, through pointers with the C ABI's signatures, so that
// every contender pays the same indirect call.
#pragma once

#define LABYRINTH_NO_INLINE 1  // the program calls only what dlsym (or an adapter) gives
#include <labyrinth/labyrinth.h>

namespace library_ab {

struct Side {
  const char *name = nullptr;
  labyrinth_status (*alloc)(labyrinth_pool *, unsigned, labyrinth_gfp, uint32_t, void **) = nullptr;
  labyrinth_status (*free_order)(labyrinth_pool *, void *, unsigned) = nullptr;
  labyrinth_pool *pool = nullptr;  // NULL for DPDK
  // Labyrinth sides only (pools of the sizes asked).
  void (*options_init)(labyrinth_pool_options *) = nullptr;
  labyrinth_status (*create)(const labyrinth_pool_options *, labyrinth_pool **) = nullptr;
  labyrinth_status (*destroy_ex)(labyrinth_pool *, uint32_t) = nullptr;
  const char *(*message)() = nullptr;
};

// DPDK's rte_mempool of each order's object size (library_ab_dpdk.cpp, built
// where libdpdk is found): EAL set up, `side` filled. False with a message.
bool dpdk_side(const char *argv0, Side *side);

}  // namespace library_ab
