// ring_slice.cpp - labyrinth.Completion and labyrinth.Slice: a slice is a
// zero-copy buffer (memoryview(slice)) of the bytes one receive put into a
// provided block, owned by the thread that took the completion;
// Slice.release() refuses with Busy while memoryviews of it are alive, and
// the Slice keeps its Ring object alive.
#include <string>

#include "ring_binding.hpp"

namespace labpy {
namespace {

void slice_check(const SliceObj &s, const char *what) {
  if (s.released) raise_status(LABYRINTH_ERR_DOUBLE_FREE, std::string("cannot ") + what + ": the slice was released");
}

int slice_getbuffer(PyObject *obj, Py_buffer *view, int flags) {
  view->obj = nullptr;
  try {
    auto &s = py::handle(obj).cast<SliceObj &>();
    slice_check(s, "export the slice");
    const auto n = static_cast<Py_ssize_t>(s.len);
    if (PyBuffer_FillInfo(view, obj, s.ptr, n, 0, flags) == 0) ++s.exports;
    return view->obj ? 0 : -1;
  } catch (py::error_already_set &e) {
    e.restore();
    return -1;
  } catch (std::exception &e) {
    PyErr_SetString(PyExc_BufferError, e.what());
    return -1;
  }
}

void slice_releasebuffer(PyObject *obj, Py_buffer *) {
  try {
    --py::handle(obj).cast<SliceObj &>().exports;
  } catch (...) {
    PyErr_Clear();
  }
}

void slice_release(SliceObj &s) {
  slice_check(s, "release the slice");
  if (s.exports > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot release the slice: " + std::to_string(s.exports) +
                                         " buffer exports (memoryviews) of it are alive");
  check(labyrinth_ring_slice_release_gen(s.r, s.ptr, s.gen));
  s.released = true;
}

}  // namespace

py::object make_slice(py::object ring, labyrinth_ring *r, const labyrinth_completion &c) {
  auto sl = std::make_unique<SliceObj>();
  sl->ring = std::move(ring);
  sl->r = r;
  sl->ptr = c.page;
  sl->len = static_cast<size_t>(c.result);
  sl->gen = c.slice_gen;
  return py::cast(std::move(sl));
}

void register_completion(py::module_ &m) {
  py::class_<Completion>(m, "Completion", "One completion from Ring.complete().")
      .def_readonly("user_data", &Completion::user_data, "As given at submission.")
      .def_readonly("page", &Completion::page,
                    "The Page handed back (the caller owns it again), or None.")
      .def_readonly("result", &Completion::result, "Bytes transferred, or -errno.")
      .def_readonly("op", &Completion::op, "The operation (RING_OP_*).")
      .def_readonly("flags", &Completion::flags, "COMPLETION_MORE / COMPLETION_NOTIF bits.")
      .def_property_readonly("more", [](const Completion &c) { return (c.flags & LABYRINTH_COMPLETION_MORE) != 0; })
      .def_property_readonly("notif", [](const Completion &c) { return (c.flags & LABYRINTH_COMPLETION_NOTIF) != 0; })
      .def_property_readonly("maybe_trunc",
                             [](const Completion &c) {
                               return (c.flags & LABYRINTH_COMPLETION_MAYBE_TRUNC) != 0;
                             },
                             "A datagram's slice that reached its block's end: maybe cut.")
      .def("__repr__", [](const Completion &c) {
        return "<labyrinth.Completion user_data=" + std::to_string(c.user_data) +
               " op=" + std::to_string(c.op) + " result=" + std::to_string(c.result) +
               " flags=" + std::to_string(c.flags) + (c.page.is_none() ? " no page" : " page") + ">";
      });
  m.attr("RING_OP_READ_FIXED") = int(LABYRINTH_OP_READ_FIXED);
  m.attr("RING_OP_WRITE_FIXED") = int(LABYRINTH_OP_WRITE_FIXED);
  m.attr("RING_OP_SEND") = int(LABYRINTH_OP_SEND);
  m.attr("RING_OP_RECV") = int(LABYRINTH_OP_RECV);
  m.attr("RING_OP_SEND_ZC") = int(LABYRINTH_OP_SEND_ZC);
  m.attr("RING_OP_RECV_MULTISHOT") = int(LABYRINTH_OP_RECV_MULTISHOT);
  m.attr("RING_OP_RECV_BUNDLE") = int(LABYRINTH_OP_RECV_BUNDLE);
  m.attr("RING_OP_SEND_BUNDLE") = int(LABYRINTH_OP_SEND_BUNDLE);
  m.attr("COMPLETION_BUNDLE") = int(LABYRINTH_COMPLETION_BUNDLE);
  m.attr("COMPLETION_BUNDLE_END") = int(LABYRINTH_COMPLETION_BUNDLE_END);
  m.attr("SEND_BUNDLE_MAX") = int(LABYRINTH_SEND_BUNDLE_MAX);
  m.attr("COMPLETION_MORE") = int(LABYRINTH_COMPLETION_MORE);
  m.attr("COMPLETION_NOTIF") = int(LABYRINTH_COMPLETION_NOTIF);
  m.attr("COMPLETION_SLICE") = int(LABYRINTH_COMPLETION_SLICE);

  py::class_<SliceObj> slice(m, "Slice", py::buffer_protocol(), R"doc(
The bytes one receive put into a provided block (incremental consumption):
memoryview(slice) reads them in place, no copy. Owned by the thread that
took the completion; release() gives it back (the block returns to the pool
after its last slice), transfer(owner) hands it to another thread. release()
raises Busy while memoryviews of it are alive, DoubleFree the second time,
NotOwner from another thread.)doc");
  {
    auto *ht = reinterpret_cast<PyHeapTypeObject *>(slice.ptr());
    ht->as_buffer.bf_getbuffer = slice_getbuffer;
    ht->as_buffer.bf_releasebuffer = slice_releasebuffer;
  }
  slice.def("__len__", [](const SliceObj &s) { return s.len; })
      .def_property_readonly("address", [](const SliceObj &s) { return reinterpret_cast<uintptr_t>(s.ptr); })
      .def_property_readonly("released", [](const SliceObj &s) { return s.released; })
      .def_property_readonly("generation", [](const SliceObj &s) { return s.gen; })
      .def_property_readonly("exports", [](const SliceObj &s) { return s.exports; })
      .def("release", &slice_release)
      .def("transfer",
           [](SliceObj &s, const py::object &owner) {
             slice_check(s, "transfer the slice");
             check(labyrinth_ring_slice_transfer_gen(s.r, s.ptr, s.gen,
                                                     uint_arg(owner, "owner", UINT64_MAX)));
           },
           py::arg("owner"))
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](SliceObj &s, py::args) {
        if (!s.released) slice_release(s);
      });
}

}  // namespace labpy
