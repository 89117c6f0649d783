// ring.cpp - labyrinth.Ring: the managed io_uring of labyrinth_uring.h.
//
// Ownership is the C library's: a submitted page belongs to the kernel until
// the completion that hands it back (free/transfer/resubmit raise Busy
// meanwhile). The binding adds what Python needs on top:
//  * the Ring keeps a reference to every Page object in flight, so it cannot
//    be collected (and try to free itself) while the kernel holds it, and
//    hands the same object back in the completion;
//  * pages from a multishot receive come back as new Page objects owned by
//    the thread that takes the completion;
//  * a page given to provide() belongs to the kernel: its Page object is
//    retired (like a freed one);
//  * complete() with wait_nr > 0 releases the GIL; meanwhile other threads'
//    calls on the ring raise Busy (a ring is used by one thread at a time);
//  * with incremental consumption a receive comes back as a Slice: a
//    zero-copy buffer (memoryview(slice)) owned by the thread that took the
//    completion; Slice.release() refuses with Busy while memoryviews of it
//    are alive, and the Slice keeps its Ring object alive (Completion and
//    Slice: ring_slice.cpp).
#include <pybind11/stl.h>

#include <climits>
#include <cstring>
#include <vector>

#include "ring_binding.hpp"

namespace labpy {
namespace {

class RingPy {
 public:
  RingPy(PoolRef ps, labyrinth_ring *ring) : ps_(std::move(ps)), ring_(ring) { ++ps_->rings; }
  ~RingPy() {
    if (!ring_) return;
    labyrinth_status st;
    {
      py::gil_scoped_release nogil;
      st = labyrinth_ring_destroy(ring_);
    }
    if (st == LABYRINTH_OK) {
      retire_inflight();
      --ps_->rings;
    }
    // Otherwise (a SINGLE_THREAD ring collected on another thread) the ring
    // stays: the pool then cannot be destroyed and is unmapped with FORCE
    // semantics only when the process ends.
    ring_ = nullptr;
  }

  labyrinth_ring *ring(const char *what) {
    if (!ring_) raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the ring is closed");
    if (busy_)
      raise_status(LABYRINTH_ERR_BUSY, std::string("cannot ") + what +
                                           ": another thread is waiting in complete() on this ring "
                                           "(a ring is used by one thread at a time)");
    open_pool(ps_);
    return ring_;
  }

  PageObj &page_arg(py::handle page, const char *what) {
    if (!py::isinstance<PageObj>(page))
      throw py::type_error(std::string(what) + ": page must be a labyrinth.Page, got " +
                           Py_TYPE(page.ptr())->tp_name);
    auto &p = page.cast<PageObj &>();
    if (p.ps.get() != ps_.get())
      raise_status(LABYRINTH_ERR_FOREIGN, std::string("cannot ") + what + ": the page is from another pool");
    if (!p.live) raise_status(LABYRINTH_ERR_INVALID, std::string("cannot ") + what + ": the page was freed");
    return p;
  }

  uint32_t len_arg(const PageObj &p, const py::object &length) {
    if (length.is_none()) return static_cast<uint32_t>(p.size());
    return static_cast<uint32_t>(int_arg(length, "length", 1, static_cast<long long>(p.size())));
  }

  // Submits through f(ring, ptr, len); on OK the ring holds the Page.
  template <class F>
  void submit(py::handle page, const py::object &length, const char *what, F &&f) {
    labyrinth_ring *r = ring(what);
    PageObj &p = page_arg(page, what);
    uint32_t len = len_arg(p, length);
    check(f(r, p.ptr, len));
    p.inflight = true;
    inflight_[p.address()] = py::reinterpret_borrow<py::object>(page);
  }

