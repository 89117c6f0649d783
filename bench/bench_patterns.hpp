// bench_patterns.hpp - the benchmark patterns every allocator runs, written
// once as templates over an allocator "policy", plus the tools they share
// (a TSC timer, a log-linear latency histogram, a single-producer queue).
//
// A policy P is a struct of static functions:
//   static const char *thread_enter();   // on every thread that allocates,
//                                        // before its first call; nullptr or
//                                        // why the thread cannot be used
//   static void thread_leave();          // before that thread exits
//   static void *alloc();                // one 4 KiB page; nullptr on failure
//   static bool free(void *page);        // false on failure
//   static void *alloc_order(unsigned);  // a block of (1 << order) pages
//   static bool free_order(void *, unsigned);
//   static std::uint64_t receiver_token();          // on the receiving thread
//   static bool hand_over(void *, std::uint64_t);   // sender, before passing it
//   static const char *last_error();     // why the last call failed
//
// Patterns (names "<pattern>/<allocator>[/<arg>]"; the driver parses them):
//   pair       alloc, touch, free one page                    pages = 1
//   burst256   alloc 256 (touching each), then free the 256   pages = 256
//   order/N    alloc+touch+free one block of 2^N pages        pages = 1 (block)
//   cross      one thread allocates, hands over through a queue, another
//              frees; wall time per page                     pages = 256
//   tail/B     each allocation timed alone (TSC) in bursts of B while another
//              thread churns 1024-page bursts on the same allocator; counters
//              p50/p99/p99.9/p99.99/max in ns; histogram saved as CSV
//
// Touching: every page gets one 8-byte store at an offset that walks all 64
// cache lines (13 lines apart) and 8 words, so a burst of page-aligned pages
// does not pile into the same cache sets (GUIDE section 3).
#pragma once

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <sched.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

// Every policy's alloc/free is forced inline into the pattern loops, so
// each allocator is measured as a direct call in a hot loop compiles (GCC
// otherwise inlines some call sites and not others, depending on how often
// a template is instantiated: a 2x swing for the same code).
#define LABBENCH_HOT __attribute__((always_inline)) inline

namespace labbench {

constexpr int kBurst = 256;
constexpr int kChurnBurst = 1024;
constexpr int kMaxTailBurst = 1024;

// ---------------------------------------------------------------------------
// Touching a page
// ---------------------------------------------------------------------------

inline std::size_t touch_offset(std::uint64_t k) {
  return (((k * 13) & 63) << 6) | (((k >> 6) & 7) << 3);
}

inline void touch(void *page, std::uint64_t k) {
  *reinterpret_cast<volatile std::uint64_t *>(static_cast<char *>(page) + touch_offset(k)) = k;
}

// In a block of `bytes` bytes (a power-of-two number of pages): one store,
// on a page and line that vary. A mask, not `%`: a 64-bit division costs
// more than some of the allocators measured, and would set a floor for all.
inline void touch_block(void *block, std::size_t bytes, std::uint64_t k) {
  std::size_t page = (k * 7) & ((bytes >> 12) - 1);
  *reinterpret_cast<volatile std::uint64_t *>(static_cast<char *>(block) + (page << 12) +
                                              touch_offset(k)) = k;
}

inline void cpu_relax() { _mm_pause(); }

// Pin the calling thread to one CPU (when the machine has more than one and
// LABYRINTH_BENCH_NO_PIN is unset); returns the previous affinity to restore.
// The cross-thread pattern puts its two threads on two different CPUs, so
// that every allocator is measured with the same placement rather than
// wherever the scheduler happened to put them (which swings the result 3x
// on a 2-CPU VM).
// Pin the calling thread to the n-th CPU (from 0) of `among`.
inline bool pin_to_nth_cpu(const cpu_set_t &among, int n) {
  int seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &among)) continue;
    if (seen++ == n) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      return sched_setaffinity(0, sizeof one, &one) == 0;
    }
  }
  return false;
}

