// submit.cpp - submitting to the managed ring, and cancelling.
//
// Ownership while in flight: every submission first hands the page to the
// kernel (page_begin_io: free / transfer / resubmission now return BUSY),
// then submits at once. If the submission fails the SQE is turned into a
// NOP before the kernel can read it and the page comes straight back
// (page_end_io).
#include <liburing.h>

#include <cerrno>
#include <cstring>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

using namespace lab;
using uring::encode;
using uring::kKindCancel;
using uring::kKindOp;
using uring::Op;

namespace {

const char *op_name(unsigned op) {
  switch (op) {
    case LABYRINTH_OP_READ_FIXED: return "labyrinth_ring_read_fixed";
    case LABYRINTH_OP_WRITE_FIXED: return "labyrinth_ring_write_fixed";
    case LABYRINTH_OP_SEND: return "labyrinth_ring_send";
    case LABYRINTH_OP_RECV: return "labyrinth_ring_recv";
    case LABYRINTH_OP_SEND_ZC: return "labyrinth_ring_send_zc";
    case LABYRINTH_OP_RECV_MULTISHOT: return "labyrinth_ring_recv_multishot";
    case LABYRINTH_OP_RECV_BUNDLE: return "labyrinth_ring_recv_bundle";
    default: return "labyrinth_ring";
  }
}

using uring::get_sqe;
using uring::neutralize;

labyrinth_status submit_failed(labyrinth_ring *r, const char *what, int err) {
  r->submit_failures.add();
  if (err == EAGAIN || err == EBUSY)
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: the kernel cannot take the submission now (%s); take completions "
                     "and submit again (the page is yours again)",
                     what, errno_name(err));
  return set_error(LABYRINTH_ERR_SYSTEM,
                   "%s: io_uring_enter failed (%s, errno %d: %s); the page is yours again", what,
                   errno_name(err), err, std::strerror(err));
}

// The checks every submission passes before anything changes; for a page,
// *buf_index receives its fixed-buffer index.
labyrinth_status check_submission(labyrinth_ring *r, unsigned op, int fd, void *page,
                                  std::uint32_t len, const char *what, std::uint16_t *buf_index) {
  if (fd < 0) return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not a file descriptor", what, fd);
  const bool fixed = op == LABYRINTH_OP_READ_FIXED || op == LABYRINTH_OP_WRITE_FIXED;
  if (fixed && !r->registered.load() && !r->register_fallback.load())
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the pool's arena is not registered with this ring (fd %d); call "
                     "labyrinth_pool_register_io_uring(pool, labyrinth_ring_fd(ring))",
                     what, r->ring.ring_fd);
  if (op == LABYRINTH_OP_SEND_ZC && !r->has_send_zc)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: this kernel has no IORING_OP_SEND_ZC (zero-copy send needs Linux 6.0; "
                     "probed with IORING_REGISTER_PROBE)",
                     what);
  if (op == LABYRINTH_OP_RECV_BUNDLE) {
    if (!r->has_bundle)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: this kernel has no bundles (IORING_RECVSEND_BUNDLE needs Linux 6.10; "
                       "IORING_FEAT_RECVSEND_BUNDLE is not set)",
                       what);
    if (r->incremental)
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: the ring uses incremental consumption (slices); bundles need whole "
                       "pages",
                       what);
  }
  if (op == LABYRINTH_OP_RECV_MULTISHOT || op == LABYRINTH_OP_RECV_BUNDLE) {
    if (!r->br)
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: the ring has no provided-buffer ring (created with pbuf_entries 0)",
                       what);
    if (!r->has_send_zc)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: multishot receive needs Linux 6.0 (this kernel lacks the 6.0 "
                       "opcodes, probed with IORING_REGISTER_PROBE)",
                       what);
  } else {
    if (!page) return set_error(LABYRINTH_ERR_INVALID, "%s: page is NULL", what);
    unsigned order = 0;
    labyrinth_status st = labyrinth_page_info(r->pool, page, nullptr, &order);
    if (st != LABYRINTH_OK) return st;
    std::size_t cap = std::size_t{LABYRINTH_PAGE_SIZE} << order;
    if (len == 0 || len > cap)
      return set_error(LABYRINTH_ERR_INVALID, "%s: len %u is not within 1..%zu (the block at %p)",
                       what, len, cap, page);
    labyrinth_page_buf_index(r->pool, page, buf_index);
  }
  return LABYRINTH_OK;
}

