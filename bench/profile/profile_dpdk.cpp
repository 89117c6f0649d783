// profile_dpdk.cpp - DPDK's rte_mempool in the same loops as
// profile_loops.cpp (one function per pattern named loop_dpdk_*), set up as
// every benchmark of it is (dpdk_setup.hpp: per-lcore cache of 512), for
// instruction counting under
//   valgrind --tool=callgrind --toggle-collect='loop_*'
// beside Labyrinth's loops (bench/profile/profile.sh puts both in one
// table). Not a timing benchmark.
//
// Usage: labyrinth_bench_profile_dpdk MODE N
//   dpdk_pair     N pairs (get, touch, put) of a 4 KiB object
//   dpdk_burst    N bursts of 256 (256 gets with a touch each, 256 puts)
//   dpdk_order2 | dpdk_order10   N get+touch+put of a 16 KiB / 4 MiB object
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dpdk_setup.hpp"
#include "profile_loops.hpp"

using profile::touch;

NOINLINE long loop_dpdk_pair(rte_mempool *mp, long n) {
  for (long i = 0; i < n; ++i) {
    void *p;
    if (rte_mempool_get(mp, &p) != 0) return -1;
    touch(p, std::uint64_t(i));
    rte_mempool_put(mp, p);
  }
  return 0;
}

NOINLINE long loop_dpdk_burst(rte_mempool *mp, long n) {
  void *v[256];
  for (long r = 0; r < n; ++r) {
    for (int j = 0; j < 256; ++j) {
      if (rte_mempool_get(mp, &v[j]) != 0) return -1;
      touch(v[j], std::uint64_t(r * 256 + j));
    }
    for (int j = 0; j < 256; ++j) rte_mempool_put(mp, v[j]);
  }
  return 0;
}

int main(int argc, char **argv) {
  std::string mode;
  long n = 0;
  if (!profile::args(argc, argv, &mode, &n)) return 2;
  labbench::DpdkPools pools;
  if (!labbench::dpdk_setup(argv[0], "lab_profile", &pools)) return 3;
  // Warm up outside the collected functions, as profile_loops.cpp does.
  if (loop_dpdk_burst(pools.pages, 1) != 0) return 3;
  long rc;
  if (mode == "dpdk_pair") {
    rc = loop_dpdk_pair(pools.pages, n);
  } else if (mode == "dpdk_burst") {
    rc = loop_dpdk_burst(pools.pages, n);
  } else if (mode == "dpdk_order2" || mode == "dpdk_order10") {
    rc = loop_dpdk_pair(pools.orders[mode == "dpdk_order2" ? 2 : 10], n);
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  if (rc != 0) {
    std::fprintf(stderr, "%s failed\n", mode.c_str());
    return 1;
  }
  rte_eal_cleanup();
  return 0;
}