  // Ring.send_bundle: every Page of `pages` (lengths[i] bytes of each, or
  // the whole page) in one submission; on OK the ring holds them all.
  void send_bundle(int fd, const py::sequence &pages, const py::object &lengths, int flags,
                   uint64_t ud) {
    labyrinth_ring *r = ring("send_bundle");
    const size_t n = py::len(pages);
    if (!lengths.is_none() && py::len(lengths) != n)
      throw py::value_error("send_bundle: lengths must give one length per page");
    std::vector<void *> ptrs;
    std::vector<uint32_t> lens;
    for (size_t i = 0; i < n; ++i) {
      PageObj &p = page_arg(pages[i], "send_bundle");
      ptrs.push_back(p.ptr);
      lens.push_back(len_arg(p, lengths.is_none() ? py::object(py::none())
                                                  : py::reinterpret_borrow<py::object>(lengths[py::int_(i)])));
    }
    check(labyrinth_ring_send_bundle(r, fd, ptrs.data(), lens.data(), n, flags, ud));
    for (size_t i = 0; i < n; ++i) {
      py::object page = pages[i];
      PageObj &p = page.cast<PageObj &>();
      p.inflight = true;
      inflight_[p.address()] = page;
    }
  }

  std::vector<Completion> complete(const py::object &max_arg, const py::object &wait_arg,
                                   const py::object &timeout) {
    labyrinth_ring *r = ring("complete");
    const size_t max = static_cast<size_t>(int_arg(max_arg, "max", 1, 1 << 20));
    const size_t wait_nr = static_cast<size_t>(int_arg(wait_arg, "wait_nr", 0, 1 << 20));
    uint32_t tmo = LABYRINTH_TIMEOUT_INFINITE;
    if (!timeout.is_none()) {
      const double t = seconds_arg(timeout, "timeout");
      double ms = t * 1000.0;
      tmo = ms >= double(LABYRINTH_TIMEOUT_INFINITE - 1) ? LABYRINTH_TIMEOUT_INFINITE - 1
                                                          : static_cast<uint32_t>(ms + 0.999);
    }
    std::vector<labyrinth_completion> out(max);
    size_t n = 0;
    labyrinth_status st;
    if (wait_nr > 0) {
      ActiveCall active(ps_);
      busy_ = true;
      std::string msg;
      {
        py::gil_scoped_release nogil;
        st = labyrinth_ring_complete(r, out.data(), max, wait_nr, tmo, &n);
        if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
      }
      busy_ = false;
      if (st != LABYRINTH_OK) raise_status(st, msg);
    } else {
      check(labyrinth_ring_complete(r, out.data(), max, 0, 0, &n));
    }
    std::vector<Completion> res;
    res.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Completion c;
      c.user_data = out[i].user_data;
      c.result = out[i].result;
      c.op = out[i].op;
      c.flags = out[i].flags;
      if (out[i].page && (out[i].flags & LABYRINTH_COMPLETION_SLICE)) {
        // py::cast(this, reference): the existing Ring object
        c.page = make_slice(py::cast(this, py::return_value_policy::reference), ring_, out[i]);
      } else if (out[i].page) {
        auto a = reinterpret_cast<uintptr_t>(out[i].page);
        auto it = inflight_.find(a);
        if (it != inflight_.end()) {
          c.page = it->second;
          c.page.cast<PageObj &>().inflight = false;
          inflight_.erase(it);
        } else {
          // A page the kernel filled from the provided-buffer ring: now the
          // calling thread's.
          c.page = make_page(ps_, out[i].page, 0);
        }
      } else {
        c.page = py::none();
      }
      res.push_back(std::move(c));
    }
    return res;
  }

  void provide(py::handle page) {
    labyrinth_ring *r = ring("provide");
    PageObj &p = page_arg(page, "provide");
    if (p.exports > 0)
      raise_status(LABYRINTH_ERR_BUSY, "cannot provide the page: buffer exports of it are alive");
    check(labyrinth_ring_provide(r, p.ptr));
    // The kernel owns it now; it comes back as a new Page with a completion.
    p.live = false;
    auto it = ps_->live.find(p.address());
    if (it != ps_->live.end() && it->second == &p) ps_->live.erase(it);
  }