// Pin the calling thread to the cpu-th CPU it may run on, if it may run on
// two or more; *old receives the mask it had. A thread this one starts
// afterwards inherits the single CPU: pin it with pin_to_nth_cpu(*old, k).
inline bool pin_to_cpu(int cpu, cpu_set_t *old) {
  if (std::getenv("LABYRINTH_BENCH_NO_PIN")) return false;
  if (sched_getaffinity(0, sizeof *old, old) != 0 || CPU_COUNT(old) < 2) return false;
  return pin_to_nth_cpu(*old, cpu);
}

// Waiting for the other thread: spin a little, then give the CPU away. On a
// 2-core machine shared with other work both threads may land on one CPU,
// and pure spinning would then wait for the scheduler's time slice.
struct Backoff {
  unsigned spins = 0;
  void pause() {
    if (++spins < 256) {
      _mm_pause();
    } else {
      spins = 0;
      sched_yield();
    }
  }
  void reset() { spins = 0; }
};

// ---------------------------------------------------------------------------
// TSC timer
// ---------------------------------------------------------------------------

// lfence before and after rdtsc: the timed code neither starts before the
// first read nor is still running at the second.
inline std::uint64_t tsc_now() {
  _mm_lfence();
  std::uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// TSC ticks per nanosecond, measured once against steady_clock (50 ms).
inline double tsc_per_ns() {
  static const double v = [] {
    using clk = std::chrono::steady_clock;
    auto c0 = clk::now();
    std::uint64_t t0 = tsc_now();
    while (clk::now() - c0 < std::chrono::milliseconds(50)) {
    }
    auto c1 = clk::now();
    std::uint64_t t1 = tsc_now();
    double ns = std::chrono::duration<double, std::nano>(c1 - c0).count();
    return double(t1 - t0) / ns;
  }();
  return v;
}

// Cost of an empty timed region in ticks (median of 10001 tries).
inline std::uint64_t tsc_overhead() {
  static const std::uint64_t v = [] {
    std::vector<std::uint64_t> d(10001);
    for (auto &x : d) {
      std::uint64_t a = tsc_now();
      std::uint64_t b = tsc_now();
      x = b - a;
    }
    std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
    return d[d.size() / 2];
  }();
  return v;
}

// ---------------------------------------------------------------------------
// Log-linear histogram of TSC ticks: exact below 128, then 32 buckets per
// power of two (3 % resolution).
// ---------------------------------------------------------------------------

class Histogram {
 public:
  static constexpr int kExact = 128;
  static constexpr int kSub = 32;
  static constexpr int kBuckets = kExact + 57 * kSub;

  Histogram() : counts_(kBuckets, 0) {}

  void add(std::uint64_t v) {
    counts_[bucket(v)]++;
    if (v > max_) max_ = v;
    ++n_;
  }
  std::uint64_t samples() const { return n_; }
  std::uint64_t max() const { return max_; }

  static int bucket(std::uint64_t v) {
    if (v < kExact) return int(v);
    int msb = 63 - __builtin_clzll(v);  // >= 7
    int sub = int((v >> (msb - 5)) & (kSub - 1));
    return kExact + (msb - 7) * kSub + sub;
  }
  // [lo, hi) of a bucket, in ticks.
  static std::uint64_t lo(int b) {
    if (b < kExact) return std::uint64_t(b);
    int msb = (b - kExact) / kSub + 7, sub = (b - kExact) % kSub;
    return (std::uint64_t{1} << msb) + (std::uint64_t(sub) << (msb - 5));
  }
  static std::uint64_t hi(int b) {
    if (b < kExact) return std::uint64_t(b) + 1;
    int msb = (b - kExact) / kSub + 7;
    return lo(b) + (std::uint64_t{1} << (msb - 5));
  }
  // The q-quantile, in ticks (the middle of its bucket).
  double quantile(double q) const {
    if (n_ == 0) return 0;
    auto want = std::uint64_t(std::ceil(q * double(n_)));
    if (want == 0) want = 1;
    std::uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= want) return b < kExact ? double(b) : 0.5 * double(lo(b) + hi(b));
    }
    return double(max_);
  }
  const std::vector<std::uint64_t> &counts() const { return counts_; }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t max_ = 0, n_ = 0;
};

