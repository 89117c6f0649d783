// library_ab_dpdk.cpp - DPDK's side of labyrinth_bench_library_ab: the
// mempools of bench/dpdk_setup.hpp (one per order 2..10, per-lcore cache),
// behind the C ABI's alloc and free signatures.
#include <rte_mempool.h>

#include "dpdk_setup.hpp"
#include "versus/library_ab.hpp"

namespace library_ab {
namespace {
rte_mempool *g_orders[11];

labyrinth_status get(labyrinth_pool *, unsigned order, labyrinth_gfp, uint32_t, void **out) {
  return rte_mempool_get(g_orders[order], out) == 0 ? LABYRINTH_OK : LABYRINTH_ERR_NOMEM;
}

labyrinth_status put(labyrinth_pool *, void *obj, unsigned order) {
  rte_mempool_put(g_orders[order], obj);
  return LABYRINTH_OK;
}
}  // namespace

bool dpdk_side(const char *argv0, Side *side) {
  labbench::DpdkPools pools;
  if (!labbench::dpdk_setup(argv0, "labab", &pools)) return false;
  for (unsigned o = 2; o <= 10; ++o) g_orders[o] = pools.orders[o];
  side->name = "DPDK";
  side->alloc = get;
  side->free_order = put;
  return true;
}

}  // namespace library_ab