// Submit one operation on `page` (or, for multishot receive, on no page).
labyrinth_status submit_op(labyrinth_ring *r, unsigned op, int fd, void *page, std::uint32_t len,
                           std::uint64_t offset, int msg_flags, std::uint64_t user_data,
                           bool oneshot) {
  const char *what = op_name(op);
  if (!r) return set_error(LABYRINTH_ERR_INVALID, "%s: ring is NULL", what);
  // Receives into provided pages hold no page of the caller.
  const bool multishot = op == LABYRINTH_OP_RECV_MULTISHOT || op == LABYRINTH_OP_RECV_BUNDLE;
  std::uint16_t buf_index = 0;
  labyrinth_status checked = check_submission(r, op, fd, page, len, what, &buf_index);
  if (checked != LABYRINTH_OK) return checked;
  bool datagram = false;
  if (multishot) {
    checked = uring::slice_check_recv(r, fd, msg_flags, what, &datagram);
    if (checked != LABYRINTH_OK) return checked;
  }
  if (r->free_ops.empty())
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: %zu operations are in flight, the ring's max_inflight; take "
                     "completions first",
                     what, r->ops.size());
  io_uring_sqe *sqe = get_sqe(&r->ring);
  if (!sqe)
    return set_error(LABYRINTH_ERR_BUSY, "%s: the submission queue is full; take completions first",
                     what);
  if (!multishot) {
    labyrinth_status st = page_begin_io(r->pool, page, labyrinth_owner_self());
    if (st != LABYRINTH_OK) {
      neutralize(sqe);
      return st;
    }
  } else {
    uring::pbuf_refill(r);
  }
  std::uint32_t idx = r->free_ops.back();
  Op &o = r->ops[idx];
  o.page = page;
  o.user_data = user_data;
  o.first_res = 0;
  o.op = static_cast<std::uint8_t>(op);
  o.live = true;
  o.starved = false;
  o.cancel_requested = false;
  o.ended = false;
  o.oneshot = oneshot;
  o.fd = fd;
  o.msg_flags = msg_flags;
  o.datagram = datagram;
  switch (op) {
    case LABYRINTH_OP_READ_FIXED:
    case LABYRINTH_OP_WRITE_FIXED:
      uring::prep_fixed(r, sqe, op, fd, page, len, offset, buf_index);
      break;
    case LABYRINTH_OP_SEND:
      io_uring_prep_send(sqe, fd, page, len, msg_flags);
      break;
    case LABYRINTH_OP_RECV:
      io_uring_prep_recv(sqe, fd, page, len, msg_flags);
      break;
    case LABYRINTH_OP_SEND_ZC:
      if (r->registered.load())
        io_uring_prep_send_zc_fixed(sqe, fd, page, len, msg_flags, 0, buf_index);
      else
        io_uring_prep_send_zc(sqe, fd, page, len, msg_flags, 0);
      break;
    case LABYRINTH_OP_RECV_MULTISHOT:
    case LABYRINTH_OP_RECV_BUNDLE:
      uring::recv_prep(r, sqe, idx);
      break;
  }
  io_uring_sqe_set_data64(sqe, encode(kKindOp, idx));
  int ret = uring::submit_now(&r->ring);
  if (ret < 0) {
    // Nothing was consumed (io_uring_enter fails only before consuming any
    // SQE), so the kernel has not seen this one: retract it.
    neutralize(sqe);
    o.live = false;
    o.page = nullptr;
    if (!multishot) page_end_io(r->pool, page, LABYRINTH_OWNER_NONE);
    return submit_failed(r, what, -ret);
  }
  r->free_ops.pop_back();
  r->submitted.add();
  r->ops_inflight.add();
  if (!multishot) r->pages_inflight.add();
  return LABYRINTH_OK;
}