// ---------------------------------------------------------------------------
// Single-producer single-consumer ring of pointers (the cross-thread queue).
// Positions are published in batches of kPublish (and whenever a side runs
// out of work), as ptr_ring and DPDK rings batch: a cache line crossing
// between CPUs costs ~40-100 ns on these VMs, so publishing every pointer
// would measure the queue, not the allocator. The "queue_only" row measures
// what is left of the queue's cost.
// Sized like a 100 Gbit/s NIC's receive ring (4096 descriptors), published
// in NAPI-sized batches (64). A ring of 1024 published every 32 cost
// 10.7 ns/page alone and kept each side waiting on the other about a third
// of the time; every allocator's cross row was 6-7 ns/page higher with it.
// ---------------------------------------------------------------------------

class SpscRing {
 public:
  static constexpr std::size_t kSize = 4096;
  static constexpr std::size_t kPublish = 64;
  void push(void *p) {
    if (head_ - tail_seen_ >= kSize) {
      flush();
      Backoff b;
      for (;;) {
        tail_seen_ = tail_pub_.load(std::memory_order_acquire);
        if (head_ - tail_seen_ < kSize) break;
        b.pause();
      }
    }
    slots_[head_ & (kSize - 1)] = p;
    ++head_;
    if ((head_ & (kPublish - 1)) == 0) flush();
  }
  // Make every pushed pointer visible to the consumer.
  void flush() { head_pub_.store(head_, std::memory_order_release); }
  void *pop() {
    if (tail_ == head_seen_) {
      tail_pub_.store(tail_, std::memory_order_release);  // caught up: say so
      head_seen_ = head_pub_.load(std::memory_order_acquire);
      if (tail_ == head_seen_) return nullptr;
    }
    void *p = slots_[tail_ & (kSize - 1)];
    ++tail_;
    if ((tail_ & (kPublish - 1)) == 0) tail_pub_.store(tail_, std::memory_order_release);
    return p;
  }

 private:
  // Producer's line.
  alignas(64) std::size_t head_ = 0;
  std::size_t tail_seen_ = 0;
  // Published positions, each on its own line.
  alignas(64) std::atomic<std::size_t> head_pub_{0};
  alignas(64) std::atomic<std::size_t> tail_pub_{0};
  // Consumer's line.
  alignas(64) std::size_t tail_ = 0;
  std::size_t head_seen_ = 0;
  alignas(64) void *slots_[kSize];
};

// ---------------------------------------------------------------------------
// A cache line's round trip between the two threads of the cross pattern:
// one thread stores a number on a line, the other waits for it and answers
// on a second line. On our 2-vCPU VMs this is bimodal, per process: ~50 ns
// in some processes, 260-480 ns in most (most likely where the host runs
// the two vCPUs, which the guest cannot see or choose), and the cross rows
// of every allocator move with it (Labyrinth's ~10 ns/page against 14-23).
// The cross rows report it so that a reader knows which of the two
// machines a number came from.
// ---------------------------------------------------------------------------

class LinePingPong {
 public:
  static constexpr int kTrips = 2000;
  // Far more spins than a round trip takes (~100 at 500 ns): a yield then
  // only matters if both threads ended up on one CPU (each would otherwise
  // spin out its time slice per round trip).
  static constexpr unsigned kSpinsBeforeYield = 1u << 14;
  // The measuring side: kTrips round trips; ns per round trip (median of 5
  // runs of kTrips / 5). The other thread must be in answer() meanwhile, and
  // a second measure() must wait until the first answer() returned (the
  // callers' job handshakes order them).
  double measure() {
    double t[5];
    for (int run = 0; run < 5; ++run) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kTrips / 5; ++i) {
        const long v = ++sent_;
        ping_.store(v, std::memory_order_release);
        for (unsigned spins = 0; pong_.load(std::memory_order_acquire) != v;)
          if (++spins % kSpinsBeforeYield == 0) std::this_thread::yield();
      }
      t[run] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
               (kTrips / 5);
    }
    std::sort(t, t + 5);
    ping_.store(-1, std::memory_order_release);  // done: answer() returns
    return t[2];
  }
  // The answering side: echo every ping until measure() is done.
  void answer() {
    for (unsigned spins = 0;;) {
      const long v = ping_.load(std::memory_order_acquire);
      if (v < 0) break;
      if (v != answered_) {
        answered_ = v;
        pong_.store(v, std::memory_order_release);
      } else if (++spins % kSpinsBeforeYield == 0) {
        std::this_thread::yield();
      }
    }
    ping_.store(0, std::memory_order_relaxed);  // ready for the next measure()
  }

 private:
  alignas(64) std::atomic<long> ping_{0};
  alignas(64) std::atomic<long> pong_{0};
  long sent_ = 0;          // measuring side's
  alignas(64) long answered_ = 0;  // answering side's
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// Where the process's aligned_alloc comes from (which malloc is in use).
inline std::string malloc_library() {
  void *sym = dlsym(RTLD_DEFAULT, "aligned_alloc");
  Dl_info info{};
  if (sym && dladdr(sym, &info) && info.dli_fname) return info.dli_fname;
  return "unknown";
}

