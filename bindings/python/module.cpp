// module.cpp - labyrinth._core: Pool, Page, owner ids, errors, stats.
//
// A thin layer over the public C ABI (labyrinth.h). What it adds:
//  * Page objects that free themselves when collected and expose their
//    memory through the buffer protocol, without a copy;
//  * a freed page's memory can never be reached from Python: free() and
//    Pool.close() are refused with Busy while buffer exports of the page are
//    alive, and a freed or closed Page refuses new exports;
//  * C statuses become the exceptions of labyrinth.errors, with the C message;
//  * the GIL is released around calls that may sleep (WAIT allocations, pool
//    creation, workload runs, ring waits).
#include <pybind11/stl.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "binding.hpp"
#include "internal_api.hpp"

#ifndef LABYRINTH_VERSION_STRING
#define LABYRINTH_VERSION_STRING "0.0.0"
#endif

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

labyrinth_pool *open_pool(const PoolRef &ps) {
  if (ps->closed()) raise_status(LABYRINTH_ERR_INVALID, "the pool is closed");
  return ps->pool;
}

PoolState::~PoolState() {
  if (!pool) return;
  // Nothing in Python can reach the arena any more (every Page, ring and run
  // holds this state), so blocks still allocated (pages handed to threads
  // that never freed them) cannot be used after the unmap.
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK)
    labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE);
  pool = nullptr;
}

PageObj::PageObj(PoolRef p, void *addr, unsigned ord)
    : ps(std::move(p)), ptr(addr), order(ord), live(true) {}

PageObj::~PageObj() {
  if (!live || ps->closed()) return;
  auto it = ps->live.find(address());
  if (it != ps->live.end() && it->second == this) ps->live.erase(it);
  // Collected while allocated: give the block back, like a C++ Page going
  // out of scope. That fails if another thread owns it now (transferred) or
  // the kernel holds it: then it stays allocated, and we say so.
  labyrinth_status st = labyrinth_free_pages(ps->pool, ptr);
  if (st == LABYRINTH_OK) return;
  std::string msg = labyrinth_last_error_message();
  PyObject *et, *ev, *tb;
  PyErr_Fetch(&et, &ev, &tb);
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%zx", static_cast<size_t>(address()));
  std::string text = std::string("labyrinth.Page at ") + addr +
                     " collected while allocated and could not be freed (" +
                     labyrinth_status_name(st) + ": " + msg +
                     "); it stays allocated (its owner can free it with Pool.free_address)";
  if (PyErr_WarnEx(PyExc_ResourceWarning, text.c_str(), 1) < 0)
    PyErr_WriteUnraisable(nullptr);
  PyErr_Restore(et, ev, tb);
}

py::object make_page(const PoolRef &ps, void *ptr, unsigned order) {
  auto addr = reinterpret_cast<uintptr_t>(ptr);
  auto it = ps->live.find(addr);
  if (it != ps->live.end()) {
    // The core handed out a block a live Page object still holds. Never
    // expected; reported loudly rather than papered over.
    raise_status(LABYRINTH_ERR_SYSTEM,
                 "internal error: the allocator returned a block that is already allocated "
                 "(a live Page object holds it)");
  }
  auto *p = new PageObj(ps, ptr, order);
  ps->live.emplace(addr, p);
  return py::cast(p, py::return_value_policy::take_ownership);
}

namespace {

struct PoolPy {
  PoolRef ps;
};

}  // namespace

PoolRef pool_ref(py::handle pool) {
  if (!py::isinstance<PoolPy>(pool))
    throw py::type_error(std::string("pool must be a labyrinth.Pool, got ") + Py_TYPE(pool.ptr())->tp_name);
  return pool.cast<PoolPy &>().ps;
}

