#include "binding.hpp"
namespace labpy { void register_workload(py::module_ &) {} }