// Directory for histogram CSVs (LABYRINTH_BENCH_HIST_DIR), or "" for none.
inline std::string hist_dir() {
  const char *d = std::getenv("LABYRINTH_BENCH_HIST_DIR");
  return d ? d : "";
}

inline std::string file_safe(std::string s) {
  for (char &c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) c = '_';
  return s;
}

template <class P>
bool enter_or_skip(benchmark::State &st) {
  if (const char *why = P::thread_enter()) {
    st.SkipWithError(why);
    return false;
  }
  return true;
}

template <class P>
void fail(benchmark::State &st, const char *what) {
  std::string m = std::string(what) + ": " + P::last_error();
  st.SkipWithError(m.c_str());
}

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

template <class P>
void BM_pair(benchmark::State &st) {
  if (!enter_or_skip<P>(st)) return;
  std::uint64_t k = 0;
  for (int i = 0; i < 4096; ++i) {  // warm up: caches filled, pages faulted in
    void *p = P::alloc();
    if (!p) return fail<P>(st, "alloc (warm-up)");
    touch(p, k++);
    P::free(p);
  }
  for (auto _ : st) {
    void *p = P::alloc();
    if (__builtin_expect(!p, 0)) {
      fail<P>(st, "alloc");
      break;
    }
    touch(p, k++);
    if (__builtin_expect(!P::free(p), 0)) {
      fail<P>(st, "free");
      break;
    }
  }
  st.counters["pages"] = 1;
  P::thread_leave();
}

template <class P>
void BM_burst(benchmark::State &st) {
  if (!enter_or_skip<P>(st)) return;
  void *v[kBurst];
  std::uint64_t k = 0;
  bool ok = true;
  auto round = [&]() {
    for (int j = 0; j < kBurst; ++j) {
      void *p = P::alloc();
      if (__builtin_expect(!p, 0)) {
        for (int i = 0; i < j; ++i) P::free(v[i]);
        return false;
      }
      touch(p, k++);
      v[j] = p;
    }
    for (int j = 0; j < kBurst; ++j)
      if (__builtin_expect(!P::free(v[j]), 0)) return false;
    return true;
  };
  for (int i = 0; i < 8 && ok; ++i) ok = round();
  if (!ok) return fail<P>(st, "burst (warm-up)");
  for (auto _ : st) {
    if (!round()) {
      fail<P>(st, "burst");
      break;
    }
  }
  st.counters["pages"] = kBurst;
  P::thread_leave();
}

template <class P>
void BM_order(benchmark::State &st) {
  if (!enter_or_skip<P>(st)) return;
  const unsigned order = unsigned(st.range(0));
  const std::size_t bytes = std::size_t{4096} << order;
  std::uint64_t k = 0;
  for (int i = 0; i < 64; ++i) {
    void *p = P::alloc_order(order);
    if (!p) return fail<P>(st, "alloc_order (warm-up)");
    touch_block(p, bytes, k++);
    P::free_order(p, order);
  }
  for (auto _ : st) {
    void *p = P::alloc_order(order);
    if (__builtin_expect(!p, 0)) {
      fail<P>(st, "alloc_order");
      break;
    }
    touch_block(p, bytes, k++);
    if (__builtin_expect(!P::free_order(p, order), 0)) {
      fail<P>(st, "free_order");
      break;
    }
  }
  st.counters["pages"] = 1;
  P::thread_leave();
}

