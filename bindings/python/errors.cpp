// errors.cpp - C statuses as the exceptions of labyrinth.errors.
//
// The exception classes are defined in Python (labyrinth/errors.py); this
// file looks them up once at import and raises them with the C message.
#include "binding.hpp"

#include <vector>

namespace labpy {

namespace {

// labyrinth.errors classes by status (index = status); leaked on purpose:
// they live as long as the interpreter.
std::vector<PyObject *> g_errors;
PyObject *g_base_error = nullptr;
PyObject *g_memlock_error = nullptr;

PyObject *error_class(labyrinth_status status) {
  auto i = static_cast<size_t>(status);
  if (i < g_errors.size() && g_errors[i]) return g_errors[i];
  return g_base_error ? g_base_error : PyExc_RuntimeError;
}

}  // namespace

[[noreturn]] void raise_status(labyrinth_status status, const std::string &msg) {
  PyObject *cls = error_class(status);
  py::object inst = py::reinterpret_borrow<py::object>(cls)(msg, static_cast<int>(status));
  PyErr_SetObject(cls, inst.ptr());
  throw py::error_already_set();
}

[[noreturn]] void raise_last(labyrinth_status status) {
  // Copy at once: the C string is valid until this thread's next call.
  std::string msg = labyrinth_last_error_message();
  if (msg.empty()) msg = labyrinth_status_name(status);
  raise_status(status, msg);
}

[[noreturn]] void raise_memlock(const std::string &core_msg, const std::string &python_fix) {
  // The core's reason (up to its C advice) and the fix in Python's terms.
  const std::string msg = core_msg.substr(0, core_msg.find(';')) + "; " + python_fix;
  py::object inst = py::reinterpret_borrow<py::object>(g_memlock_error)(msg, int(LABYRINTH_ERR_NOMEM));
  PyErr_SetObject(g_memlock_error, inst.ptr());
  throw py::error_already_set();
}

void load_error_classes() {
  py::module_ errors = py::module_::import("labyrinth.errors");
  g_base_error = errors.attr("LabyrinthError").ptr();
  Py_INCREF(g_base_error);
  g_memlock_error = errors.attr("MemlockLimitError").ptr();
  Py_INCREF(g_memlock_error);
  py::object by_status = errors.attr("error_class");
  g_errors.assign(LABYRINTH_STATUS_COUNT, nullptr);
  for (int i = 1; i < LABYRINTH_STATUS_COUNT; ++i) {
    py::object cls = by_status(i);
    g_errors[i] = cls.release().ptr();
  }
}

}  // namespace labpy
