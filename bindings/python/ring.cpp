#include "binding.hpp"
namespace labpy { void register_ring(py::module_ &) {} }