template <class P>
void BM_cross(benchmark::State &st) {
  if (!enter_or_skip<P>(st)) return;
  auto ring = std::make_unique<SpscRing>();
  std::atomic<bool> stop{false}, ready{false};
  std::atomic<std::uint64_t> token{0};
  std::atomic<std::uint64_t> free_failures{0};
  std::string consumer_error;
  cpu_set_t old_affinity;
  const bool pinned = pin_to_cpu(0, &old_affinity);
  std::atomic<bool> consumer_pinned{false};
  LinePingPong line;
  std::thread consumer([&] {
    // It starts on the producer's CPU (inherited): move it to the second one.
    if (pinned) consumer_pinned.store(pin_to_nth_cpu(old_affinity, 1), std::memory_order_relaxed);
    if (const char *why = P::thread_enter()) consumer_error = why;
    token.store(P::receiver_token(), std::memory_order_relaxed);
    ready.store(true, std::memory_order_release);
    if (consumer_pinned.load(std::memory_order_relaxed)) line.answer();
    Backoff b;
    for (;;) {
      if (void *p = ring->pop()) {
        if (!P::free(p)) free_failures.fetch_add(1, std::memory_order_relaxed);
        b.reset();
        continue;
      }
      if (stop.load(std::memory_order_acquire)) {
        while (void *p = ring->pop())
          if (!P::free(p)) free_failures.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      b.pause();
    }
    if (consumer_error.empty()) P::thread_leave();
  });
  while (!ready.load(std::memory_order_acquire)) cpu_relax();
  // Only between two CPUs: on one, each round trip would wait for a time slice.
  if (consumer_pinned.load(std::memory_order_relaxed)) st.counters["line_rtt_ns"] = line.measure();
  const std::uint64_t to = token.load(std::memory_order_relaxed);
  std::uint64_t k = 0;
  bool failed = !consumer_error.empty();
  if (!failed) {
    for (auto _ : st) {
      for (int j = 0; j < kBurst; ++j) {
        void *p = P::alloc();
        if (__builtin_expect(!p, 0)) {
          failed = true;
          break;
        }
        touch(p, k++);
        if (__builtin_expect(!P::hand_over(p, to), 0)) {
          failed = true;
          break;
        }
        ring->push(p);
      }
      ring->flush();
      if (failed) break;
    }
  }
  stop.store(true, std::memory_order_release);
  consumer.join();
  if (pinned) sched_setaffinity(0, sizeof old_affinity, &old_affinity);
  st.counters["pinned"] = pinned && consumer_pinned.load(std::memory_order_relaxed) ? 1 : 0;
  if (!consumer_error.empty())
    st.SkipWithError(("receiving thread: " + consumer_error).c_str());
  else if (failed)
    fail<P>(st, "alloc or hand over");
  else if (free_failures.load())
    st.SkipWithError("the receiving thread failed to free some pages");
  st.counters["pages"] = kBurst;
  P::thread_leave();
}

template <class P>
void BM_tail(benchmark::State &st, std::string name) {
  if (!enter_or_skip<P>(st)) return;
  const int burst = int(st.range(0));
  std::atomic<bool> stop{false}, started{false};
  std::string churn_error;
  std::thread churn([&] {
    if (const char *why = P::thread_enter()) {
      churn_error = why;
      started.store(true);
      return;
    }
    std::vector<void *> v(kChurnBurst);
    std::uint64_t k = 1u << 20;
    started.store(true);
    while (!stop.load(std::memory_order_relaxed)) {
      int n = 0;
      for (; n < kChurnBurst; ++n) {
        v[n] = P::alloc();
        if (!v[n]) break;
        touch(v[n], k++);
      }
      for (int j = 0; j < n; ++j) P::free(v[j]);
    }
    P::thread_leave();
  });
  while (!started.load()) cpu_relax();
  Histogram h;
  std::vector<void *> v(static_cast<std::size_t>(burst));
  std::uint64_t k = 0;
  bool failed = !churn_error.empty();
  const double per_ns = tsc_per_ns();
  const std::uint64_t overhead = tsc_overhead();
  if (!failed) {
    for (auto _ : st) {
      int got = 0;
      for (; got < burst; ++got) {
        std::uint64_t t0 = tsc_now();
        void *p = P::alloc();
        std::uint64_t t1 = tsc_now();
        if (__builtin_expect(!p, 0)) {
          failed = true;
          break;
        }
        std::uint64_t d = t1 - t0;
        h.add(d > overhead ? d - overhead : 0);
        touch(p, k++);
        v[std::size_t(got)] = p;
      }
      for (int j = 0; j < got; ++j) P::free(v[std::size_t(j)]);
      if (failed) break;
    }
  }
  stop.store(true);
  churn.join();
  if (!churn_error.empty()) {
    st.SkipWithError(("churning thread: " + churn_error).c_str());
  } else if (failed) {
    fail<P>(st, "alloc");
  } else {
    auto ns = [&](double ticks) { return ticks / per_ns; };
    st.counters["p50_ns"] = ns(h.quantile(0.50));
    st.counters["p99_ns"] = ns(h.quantile(0.99));
    st.counters["p999_ns"] = ns(h.quantile(0.999));
    st.counters["p9999_ns"] = ns(h.quantile(0.9999));
    st.counters["max_ns"] = ns(double(h.max()));
    st.counters["samples"] = double(h.samples());
    st.counters["timer_overhead_ns"] = ns(double(overhead));
    st.counters["pages"] = burst;
    std::string dir = hist_dir();
    if (!dir.empty()) {
      std::ofstream out(dir + "/" + file_safe(name) + ".csv");
      out << "# latency of each allocation in ns, TSC timer overhead (" << ns(double(overhead))
          << " ns) subtracted; " << h.samples() << " samples\n";
      out << "bucket,lo_ns,hi_ns,count\n";
      for (int b = 0; b < Histogram::kBuckets; ++b)
        if (h.counts()[std::size_t(b)])
          out << b << "," << ns(double(Histogram::lo(b))) << "," << ns(double(Histogram::hi(b)))
              << "," << h.counts()[std::size_t(b)] << "\n";
    }
  }
  P::thread_leave();
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

struct Patterns {
  bool pair = true, burst = true, order = true, cross = true, tail = true;
};

// `prefix` goes in front of each pattern name ("pool16MiB_" + "pair").
template <class P>
void register_patterns(const std::string &alloc, Patterns which = {},
                       const std::string &prefix = "") {
  auto name = [&](const char *pattern) { return prefix + pattern + "/" + alloc; };
  if (which.pair) benchmark::RegisterBenchmark(name("pair").c_str(), BM_pair<P>);
  if (which.burst) benchmark::RegisterBenchmark(name("burst256").c_str(), BM_burst<P>);
  if (which.order) benchmark::RegisterBenchmark(name("order").c_str(), BM_order<P>)->DenseRange(2, 10);
  if (which.cross) benchmark::RegisterBenchmark(name("cross").c_str(), BM_cross<P>)->UseRealTime();
  if (which.tail) {
    for (int b : {256, 1024}) {
      std::string full = name("tail") + "/" + std::to_string(b);
      benchmark::RegisterBenchmark(name("tail").c_str(), BM_tail<P>, full)->Arg(b);
    }
  }
}

// Context printed with the results, and a check that the expected malloc is
// the one in use (LABBENCH_EXPECT_MALLOC, a substring of its library path).
inline int run_main(int argc, char **argv, const char *allocator_label) {
  benchmark::AddCustomContext("labbench_allocators", allocator_label);
  std::string lib = malloc_library();
  benchmark::AddCustomContext("labbench_malloc_library", lib);
  benchmark::AddCustomContext("labbench_tsc_per_ns", std::to_string(tsc_per_ns()));
#ifdef LABBENCH_EXPECT_MALLOC
#define LABBENCH_STR2(x) #x
#define LABBENCH_STR(x) LABBENCH_STR2(x)
  if (lib.find(LABBENCH_STR(LABBENCH_EXPECT_MALLOC)) == std::string::npos) {
    std::fprintf(stderr,
                 "labbench: aligned_alloc resolves to %s, not to %s: the allocator under test "
                 "is not the one in use\n",
                 lib.c_str(), LABBENCH_STR(LABBENCH_EXPECT_MALLOC));
    return 2;
  }
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace labbench
