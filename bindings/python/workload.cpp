// workload.cpp - the workload runner of labyrinth.workload, in C++.
//
// Runs a described (synthetic) workload or replays a trace on N threads
// against a pool through the public C ABI, without the GIL, and measures:
// latency of every call (HDR-style histogram, see Hist), throughput, failures
// by status, and the pool's state (fragmentation, reserve) sampled over time
// by a separate thread. Python drives it through the Run class:
//   run = _core.Run(pool, spec); run.start(); run.wait(t); run.result()
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define LABPY_HAVE_TSC 1
#endif

#include "binding.hpp"

namespace labpy {
namespace {

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

  void calibrate() {
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
};

// Calibrated once per process (the calibration sleeps 20 ms).
const Timer &process_timer() {
  static const Timer t = [] {
    Timer x;
    x.calibrate();
    return x;
  }();
  return t;
}

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
  static uint64_t lower(size_t i) {
    if (i < kSub) return i;
    size_t j = i - kSub;
    int shift = static_cast<int>(j / kHalf) + 1;
    return (uint64_t(j % kHalf) + kHalf) << shift;
  }
  inline void record(uint64_t v) {
    ++counts[index(v)];
    ++n;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  void merge(const Hist &o) {
    for (size_t i = 0; i < kBuckets; ++i) counts[i] += o.counts[i];
    n += o.n;
    sum += o.sum;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
  }
  py::dict to_py() const {
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
};

// ------------------------------------------------------------ randomness
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

Dist parse_dist(const py::dict &d, const char *what) {
  Dist x;
  std::string kind = d["kind"].cast<std::string>();
  auto bad = [&](const std::string &why) {
    raise_status(LABYRINTH_ERR_INVALID, std::string(what) + ": " + why);
  };
  if (kind == "fixed") {
    x.kind = Dist::FIXED;
    x.a = d["value"].cast<double>();
    if (!(x.a >= 0)) bad("fixed value must be >= 0");
  } else if (kind == "uniform") {
    x.kind = Dist::UNIFORM;
    x.a = d["low"].cast<double>();
    x.b = d["high"].cast<double>();
    if (!(x.a >= 0 && x.b >= x.a)) bad("uniform needs 0 <= low <= high");
  } else if (kind == "exponential") {
    x.kind = Dist::EXPONENTIAL;
    x.a = d["mean"].cast<double>();
    if (!(x.a >= 0)) bad("exponential mean must be >= 0");
  } else {
    bad("unknown distribution kind '" + kind + "' (fixed, uniform, exponential)");
  }
  return x;
}

// ---------------------------------------------------------------- spec
enum Op { OP_ALLOC_ATOMIC, OP_ALLOC_WAIT, OP_FREE, OP_TRANSFER, OP_COUNT };
const char *const kOpNames[OP_COUNT] = {"alloc_atomic", "alloc_wait", "free", "transfer"};

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

std::vector<int64_t> int64_column(const py::object &o, const char *name) {
  py::buffer b = o.cast<py::buffer>();
  py::buffer_info info = b.request();
  if (info.ndim != 1 || info.itemsize != 8 || (info.format != "q" && info.format != "l"))
    raise_status(LABYRINTH_ERR_INVALID, std::string("trace column '") + name +
                                            "' must be a 1-d buffer of int64 (array('q'))");
  auto *p = static_cast<const int64_t *>(info.ptr);
  return std::vector<int64_t>(p, p + info.shape[0]);
}

Spec parse_spec(const py::dict &d) {
  Spec s;
  auto bad = [](const std::string &why) { raise_status(LABYRINTH_ERR_INVALID, why); };
  s.threads = d["threads"].cast<unsigned>();
  if (s.threads < 1 || s.threads > 1024) bad("threads must be 1..1024");
  if (d.contains("duration_s") && !d["duration_s"].is_none()) s.duration_s = d["duration_s"].cast<double>();
  if (d.contains("sample_interval_s")) s.sample_interval_s = d["sample_interval_s"].cast<double>();
  if (!(s.sample_interval_s >= 0.001)) bad("sample_interval_s must be >= 0.001");
  if (d.contains("latency_every")) s.latency_every = d["latency_every"].cast<uint64_t>();
  if (s.latency_every < 1) bad("latency_every must be >= 1");
  if (d.contains("touch")) s.touch = d["touch"].cast<bool>();
  if (d.contains("kind") && d["kind"].cast<std::string>() == "replay") {
    s.replay = true;
    py::dict ev = d["events"].cast<py::dict>();
    s.ev_op = int64_column(ev["op"], "op");
    s.ev_thread = int64_column(ev["thread"], "thread");
    s.ev_block = int64_column(ev["block"], "block");
    s.ev_order = int64_column(ev["order"], "order");
    s.ev_gfp = int64_column(ev["gfp"], "gfp");
    s.ev_timeout = int64_column(ev["timeout_ms"], "timeout_ms");
    s.ev_to = int64_column(ev["to"], "to");
    size_t n = s.ev_op.size();
    for (auto *c : {&s.ev_thread, &s.ev_block, &s.ev_order, &s.ev_gfp, &s.ev_timeout, &s.ev_to})
      if (c->size() != n) bad("trace columns differ in length");
    s.nblocks = 0;
    for (size_t i = 0; i < n; ++i) {
      if (s.ev_op[i] < 0 || s.ev_op[i] > 2) bad("trace event " + std::to_string(i) + ": bad op");
      if (s.ev_thread[i] < 0 || s.ev_thread[i] >= int64_t(s.threads))
        bad("trace event " + std::to_string(i) + ": thread out of range");
      if (s.ev_block[i] < 0) bad("trace event " + std::to_string(i) + ": bad block index");
      if (s.ev_op[i] == 2 && (s.ev_to[i] < 0 || s.ev_to[i] >= int64_t(s.threads)))
        bad("trace event " + std::to_string(i) + ": transfer target thread out of range");
      s.nblocks = std::max(s.nblocks, s.ev_block[i] + 1);
    }
    return s;
  }
  if (d.contains("steps_per_thread") && !d["steps_per_thread"].is_none())
    s.steps_per_thread = d["steps_per_thread"].cast<uint64_t>();
  if (s.duration_s <= 0 && s.steps_per_thread == 0) bad("give duration_s or steps_per_thread (or both)");
  s.seed = d["seed"].cast<uint64_t>();
  std::fill(std::begin(s.order_weights), std::end(s.order_weights), 0.0);
  double total = 0;
  for (auto kv : d["orders"].cast<py::dict>()) {
    int o = kv.first.cast<int>();
    double w = kv.second.cast<double>();
    if (o < 0 || o > LABYRINTH_MAX_ORDER) bad("orders: order " + std::to_string(o) + " is not 0..10");
    if (!(w >= 0)) bad("orders: weights must be >= 0");
    s.order_weights[o] = w;
    total += w;
  }
  if (!(total > 0)) bad("orders: at least one weight must be > 0");
  for (double &w : s.order_weights) w /= total;
  s.lifetime = parse_dist(d["lifetime"].cast<py::dict>(), "lifetime");
  s.burst = parse_dist(d["burst"].cast<py::dict>(), "burst");
  auto share = [&](const char *k, double &out) {
    if (!d.contains(k)) return;
    out = d[k].cast<double>();
    if (!(out >= 0 && out <= 1)) bad(std::string(k) + " must be in [0, 1]");
  };
  share("transfer_share", s.transfer_share);
  share("wait_share", s.wait_share);
  share("exclusive_share", s.exclusive_share);
  share("zero_share", s.zero_share);
  if (d.contains("wait_timeout_ms")) s.wait_timeout_ms = d["wait_timeout_ms"].cast<uint32_t>();
  if (d.contains("max_held_per_thread")) s.max_held_per_thread = d["max_held_per_thread"].cast<uint64_t>();
  if (s.max_held_per_thread < 1) bad("max_held_per_thread must be >= 1");
  if (d.contains("max_inbox")) s.max_inbox = d["max_inbox"].cast<uint64_t>();
  if (s.max_inbox < 1) bad("max_inbox must be >= 1");
  return s;
}

// ---------------------------------------------------------------- run
struct Held {
  uint64_t expiry;
  void *page;
  uint32_t order;
  bool operator>(const Held &o) const { return expiry > o.expiry; }
};

struct Sample {
  double t;
  uint64_t ops;
  labyrinth_stats st;
};

struct alignas(64) Worker {
  std::vector<Hist> hist;
  uint64_t calls[OP_COUNT] = {};
  uint64_t ticks[OP_COUNT] = {};  // calls since the op's last timed one
  uint64_t failures[OP_COUNT][LABYRINTH_STATUS_COUNT] = {};
  uint64_t skipped = 0;      // replay: events on blocks whose alloc failed
  uint64_t drain_frees = 0;  // blocks freed after the run, not timed
  uint64_t drain_failures = 0;
  uint64_t transfers_skipped = 0;  // the receiver's queue was full
  std::atomic<uint64_t> ops{0};  // read by the sampler
  labyrinth_owner owner = 0;
  // cross-thread transfers into this worker (synthetic)
  std::mutex inbox_mu;
  std::vector<Held> inbox;
  Worker() : hist(OP_COUNT) {}
};

class Barrier {
 public:
  explicit Barrier(unsigned n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> l(mu_);
    unsigned gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(l, [&] { return gen != gen_; });
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned n_, count_ = 0, gen_ = 0;
};

class Run {
 public:
  Run(PoolRef ps, Spec spec) : ps_(std::move(ps)), spec_(std::move(spec)) {}
  ~Run() {
    if (started_ && !joined_.load()) {
      cancel_.store(true);
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> l(join_mu_);
      if (!joined_.load()) join_all();
    }
  }

  void start() {
    if (started_) raise_status(LABYRINTH_ERR_INVALID, "this run was already started");
    pool_ = open_pool(ps_);
    active_ = std::make_unique<ActiveCall>(ps_);
    started_ = true;
    timer_ = process_timer();
    workers_.clear();
    for (unsigned i = 0; i < spec_.threads; ++i) workers_.push_back(std::make_unique<Worker>());
    if (spec_.replay) {
      size_t n = spec_.ev_op.size();
      done_ = std::make_unique<std::atomic<uint8_t>[]>(n);
      for (size_t i = 0; i < n; ++i) done_[i].store(0, std::memory_order_relaxed);
      prev_.assign(n, -1);
      std::vector<int64_t> last(static_cast<size_t>(spec_.nblocks), -1);
      per_thread_.assign(spec_.threads, {});
      for (size_t i = 0; i < n; ++i) {
        prev_[i] = last[static_cast<size_t>(spec_.ev_block[i])];
        last[static_cast<size_t>(spec_.ev_block[i])] = static_cast<int64_t>(i);
        per_thread_[static_cast<size_t>(spec_.ev_thread[i])].push_back(i);
      }
      blocks_ = std::make_unique<std::atomic<void *>[]>(static_cast<size_t>(spec_.nblocks));
      for (int64_t i = 0; i < spec_.nblocks; ++i) blocks_[i].store(nullptr, std::memory_order_relaxed);
      total_work_ = n;
    } else {
      total_work_ = spec_.steps_per_thread * spec_.threads;
    }
    before_ = read_stats();
    barrier_ = std::make_unique<Barrier>(spec_.threads + 1);
    end_barrier_ = std::make_unique<Barrier>(spec_.threads);
    for (unsigned i = 0; i < spec_.threads; ++i)
      threads_.emplace_back([this, i] { spec_.replay ? replay_thread(i) : synthetic_thread(i); });
    barrier_->wait();  // every worker has its owner id
    t0_ = Clock::now();
    if (spec_.duration_s > 0) deadline_ = t0_ + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(spec_.duration_s));
    go_.store(true, std::memory_order_release);
    sampler_ = std::thread([this] { sampler_thread(); });
  }

  // Wait for the end (GIL released). True when the run has ended.
  bool wait(double timeout_s) {
    if (!started_) raise_status(LABYRINTH_ERR_INVALID, "the run was not started");
    if (joined_.load()) return true;
    bool ended;
    {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> l(mu_);
      auto pred = [&] { return finished_ == spec_.threads; };
      if (timeout_s < 0)
        cv_.wait(l, pred), ended = true;
      else
        ended = cv_.wait_for(l, std::chrono::duration<double>(timeout_s), pred);
    }
    if (ended) {
      {
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> l(join_mu_);
        if (!joined_.load()) join_all();
      }
      active_.reset();
    }
    return ended;
  }

  void cancel() { cancel_.store(true); }

  py::tuple progress() const {
    if (!started_) return py::make_tuple(0.0, 0, 0.0);
    uint64_t ops = 0;
    for (auto &w : workers_) ops += w->ops.load(std::memory_order_relaxed);
    double el = elapsed();
    double f = 0;
    if (spec_.duration_s > 0) f = el / spec_.duration_s;
    if (total_work_) f = std::max(f, double(done_work_.load()) / double(total_work_));
    if (joined_) f = 1.0;
    return py::make_tuple(std::min(f, 1.0), ops, el);
  }

  py::dict result() {
    if (!joined_) raise_status(LABYRINTH_ERR_BUSY, "the run has not ended yet (call wait())");
    py::dict r;
    r["kind"] = spec_.replay ? "replay" : "synthetic";
    r["threads"] = spec_.threads;
    r["duration_s"] = std::chrono::duration<double>(t_end_ - t0_).count();
    r["clock"] = timer_.tsc ? "tsc" : "steady_clock";
    r["timer_overhead_ns"] = timer_.overhead_ns;
    r["latency_every"] = spec_.latency_every;
    r["cancelled"] = cancel_.load();
    py::dict calls, lat, fails;
    for (int op = 0; op < OP_COUNT; ++op) {
      Hist h;
      uint64_t c = 0;
      py::dict f;
      uint64_t fs[LABYRINTH_STATUS_COUNT] = {};
      for (auto &w : workers_) {
        h.merge(w->hist[op]);
        c += w->calls[op];
        for (int s = 0; s < LABYRINTH_STATUS_COUNT; ++s) fs[s] += w->failures[op][s];
      }
      for (int s = 1; s < LABYRINTH_STATUS_COUNT; ++s)
        if (fs[s]) f[labyrinth_status_name(static_cast<labyrinth_status>(s))] = fs[s];
      calls[kOpNames[op]] = c;
      lat[kOpNames[op]] = h.to_py();
      fails[kOpNames[op]] = f;
    }
    r["calls"] = calls;
    r["latency"] = lat;
    r["failures"] = fails;
    uint64_t skipped = 0, drain = 0, drain_fail = 0, tskip = 0;
    py::list per_thread;
    for (auto &w : workers_) {
      skipped += w->skipped;
      drain += w->drain_frees;
      drain_fail += w->drain_failures;
      tskip += w->transfers_skipped;
      per_thread.append(w->ops.load());
    }
    r["per_thread_ops"] = per_thread;
    r["skipped_events"] = skipped;
    r["drain_frees"] = drain;
    r["drain_failures"] = drain_fail;
    r["transfers_skipped"] = tskip;
    r["stats_before"] = stats_dict(before_);
    r["stats_after"] = stats_dict(after_);
    r["reserve_uses"] = after_.reserve_uses - before_.reserve_uses;
    py::dict smp;
    std::vector<double> t;
    std::vector<uint64_t> ops, freep, cached, reserve, alloc, ruses, shared;
    std::vector<std::vector<uint64_t>> fb;
    for (auto &s : samples_) {
      t.push_back(s.t);
      ops.push_back(s.ops);
      freep.push_back(s.st.free_pages);
      cached.push_back(s.st.cached_pages);
      reserve.push_back(s.st.reserve_pages);
      alloc.push_back(s.st.allocated_pages);
      ruses.push_back(s.st.reserve_uses - before_.reserve_uses);
      shared.push_back(s.st.shared_free_pages);
      fb.emplace_back(std::begin(s.st.free_blocks), std::end(s.st.free_blocks));
    }
    smp["t"] = t;
    smp["ops"] = ops;
    smp["free_pages"] = freep;
    smp["cached_pages"] = cached;
    smp["reserve_pages"] = reserve;
    smp["allocated_pages"] = alloc;
    smp["shared_free_pages"] = shared;
    smp["reserve_uses"] = ruses;
    smp["free_blocks"] = fb;
    r["samples"] = smp;
    return r;
  }

 private:
  labyrinth_stats read_stats() const {
    labyrinth_stats s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    labyrinth_pool_stats(pool_, &s);
    return s;
  }
  static py::dict stats_dict(const labyrinth_stats &s) {
    py::dict d;
    d["total_pages"] = s.total_pages;
    d["free_pages"] = s.free_pages;
    d["reserve_pages"] = s.reserve_pages;
    d["cached_pages"] = s.cached_pages;
    d["allocated_pages"] = s.allocated_pages;
    d["orphaned_pages"] = s.orphaned_pages;
    d["free_blocks"] = std::vector<uint64_t>(std::begin(s.free_blocks), std::end(s.free_blocks));
    d["reserve_uses"] = s.reserve_uses;
    d["waits"] = s.waits;
    d["timeouts"] = s.timeouts;
    d["pressure_events"] = s.pressure_events;
    return d;
  }
  double elapsed() const {
    if (!go_.load()) return 0;
    auto end = joined_ ? t_end_ : Clock::now();
    return std::chrono::duration<double>(end - t0_).count();
  }
  bool should_stop() const {
    if (cancel_.load(std::memory_order_relaxed)) return true;
    return spec_.duration_s > 0 && Clock::now() >= deadline_;
  }

  void join_all() {
    for (auto &t : threads_) t.join();
    threads_.clear();
    t_end_ = Clock::now();
    {
      std::lock_guard<std::mutex> l(mu_);
      sampler_stop_ = true;
    }
    cv_.notify_all();
    if (sampler_.joinable()) sampler_.join();
    // Worker threads have exited: their caches went back to the pool.
    after_ = read_stats();
    take_sample();
    joined_.store(true);
  }

  void take_sample() {
    Sample s;
    s.t = std::chrono::duration<double>(Clock::now() - t0_).count();
    s.ops = 0;
    for (auto &w : workers_) s.ops += w->ops.load(std::memory_order_relaxed);
    s.st = read_stats();
    samples_.push_back(s);
  }

  void sampler_thread() {
    auto interval = std::chrono::duration<double>(spec_.sample_interval_s);
    take_sample();
    std::unique_lock<std::mutex> l(mu_);
    while (!sampler_stop_) {
      if (cv_.wait_for(l, interval, [&] { return sampler_stop_; })) break;
      l.unlock();
      take_sample();
      l.lock();
    }
  }

  void finish_thread() {
    std::lock_guard<std::mutex> l(mu_);
    ++finished_;
    cv_.notify_all();
  }

  // A timed call: records its latency in hist[op] one time in latency_every
  // calls of that op (each op counts its own calls, so alternating ops are
  // all sampled whatever the period).
  template <class F>
  inline labyrinth_status timed(Worker &w, int op, F &&f) {
    ++w.calls[op];
    labyrinth_status st;
    if (++w.ticks[op] >= spec_.latency_every) {
      w.ticks[op] = 0;
      uint64_t a = timer_.start();
      st = f();
      uint64_t b = timer_.end();
      w.hist[op].record(timer_.to_ns(b - a));
    } else {
      st = f();
    }
    if (st != LABYRINTH_OK) ++w.failures[op][st < LABYRINTH_STATUS_COUNT ? st : LABYRINTH_ERR_SYSTEM];
    return st;
  }

  void touch(void *p, uint32_t order, uint64_t step) {
    if (!spec_.touch) return;
    size_t size = size_t(LABYRINTH_PAGE_SIZE) << order;
    static_cast<volatile char *>(p)[(step * 64) % size] = static_cast<char>(step);
  }

  void synthetic_thread(unsigned idx) {
    Worker &w = *workers_[idx];
    w.owner = labyrinth_owner_self();
    Rng rng(spec_.seed * 0x100000001B3ull + idx + 1);
    std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
    std::vector<Held> incoming;
    double cdf[LABYRINTH_MAX_ORDER + 1];
    double acc = 0;
    int last = 0;
    for (int o = 0; o <= LABYRINTH_MAX_ORDER; ++o) {
      cdf[o] = (acc += spec_.order_weights[o]);
      if (spec_.order_weights[o] > 0) last = o;
    }
    for (int o = last; o <= LABYRINTH_MAX_ORDER; ++o) cdf[o] = 2.0;  // no rounding past the last order
    barrier_->wait();
    while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
    uint64_t step = 0;
    labyrinth_pool *pool = pool_;
    auto free_one = [&](const Held &h) {
      timed(w, OP_FREE, [&] { return labyrinth_free_page_inline(pool, h.page); });
      w.ops.fetch_add(1, std::memory_order_relaxed);
    };
    for (;;) {
      if (spec_.steps_per_thread && step >= spec_.steps_per_thread) break;
      if ((step & 15) == 0 && should_stop()) break;
      // Blocks other threads handed over.
      if (spec_.transfer_share > 0) {
        std::lock_guard<std::mutex> l(w.inbox_mu);
        incoming.swap(w.inbox);
      }
      for (auto &h : incoming) held.push(Held{step + h.expiry, h.page, h.order});
      incoming.clear();
      while (!held.empty() && held.top().expiry <= step) {
        free_one(held.top());
        held.pop();
      }
      uint64_t burst = std::max<uint64_t>(1, spec_.burst.sample(rng));
      for (uint64_t b = 0; b < burst; ++b) {
        while (held.size() >= spec_.max_held_per_thread) {
          free_one(held.top());
          held.pop();
        }
        double u = rng.uniform();
        unsigned order = 0;
        while (order < LABYRINTH_MAX_ORDER && u >= cdf[order]) ++order;
        // Every random choice is drawn before the call, so the sequence of
        // requests depends only on the seed, not on which calls failed.
        bool waiting = spec_.wait_share > 0 && rng.uniform() < spec_.wait_share;
        bool excl = spec_.exclusive_share >= 1 || rng.uniform() < spec_.exclusive_share;
        bool zero = spec_.zero_share > 0 && rng.uniform() < spec_.zero_share;
        uint64_t life = spec_.lifetime.sample(rng);
        bool hand_over = excl && spec_.threads > 1 && spec_.transfer_share > 0 &&
                         rng.uniform() < spec_.transfer_share;
        unsigned to = hand_over ? static_cast<unsigned>(rng.below(spec_.threads - 1)) : 0;
        if (to >= idx) ++to;
        labyrinth_gfp gfp = (waiting ? LABYRINTH_GFP_WAIT : LABYRINTH_GFP_ATOMIC) |
                            (excl ? LABYRINTH_GFP_EXCLUSIVE : 0) | (zero ? LABYRINTH_GFP_ZERO : 0);
        void *page = nullptr;
        labyrinth_status st;
        if (!waiting && order == 0 && excl && !zero) {
          st = timed(w, OP_ALLOC_ATOMIC, [&] {
            page = labyrinth_alloc_page_inline(pool);
            return page ? LABYRINTH_OK : labyrinth_last_status();
          });
        } else {
          st = timed(w, waiting ? OP_ALLOC_WAIT : OP_ALLOC_ATOMIC, [&] {
            return labyrinth_alloc_pages(pool, order, gfp, spec_.wait_timeout_ms, &page);
          });
        }
        w.ops.fetch_add(1, std::memory_order_relaxed);
        if (st != LABYRINTH_OK) continue;
        touch(page, order, step + b);
        if (hand_over) {
          Worker &dst = *workers_[to];
          std::lock_guard<std::mutex> l(dst.inbox_mu);
          if (dst.inbox.size() >= spec_.max_inbox) {
            ++w.transfers_skipped;  // a full queue: the sender keeps the block
          } else {
            st = timed(w, OP_TRANSFER, [&] { return labyrinth_page_transfer(pool, page, dst.owner); });
            w.ops.fetch_add(1, std::memory_order_relaxed);
            if (st == LABYRINTH_OK) {
              dst.inbox.push_back(Held{life, page, order});
              continue;
            }
          }
        }
        held.push(Held{step + life, page, order});
      }
      ++step;
      done_work_.fetch_add(1, std::memory_order_relaxed);
    }
    finish_phase(w, [&] {
      while (!held.empty()) {
        drain_free(w, held.top().page);
        held.pop();
      }
    });
    {
      std::lock_guard<std::mutex> l(w.inbox_mu);
      incoming.swap(w.inbox);
    }
    for (auto &h : incoming) drain_free(w, h.page);
    finish_thread();
  }

  void drain_free(Worker &w, void *page) {
    if (labyrinth_free_pages(pool_, page) == LABYRINTH_OK)
      ++w.drain_frees;
    else
      ++w.drain_failures;
  }

  // Frees what this worker holds, then waits for every worker: after the
  // barrier no more transfers arrive.
  template <class F>
  void finish_phase(Worker &, F &&free_held) {
    free_held();
    end_barrier_->wait();
  }

  void replay_thread(unsigned idx) {
    Worker &w = *workers_[idx];
    w.owner = labyrinth_owner_self();
    barrier_->wait();
    while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
    labyrinth_pool *pool = pool_;
    bool stopped = false;
    for (size_t e : per_thread_[idx]) {
      // Wait until the block's previous event (in trace order) has run.
      int64_t p = prev_[e];
      if (p >= 0) {
        unsigned spins = 0;
        while (!done_[static_cast<size_t>(p)].load(std::memory_order_acquire)) {
          if (++spins > 64) std::this_thread::yield();
          if ((spins & 1023) == 0 && should_stop()) {
            stopped = true;
            break;
          }
        }
      }
      if (stopped || ((e & 63) == 0 && should_stop())) {
        stopped = true;
        break;
      }
      auto &slot = blocks_[static_cast<size_t>(spec_.ev_block[e])];
      void *page = slot.load(std::memory_order_relaxed);
      switch (spec_.ev_op[e]) {
        case 0: {  // alloc
          if (page) {  // id reused before it was freed: keep the old block for cleanup
            std::lock_guard<std::mutex> l(mu_);
            leaked_.push_back(page);
          }
          auto gfp = static_cast<labyrinth_gfp>(spec_.ev_gfp[e]);
          auto order = static_cast<unsigned>(spec_.ev_order[e]);
          bool waiting = gfp & LABYRINTH_GFP_WAIT;
          void *np = nullptr;
          labyrinth_status st = timed(w, waiting ? OP_ALLOC_WAIT : OP_ALLOC_ATOMIC, [&] {
            return labyrinth_alloc_pages(pool, order, gfp, static_cast<uint32_t>(spec_.ev_timeout[e]), &np);
          });
          if (st == LABYRINTH_OK) touch(np, order, e);
          slot.store(st == LABYRINTH_OK ? np : nullptr, std::memory_order_relaxed);
          break;
        }
        case 1: {  // free
          if (!page) {
            ++w.skipped;
            break;
          }
          labyrinth_status st =
              timed(w, OP_FREE, [&] { return labyrinth_free_pages(pool, page); });
          if (st == LABYRINTH_OK) slot.store(nullptr, std::memory_order_relaxed);
          break;
        }
        case 2: {  // transfer
          if (!page) {
            ++w.skipped;
            break;
          }
          labyrinth_owner to = workers_[static_cast<size_t>(spec_.ev_to[e])]->owner;
          timed(w, OP_TRANSFER, [&] { return labyrinth_page_transfer(pool, page, to); });
          break;
        }
      }
      w.ops.fetch_add(1, std::memory_order_relaxed);
      done_work_.fetch_add(1, std::memory_order_relaxed);
      done_[e].store(1, std::memory_order_release);
    }
    if (stopped) cancel_.store(true);  // the others must not wait for our events
    end_barrier_->wait();
    // Cleanup: each thread frees the blocks it owns; thread 0 the shared ones.
    auto cleanup = [&](void *page) {
      labyrinth_owner o = 0;
      if (labyrinth_page_info(pool, page, &o, nullptr) != LABYRINTH_OK) return false;
      if (o == w.owner || (o == LABYRINTH_OWNER_NONE && idx == 0)) {
        drain_free(w, page);
        return true;
      }
      return false;
    };
    for (int64_t b = 0; b < spec_.nblocks; ++b)
      if (void *page = blocks_[b].load(std::memory_order_relaxed)) cleanup(page);
    for (void *page : leaked_) cleanup(page);
    finish_thread();
  }

  PoolRef ps_;
  Spec spec_;
  labyrinth_pool *pool_ = nullptr;
  std::unique_ptr<ActiveCall> active_;
  Timer timer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::thread sampler_;
  std::unique_ptr<Barrier> barrier_, end_barrier_;
  std::atomic<bool> go_{false}, cancel_{false};
  std::atomic<uint64_t> done_work_{0};
  uint64_t total_work_ = 0;
  Clock::time_point t0_, t_end_, deadline_;
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned finished_ = 0;
  bool sampler_stop_ = false;
  bool started_ = false;
  std::atomic<bool> joined_{false};
  std::mutex join_mu_;
  std::vector<Sample> samples_;
  labyrinth_stats before_{}, after_{};
  // replay
  std::unique_ptr<std::atomic<uint8_t>[]> done_;
  std::vector<int64_t> prev_;
  std::vector<std::vector<size_t>> per_thread_;
  std::unique_ptr<std::atomic<void *>[]> blocks_;
  std::vector<void *> leaked_;
};

}  // namespace

void register_workload(py::module_ &m) {
  py::class_<Run>(m, "Run", R"doc(
A workload run in C++ (used by labyrinth.workload; not meant to be used
directly). Run(pool, spec_dict); start(); wait(timeout) -> bool (GIL
released); progress() -> (fraction, ops, elapsed_s); cancel(); result().)doc")
      .def(py::init([](py::object pool, const py::dict &spec) {
             PoolRef ps = pool_ref(pool);
             open_pool(ps);
             return new Run(ps, parse_spec(spec));
           }),
           py::arg("pool"), py::arg("spec"))
      .def("start", &Run::start)
      .def("wait", &Run::wait, py::arg("timeout") = -1.0)
      .def("cancel", &Run::cancel)
      .def("progress", &Run::progress)
      .def("result", &Run::result);
  m.attr("HIST_SUB_BUCKET_BITS") = Hist::kSubBits;
  m.def(
      "_hist_bucket",
      [](uint64_t v) {
        size_t i = Hist::index(v);
        uint64_t lo = Hist::lower(i);
        uint64_t hi = i + 1 < Hist::kBuckets ? Hist::lower(i + 1) : ~0ull;
        return py::make_tuple(lo, hi - lo);
      },
      py::arg("value"), "(lower bound, width) of the histogram bucket of a value (for tests).");
}

}  // namespace labpy
