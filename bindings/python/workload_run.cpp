// workload_run.cpp - a workload run's lifecycle: start the workers and the
// sampler, wait for and join them, report what they measured.
#include "workload_run.hpp"

#include <pybind11/stl.h>

#include <cstring>

namespace labpy::workload {
namespace {

py::dict stats_dict(const labyrinth_stats &s) {
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

}  // namespace

Run::~Run() {
  if (started_ && !joined_.load()) {
    cancel_.store(true);
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> l(join_mu_);
    if (!joined_.load()) join_all();
  }
}

void Run::start() {
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

bool Run::wait(double timeout_s) {
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

py::tuple Run::progress() const {
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

py::dict Run::result() {
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
  r["samples"] = samples_dict();
  return r;
}

// The sampler's readings, one list per field.
py::dict Run::samples_dict() const {
  py::dict smp;
  std::vector<double> t;
  std::vector<uint64_t> ops, freep, cached, reserve, alloc, ruses, depot_free;
  std::vector<std::vector<uint64_t>> fb;
  for (auto &s : samples_) {
    t.push_back(s.t);
    ops.push_back(s.ops);
    freep.push_back(s.st.free_pages);
    cached.push_back(s.st.cached_pages);
    reserve.push_back(s.st.reserve_pages);
    alloc.push_back(s.st.allocated_pages);
    ruses.push_back(s.st.reserve_uses - before_.reserve_uses);
    depot_free.push_back(s.st.shared_free_pages);
    fb.emplace_back(std::begin(s.st.free_blocks), std::end(s.st.free_blocks));
  }
  smp["t"] = t;
  smp["ops"] = ops;
  smp["free_pages"] = freep;
  smp["cached_pages"] = cached;
  smp["reserve_pages"] = reserve;
  smp["allocated_pages"] = alloc;
  smp["shared_free_pages"] = depot_free;
  smp["reserve_uses"] = ruses;
  smp["free_blocks"] = fb;
  return smp;
}

labyrinth_stats Run::read_stats() const {
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  labyrinth_pool_stats(pool_, &s);
  return s;
}

double Run::elapsed() const {
  if (!go_.load()) return 0;
  auto end = joined_ ? t_end_ : Clock::now();
  return std::chrono::duration<double>(end - t0_).count();
}

void Run::join_all() {
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


void Run::take_sample() {
  Sample s;
  s.t = std::chrono::duration<double>(Clock::now() - t0_).count();
  s.ops = 0;
  for (auto &w : workers_) s.ops += w->ops.load(std::memory_order_relaxed);
  s.st = read_stats();
  samples_.push_back(s);
}


void Run::sampler_thread() {
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


void Run::finish_thread() {
  std::lock_guard<std::mutex> l(mu_);
  ++finished_;
  cv_.notify_all();
}

}  // namespace labpy::workload
