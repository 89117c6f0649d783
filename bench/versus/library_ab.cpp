// library_ab.cpp - two builds of liblabyrinth in one process, timed in
// alternating rounds (labyrinth_bench_library_ab). Each library is
// dlopen()ed RTLD_LOCAL, so each has its own globals and thread record; the
// program reaches them through dlsym, i.e. the exported calls: the inline
// block path of labyrinth.h is not taken, so blocks an order cache holds read
// slower here than in labyrinth_bench_versus, the same on both sides. For
// changes inside the library (the header the same on both sides).
//
// The pattern is the bench's order-N pair (bench_patterns.hpp: alloc
// ATOMIC|EXCLUSIVE + touch one line of the block + free_pages_order), on an
// unpinned pool of each size asked, on the last CPU; which library goes first
// alternates from one round to the next, and the ratio is taken inside each
// round. Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not the
// wall clock. Prints a markdown table: each side's median (fastest) ns per pair
// and the median [quartiles] of NEW / OLD.
//
// Usage: labyrinth_bench_library_ab OLD.so NEW.so [ROUNDS [MIB,MIB.. [ORDER,ORDER..]]]
//   default 40 rounds, pools of 64 and 1024 MiB, orders 2,6,10. A size
//   written MIBu (e.g. 64u) makes a pool without thread caches
//   (max_thread_caches 0): every pair takes the buddy allocator's path. Each copy
//   takes ~400 bytes of static TLS: set
//   GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096 if the second dlopen
//   fails for lack of it (bench/versus/blocks_ab.sh does).
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define LABYRINTH_NO_INLINE 1  // this program calls only what dlsym finds
#include <labyrinth/labyrinth.h>

#include "bench_patterns.hpp"

namespace {

// The exported calls a side needs, from its own copy of the library.
struct Side {
  const char *path = nullptr;
  void (*options_init)(labyrinth_pool_options *) = nullptr;
  labyrinth_status (*create)(const labyrinth_pool_options *, labyrinth_pool **) = nullptr;
  labyrinth_status (*destroy_ex)(labyrinth_pool *, uint32_t) = nullptr;
  labyrinth_status (*alloc)(labyrinth_pool *, unsigned, labyrinth_gfp, uint32_t, void **) = nullptr;
  labyrinth_status (*free_order)(labyrinth_pool *, void *, unsigned) = nullptr;
  const char *(*message)() = nullptr;
  labyrinth_pool *pool = nullptr;
};

template <typename F>
bool find(void *lib, const char *name, F *fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!*fn) std::fprintf(stderr, "library_ab: %s\n", dlerror());
  return *fn != nullptr;
}

bool open_side(const char *path, Side *s) {
  s->path = path;
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
  if (s->pool) s->destroy_ex(s->pool, LABYRINTH_DESTROY_FORCE);
  s->pool = nullptr;
  labyrinth_pool_options o;
  s->options_init(&o);
  o.size_bytes = mib << 20;
  o.flags &= ~LABYRINTH_POOL_PIN;
  if (uncached) o.max_thread_caches = 0;
  if (s->create(&o, &s->pool) == LABYRINTH_OK) return true;
  std::fprintf(stderr, "library_ab: %s: %zu MiB pool: %s\n", s->path, mib, s->message());
  return false;
}

// The calling thread's CPU time in ns: a round preempted by other processes
// (a loaded machine) is not charged for the time it did not run.
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

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OLD.so NEW.so [ROUNDS [MIB,MIB.. [ORDER,ORDER..]]]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 40;
  const std::vector<Number> sizes = numbers(argc > 4 ? argv[4] : "64,1024");
  const std::vector<Number> orders = numbers(argc > 5 ? argv[5] : "2,6,10");
  Side side[2];
  if (!open_side(argv[1], &side[0]) || !open_side(argv[2], &side[1])) return 3;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(int(cpus > 0 ? cpus - 1 : 0), &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  std::printf("OLD %s vs NEW %s in one process, %d alternating rounds on CPU %ld; exported calls, unpinned pools, thread CPU time\n\n",
              argv[1], argv[2], rounds, cpus > 0 ? cpus - 1 : 0);
  std::printf("| pool | order | OLD ns/pair: median (fastest) | NEW ns/pair: median (fastest) | NEW / OLD: median [quartiles] |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const Number &size : sizes) {
    const long mib = size.value;
    if (!make_pool(&side[0], std::size_t(mib), size.u) || !make_pool(&side[1], std::size_t(mib), size.u)) return 1;
    for (const Number &order : orders) {
      const unsigned o = unsigned(order.value);
      const long n = 4000;
      std::vector<double> t[2], ratio;
      if (timed(side[0], o, n / 10) < 0 || timed(side[1], o, n / 10) < 0) {  // warm-up
        std::fprintf(stderr, "library_ab: order %u on %ld MiB: a call failed\n", o, mib);
        return 1;
      }
      for (int r = 0; r < rounds; ++r) {
        double ns[2];
        const int first = r & 1;
        ns[first] = timed(side[first], o, n);
        ns[!first] = timed(side[!first], o, n);
        if (ns[0] < 0 || ns[1] < 0) {
          std::fprintf(stderr, "library_ab: order %u on %ld MiB: a call failed\n", o, mib);
          return 1;
        }
        t[0].push_back(ns[0]);
        t[1].push_back(ns[1]);
        ratio.push_back(ns[1] / ns[0]);
      }
      std::printf("| %ld MiB%s | %u | %.1f (%.1f) | %.1f (%.1f) | %.3fx [%.3f %.3f] |\n", mib,
                  size.u ? ", no caches" : "", o, quantile(t[0], 0.5),
                  quantile(t[0], 0), quantile(t[1], 0.5), quantile(t[1], 0), quantile(ratio, 0.5),
                  quantile(ratio, 0.25), quantile(ratio, 0.75));
      std::fflush(stdout);
    }
  }
  for (Side &s : side) s.destroy_ex(s.pool, LABYRINTH_DESTROY_FORCE);
  return 0;
}
