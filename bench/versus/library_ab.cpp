// library_ab.cpp - two builds of liblabyrinth in one process, and DPDK's
// rte_mempool next to them where libdpdk was found, timed in rotating rounds
// (labyrinth_bench_library_ab). Each library is dlopen()ed RTLD_LOCAL, so
// each has its own globals and thread record; the program reaches them
// through dlsym, i.e. the exported calls: the inline block path of
// labyrinth.h is not taken, so blocks an order cache holds read slower here
// than in labyrinth_bench_versus, the same on both Labyrinth sides; DPDK is
// called through the same kind of pointer (library_ab.hpp). For changes
// inside the library (the header the same on both sides).
//
// The pattern is the bench's order-N pair (bench_patterns.hpp: alloc
// ATOMIC|EXCLUSIVE + touch one line of the block + free_pages_order), on an
// unpinned pool of each size asked, on the last CPU; which side goes first
// rotates from one round to the next, and ratios are taken inside each round.
// Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): a round preempted
// on a loaded machine is not charged for the time it did not run. Prints a
// markdown table: each side's median (fastest) ns per pair, and the median
// [quartiles] of NEW / OLD and of each Labyrinth side / DPDK.
//
// Usage: labyrinth_bench_library_ab OLD.so NEW.so [ROUNDS [MIB,MIB.. [ORDER,ORDER..]]]
//   default 40 rounds, pools of 64 and 1024 MiB, orders 2,6,10. A size
//   written MIBu (e.g. 64u) makes a pool without thread caches
//   (max_thread_caches 0): every pair takes the buddy allocator's path.
//   LABYRINTH_AB_NO_DPDK=1 leaves DPDK out. Each library copy takes ~400
//   bytes of static TLS: set GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096
//   if the second dlopen fails for lack of it (bench/versus/blocks_ab.sh does).
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "bench_patterns.hpp"
#include "versus/library_ab.hpp"

using library_ab::Side;

namespace {

template <typename F>
bool find(void *lib, const char *name, F *fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!*fn) std::fprintf(stderr, "library_ab: %s\n", dlerror());
  return *fn != nullptr;
}

bool open_side(const char *name, const char *path, Side *s) {
  s->name = name;
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "library_ab: %s (out of static TLS? set GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096)\n",
                 dlerror());
    return false;
  }
  return find(lib, "labyrinth_pool_options_init", &s->options_init) &&
         find(lib, "labyrinth_pool_create", &s->create) && find(lib, "labyrinth_pool_destroy_ex", &s->destroy_ex) &&
         find(lib, "labyrinth_alloc_pages", &s->alloc) && find(lib, "labyrinth_free_pages_order", &s->free_order) &&
         find(lib, "labyrinth_last_error_message", &s->message);
}

bool make_pool(Side *s, std::size_t mib, bool uncached) {
  if (!s->create) return true;  // DPDK: its mempools are made once
  if (s->pool) s->destroy_ex(s->pool, LABYRINTH_DESTROY_FORCE);
  s->pool = nullptr;
  labyrinth_pool_options o;
  s->options_init(&o);
  o.size_bytes = mib << 20;
  o.flags &= ~LABYRINTH_POOL_PIN;
  if (uncached) o.max_thread_caches = 0;
  if (s->create(&o, &s->pool) == LABYRINTH_OK) return true;
  std::fprintf(stderr, "library_ab: %s: %zu MiB pool: %s\n", s->name, mib, s->message());
  return false;
}

double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// n order-`order` pairs; ns per pair, negative if a call failed.
double timed(const Side &s, unsigned order, long n) {
  const std::size_t bytes = std::size_t{4096} << order;
  const double t0 = thread_ns();
  for (long i = 0; i < n; ++i) {
    void *p = nullptr;
    if (__builtin_expect(s.alloc(s.pool, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &p) != LABYRINTH_OK, 0))
      return -1;
    labbench::touch_block(p, bytes, std::uint64_t(i));
    if (__builtin_expect(s.free_order(s.pool, p, order) != LABYRINTH_OK, 0)) return -1;
  }
  return (thread_ns() - t0) / double(n);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::size_t(q * double(v.size() - 1) + 0.5)];
}

std::string ratio_cell(const std::vector<double> &r) {
  char b[64];
  std::snprintf(b, sizeof b, "%.3fx [%.3f %.3f]", quantile(r, 0.5), quantile(r, 0.25), quantile(r, 0.75));
  return b;
}