// Cancel every operation in flight with user_data (their completions follow).
labyrinth_status ring_cancel(labyrinth_ring *r, std::uint64_t user_data, const char *what) {
  std::size_t matched = 0;
  std::size_t queued = 0;
  for (std::uint32_t i = 0; i < r->ops.size(); ++i) {
    if (!r->ops[i].live || r->ops[i].user_data != user_data) continue;
    ++matched;
    // A starved receive is not in the kernel: it ends here (and stays
    // ended until its completion is taken).
    if (r->ops[i].ended || uring::recv_cancel_starved(r, i)) continue;
    io_uring_sqe *sqe = get_sqe(&r->ring);
    if (!sqe) return set_error(LABYRINTH_ERR_BUSY, "%s: the submission queue is full", what);
    r->ops[i].cancel_requested = true;
    io_uring_prep_cancel64(sqe, encode(kKindOp, i), 0);
    io_uring_sqe_set_data64(sqe, encode(kKindCancel, 0));
    ++queued;
  }
  if (!matched)
    return set_error(LABYRINTH_ERR_INVALID, "%s: no operation with user_data %llu is in flight",
                     what, static_cast<unsigned long long>(user_data));
  if (!queued) return LABYRINTH_OK;
  int ret = uring::submit_now(&r->ring);
  if (ret < 0)
    return set_error(ret == -EAGAIN || ret == -EBUSY ? LABYRINTH_ERR_BUSY : LABYRINTH_ERR_SYSTEM,
                     "%s: io_uring_enter failed (%s); the cancellation will be submitted "
                     "with the next operation",
                     what, errno_name(-ret));
  return LABYRINTH_OK;
}

// The operations on a page (or, for multishot receive, on none).
labyrinth_status ring_op(labyrinth_ring *ring, unsigned op, int fd, void *page,
                                std::uint32_t len, std::uint64_t offset, int msg_flags,
                                std::uint64_t user_data, bool oneshot = false) {
  const char *what = op_name(op);
  if (labyrinth_status st = uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] {
    return submit_op(ring, op, fd, page, len, offset, msg_flags, user_data, oneshot);
  });
}

}  // namespace

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_ring_read_fixed(labyrinth_ring *ring, int fd, void *page,
                                                         uint32_t len, uint64_t offset,
                                                         uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_READ_FIXED, fd, page, len, offset, 0, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_write_fixed(labyrinth_ring *ring, int fd, void *page,
                                                          uint32_t len, uint64_t offset,
                                                          uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_WRITE_FIXED, fd, page, len, offset, 0, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_send(labyrinth_ring *ring, int fd, void *page,
                                                   uint32_t len, int msg_flags,
                                                   uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_SEND, fd, page, len, 0, msg_flags, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_recv(labyrinth_ring *ring, int fd, void *page,
                                                   uint32_t len, int msg_flags,
                                                   uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_RECV, fd, page, len, 0, msg_flags, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_send_zc(labyrinth_ring *ring, int fd, void *page,
                                                      uint32_t len, int msg_flags,
                                                      uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_SEND_ZC, fd, page, len, 0, msg_flags, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_recv_multishot(labyrinth_ring *ring, int fd,
                                                             int msg_flags, uint64_t user_data) {
  return ring_op(ring, LABYRINTH_OP_RECV_MULTISHOT, fd, nullptr, 0, 0, msg_flags, user_data);
}

LABYRINTH_API labyrinth_status labyrinth_ring_recv_bundle(labyrinth_ring *ring, int fd,
                                                          int msg_flags, uint32_t flags,
                                                          uint64_t user_data) {
  if (flags & ~std::uint32_t{LABYRINTH_RECV_BUNDLE_ONESHOT})
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_ring_recv_bundle: unknown flags 0x%x",
                     flags & ~std::uint32_t{LABYRINTH_RECV_BUNDLE_ONESHOT});
  return ring_op(ring, LABYRINTH_OP_RECV_BUNDLE, fd, nullptr, 0, 0, msg_flags, user_data,
                 flags & LABYRINTH_RECV_BUNDLE_ONESHOT);
}

LABYRINTH_API labyrinth_status labyrinth_ring_cancel(labyrinth_ring *r, uint64_t user_data) {
  const char *what = "labyrinth_ring_cancel";
  if (labyrinth_status st = uring::enter_ring(r, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return ring_cancel(r, user_data, what); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_provide(labyrinth_ring *r, void *page) {
  const char *what = "labyrinth_ring_provide";
  if (labyrinth_status st = uring::enter_ring(r, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::ring_provide(r, page, what); });
}

}  // extern "C"
