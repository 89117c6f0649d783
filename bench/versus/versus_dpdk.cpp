// versus_dpdk.cpp - DPDK's side of labyrinth_bench_versus and its main():
// EAL and mempools set up as bench_dpdk.cpp does (--no-huge, one 4 KiB
// mempool with a per-lcore cache of 512, one mempool per order 2..10), then
// for every pattern ROUNDS rounds, each timing Labyrinth and DPDK back to
// back on the last CPU (which goes first alternates). Prints a markdown
// table: each side's median and fastest round (ns per page, or per block),
// and the median and quartiles of Labyrinth / DPDK over the rounds. Then a
// second table, Labyrinth alone: the pair and burst on an unpinned 16 GiB
// pool against an unpinned 16 MiB one, the same way (the pool-size
// target, which separate processes on our VMs cannot settle).
//
// Usage: labyrinth_bench_versus [ROUNDS [PATTERN]]   (default 100 rounds of
//   every pattern, ~20 s; PATTERN: a word of the pattern's name, e.g. cross,
//   pair, burst, "order 6", or "size" for the pool-size table alone)
// Environment: LABYRINTH_VERSUS_CPU_TIME=1 (see g_cpu_time),
//   LABYRINTH_VERSUS_POOL_MIB (versus_labyrinth.cpp).
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_version.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bench_patterns.hpp"
#include "dpdk_setup.hpp"
#include "versus/versus.hpp"

namespace versus {
namespace {
rte_mempool *g_pages;
rte_mempool *g_orders[11];
}  // namespace

bool dpdk_pair(long n) {
  for (long i = 0; i < n; ++i) {
    void *p;
    if (__builtin_expect(rte_mempool_get(g_pages, &p) != 0, 0)) return false;
    labbench::touch(p, std::uint64_t(i));
    rte_mempool_put(g_pages, p);
  }
  return true;
}

bool dpdk_burst(long n) {
  void *v[labbench::kBurst];
  for (long i = 0; i < n; ++i) {
    for (int j = 0; j < labbench::kBurst; ++j) {
      if (__builtin_expect(rte_mempool_get(g_pages, &v[j]) != 0, 0)) return false;
      labbench::touch(v[j], std::uint64_t(j));
    }
    for (int j = 0; j < labbench::kBurst; ++j) rte_mempool_put(g_pages, v[j]);
  }
  return true;
}

bool dpdk_order(unsigned order, long n) {
  const std::size_t bytes = std::size_t{4096} << order;
  for (long i = 0; i < n; ++i) {
    void *p;
    if (__builtin_expect(rte_mempool_get(g_orders[order], &p) != 0, 0)) return false;
    labbench::touch_block(p, bytes, std::uint64_t(i));
    rte_mempool_put(g_orders[order], p);
  }
  return true;
}

bool dpdk_cross_alloc(labbench::SpscRing *ring, long n) {
  for (long i = 0; i < n; ++i) {
    void *p;
    if (__builtin_expect(rte_mempool_get(g_pages, &p) != 0, 0)) return false;
    labbench::touch(p, std::uint64_t(i));
    ring->push(p);
  }
  ring->flush();
  return true;
}

bool dpdk_cross_free(labbench::SpscRing *ring, long n) {
  for (long i = 0; i < n; ++i) {
    void *p;
    while ((p = ring->pop()) == nullptr) labbench::cpu_relax();
    rte_mempool_put(g_pages, p);
  }
  return true;
}

}  // namespace versus

