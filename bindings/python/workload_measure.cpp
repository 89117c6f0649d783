// workload_measure.cpp - the workload runner's clock calibration and the
// histogram's bucket bounds, merging and conversion to Python.
#include "workload_measure.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

namespace labpy::workload {

void Timer::calibrate() {
#ifdef LABPY_HAVE_TSC
  // Needs an invariant TSC; trust the kernel's judgement of it.
  bool invariant = false;
  if (FILE *f = std::fopen("/proc/cpuinfo", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "flags", 5) == 0) {
        invariant = std::strstr(line, " constant_tsc") && std::strstr(line, " nonstop_tsc");
        break;
      }
    std::fclose(f);
  }
  if (invariant) {
    uint64_t n0 = steady_ns(), t0 = ticks_start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    uint64_t n1 = steady_ns(), t1 = ticks_start();
    if (t1 > t0 && n1 > n0) {
      tsc = true;
      mult = static_cast<uint64_t>(std::llround(double(n1 - n0) / double(t1 - t0) * 65536.0));
      if (mult == 0) tsc = false;
    }
  }
#endif
  uint64_t best = ~0ull;
  for (int i = 0; i < 1000; ++i) {
    uint64_t a = start(), b = end();
    best = std::min(best, to_ns(b - a));
  }
  overhead_ns = best;
}

const Timer &process_timer() {
  static const Timer t = [] {
    Timer x;
    x.calibrate();
    return x;
  }();
  return t;
}

uint64_t Hist::lower(size_t i) {
  if (i < kSub) return i;
  size_t j = i - kSub;
  int shift = static_cast<int>(j / kHalf) + 1;
  return (uint64_t(j % kHalf) + kHalf) << shift;
}

void Hist::merge(const Hist &o) {
  for (size_t i = 0; i < kBuckets; ++i) counts[i] += o.counts[i];
  n += o.n;
  sum += o.sum;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

py::dict Hist::to_py() const {
  std::vector<uint64_t> values, cnt;
  for (size_t i = 0; i < kBuckets; ++i)
    if (counts[i]) {
      values.push_back(lower(i));
      cnt.push_back(counts[i]);
    }
  py::dict d;
  d["sub_bucket_bits"] = kSubBits;
  d["values"] = values;
  d["counts"] = cnt;
  d["count"] = n;
  d["sum"] = sum;
  d["min"] = n ? min : 0;
  d["max"] = max;
  return d;
}

}  // namespace labpy::workload
