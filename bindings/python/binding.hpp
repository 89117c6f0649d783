// binding.hpp - shared pieces of the labyrinth._core extension.
//
// Object model (all of it protected by the GIL):
//   PoolState  one per labyrinth_pool; shared by the Pool object, its Page
//              objects, its rings and running workloads (std::shared_ptr),
//              so the arena outlives everything that can reach it.
//   PageObj    one allocated block, the `labyrinth.Page` Python type.
//              Registered in PoolState::live by address while allocated.
//
// Everything here runs with the GIL held unless a comment says otherwise.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "labyrinth/labyrinth.h"

namespace py = pybind11;

namespace labpy {

struct PageObj;

struct PoolState {
  labyrinth_pool *pool = nullptr;  // NULL once closed
  uintptr_t base = 0;
  size_t size_bytes = 0;
  // Calls that run without the GIL (WAIT allocations, workload runs, ring
  // waits): close() is refused while any is in progress.
  std::atomic<int> active{0};
  long exports = 0;       // live buffer exports over all pages of the pool
  long rings = 0;         // open managed rings
  std::unordered_map<uintptr_t, PageObj *> live;  // Page objects by address
  bool closed() const { return pool == nullptr; }
  ~PoolState();
};
using PoolRef = std::shared_ptr<PoolState>;

struct PageObj {
  PoolRef ps;
  void *ptr = nullptr;
  unsigned order = 0;
  bool live = false;  // allocated, not freed through the binding, pool open
  long exports = 0;   // live buffer exports (memoryview, numpy, ...)
  // Set by a managed ring while the kernel holds the page: the ring keeps a
  // reference to the Python object so it cannot be collected meanwhile.
  bool inflight = false;
  PageObj(PoolRef p, void *addr, unsigned ord);
  ~PageObj();
  size_t size() const { return size_t(LABYRINTH_PAGE_SIZE) << order; }
  uintptr_t address() const { return reinterpret_cast<uintptr_t>(ptr); }
};

// Raise the labyrinth exception for `status` (labyrinth.errors) with msg.
[[noreturn]] void raise_status(labyrinth_status status, const std::string &msg);
// Raise for the calling thread's last failed Labyrinth call.
[[noreturn]] void raise_last(labyrinth_status status);
// Raise for a C status, taking the message from the thread's last error.
inline void check(labyrinth_status status) {
  if (status != LABYRINTH_OK) raise_last(status);
}
// Argument checks (args.cpp): `what` names the argument in the message.
// An int (or __index__) in [lo, hi]; TypeError otherwise (bool included),
// InvalidArgument out of range.
long long int_arg(py::handle v, const char *what, long long lo, long long hi);
// An int in [0, hi] (up to 2**64 - 1), checked the same way.
unsigned long long uint_arg(py::handle v, const char *what, unsigned long long hi);
// True/False (numpy bools, 0 and 1 too); TypeError otherwise.
bool bool_arg(py::handle v, const char *what);
// A finite number of seconds >= 0 (not None); TypeError or InvalidArgument.
double seconds_arg(py::handle v, const char *what);
// Pool(pin=...): "auto" (PIN_BEST_EFFORT), True (PIN) or False (neither).
std::uint32_t pin_flags(py::handle pin);
// labyrinth_pool_options from Pool(size_bytes, **kw) (kw: the Python Pool's
// keywords; a missing or None one keeps the library's default).
labyrinth_pool_options pool_options(py::handle size_bytes, const py::dict &kw);
// Raise labyrinth.MemlockLimitError (the memlock limit refused to pin): the
// core's reason from core_msg, then python_fix (the remedy in Python terms).
[[noreturn]] void raise_memlock(const std::string &core_msg, const std::string &python_fix);

// The pool of a Pool object; raises InvalidArgument if it is closed.
labyrinth_pool *open_pool(const PoolRef &ps);

// Increments PoolState::active for a call that releases the GIL.
class ActiveCall {
 public:
  explicit ActiveCall(const PoolRef &ps) : ps_(ps) { ps_->active.fetch_add(1); }
  ~ActiveCall() { ps_->active.fetch_sub(1); }
  ActiveCall(const ActiveCall &) = delete;
  ActiveCall &operator=(const ActiveCall &) = delete;

 private:
  PoolRef ps_;
};

// A Page object for a block the calling thread was just handed.
py::object make_page(const PoolRef &ps, void *ptr, unsigned order);
// The PoolRef of a labyrinth._core.Pool object.
PoolRef pool_ref(py::handle pool);

// Give a Page's block back to its pool (Page.free); raises as Page.free
// documents and changes nothing then.
void page_free(PageObj &p);

// Look up labyrinth.errors' classes (once, at import; errors.cpp).
void load_error_classes();

// Each adds one Python type to the module.
void register_page(py::module_ &m);
void register_pool(py::module_ &m);
void register_workload(py::module_ &m);
void register_ring(py::module_ &m);

}  // namespace labpy