  void close() {
    if (!ring_) return;
    if (busy_) raise_status(LABYRINTH_ERR_BUSY, "cannot close: another thread is waiting in complete()");
    labyrinth_status st;
    std::string msg;
    {
      // Waits for the kernel to let go of every page.
      py::gil_scoped_release nogil;
      st = labyrinth_ring_destroy(ring_);
      if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
    }
    if (st != LABYRINTH_OK) raise_status(st, msg);
    ring_ = nullptr;
    --ps_->rings;
    retire_inflight();
  }

  py::dict stats() {
    if (!ring_) raise_status(LABYRINTH_ERR_INVALID, "the ring is closed");
    labyrinth_ring_stats s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    check(labyrinth_ring_get_stats(ring_, &s));
    py::dict d;
    d["submitted"] = s.submitted;
    d["submit_failures"] = s.submit_failures;
    d["completions"] = s.completions;
    d["ops_inflight"] = s.ops_inflight;
    d["pages_inflight"] = s.pages_inflight;
    d["pbuf_entries"] = s.pbuf_entries;
    d["pbuf_pages"] = s.pbuf_pages;
    d["pbuf_refills"] = s.pbuf_refills;
    d["pbuf_refill_failures"] = s.pbuf_refill_failures;
    d["pbuf_enobufs"] = s.pbuf_enobufs;
    d["sq_entries"] = s.sq_entries;
    d["cq_entries"] = s.cq_entries;
    d["registered"] = s.registered;
    d["fixed_buffers"] = s.fixed_buffers;
    d["recv_starvations"] = s.recv_starvations;
    d["recv_rearms"] = s.recv_rearms;
    d["recv_starved_ns"] = s.recv_starved_ns;
    d["recv_starved_now"] = s.recv_starved_now;
    d["pbuf_incremental"] = s.pbuf_incremental;
    d["pbuf_block_bytes"] = s.pbuf_block_bytes;
    d["slices_live"] = s.slices_live;
    d["slice_blocks_held"] = s.slice_blocks_held;
    d["register_fallback"] = s.register_fallback;
    d["buffers_pinned"] = s.buffers_pinned;
    d["fallback_ops"] = s.fallback_ops;
    d["recv_bundles"] = s.recv_bundles;
    d["recv_bundle_pages"] = s.recv_bundle_pages;
    d["send_bundles"] = s.send_bundles;
    d["send_bundle_pages"] = s.send_bundle_pages;
    d["recv_maybe_trunc"] = s.recv_maybe_trunc;
    d["pbuf_min_left"] = s.pbuf_min_left;
    return d;
  }

  int fd() const { return ring_ ? labyrinth_ring_fd(ring_) : -1; }
  bool closed() const { return ring_ == nullptr; }
  size_t inflight_pages() const { return inflight_.size(); }

 private:
  // After destroy, pages of completions never taken are their submitter's again.
  void retire_inflight() {
    for (auto &kv : inflight_) kv.second.cast<PageObj &>().inflight = false;
    inflight_.clear();
  }

