// dpdk_setup.hpp - the DPDK environment every benchmark of rte_mempool uses
// (bench_dpdk.cpp, versus/versus_dpdk.cpp), so that they measure the same
// thing: EAL with --no-huge --no-pci --no-shconf -l 0 -m 256 (ordinary 4 KiB
// memory, no devices), one mempool of 4 KiB objects with a per-lcore cache
// of 512, and one mempool per order 2..10 with a small cache.
#pragma once

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace labbench {

struct DpdkPools {
  rte_mempool *pages = nullptr;       // 4 KiB objects, cache 512
  rte_mempool *orders[11] = {};       // orders 2..10
};

// Set up EAL and the mempools; `who` names the program in messages (and the
// EAL file prefix). False with a message on stderr. EAL pins the calling
// thread to lcore 0's CPU: its affinity is put back afterwards, so the
// process runs like the other benchmarks'.
inline bool dpdk_setup(const char *argv0, const char *who, DpdkPools *out) {
  cpu_set_t before;
  sched_getaffinity(0, sizeof before, &before);
  const std::string prefix = std::string("--file-prefix=") + who + std::to_string(getpid());
  const char *eal_args[] = {argv0, "--no-huge", "--no-pci", "--no-shconf", "-l", "0", "-m", "256",
                            "--no-telemetry", "--log-level=*:error", prefix.c_str()};
  if (rte_eal_init(int(sizeof eal_args / sizeof eal_args[0]), const_cast<char **>(eal_args)) < 0) {
    std::fprintf(stderr, "%s: rte_eal_init failed: %s\n", who, rte_strerror(rte_errno));
    return false;
  }
  pthread_setaffinity_np(pthread_self(), sizeof before, &before);
  out->pages = rte_mempool_create((std::string(who) + "_pages").c_str(), 16383, 4096, 512, 0, nullptr,
                                  nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);
  if (!out->pages) {
    std::fprintf(stderr, "%s: rte_mempool_create failed: %s\n", who, rte_strerror(rte_errno));
    return false;
  }
  for (unsigned o = 2; o <= 10; ++o) {
    const std::string name = std::string(who) + "_o" + std::to_string(o);
    out->orders[o] = rte_mempool_create(name.c_str(), o <= 7 ? 16 : 8, 4096u << o, 4, 0, nullptr, nullptr,
                                        nullptr, nullptr, SOCKET_ID_ANY, 0);
    if (!out->orders[o]) {
      std::fprintf(stderr, "%s: rte_mempool_create (order %u) failed: %s\n", who, o, rte_strerror(rte_errno));
      return false;
    }
  }
  if (!rte_mempool_default_cache(out->pages, rte_lcore_id())) {
    std::fprintf(stderr, "%s: the main thread (lcore %u) has no mempool cache\n", who, rte_lcore_id());
    return false;
  }
  return true;
}

}  // namespace labbench
