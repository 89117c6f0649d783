// workload_run.hpp - one workload run (labyrinth._core.Run): its worker
// threads, the sampler thread and what they record.
//
// Python drives it: run = _core.Run(pool, spec); run.start(); run.wait(t);
// run.result(). Workers call the public C ABI without the GIL; the Run's
// lifecycle (workload_run.cpp) starts, samples, joins and reports them; the
// workers' loops are in workload_threads.cpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "workload_measure.hpp"
#include "workload_spec.hpp"

namespace labpy::workload {

struct Held {
  uint64_t expiry;
  void *page;
  uint32_t order;
  bool operator>(const Held &o) const { return expiry > o.expiry; }
};

// The blocks a synthetic worker holds, the soonest to expire on top.
using HeldQueue = std::priority_queue<Held, std::vector<Held>, std::greater<Held>>;

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
  ~Run();
  void start();
  // Wait for the end (GIL released). True when the run has ended.
  bool wait(double timeout_s);
  void cancel() { cancel_.store(true); }
  // (fraction done, operations, elapsed seconds)
  py::tuple progress() const;
  // Everything measured; raises Busy before the run has ended.
  py::dict result();

 private:
  labyrinth_stats read_stats() const;
  py::dict samples_dict() const;
  double elapsed() const;
  bool should_stop() const {
    if (cancel_.load(std::memory_order_relaxed)) return true;
    return spec_.duration_s > 0 && Clock::now() >= deadline_;
  }
  void join_all();
  void take_sample();
  void sampler_thread();
  void finish_thread();

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

  // workload_threads.cpp
  void synthetic_thread(unsigned idx);
  void synthetic_burst(Worker &w, unsigned idx, Rng &rng, const double *cdf, uint64_t step,
                       HeldQueue &held);
  bool hand_over_to(Worker &w, Worker &dst, const Held &h);
  void free_held(Worker &w, const Held &h);
  void replay_thread(unsigned idx);
  void replay_event(Worker &w, size_t e);
  void replay_cleanup(Worker &w, unsigned idx);
  void drain_free(Worker &w, void *page);

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

}  // namespace labpy::workload