  PoolRef ps_;
  labyrinth_ring *ring_ = nullptr;
  bool busy_ = false;
  std::unordered_map<uintptr_t, py::object> inflight_;
};

// A file descriptor, send/recv flags and user_data, checked (args.cpp).
int ring_fd(py::handle v) { return static_cast<int>(int_arg(v, "fd", 0, INT_MAX)); }
int msg_flags(py::handle v) { return static_cast<int>(int_arg(v, "flags", INT_MIN, INT_MAX)); }
uint64_t user_data(py::handle v) { return uint_arg(v, "user_data", UINT64_MAX); }

RingPy *ring_new(py::object pool, const py::object &sq_entries, const py::object &max_inflight,
                 const py::object &pbuf_entries, const py::object &pbuf_group,
                 const py::object &manual_refill, const py::object &register_arena,
                 const py::object &single_thread, const py::object &incremental,
                 const py::object &pbuf_order, const py::object &max_datagram) {
  PoolRef ps = pool_ref(pool);
  labyrinth_pool *p = open_pool(ps);
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = static_cast<uint32_t>(uint_arg(sq_entries, "sq_entries", UINT32_MAX));
  o.max_inflight = static_cast<uint32_t>(uint_arg(max_inflight, "max_inflight", UINT32_MAX));
  o.pbuf_entries = static_cast<uint32_t>(uint_arg(pbuf_entries, "pbuf_entries", UINT32_MAX));
  o.pbuf_group = static_cast<uint16_t>(uint_arg(pbuf_group, "pbuf_group", UINT16_MAX));
  o.flags = (bool_arg(manual_refill, "manual_refill") ? LABYRINTH_RING_MANUAL_REFILL : 0) |
            (bool_arg(register_arena, "register") ? 0 : LABYRINTH_RING_NO_REGISTER) |
            (bool_arg(single_thread, "single_thread") ? LABYRINTH_RING_SINGLE_THREAD : 0);
  if (py::isinstance<py::str>(incremental) && incremental.cast<std::string>() == "auto")
    o.flags |= LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE;
  else if (py::isinstance<py::str>(incremental))
    throw py::value_error("incremental must be True, False or \"auto\"");
  else if (bool_arg(incremental, "incremental"))
    o.flags |= LABYRINTH_RING_PBUF_INCREMENTAL;
  o.pbuf_order = static_cast<uint32_t>(uint_arg(pbuf_order, "pbuf_order", UINT32_MAX));
  o.max_datagram = static_cast<uint32_t>(uint_arg(max_datagram, "max_datagram", UINT32_MAX));
  labyrinth_ring *r = nullptr;
  const labyrinth_status st = labyrinth_ring_create(p, &o, &r);
  if (st != LABYRINTH_OK) {
    const std::string msg = labyrinth_last_error_message();
    if (st == LABYRINTH_ERR_NOMEM && msg.find("RLIMIT_MEMLOCK") != std::string::npos)
      raise_memlock(msg, "pass register=False (no fixed read/write then), use a smaller pool, or "
                         "raise the limit (ulimit -l)");
    raise_status(st, msg);
  }
  return new RingPy(ps, r);
}

// A Ring method that submits one Page at a file offset (read_fixed,
// write_fixed): Ring.<what>(fd, page, length=None, offset=0, user_data=0).
using OffsetCall = labyrinth_status (*)(labyrinth_ring *, int, void *, uint32_t, uint64_t, uint64_t);
auto offset_op(const char *what, OffsetCall call) {
  return [what, call](RingPy &self, const py::object &fd_arg, py::handle page, const py::object &length,
                      const py::object &offset_arg, const py::object &ud_arg) {
    const int fd = ring_fd(fd_arg);
    const uint64_t offset = uint_arg(offset_arg, "offset", UINT64_MAX), ud = user_data(ud_arg);
    self.submit(page, length, what,
                [&](labyrinth_ring *r, void *p, uint32_t n) { return call(r, fd, p, n, offset, ud); });
  };
}

// A Ring method that submits one Page to a socket with msg_flags (send,
// recv, send_zc): Ring.<what>(fd, page, length=None, flags=0, user_data=0).
using FlagsCall = labyrinth_status (*)(labyrinth_ring *, int, void *, uint32_t, int, uint64_t);
auto flags_op(const char *what, FlagsCall call) {
  return [what, call](RingPy &self, const py::object &fd_arg, py::handle page, const py::object &length,
                      const py::object &flags_arg, const py::object &ud_arg) {
    const int fd = ring_fd(fd_arg), flags = msg_flags(flags_arg);
    const uint64_t ud = user_data(ud_arg);
    self.submit(page, length, what,
                [&](labyrinth_ring *r, void *p, uint32_t n) { return call(r, fd, p, n, flags, ud); });
  };
}

}  // namespace

