// workload_spec.hpp - what a workload run does: its spec (parsed from the
// dict labyrinth.workload builds), the operations it times and the seeded
// random draws of a synthetic run.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "binding.hpp"

namespace labpy::workload {

struct Rng {  // xoshiro256**
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto &x : s) {  // splitmix64
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      x = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0,1)
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

struct Dist {
  enum Kind { FIXED, UNIFORM, EXPONENTIAL } kind = FIXED;
  double a = 0, b = 0;
  uint64_t sample(Rng &r) const {
    switch (kind) {
      case FIXED: return static_cast<uint64_t>(a);
      case UNIFORM: return static_cast<uint64_t>(a) + r.below(static_cast<uint64_t>(b - a) + 1);
      case EXPONENTIAL: {
        double u = r.uniform();
        double v = -std::log1p(-u) * a;
        return v > 1e15 ? uint64_t(1e15) : static_cast<uint64_t>(v);
      }
    }
    return 0;
  }
};

enum Op { OP_ALLOC_ATOMIC, OP_ALLOC_WAIT, OP_FREE, OP_TRANSFER, OP_COUNT };
inline constexpr const char *kOpNames[OP_COUNT] = {"alloc_atomic", "alloc_wait", "free", "transfer"};

struct Spec {
  bool replay = false;
  unsigned threads = 1;
  double duration_s = 0;       // 0: no time limit
  uint64_t steps_per_thread = 0;  // 0: no op limit (synthetic)
  uint64_t seed = 1;
  double order_weights[LABYRINTH_MAX_ORDER + 1] = {1};
  Dist lifetime, burst;
  double transfer_share = 0, wait_share = 0, exclusive_share = 1, zero_share = 0;
  uint32_t wait_timeout_ms = 10;
  bool touch = true;
  uint64_t max_held_per_thread = 1u << 20;
  uint64_t max_inbox = 256;  // bounded hand-over queue per thread
  double sample_interval_s = 0.01;
  uint64_t latency_every = 1;  // time one call in this many
  // replay
  std::vector<int64_t> ev_op, ev_thread, ev_block, ev_order, ev_gfp, ev_timeout, ev_to;
  int64_t nblocks = 0;
};

// The Spec of a spec dict; raises InvalidArgument naming the bad field.
Spec parse_spec(const py::dict &d);

}  // namespace labpy::workload
