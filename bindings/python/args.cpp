// args.cpp - argument checks at the Python boundary. Every public method
// takes its arguments as Python objects and converts them here, so a wrong
// type raises TypeError and an out-of-range value InvalidArgument, each
// naming the argument and what was given (never a pybind11 cast error or a
// signature dump).
#include <cmath>
#include <cstdint>
#include <string>

#include "binding.hpp"

namespace labpy {

namespace {

std::string type_name(py::handle v) { return Py_TYPE(v.ptr())->tp_name; }

[[noreturn]] void raise_type(const char *what, const char *expected, py::handle v) {
  throw py::type_error(std::string(what) + " must be " + expected + ", got " + type_name(v));
}

[[noreturn]] void raise_range(const char *what, const std::string &range, py::handle v) {
  raise_status(LABYRINTH_ERR_INVALID,
               std::string(what) + " must be " + range + ", got " + py::str(v).cast<std::string>());
}

// v as a Python int (an int or anything with __index__, not a bool).
py::int_ as_index(py::handle v, const char *what) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr())) raise_type(what, "an int", v);
  return py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
}

}  // namespace

long long int_arg(py::handle v, const char *what, long long lo, long long hi) {
  py::int_ n = as_index(v, what);
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
  if (overflow != 0 || x < lo || x > hi)
    raise_range(what, std::to_string(lo) + ".." + std::to_string(hi), v);
  return x;
}

unsigned long long uint_arg(py::handle v, const char *what, unsigned long long hi) {
  py::int_ n = as_index(v, what);
  const unsigned long long x = PyLong_AsUnsignedLongLong(n.ptr());
  if (PyErr_Occurred()) {  // negative or past 64 bits
    PyErr_Clear();
    raise_range(what, "0.." + std::to_string(hi), v);
  }
  if (x > hi) raise_range(what, "0.." + std::to_string(hi), v);
  return x;
}

bool bool_arg(py::handle v, const char *what) {
  if (PyBool_Check(v.ptr())) return v.ptr() == Py_True;
  const std::string type = type_name(v);
  if (type == "numpy.bool" || type == "numpy.bool_") return PyObject_IsTrue(v.ptr()) == 1;
  if (PyLong_CheckExact(v.ptr())) {  // 0 and 1 as C callers write them
    const long x = PyLong_AsLong(v.ptr());
    if (x == 0 || x == 1) return x == 1;
    PyErr_Clear();
  }
  raise_type(what, "True or False", v);
}

double seconds_arg(py::handle v, const char *what) {
  if (PyBool_Check(v.ptr()) || !(PyFloat_Check(v.ptr()) || PyIndex_Check(v.ptr())))
    raise_type(what, "None or a number of seconds", v);
  const double t = PyFloat_AsDouble(v.ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  if (!(t >= 0) || std::isinf(t)) raise_range(what, "None or a finite number of seconds >= 0", v);
  return t;
}

std::uint32_t pin_flags(py::handle pin) {
  if (pin.ptr() == Py_True) return LABYRINTH_POOL_PIN;
  if (pin.ptr() == Py_False) return 0;
  if (PyUnicode_Check(pin.ptr())) {
    if (pin.cast<std::string>() == "auto") return LABYRINTH_POOL_PIN_BEST_EFFORT;
    raise_range("pin", "\"auto\", True or False", py::repr(pin));
  }
  raise_type("pin", "\"auto\", True or False", pin);
}

}  // namespace labpy

namespace labpy {

labyrinth_pool_options pool_options(py::handle size_bytes, const py::dict &kw) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = static_cast<size_t>(uint_arg(size_bytes, "size_bytes", SIZE_MAX));
  // The Python Pool passes every keyword; None keeps the library's default.
  auto given = [&kw](const char *key) -> py::object {
    return kw.contains(key) ? py::object(kw[key]) : py::object(py::none());
  };
  auto size_opt = [&](const char *key, size_t *field) {
    py::object v = given(key);
    if (!v.is_none()) *field = static_cast<size_t>(uint_arg(v, key, SIZE_MAX - 1));
  };
  auto u32_opt = [&](const char *key, uint32_t *field) {
    py::object v = given(key);
    if (!v.is_none()) *field = static_cast<uint32_t>(uint_arg(v, key, UINT32_MAX));
  };
  auto flag = [&](const char *key, bool dflt, uint32_t bit, bool when) {
    py::object v = given(key);
    const bool on = v.is_none() ? dflt : bool_arg(v, key);
    return on == when ? bit : 0u;
  };
  size_opt("atomic_reserve_pages", &o.atomic_reserve_pages);
  py::object pin = given("pin");
  o.flags = (pin.is_none() ? LABYRINTH_POOL_PIN_BEST_EFFORT : pin_flags(pin)) |
            flag("hugepages", true, LABYRINTH_POOL_HUGEPAGES, true) |
            flag("scrub", false, LABYRINTH_POOL_SCRUB, true) |
            flag("guard", false, LABYRINTH_POOL_GUARD, true) |
            flag("poison", false, LABYRINTH_POOL_POISON, true) |
            flag("pkeys", false, LABYRINTH_POOL_PKEYS, true) |
            flag("reclaim", true, LABYRINTH_POOL_NO_RECLAIM, false);
  py::object node = given("numa_node");
  if (!node.is_none()) o.numa_node = static_cast<int>(int_arg(node, "numa_node", -1, 1023));
  size_opt("watermark_min_pages", &o.watermark_min_pages);
  size_opt("watermark_low_pages", &o.watermark_low_pages);
  size_opt("watermark_high_pages", &o.watermark_high_pages);
  u32_opt("max_thread_caches", &o.max_thread_caches);
  u32_opt("thread_cache_pages", &o.thread_cache_pages);
  u32_opt("thread_cache_batch", &o.thread_cache_batch);
  return o;
}

}  // namespace labpy