void register_ring(py::module_ &m) {
  register_completion(m);
  py::class_<RingPy>(m, "Ring", R"doc(
An io_uring driven by Labyrinth, bound to one pool (labyrinth_uring.h).
A submitted Page belongs to the kernel until the completion that hands it
back: free(), transfer() and another submission of it raise Busy meanwhile.
Raises Unsupported where io_uring (or a feature) is not available.)doc")
      .def(py::init(&ring_new), py::arg("pool"), py::kw_only(), py::arg("sq_entries") = 256,
           py::arg("max_inflight") = 0, py::arg("pbuf_entries") = 0, py::arg("pbuf_group") = 0,
           py::arg("manual_refill") = false, py::arg("register") = true,
           py::arg("single_thread") = false, py::arg("incremental") = false,
           py::arg("pbuf_order") = 0, py::arg("max_datagram") = 0)
      .def_property_readonly("fd", &RingPy::fd)
      .def_property_readonly("closed", &RingPy::closed)
      .def_property_readonly("inflight_pages", &RingPy::inflight_pages,
                             "Page objects the kernel holds through this ring.")
      .def("read_fixed", offset_op("read", &labyrinth_ring_read_fixed), py::arg("fd"), py::arg("page"),
           py::arg("length") = py::none(), py::arg("offset") = 0, py::arg("user_data") = 0)
      .def("write_fixed", offset_op("write", &labyrinth_ring_write_fixed), py::arg("fd"), py::arg("page"),
           py::arg("length") = py::none(), py::arg("offset") = 0, py::arg("user_data") = 0)
      .def("send", flags_op("send", &labyrinth_ring_send), py::arg("fd"), py::arg("page"),
           py::arg("length") = py::none(), py::arg("flags") = 0, py::arg("user_data") = 0)
      .def("recv", flags_op("recv", &labyrinth_ring_recv), py::arg("fd"), py::arg("page"),
           py::arg("length") = py::none(), py::arg("flags") = 0, py::arg("user_data") = 0)
      .def("send_zc", flags_op("send_zc", &labyrinth_ring_send_zc), py::arg("fd"), py::arg("page"),
           py::arg("length") = py::none(), py::arg("flags") = 0, py::arg("user_data") = 0)
      .def(
          "recv_multishot",
          [](RingPy &self, const py::object &fd, const py::object &flags, const py::object &ud) {
            check(labyrinth_ring_recv_multishot(self.ring("recv_multishot"), ring_fd(fd), msg_flags(flags),
                                                user_data(ud)));
          },
          py::arg("fd"), py::arg("flags") = 0, py::arg("user_data") = 0)
      .def(
          "recv_bundle",
          [](RingPy &self, const py::object &fd, const py::object &flags, const py::object &ud,
             const py::object &oneshot) {
            check(labyrinth_ring_recv_bundle(
                self.ring("recv_bundle"), ring_fd(fd), msg_flags(flags),
                bool_arg(oneshot, "oneshot") ? LABYRINTH_RECV_BUNDLE_ONESHOT : 0u, user_data(ud)));
          },
          py::arg("fd"), py::arg("flags") = 0, py::arg("user_data") = 0, py::arg("oneshot") = false)
      .def(
          "send_bundle",
          [](RingPy &self, const py::object &fd, const py::sequence &pages, const py::object &lengths,
             const py::object &flags, const py::object &ud) {
            self.send_bundle(ring_fd(fd), pages, lengths, msg_flags(flags), user_data(ud));
          },
          py::arg("fd"), py::arg("pages"), py::arg("lengths") = py::none(), py::arg("flags") = 0,
          py::arg("user_data") = 0)
      .def(
          "cancel",
          [](RingPy &self, const py::object &ud) { check(labyrinth_ring_cancel(self.ring("cancel"), user_data(ud))); },
          py::arg("user_data"))
      .def("provide", &RingPy::provide, py::arg("page"))
      .def("complete", &RingPy::complete, py::arg("max") = 64, py::arg("wait_nr") = 0,
           py::arg("timeout") = py::none())
      .def("_stats", &RingPy::stats)
      .def("close", &RingPy::close);
}

}  // namespace labpy