namespace {

// ---------------------------------------------------------------- Page

void page_check_usable(const PageObj &p, const char *what) {
  if (p.ps->closed())
    raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the page's pool is closed");
  if (!p.live)
    raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the page was freed");
}

void page_free(PageObj &p) {
  if (p.ps->closed())
    raise_status(LABYRINTH_ERR_INVALID, "cannot free: the page's pool is closed (its memory is gone)");
  if (!p.live)
    raise_status(LABYRINTH_ERR_DOUBLE_FREE,
                 "page at 0x" + [&] {
                   char b[32];
                   std::snprintf(b, sizeof b, "%zx", static_cast<size_t>(p.address()));
                   return std::string(b);
                 }() + " was already freed through this Page object");
  if (p.exports > 0)
    raise_status(LABYRINTH_ERR_BUSY,
                 "cannot free the page: " + std::to_string(p.exports) +
                     " buffer export(s) of it are alive (memoryview, numpy array, ...); "
                     "release them first (memoryview.release(), del the array)");
  // The Page knows its order: the library checks it too (and takes its
  // faster path for blocks).
  check(labyrinth_free_pages_order(p.ps->pool, p.ptr, p.order));
  p.live = false;
  auto it = p.ps->live.find(p.address());
  if (it != p.ps->live.end() && it->second == &p) p.ps->live.erase(it);
}

int page_getbuffer(PyObject *obj, Py_buffer *view, int flags) {
  try {
    auto &p = py::handle(obj).cast<PageObj &>();
    page_check_usable(p, "export the page's memory");
    if (PyBuffer_FillInfo(view, obj, p.ptr, static_cast<Py_ssize_t>(p.size()), 0, flags) < 0)
      return -1;
    ++p.exports;
    ++p.ps->exports;
    return 0;
  } catch (py::error_already_set &e) {
    e.restore();
  } catch (std::exception &e) {
    PyErr_SetString(PyExc_BufferError, e.what());
  }
  view->obj = nullptr;
  return -1;
}

void page_releasebuffer(PyObject *obj, Py_buffer *) {
  // view->obj holds a reference, so the Page is alive here.
  PageObj *p = nullptr;
  try {
    p = &py::handle(obj).cast<PageObj &>();
  } catch (...) {
    PyErr_Clear();
    return;
  }
  --p->exports;
  --p->ps->exports;
}

std::string hex(uintptr_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%zx", static_cast<size_t>(v));
  return b;
}

// ---------------------------------------------------------------- Pool

PoolPy *pool_new(const py::object &size_bytes, const py::dict &kw) {
  labyrinth_pool_options o = pool_options(size_bytes, kw);
  labyrinth_pool *pool = nullptr;
  labyrinth_status st;
  std::string msg;
  {
    // Reserving and pinning a large arena takes a while: let other threads run.
    py::gil_scoped_release nogil;
    st = labyrinth_pool_create(&o, &pool);
    if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
  }
  // Strict pinning refused by the memlock limit: its own class, Python's fix.
  if (st == LABYRINTH_ERR_NOMEM && (o.flags & LABYRINTH_POOL_PIN) &&
      msg.find("RLIMIT_MEMLOCK") != std::string::npos)
    raise_memlock(msg, "pass pin=\"auto\" (the default: pin when the limit allows, else run "
                       "unpinned) or pin=False, or raise the limit (ulimit -l)");
  if (st != LABYRINTH_OK) raise_status(st, msg);
  auto ps = std::make_shared<PoolState>();
  ps->pool = pool;
  void *base = nullptr;
  size_t size = 0;
  labyrinth_pool_arena(pool, &base, &size);
  ps->base = reinterpret_cast<uintptr_t>(base);
  ps->size_bytes = size;
  return new PoolPy{std::move(ps)};
}

uint32_t timeout_ms(const py::object &timeout) {
  if (timeout.is_none()) return LABYRINTH_TIMEOUT_INFINITE;
  const double t = seconds_arg(timeout, "timeout");
  double ms = std::ceil(t * 1000.0);
  if (ms >= double(LABYRINTH_TIMEOUT_INFINITE)) return LABYRINTH_TIMEOUT_INFINITE - 1;
  return static_cast<uint32_t>(ms);
}

py::object pool_alloc(PoolPy &self, const py::object &order_arg, const py::object &atomic,
                      const py::object &wait_arg, const py::object &zero,
                      const py::object &exclusive, const py::object &timeout) {
  labyrinth_pool *pool = open_pool(self.ps);
  const long long order = int_arg(order_arg, "order", 0, LABYRINTH_MAX_ORDER);
  const bool wait = bool_arg(wait_arg, "wait");
  labyrinth_gfp gfp = 0;
  if (bool_arg(atomic, "atomic")) gfp |= LABYRINTH_GFP_ATOMIC;
  if (wait) gfp |= LABYRINTH_GFP_WAIT;
  if (bool_arg(zero, "zero")) gfp |= LABYRINTH_GFP_ZERO;
  if (bool_arg(exclusive, "exclusive")) gfp |= LABYRINTH_GFP_EXCLUSIVE;
  uint32_t tmo = wait ? timeout_ms(timeout) : 0;
  void *page = nullptr;
  labyrinth_status st;
  if (wait) {
    // May sleep until another thread frees a page: that thread may need the GIL.
    ActiveCall active(self.ps);
    std::string msg;
    {
      py::gil_scoped_release nogil;
      st = labyrinth_alloc_pages(pool, static_cast<unsigned>(order), gfp, tmo, &page);
      if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
    }
    if (st != LABYRINTH_OK) raise_status(st, msg);
  } else {
    st = labyrinth_alloc_pages(pool, static_cast<unsigned>(order), gfp, tmo, &page);
    if (st != LABYRINTH_OK) raise_last(st);
  }
  return make_page(self.ps, page, static_cast<unsigned>(order));
}

py::object pool_alloc_page(PoolPy &self) {
  labyrinth_pool *pool = open_pool(self.ps);
  void *page = labyrinth_alloc_page_inline(pool);
  if (!page) raise_last(labyrinth_last_status());
  return make_page(self.ps, page, 0);
}

py::dict pool_stats(PoolPy &self) {
  labyrinth_pool *pool = open_pool(self.ps);
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  check(labyrinth_pool_stats(pool, &s));
  py::dict d;
  d["total_pages"] = s.total_pages;
  d["free_pages"] = s.free_pages;
  d["reserve_pages"] = s.reserve_pages;
  d["reserve_target"] = s.reserve_target;
  d["cached_pages"] = s.cached_pages;
  d["allocated_pages"] = s.allocated_pages;
  d["inflight_pages"] = s.inflight_pages;
  d["orphaned_pages"] = s.orphaned_pages;
  py::tuple fb(LABYRINTH_MAX_ORDER + 1);
  for (int i = 0; i <= LABYRINTH_MAX_ORDER; ++i) fb[i] = py::int_(s.free_blocks[i]);
  d["free_blocks"] = fb;
  d["shared_free_pages"] = s.shared_free_pages;
  d["reserve_uses"] = s.reserve_uses;
  py::tuple fl(LABYRINTH_STATUS_COUNT);
  for (int i = 0; i < LABYRINTH_STATUS_COUNT; ++i) fl[i] = py::int_(s.failures[i]);
  d["failures"] = fl;
  d["waits"] = s.waits;
  d["timeouts"] = s.timeouts;
  d["refills"] = s.refills;
  d["drains"] = s.drains;
  d["pressure_events"] = s.pressure_events;
  d["watermark_min"] = s.watermark_min;
  d["watermark_low"] = s.watermark_low;
  d["watermark_high"] = s.watermark_high;
  d["thread_caches_in_use"] = s.thread_caches_in_use;
  d["metadata_bytes"] = s.metadata_bytes;
  d["flags"] = s.flags;
  d["huge_pages"] = s.huge_pages;
  d["cache_reclaims"] = s.cache_reclaims;
  d["reclaimed_pages"] = s.reclaimed_pages;
  return d;
}

void pool_close(PoolPy &self, bool force) {
  auto &ps = *self.ps;
  if (ps.closed()) return;
  if (int n = ps.active.load(); n > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(n) +
                                         " call(s) on it are running in other threads "
                                         "(WAIT allocations, workload runs, ring waits)");
  if (ps.rings > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(ps.rings) +
                                         " ring(s) on it are open; close them first");
  if (ps.exports > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(ps.exports) +
                                         " buffer export(s) of its pages are alive "
                                         "(memoryview, numpy array, ...); release them first");
  check(labyrinth_pool_destroy_ex(ps.pool, force ? LABYRINTH_DESTROY_FORCE : 0));
  ps.pool = nullptr;
  for (auto &kv : ps.live) kv.second->live = false;
  ps.live.clear();
}

uintptr_t addr_arg(const py::object &a) {
  // Accept an int or a Page.
  if (py::isinstance<PageObj>(a)) return a.cast<PageObj &>().address();
  if (PyBool_Check(a.ptr()) || !PyIndex_Check(a.ptr()))
    throw py::type_error(std::string("address must be an int or a labyrinth.Page, got ") +
                         Py_TYPE(a.ptr())->tp_name);
  return static_cast<uintptr_t>(uint_arg(a, "address", UINTPTR_MAX));
}

void pool_free_address(PoolPy &self, const py::object &address, const py::object &order) {
  labyrinth_pool *pool = open_pool(self.ps);
  uintptr_t a = addr_arg(address);
  auto it = self.ps->live.find(a);
  if (!order.is_none()) {
    // A stated order is checked by the library, Page object or not.
    const long long o = int_arg(order, "order", 0, LABYRINTH_MAX_ORDER);
    // A Page of that order frees through the Page (buffer exports are
    // checked); anything else is the library's to free or refuse (a Page of
    // another order: refused, its block stays allocated).
    if (it == self.ps->live.end() || it->second->order != static_cast<unsigned>(o))
      return check(labyrinth_free_pages_order(pool, reinterpret_cast<void *>(a), static_cast<unsigned>(o)));
    return page_free(*it->second);
  }
  if (it != self.ps->live.end()) return page_free(*it->second);
  check(labyrinth_free_pages(pool, reinterpret_cast<void *>(a)));
}

}  // namespace

}  // namespace labpy

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

  // The exception classes live in Python (labyrinth/errors.py).
  {
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

  m.def("owner_self", &labyrinth_owner_self,
        "The calling thread's owner id (never reused in this process). Never blocks.");
  m.def("abi_version", &labyrinth_abi_version, "LABYRINTH_ABI_VERSION of the loaded core.");
  m.def("status_name", [](int s) { return std::string(labyrinth_status_name(static_cast<labyrinth_status>(s))); },
        py::arg("status"));

  py::class_<PageObj> page(m, "Page", py::buffer_protocol(), R"doc(
One allocated block of (1 << order) pages, from Pool.alloc_page() or Pool.alloc().

The buffer protocol exposes the block itself (writable, no copy):
memoryview(page) and numpy.frombuffer(page, dtype) see the pool's memory.
While such a view is alive, free() and Pool.close() raise Busy, so a view
can never read a block that was freed and handed to someone else.

A Page that is collected while still allocated frees its block (like a C++
RAII handle); if that fails (another thread owns it now) the block stays
allocated and a ResourceWarning says so.
)doc");
  // pybind11's own buffer slots cannot count exports: use ours.
  {
    auto *ht = reinterpret_cast<PyHeapTypeObject *>(page.ptr());
    ht->as_buffer.bf_getbuffer = page_getbuffer;
    ht->as_buffer.bf_releasebuffer = page_releasebuffer;
  }
  page.def_property_readonly("address", &PageObj::address, "The block's first byte, as an int.")
      .def_property_readonly("order", [](const PageObj &p) { return p.order; },
                             "log2 of the block's size in pages (0: one 4 KiB page).")
      .def_property_readonly("size", &PageObj::size, "The block's size in bytes.")
      .def("__len__", &PageObj::size)
      .def_property_readonly("freed", [](const PageObj &p) { return !p.live; },
                             "True once freed (or its pool closed).")
      .def_property_readonly("exports", [](const PageObj &p) { return p.exports; },
                             "Live buffer exports (memoryviews, arrays) of this page.")
      .def_property_readonly("in_flight", [](const PageObj &p) { return p.inflight; },
                             "True while a managed ring's kernel operation holds the page.")
      .def_property_readonly(
          "owner",
          [](const PageObj &p) {
            page_check_usable(p, "read the owner");
            labyrinth_owner o = 0;
            check(labyrinth_page_info(p.ps->pool, p.ptr, &o, nullptr));
            return o;
          },
          "The owner id of the block (OWNER_NONE, 0, if not exclusive). Never blocks.")
      .def("free", &page_free, R"doc(
Give the block back to its pool, stating its order
(labyrinth_free_pages_order). Only the owner thread may free an exclusive
block (NotOwner otherwise). Raises DoubleFree if this Page was already freed,
Busy while buffer exports are alive or the kernel holds the page. Never
blocks for an exclusive order-0 page.)doc")
      .def(
          "transfer",
          [](PageObj &p, const py::object &owner) {
            const labyrinth_owner o = uint_arg(owner, "owner", LABYRINTH_OWNER_MAX);
            page_check_usable(p, "transfer");
            check(labyrinth_page_transfer(p.ps->pool, p.ptr, o));
          },
          py::arg("owner"), R"doc(
Hand the exclusive block to another owner id (labyrinth.owner_self() of
the receiving thread). Only the current owner may (NotOwner otherwise);
InvalidArgument for a non-exclusive block or owner 0. Pass the Page to the
receiving thread through a queue or a lock. Never blocks.)doc")
      .def(
          "read",
          [](const PageObj &p, py::object size, const py::object &offset_arg) {
            page_check_usable(p, "read");
            const long long offset = int_arg(offset_arg, "offset", LLONG_MIN, LLONG_MAX);
            long long n = size.is_none() ? static_cast<long long>(p.size()) - offset
                                         : int_arg(size, "size", LLONG_MIN, LLONG_MAX);
            if (offset < 0 || n < 0 || static_cast<unsigned long long>(offset) + static_cast<unsigned long long>(n) > p.size())
              raise_status(LABYRINTH_ERR_INVALID, "read of " + std::to_string(n) + " bytes at offset " +
                                                      std::to_string(offset) + " does not fit the " +
                                                      std::to_string(p.size()) + "-byte block");
            return py::bytes(static_cast<const char *>(p.ptr) + offset, static_cast<size_t>(n));
          },
          py::arg("size") = py::none(), py::arg("offset") = 0,
          "Copy bytes out of the block (no export is kept).")
      .def(
          "write",
          [](PageObj &p, py::object data, const py::object &offset_arg) {
            page_check_usable(p, "write");
            const long long offset = int_arg(offset_arg, "offset", LLONG_MIN, LLONG_MAX);
            Py_buffer view;
            if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) < 0) throw py::error_already_set();
            size_t n = static_cast<size_t>(view.len);
            bool fits = offset >= 0 && static_cast<unsigned long long>(offset) + n <= p.size();
            if (fits) std::memmove(static_cast<char *>(p.ptr) + offset, view.buf, n);  // may overlap
            PyBuffer_Release(&view);
            if (!fits)
              raise_status(LABYRINTH_ERR_INVALID, "write of " + std::to_string(n) + " bytes at offset " +
                                                      std::to_string(offset) + " does not fit the " +
                                                      std::to_string(p.size()) + "-byte block");
            return n;
          },
          py::arg("data"), py::arg("offset") = 0,
          "Copy bytes into the block (no export is kept); returns the count. data: any contiguous buffer.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](PageObj &p, py::object exc_type, py::object, py::object) {
             if (!p.live || p.ps->closed()) return false;
             if (exc_type.is_none()) {
               page_free(p);
             } else {
               try {
                 page_free(p);
               } catch (py::error_already_set &) {
                 // Do not hide the exception that is leaving the block.
               }
             }
             return false;
           })
      .def("__repr__", [](const PageObj &p) {
        return std::string("<labyrinth.Page ") + hex(p.address()) + " order=" + std::to_string(p.order) +
               (p.live ? "" : " freed") + ">";
      });

  py::class_<PoolPy>(m, "Pool", R"doc(
A page pool: one arena of size_bytes and everything that manages it.
See labyrinth.Pool for the documentation of every argument.)doc")
      .def(py::init(&pool_new), py::arg("size_bytes"), py::arg("options") = py::dict())
      .def("alloc_page", &pool_alloc_page)
      .def("alloc", &pool_alloc, py::arg("order") = 0, py::kw_only(), py::arg("atomic") = true,
           py::arg("wait") = false, py::arg("zero") = false, py::arg("exclusive") = true,
           py::arg("timeout") = py::none())
      .def("_stats", &pool_stats)
      .def("trim", [](PoolPy &self) { check(labyrinth_pool_trim(open_pool(self.ps))); })
      .def("reclaim_orphans",
           [](PoolPy &self) {
             labyrinth_pool *pool = open_pool(self.ps);
             // An orphan may still have a Page object here (its thread exited
             // while Python held it). Reclaiming one whose memory is exported
             // (a view alive) would let the view see recycled memory: the
             // core refuses if any of those blocks is an orphan, and reclaims
             // nothing then.
             std::vector<const void *> exported;
             for (const auto &entry : self.ps->live)
               if (entry.second->exports > 0) exported.push_back(entry.second->ptr);
             size_t n = 0;
             labyrinth_status st = lab::pool_reclaim_orphans_unless_in_use(
                 pool, exported.data(), exported.size(), &n);
             if (st == LABYRINTH_ERR_BUSY)
               raise_status(st, std::string(labyrinth_last_error_message()) +
                                    " (buffer exports of its Page are alive: release them "
                                    "first, e.g. memoryview.release(), del the array)");
             check(st);
             // Page objects whose block went back to the pool are freed now.
             for (auto it = self.ps->live.begin(); it != self.ps->live.end();) {
               if (labyrinth_page_info(pool, reinterpret_cast<void *>(it->first), nullptr, nullptr) !=
                   LABYRINTH_OK) {
                 it->second->live = false;
                 it = self.ps->live.erase(it);
               } else {
                 ++it;
               }
             }
             labyrinth_clear_last_error();
             return n;
           },
           "Give back to the pool every exclusive block whose owner thread has exited "
           "(orphans); returns how many. Raises Busy, and reclaims nothing, while a buffer "
           "export (memoryview, numpy array, ...) of an orphan's Page is alive; exports of "
           "other pages do not matter.")
      .def("close", [](PoolPy &self, const py::object &force) { pool_close(self, bool_arg(force, "force")); },
           py::arg("force") = false)
      .def_property_readonly("closed", [](const PoolPy &self) { return self.ps->closed(); })
      .def_property_readonly("base", [](const PoolPy &self) { return self.ps->base; })
      .def_property_readonly("size_bytes", [](const PoolPy &self) { return self.ps->size_bytes; })
      .def_property_readonly("live_pages", [](const PoolPy &self) { return self.ps->live.size(); })
      .def_property_readonly("exports", [](const PoolPy &self) { return self.ps->exports; })
      .def("page_at",
           [](PoolPy &self, const py::object &address) -> py::object {
             auto it = self.ps->live.find(addr_arg(address));
             if (it == self.ps->live.end()) return py::none();
             return py::cast(it->second, py::return_value_policy::reference);
           },
           py::arg("address"))
      .def("free_address", &pool_free_address, py::arg("address"), py::arg("order") = py::none(),
           R"doc(
Free the block at an address (an int or a Page). With `order`, the block
must be exactly of that order (InvalidArgument otherwise, and nothing
changes), as labyrinth_free_pages_order() checks.)doc")
      .def(
          "transfer_address",
          [](PoolPy &self, const py::object &address, const py::object &owner) {
            const uintptr_t a = addr_arg(address);
            const labyrinth_owner o = uint_arg(owner, "owner", LABYRINTH_OWNER_MAX);
            check(labyrinth_page_transfer(open_pool(self.ps), reinterpret_cast<void *>(a), o));
          },
          py::arg("address"), py::arg("owner"))
      .def(
          "page_info",
          [](PoolPy &self, const py::object &address) {
            labyrinth_owner o = 0;
            unsigned order = 0;
            check(labyrinth_page_info(open_pool(self.ps),
                                      reinterpret_cast<const void *>(addr_arg(address)), &o, &order));
            return py::make_tuple(o, order);
          },
          py::arg("address"));

  register_workload(m);
  register_ring(m);
}
