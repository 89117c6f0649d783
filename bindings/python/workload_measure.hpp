// workload_measure.hpp - how the workload runner measures: the clock (Timer)
// and the latency histogram (Hist).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define LABPY_HAVE_TSC 1
#endif

#include "binding.hpp"

namespace labpy::workload {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ clock
// Latencies are read from the TSC where there is one (calibrated against
// steady_clock before the run), else from steady_clock. Values are in ns.
struct Timer {
  bool tsc = false;
  uint64_t mult = 1u << 16;  // ns = ticks * mult >> 16
  uint64_t overhead_ns = 0;  // smallest back-to-back reading (not subtracted)

  static inline uint64_t ticks_start() {
#ifdef LABPY_HAVE_TSC
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return 0;
#endif
  }
  static inline uint64_t ticks_end() {
#ifdef LABPY_HAVE_TSC
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
#else
    return 0;
#endif
  }
  static inline uint64_t steady_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  }
  inline uint64_t start() const { return tsc ? ticks_start() : steady_ns(); }
  inline uint64_t end() const { return tsc ? ticks_end() : steady_ns(); }
  inline uint64_t to_ns(uint64_t d) const {
    return tsc ? static_cast<uint64_t>((static_cast<unsigned __int128>(d) * mult) >> 16) : d;
  }
  void calibrate();
};

// Calibrated once per process (the calibration sleeps 20 ms).
const Timer &process_timer();

// -------------------------------------------------------------- histogram
// HDR-style: values below 2048 ns have their own bucket (exact); above, each
// power of two is split into 1024 buckets (relative width at most 1/1024).
// Buckets are counted exactly; min, max and sum are exact.
struct Hist {
  static constexpr int kSubBits = 11;
  static constexpr uint64_t kSub = 1ull << kSubBits;    // 2048 exact buckets
  static constexpr uint64_t kHalf = kSub / 2;           // 1024 per power of two
  static constexpr int kMaxShift = 27;                  // up to 2^38 ns (~275 s)
  static constexpr size_t kBuckets = kSub + size_t(kMaxShift) * kHalf;

  std::vector<uint64_t> counts;
  uint64_t n = 0, sum = 0, min = ~0ull, max = 0;

  Hist() : counts(kBuckets, 0) {}
  static size_t index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (kSubBits - 1);
    if (shift > kMaxShift) return kBuckets - 1;
    return static_cast<size_t>(kSub + uint64_t(shift - 1) * kHalf + ((v >> shift) - kHalf));
  }
  static uint64_t lower(size_t i);
  inline void record(uint64_t v) {
    ++counts[index(v)];
    ++n;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  void merge(const Hist &o);
  py::dict to_py() const;
};

}  // namespace labpy::workload
