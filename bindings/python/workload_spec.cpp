// workload_spec.cpp - a workload spec dict checked and turned into a Spec.
#include "workload_spec.hpp"

#include <algorithm>
#include <iterator>
#include <string>

namespace labpy::workload {
namespace {

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

std::vector<int64_t> int64_column(const py::object &o, const char *name) {
  py::buffer b = o.cast<py::buffer>();
  py::buffer_info info = b.request();
  if (info.ndim != 1 || info.itemsize != 8 || (info.format != "q" && info.format != "l"))
    raise_status(LABYRINTH_ERR_INVALID, std::string("trace column '") + name +
                                            "' must be a 1-d buffer of int64 (array('q'))");
  auto *p = static_cast<const int64_t *>(info.ptr);
  return std::vector<int64_t>(p, p + info.shape[0]);
}

[[noreturn]] void bad(const std::string &why) { raise_status(LABYRINTH_ERR_INVALID, why); }

// A replay: the trace's event columns, each event checked.
void parse_replay(const py::dict &d, Spec &s) {
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
}

// A synthetic run: its seed, orders, distributions and shares.
void parse_synthetic(const py::dict &d, Spec &s) {
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
}

}  // namespace

Spec parse_spec(const py::dict &d) {
  Spec s;
  s.threads = d["threads"].cast<unsigned>();
  if (s.threads < 1 || s.threads > 1024) bad("threads must be 1..1024");
  if (d.contains("duration_s") && !d["duration_s"].is_none()) s.duration_s = d["duration_s"].cast<double>();
  if (d.contains("sample_interval_s")) s.sample_interval_s = d["sample_interval_s"].cast<double>();
  if (!(s.sample_interval_s >= 0.001)) bad("sample_interval_s must be >= 0.001");
  if (d.contains("latency_every")) s.latency_every = d["latency_every"].cast<uint64_t>();
  if (s.latency_every < 1) bad("latency_every must be >= 1");
  if (d.contains("touch")) s.touch = d["touch"].cast<bool>();
  if (d.contains("kind") && d["kind"].cast<std::string>() == "replay")
    parse_replay(d, s);
  else
    parse_synthetic(d, s);
  return s;
}

}  // namespace labpy::workload
