// page.cpp - labyrinth._core.Page: one allocated block as a Python object.
//
// A Page frees its block when collected and exposes the block's memory
// through the buffer protocol without a copy; a freed page's memory can never
// be reached from Python: free() is refused with Busy while buffer exports of
// the page are alive, and a freed (or closed-pool) Page refuses new exports.
#include <climits>
#include <cstring>

#include "binding.hpp"

namespace labpy {

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

void page_check_usable(const PageObj &p, const char *what) {
  if (p.ps->closed())
    raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the page's pool is closed");
  if (!p.live)
    raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the page was freed");
}

}  // namespace

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

namespace {

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

labyrinth_owner page_owner(const PageObj &p) {
  page_check_usable(p, "read the owner");
  labyrinth_owner o = 0;
  check(labyrinth_page_info(p.ps->pool, p.ptr, &o, nullptr));
  return o;
}

void page_transfer(PageObj &p, const py::object &owner) {
  const labyrinth_owner o = uint_arg(owner, "owner", LABYRINTH_OWNER_MAX);
  page_check_usable(p, "transfer");
  check(labyrinth_page_transfer(p.ps->pool, p.ptr, o));
}

[[noreturn]] void raise_does_not_fit(const char *what, long long n, long long offset, size_t size) {
  raise_status(LABYRINTH_ERR_INVALID, std::string(what) + " of " + std::to_string(n) + " bytes at offset " +
                                          std::to_string(offset) + " does not fit the " +
                                          std::to_string(size) + "-byte block");
}

py::bytes page_read(const PageObj &p, const py::object &size, const py::object &offset_arg) {
  page_check_usable(p, "read");
  const long long offset = int_arg(offset_arg, "offset", LLONG_MIN, LLONG_MAX);
  long long n = size.is_none() ? static_cast<long long>(p.size()) - offset
                               : int_arg(size, "size", LLONG_MIN, LLONG_MAX);
  if (offset < 0 || n < 0 ||
      static_cast<unsigned long long>(offset) + static_cast<unsigned long long>(n) > p.size())
    raise_does_not_fit("read", n, offset, p.size());
  return py::bytes(static_cast<const char *>(p.ptr) + offset, static_cast<size_t>(n));
}

size_t page_write(PageObj &p, const py::object &data, const py::object &offset_arg) {
  page_check_usable(p, "write");
  const long long offset = int_arg(offset_arg, "offset", LLONG_MIN, LLONG_MAX);
  Py_buffer view;
  if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_SIMPLE) < 0) throw py::error_already_set();
  size_t n = static_cast<size_t>(view.len);
  bool fits = offset >= 0 && static_cast<unsigned long long>(offset) + n <= p.size();
  if (fits) std::memmove(static_cast<char *>(p.ptr) + offset, view.buf, n);  // may overlap
  PyBuffer_Release(&view);
  if (!fits) raise_does_not_fit("write", static_cast<long long>(n), offset, p.size());
  return n;
}

bool page_exit(PageObj &p, const py::object &exc_type, const py::object &, const py::object &) {
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
}

std::string page_repr(const PageObj &p) {
  return std::string("<labyrinth.Page ") + hex(p.address()) + " order=" + std::to_string(p.order) +
         (p.live ? "" : " freed") + ">";
}

}  // namespace

void register_page(py::module_ &m) {
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
  auto *ht = reinterpret_cast<PyHeapTypeObject *>(page.ptr());
  ht->as_buffer.bf_getbuffer = page_getbuffer;
  ht->as_buffer.bf_releasebuffer = page_releasebuffer;
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
      .def_property_readonly("owner", &page_owner,
                             "The owner id of the block (OWNER_NONE, 0, if not exclusive). Never blocks.")
      .def("free", &page_free, R"doc(
Give the block back to its pool, stating its order
(labyrinth_free_pages_order). Only the owner thread may free an exclusive
block (NotOwner otherwise). Raises DoubleFree if this Page was already freed,
Busy while buffer exports are alive or the kernel holds the page. Never
blocks for an exclusive order-0 page.)doc")
      .def("transfer", &page_transfer, py::arg("owner"), R"doc(
Hand the exclusive block to another owner id (labyrinth.owner_self() of
the receiving thread). Only the current owner may (NotOwner otherwise);
InvalidArgument for a non-exclusive block or owner 0. Pass the Page to the
receiving thread through a queue or a lock. Never blocks.)doc")
      .def("read", &page_read, py::arg("size") = py::none(), py::arg("offset") = 0,
           "Copy bytes out of the block (no export is kept).")
      .def("write", &page_write, py::arg("data"), py::arg("offset") = 0,
           "Copy bytes into the block (no export is kept); returns the count. data: any contiguous buffer.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", &page_exit)
      .def("__repr__", &page_repr);
}

}  // namespace labpy