// A comma-separated list of numbers, each perhaps followed by 'u'.
struct Number {
  long value;
  bool u;
};
std::vector<Number> numbers(const char *list) {
  std::vector<Number> v;
  for (const char *c = list; *c;) {
    char *end;
    const long n = std::strtol(c, &end, 10);
    const bool u = *end == 'u';
    v.push_back({n, u});
    end += u;
    c = *end ? end + 1 : end;
  }
  return v;
}

// One table row: `rounds` rounds of every side, the first side rotating.
bool row(std::vector<Side> &sides, const Number &size, unsigned order, int rounds) {
  const long n = 4000;
  const std::size_t k = sides.size();
  std::vector<std::vector<double>> t(k);
  std::vector<double> new_old, new_dpdk, old_dpdk;
  for (int r = -1; r < rounds; ++r) {  // round -1: warm-up, not recorded
    std::vector<double> ns(k);
    for (std::size_t j = 0; j < k; ++j) {
      const std::size_t s = (std::size_t(r + 1) + j) % k;
      ns[s] = timed(sides[s], order, r < 0 ? n / 10 : n);
      if (ns[s] < 0) {
        std::fprintf(stderr, "library_ab: %s: order %u on %ld MiB: a call failed\n", sides[s].name, order, size.value);
        return false;
      }
    }
    if (r < 0) continue;
    for (std::size_t s = 0; s < k; ++s) t[s].push_back(ns[s]);
    new_old.push_back(ns[1] / ns[0]);
    if (k == 3) {
      new_dpdk.push_back(ns[1] / ns[2]);
      old_dpdk.push_back(ns[0] / ns[2]);
    }
  }
  std::printf("| %ld MiB%s | %u |", size.value, size.u ? ", no caches" : "", order);
  for (std::size_t s = 0; s < k; ++s) std::printf(" %.1f (%.1f) |", quantile(t[s], 0.5), quantile(t[s], 0));
  std::printf(" %s |", ratio_cell(new_old).c_str());
  if (k == 3) std::printf(" %s | %s |", ratio_cell(new_dpdk).c_str(), ratio_cell(old_dpdk).c_str());
  std::printf("\n");
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OLD.so NEW.so [ROUNDS [MIB,MIB.. [ORDER,ORDER..]]]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 40;
  const std::vector<Number> sizes = numbers(argc > 4 ? argv[4] : "64,1024");
  const std::vector<Number> orders = numbers(argc > 5 ? argv[5] : "2,6,10");
  std::vector<Side> sides(2);
  if (!open_side("OLD", argv[1], &sides[0]) || !open_side("NEW", argv[2], &sides[1])) return 3;
  bool with_dpdk = false;
#ifdef LIBRARY_AB_DPDK
  const char *no = std::getenv("LABYRINTH_AB_NO_DPDK");
  bool dpdk_orders = true;
  for (const Number &o : orders) dpdk_orders &= o.value >= 2 && o.value <= 10;
  if (!(no && *no == '1') && dpdk_orders) {
    sides.emplace_back();
    if (!library_ab::dpdk_side(argv[0], &sides[2])) return 3;
    with_dpdk = true;
  }
#endif
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(int(cpus > 0 ? cpus - 1 : 0), &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  std::printf("OLD %s, NEW %s%s in one process, %d rotating rounds on CPU %ld; exported calls, unpinned pools, "
              "thread CPU time\n\n",
              argv[1], argv[2], with_dpdk ? " and DPDK rte_mempool (per-lcore cache)" : "", rounds,
              cpus > 0 ? cpus - 1 : 0);
  std::printf("| pool | order | OLD ns/pair: median (fastest) | NEW ns/pair: median (fastest) |%s NEW / OLD: median "
              "[quartiles] |%s\n",
              with_dpdk ? " DPDK ns/pair: median (fastest) |" : "",
              with_dpdk ? " NEW / DPDK | OLD / DPDK |" : "");
  std::printf("|---|---:|---:|---:|---:|%s\n", with_dpdk ? "---:|---:|---:|" : "");
  for (const Number &size : sizes) {
    for (Side &s : sides)
      if (!make_pool(&s, std::size_t(size.value), size.u)) return 1;
    for (const Number &order : orders)
      if (!row(sides, size, unsigned(order.value), rounds)) return 1;
  }
  for (Side &s : sides)
    if (s.pool) s.destroy_ex(s.pool, LABYRINTH_DESTROY_FORCE);
  return 0;
}
