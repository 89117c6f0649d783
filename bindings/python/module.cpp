// module.cpp - labyrinth._core: the module's constants and owner ids, and
// the types each defined in its own file.
//
// A thin layer over the public C ABI (labyrinth.h). Where each part is:
//   page.cpp      Page objects (buffer protocol, freed when collected)
//   pool.cpp      Pool objects (create, alloc, stats, close)
//   errors.cpp    C statuses as the exceptions of labyrinth.errors
//   args.cpp      argument checks and Pool options
//   workload_*.cpp  the workload runner (Run); ring.cpp the managed ring
#include "binding.hpp"

#ifndef LABYRINTH_VERSION_STRING
#define LABYRINTH_VERSION_STRING "0.0.0"
#endif

using namespace labpy;

PYBIND11_MODULE(_core, m) {
  m.doc() = "labyrinth._core: the compiled part of the Labyrinth Python SDK (see labyrinth).";
  m.attr("__version__") = LABYRINTH_VERSION_STRING;
  m.attr("PAGE_SIZE") = LABYRINTH_PAGE_SIZE;
  m.attr("MAX_ORDER") = LABYRINTH_MAX_ORDER;
  m.attr("OWNER_NONE") = py::int_(LABYRINTH_OWNER_NONE);
  m.attr("OWNER_MAX") = py::int_(LABYRINTH_OWNER_MAX);
  m.attr("STATUS_COUNT") = LABYRINTH_STATUS_COUNT;
  m.attr("TIMEOUT_INFINITE") = py::int_(LABYRINTH_TIMEOUT_INFINITE);
  m.attr("GFP_ATOMIC") = LABYRINTH_GFP_ATOMIC;
  m.attr("GFP_WAIT") = LABYRINTH_GFP_WAIT;
  m.attr("GFP_ZERO") = LABYRINTH_GFP_ZERO;
  m.attr("GFP_EXCLUSIVE") = LABYRINTH_GFP_EXCLUSIVE;

  load_error_classes();  // the exception classes live in Python (labyrinth/errors.py)

  m.def("owner_self", &labyrinth_owner_self,
        "The calling thread's owner id (never reused in this process). Never blocks.");
  m.def("abi_version", &labyrinth_abi_version, "LABYRINTH_ABI_VERSION of the loaded core.");
  m.def("status_name", [](int s) { return std::string(labyrinth_status_name(static_cast<labyrinth_status>(s))); },
        py::arg("status"));

  register_page(m);
  register_pool(m);
  register_workload(m);
  register_ring(m);
}
