// workload.cpp - labyrinth._core.Run, the workload runner of
// labyrinth.workload, in C++.
//
// Runs a described (synthetic) workload or replays a trace on N threads
// against a pool through the public C ABI, without the GIL, and measures:
// latency of every call (HDR-style histogram, see Hist), throughput, failures
// by status, and the pool's state (fragmentation, reserve) sampled over time
// by a separate thread. Where each part is:
//   workload_spec.*     the spec (what to run) and the random draws
//   workload_measure.*  the clock and the histogram
//   workload_run.*      a run's lifecycle: start, sample, join, report
//   workload_threads.cpp  the workers' loops (synthetic, replay)
#include "workload_run.hpp"

namespace labpy {

using workload::Hist;
using workload::Run;

void register_workload(py::module_ &m) {
  py::class_<Run>(m, "Run", R"doc(
A workload run in C++ (used by labyrinth.workload; not meant to be used
directly). Run(pool, spec_dict); start(); wait(timeout) -> bool (GIL
released); progress() -> (fraction, ops, elapsed_s); cancel(); result().)doc")
      .def(py::init([](py::object pool, const py::dict &spec) {
             PoolRef ps = pool_ref(pool);
             open_pool(ps);
             return new Run(ps, workload::parse_spec(spec));
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