namespace {

// The freeing thread of the cross pattern, on CPU 0: registered with DPDK
// (so it has a per-lcore cache), a Labyrinth owner; it frees what each job
// says, from the ring, and reports.
struct Freer {
  labbench::SpscRing ring;
  std::atomic<long> job{0};         // pages to free; 0: none; -1: exit
  std::atomic<int> job_labyrinth{0};
  std::atomic<int> done{1};         // 0 while a job runs; 1 done; 2 a free failed
  std::atomic<std::uint64_t> owner{0};
  std::string error;
  labbench::LinePingPong line;  // answered at the start of every job
} *g_freer;
std::vector<double> g_line_rtt;  // ns, one per cross job (the main thread's)

void freer_main() {
  cpu_set_t cpu0;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  pthread_setaffinity_np(pthread_self(), sizeof cpu0, &cpu0);
  if (rte_thread_register() != 0 || !rte_mempool_default_cache(versus::g_pages, rte_lcore_id())) {
    g_freer->error = "the freeing thread has no DPDK per-lcore cache";
    g_freer->owner.store(~std::uint64_t{0});
    return;
  }
  g_freer->owner.store(versus::lab_owner());
  for (;;) {
    long n;
    while ((n = g_freer->job.load()) == 0) labbench::cpu_relax();
    if (n < 0) break;
    g_freer->job.store(0);
    g_freer->line.answer();
    const bool ok = g_freer->job_labyrinth.load() ? versus::lab_cross_free(&g_freer->ring, n)
                                                  : versus::dpdk_cross_free(&g_freer->ring, n);
    g_freer->done.store(ok ? 1 : 2);
  }
  rte_thread_unregister();
}


struct Pattern {
  const char *name;
  unsigned order;  // for blocks
  long n;          // calls per round
  double per;      // pages (or blocks) per call
  bool cross = false;
};

// LABYRINTH_VERSUS_CPU_TIME=1: single-thread rounds are timed in the
// thread's CPU time, so that a round in which the thread was preempted (a
// loaded machine) costs what it ran, not what it waited; the cross-thread
// pattern, two threads waiting on each other, stays on the wall clock.
const bool g_cpu_time = [] {
  const char *v = std::getenv("LABYRINTH_VERSUS_CPU_TIME");
  return v && *v == '1';
}();

double now_ns(bool wall) {
  if (wall || !g_cpu_time)
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// One timed run; ns per unit, or a negative number if a call failed.
double timed(const Pattern &pt, bool labyrinth) {
  double t0 = now_ns(pt.cross);
  bool ok;
  if (pt.cross) {
    g_freer->done.store(0);
    g_freer->job_labyrinth.store(labyrinth ? 1 : 0);
    g_freer->job.store(pt.n);
    const double rtt = g_freer->line.measure();  // before the clock starts again
    g_line_rtt.push_back(rtt);
    t0 = now_ns(true);
    ok = labyrinth ? versus::lab_cross_alloc(&g_freer->ring, g_freer->owner.load(), pt.n)
                   : versus::dpdk_cross_alloc(&g_freer->ring, pt.n);
    if (!ok) {  // fewer than n pages went through the ring: the freer would wait for ever
      std::fprintf(stderr, "versus: %s: an allocation failed (%s)\n", pt.name, labyrinth ? "Labyrinth" : "DPDK");
      std::_Exit(1);
    }
    int d;
    while ((d = g_freer->done.load()) == 0) labbench::cpu_relax();
    ok = ok && d == 1;
  } else if (pt.order == 0 && pt.per == 1)
    ok = labyrinth ? versus::lab_pair(pt.n) : versus::dpdk_pair(pt.n);
  else if (pt.order == 0)
    ok = labyrinth ? versus::lab_burst(pt.n) : versus::dpdk_burst(pt.n);
  else
    ok = labyrinth ? versus::lab_order(pt.order, pt.n) : versus::dpdk_order(pt.order, pt.n);
  const double ns = now_ns(pt.cross) - t0;
  return ok ? ns / (double(pt.n) * pt.per) : -1;
}

std::string fixed(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::size_t(q * double(v.size() - 1) + 0.5)];
}

// `rounds` rounds of two contenders, which goes first alternating from one
// round to the next; prints one table row: each side's median (fastest) and
// the median [quartiles] of side 0 / side 1 over the rounds. time(side) runs
// one side once: ns per unit, negative if a call failed. False on a failure.
template <typename Time>
bool alternate_row(const char *name, int rounds, Time time) {
  std::vector<double> a, b, ratio;
  for (int r = 0; r < rounds; ++r) {
    double t[2];
    const int first = r & 1;
    t[first] = time(first);
    t[!first] = time(!first);
    if (t[0] < 0 || t[1] < 0) {
      std::fprintf(stderr, "versus: %s: a call failed\n", name);
      return false;
    }
    a.push_back(t[0]);
    b.push_back(t[1]);
    ratio.push_back(t[0] / t[1]);
  }
  std::printf("| %s | %.2f (%.2f) | %.2f (%.2f) | %.2fx [%.2f %.2f] |\n", name, quantile(a, 0.5), quantile(a, 0),
              quantile(b, 0.5), quantile(b, 0), quantile(ratio, 0.5), quantile(ratio, 0.25), quantile(ratio, 0.75));
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 100;
  const std::string only = argc > 2 ? argv[2] : "";
  if (rounds < 4) {
    std::fprintf(stderr, "usage: %s [ROUNDS >= 4]\n", argv[0]);
    return 2;
  }
  labbench::DpdkPools pools;
  if (!labbench::dpdk_setup(argv[0], "labversus", &pools) || !versus::lab_setup()) return 3;
  versus::g_pages = pools.pages;
  for (unsigned o = 2; o <= 10; ++o) versus::g_orders[o] = pools.orders[o];
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(int(cpus > 0 ? cpus - 1 : 0), &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);

  std::vector<Pattern> patterns = {{"pair: alloc + touch + free (ns)", 0, 200000, 1},
                                   {"burst of 256 (ns/page)", 0, 800, labbench::kBurst}};
  static std::string names[11];
  for (unsigned o = 2; o <= 10; ++o) {
    names[o] = "order " + std::to_string(o) + ", " + std::to_string(4u << o) + " KiB block (ns)";
    patterns.push_back({names[o].c_str(), o, 100000, 1});
  }
  std::thread freer;
  if (cpus >= 2) {
    g_freer = new Freer;
    freer = std::thread(freer_main);
    while (g_freer->owner.load() == 0) labbench::cpu_relax();
    if (!g_freer->error.empty()) {
      std::fprintf(stderr, "versus: %s\n", g_freer->error.c_str());
      freer.join();
      return 3;
    }
    patterns.push_back({"cross-thread, threads on 2 CPUs (ns/page)", 0, 100000, 1, true});
  }
  std::printf("Labyrinth (flagship by name) and DPDK rte_mempool in one process, %d alternating rounds "
              "on CPU %ld%s; %s\n\n",
              rounds, cpus > 0 ? cpus - 1 : 0,
              g_cpu_time ? ", single-thread rounds in thread CPU time" : "", rte_version());
  std::string line_note;
  std::printf("| pattern | Labyrinth: median (fastest) | DPDK: median (fastest) | Labyrinth / DPDK: median [quartiles] |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (const Pattern &pt : patterns) {
    if (!only.empty() && std::string(pt.name).find(only) == std::string::npos) continue;
    // Warm-up: caches filled, pages faulted in, on both sides.
    Pattern warm = pt;
    warm.n = pt.n / 10 + 1;
    if (timed(warm, true) < 0 || timed(warm, false) < 0) {
      std::fprintf(stderr, "versus: %s: a call failed in the warm-up\n", pt.name);
      return 1;
    }
    g_line_rtt.clear();
    if (!alternate_row(pt.name, rounds, [&](int side) { return timed(pt, side == 0); })) return 1;
    if (pt.cross && !g_line_rtt.empty())
      line_note = "A cache line's round trip between the two CPUs, measured before each cross-thread run: "
                  "median " + fixed(quantile(g_line_rtt, 0.5)) + " ns (" + fixed(quantile(g_line_rtt, 0)) + "-" +
                  fixed(quantile(g_line_rtt, 1)) + "). On our 2-vCPU VMs it is ~50 ns in some processes and "
                  "260-480 ns in most, with the cross-thread row ~10 ns/page in the first and 14-23 in the second.\n";
  }
  if (!line_note.empty()) std::printf("\n%s", line_note.c_str());
  // Pool size, Labyrinth alone (the "same ns per pair within 10 %"):
  // the same alternation, 16 GiB against 16 MiB, unpinned.
  if ((only.empty() || std::string("pool size").find(only) != std::string::npos) &&
      versus::lab_sizes_setup()) {
    std::printf("\nPool size, Labyrinth alone: the same loops on an unpinned 16 GiB pool and an unpinned "
                "16 MiB one, %d alternating rounds (target: within 10 %%)\n\n", rounds);
    std::printf("| pattern | 16 GiB: median (fastest) | 16 MiB: median (fastest) | 16 GiB / 16 MiB: median [quartiles] |\n");
    std::printf("|---|---:|---:|---:|\n");
    struct Sized {
      const char *name;
      bool (*run)(int, long);
      long n;
      double per;
    } sized[] = {{"pair: alloc + touch + free (ns)", versus::lab_sized_pair, 200000, 1},
                 {"burst of 256 (ns/page)", versus::lab_sized_burst, 800, labbench::kBurst}};
    for (const Sized &sz : sized) {
      auto run = [&](int big, long n) {
        const double t0 = now_ns(false);
        const bool ok = sz.run(big, n);
        const double ns = now_ns(false) - t0;
        return ok ? ns / (double(n) * sz.per) : -1.0;
      };
      if (run(0, sz.n / 10 + 1) < 0 || run(1, sz.n / 10 + 1) < 0) {
        std::fprintf(stderr, "versus: pool size: %s: a call failed in the warm-up\n", sz.name);
        return 1;
      }
      // Side 0 is the 16 GiB pool: the ratio is 16 GiB / 16 MiB.
      if (!alternate_row(sz.name, rounds, [&](int side) { return run(side == 0, sz.n); })) return 1;
    }
  }
  if (g_freer) {
    g_freer->job.store(-1);
    freer.join();
  }
  rte_eal_cleanup();
  return 0;
}
