// bench_dpdk.cpp - DPDK rte_mempool get/put of 4 KiB objects through the
// per-lcore cache (512 objects), the way a DPDK application recycles buffers.
//
// EAL: --no-huge --no-pci --no-shconf -l 0 -m 256 (ordinary 4 KiB memory, no
// devices). The cache only works for EAL threads and threads registered with
// rte_thread_register(); a plain pthread silently bypasses it, so every thread
// that allocates is registered here and thread_enter() refuses to run if
// rte_mempool_default_cache() is NULL for it.
//
// Objects are not page-aligned (the mempool puts a 64-byte header before
// each); order-N blocks come from one mempool per size (a DPDK application
// would size its pools so) with a small cache.
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_version.h>
#include <sched.h>
#include <unistd.h>

#include "bench_patterns.hpp"
#include "dpdk_setup.hpp"

using namespace labbench;

namespace {

rte_mempool *g_pages;         // 4 KiB objects, cache 512
rte_mempool *g_orders[11];    // one pool per order 2..10
thread_local bool t_registered = false;
std::string g_error;

struct DpdkPolicy {
  static const char *thread_enter() {
    if (rte_lcore_id() == LCORE_ID_ANY) {
      if (rte_thread_register() != 0) {
        g_error = std::string("rte_thread_register failed: ") + rte_strerror(rte_errno);
        return g_error.c_str();
      }
      t_registered = true;
    }
    if (rte_mempool_default_cache(g_pages, rte_lcore_id()) == nullptr)
      return "this thread has no rte_mempool per-lcore cache (it would bypass it)";
    return nullptr;
  }
  static void thread_leave() {
    if (t_registered) {
      rte_thread_unregister();
      t_registered = false;
    }
  }
  LABBENCH_HOT static void *alloc() {
    void *obj;
    return rte_mempool_get(g_pages, &obj) == 0 ? obj : nullptr;
  }
  LABBENCH_HOT static bool free(void *p) {
    rte_mempool_put(g_pages, p);
    return true;
  }
  LABBENCH_HOT static void *alloc_order(unsigned order) {
    void *obj;
    return rte_mempool_get(g_orders[order], &obj) == 0 ? obj : nullptr;
  }
  LABBENCH_HOT static bool free_order(void *p, unsigned order) {
    rte_mempool_put(g_orders[order], p);
    return true;
  }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return true; }
  static const char *last_error() { return "rte_mempool_get found no object"; }
};

}  // namespace

int main(int argc, char **argv) {
  DpdkPools pools;
  if (!dpdk_setup(argv[0], "labbench", &pools)) return 3;
  g_pages = pools.pages;
  for (unsigned o = 2; o <= 10; ++o) g_orders[o] = pools.orders[o];
  benchmark::AddCustomContext("labbench_dpdk_version", rte_version());
  register_patterns<DpdkPolicy>("dpdk_mempool");
  int rc = run_main(argc, argv, "dpdk_mempool");
  rte_eal_cleanup();
  return rc;
}
