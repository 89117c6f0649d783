// ring.cpp - labyrinth_ring: an io_uring driven by Labyrinth.
//
// Ownership while in flight: every submission first hands the page to the
// kernel (page_begin_io: free / transfer / resubmission now return BUSY),
// then submits at once. If the submission fails the SQE is turned into a
// NOP before the kernel can read it and the page comes straight back
// (page_end_io). The page comes back with its completion; for SEND_ZC with
// the notification CQE (IORING_CQE_F_NOTIF), not the first one.
//
// Provided buffers: a buffer ring (IORING_REGISTER_PBUF_RING) whose entries
// are order-0 atomic exclusive pages of the pool, each in flight (the
// kernel's) while it sits there. bid -> page is kept in bid_page. A CQE with
// IORING_CQE_F_BUFFER hands that page to the thread taking the completion.
//
// Teardown: cancel every operation, wait for every CQE (so nothing the
// kernel may still write is reused), give app pages back to their owners,
// provided-buffer pages back to the pool.
//
// One thread at a time uses a ring; counters read by other threads
// (labyrinth_ring_get_stats, the registry's in-flight check) are atomics that
// only the ring's thread writes.
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>
#include <vector>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

using namespace lab;
using uring::encode;
using uring::kKindCancel;
using uring::kKindOp;
using uring::kKindShift;
using uring::Op;

namespace lab {
namespace uring {
std::uint64_t ring_pages_inflight(const labyrinth_ring *r) { return r->pages_inflight.get(); }
void ring_set_registered(labyrinth_ring *r, bool on) { r->registered.store(on ? 1u : 0u); }
}  // namespace uring
}  // namespace lab

namespace {

const char *op_name(unsigned op) {
  switch (op) {
    case LABYRINTH_OP_READ_FIXED: return "labyrinth_ring_read_fixed";
    case LABYRINTH_OP_WRITE_FIXED: return "labyrinth_ring_write_fixed";
    case LABYRINTH_OP_SEND: return "labyrinth_ring_send";
    case LABYRINTH_OP_RECV: return "labyrinth_ring_recv";
    case LABYRINTH_OP_SEND_ZC: return "labyrinth_ring_send_zc";
    case LABYRINTH_OP_RECV_MULTISHOT: return "labyrinth_ring_recv_multishot";
    default: return "labyrinth_ring";
  }
}

io_uring_sqe *get_sqe(labyrinth_ring *r) { return uring::get_sqe(&r->ring); }
using uring::neutralize;

void give_back(labyrinth_ring *r, void *page) {
  page_end_io(r->pool, page, LABYRINTH_OWNER_NONE);
  r->pages_inflight.sub();
}

// Put an in-flight page (already the kernel's) into the buffer ring slot
// `offset` past the tail; the caller advances the tail.
void pbuf_add(labyrinth_ring *r, void *page, int offset) {
  std::uint16_t bid = r->free_bids.back();
  r->free_bids.pop_back();
  r->bid_page[bid] = page;
  io_uring_buf_ring_add(r->br, page, LABYRINTH_PAGE_SIZE, bid,
                        io_uring_buf_ring_mask(r->pb_entries), offset);
  r->pbuf_pages.add();
  r->pages_inflight.add();
  r->pbuf_refills.add();
}

void *pbuf_take(labyrinth_ring *r, std::uint16_t bid) {
  if (bid >= r->pb_entries) return nullptr;
  void *page = r->bid_page[bid];
  if (!page) return nullptr;
  r->bid_page[bid] = nullptr;
  r->free_bids.push_back(bid);
  r->pbuf_pages.sub();
  r->pages_inflight.sub();
  return page;
}

// Top the buffer ring up with atomic exclusive pages from the pool.
void pbuf_refill(labyrinth_ring *r) {
  if (!r->br || (r->flags & LABYRINTH_RING_MANUAL_REFILL) || r->free_bids.empty()) return;
  labyrinth_owner self = labyrinth_owner_self();
  int added = 0;
  while (!r->free_bids.empty()) {
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(r->pool);
    if (!page) {
      r->pbuf_refill_failures.add();
      break;
    }
    if (page_begin_io(r->pool, page, self) != LABYRINTH_OK) {
      labyrinth_free_pages(r->pool, page);
      break;
    }
    pbuf_add(r, page, added++);
  }
  if (added) io_uring_buf_ring_advance(r->br, added);
}

// Pages may be back: top the buffer ring up, then re-arm starved receives.
void replenish(labyrinth_ring *r) {
  pbuf_refill(r);
  uring::recv_rearm(r);
}

// Turn one CQE into at most one completion. In teardown nothing is handed
// to the application: its pages go back to their submitters, provided pages
// to the pool.
bool handle_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, labyrinth_completion *out,
                bool teardown) {
  std::uint64_t ud = cqe->user_data;
  if ((ud >> kKindShift) != kKindOp) return false;
  std::uint32_t idx = static_cast<std::uint32_t>(ud & 0xffffffffu);
  if (idx >= r->ops.size() || !r->ops[idx].live) return false;
  Op &o = r->ops[idx];
  labyrinth_completion c{};
  c.user_data = o.user_data;
  c.op = o.op;
  c.result = cqe->res;
  bool final = true;
  const std::uint32_t f = cqe->flags;
  switch (o.op) {
    case LABYRINTH_OP_RECV_MULTISHOT: {
      if (f & IORING_CQE_F_BUFFER) {
        void *page = pbuf_take(r, static_cast<std::uint16_t>(f >> IORING_CQE_BUFFER_SHIFT));
        if (page) {
          if (teardown) {
            page_release_from_io(r->pool, page);
          } else {
            page_end_io(r->pool, page, labyrinth_owner_self());
            c.page = page;
          }
        }
      }
      if (cqe->res == -ENOBUFS) r->pbuf_enobufs.add();
      final = !(f & IORING_CQE_F_MORE);
      if (final && cqe->res == -ENOBUFS && uring::recv_park(r, idx, teardown)) {
        // Starved, not ended: re-armed once pages are back (recv_multishot.cpp).
        if (!(r->flags & LABYRINTH_RING_REPORT_STARVED)) return false;
        c.flags = LABYRINTH_COMPLETION_MORE | LABYRINTH_COMPLETION_STARVED;
        r->completions.add();
        *out = c;
        return true;
      }
      if (!final) c.flags |= LABYRINTH_COMPLETION_MORE;
      break;
    }
    case LABYRINTH_OP_SEND_ZC:
      if (f & IORING_CQE_F_NOTIF) {
        c.result = o.first_res;
        c.flags = LABYRINTH_COMPLETION_NOTIF;
        give_back(r, o.page);
        c.page = o.page;
      } else {
        o.first_res = cqe->res;
        if (f & IORING_CQE_F_MORE) {
          c.flags = LABYRINTH_COMPLETION_MORE;
          final = false;
        } else {
          give_back(r, o.page);
          c.page = o.page;
        }
      }
      break;
    default:
      give_back(r, o.page);
      c.page = o.page;
      break;
  }
  if (final) {
    o.live = false;
    o.page = nullptr;
    r->free_ops.push_back(idx);
    r->ops_inflight.sub();
  }
  if (teardown) return false;
  r->completions.add();
  *out = c;
  return true;
}

labyrinth_status submit_failed(labyrinth_ring *r, const char *what, int err) {
  r->submit_failures.add();
  if (err == EAGAIN || err == EBUSY)
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: the kernel cannot take the submission now (%s); take completions "
                     "and submit again (the page is yours again)",
                     what, uring::errno_name(err));
  return set_error(LABYRINTH_ERR_SYSTEM,
                   "%s: io_uring_enter failed (%s, errno %d: %s); the page is yours again", what,
                   uring::errno_name(err), err, std::strerror(err));
}

// The checks every submission passes before anything changes; for a page,
// *buf_index receives its fixed-buffer index.
labyrinth_status check_submission(labyrinth_ring *r, unsigned op, int fd, void *page,
                                  std::uint32_t len, const char *what, std::uint16_t *buf_index) {
  if (fd < 0) return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not a file descriptor", what, fd);
  const bool fixed = op == LABYRINTH_OP_READ_FIXED || op == LABYRINTH_OP_WRITE_FIXED;
  if (fixed && !r->registered.load())
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the pool's arena is not registered with this ring (fd %d); call "
                     "labyrinth_pool_register_io_uring(pool, labyrinth_ring_fd(ring))",
                     what, r->ring.ring_fd);
  if (op == LABYRINTH_OP_SEND_ZC && !r->has_send_zc)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: this kernel has no IORING_OP_SEND_ZC (zero-copy send needs Linux 6.0; "
                     "probed with IORING_REGISTER_PROBE)",
                     what);
  if (op == LABYRINTH_OP_RECV_MULTISHOT) {
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
                           std::uint64_t offset, int msg_flags, std::uint64_t user_data) {
  const char *what = op_name(op);
  if (!r) return set_error(LABYRINTH_ERR_INVALID, "%s: ring is NULL", what);
  const bool multishot = op == LABYRINTH_OP_RECV_MULTISHOT;
  std::uint16_t buf_index = 0;
  labyrinth_status checked = check_submission(r, op, fd, page, len, what, &buf_index);
  if (checked != LABYRINTH_OK) return checked;
  if (r->free_ops.empty())
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: %zu operations are in flight, the ring's max_inflight; take "
                     "completions first",
                     what, r->ops.size());
  io_uring_sqe *sqe = get_sqe(r);
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
    pbuf_refill(r);
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
  o.fd = fd;
  o.msg_flags = msg_flags;
  switch (op) {
    case LABYRINTH_OP_READ_FIXED:
      io_uring_prep_read_fixed(sqe, fd, page, len, offset, buf_index);
      break;
    case LABYRINTH_OP_WRITE_FIXED:
      io_uring_prep_write_fixed(sqe, fd, page, len, offset, buf_index);
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

std::uint32_t round_pow2(std::uint32_t v) {
  std::uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Cancel every live operation and wait for all of them; pages go back.
void teardown(labyrinth_ring *r) {
  if (!r->ring_ok) return;
  uring::recv_drop_parked(r);
  if (r->ops_inflight.get()) {
    for (std::uint32_t i = 0; i < r->ops.size(); ++i) {
      if (!r->ops[i].live) continue;
      io_uring_sqe *sqe = get_sqe(r);
      if (!sqe) break;  // the kernel is saturated; the wait below still ends it
      io_uring_prep_cancel64(sqe, encode(kKindOp, i), 0);
      io_uring_sqe_set_data64(sqe, encode(kKindCancel, 0));
    }
    io_uring_submit(&r->ring);
  }
  io_uring_cqe *cqe = nullptr;
  while (r->ops_inflight.get()) {
    int ret = io_uring_wait_cqe(&r->ring, &cqe);
    if (ret == -EINTR) continue;
    if (ret < 0) {
      // Cannot wait (should not happen): resubmit the cancels and retry,
      // without spinning.
      io_uring_submit(&r->ring);
      usleep(1000);
      continue;
    }
    labyrinth_completion ignored;
    handle_cqe(r, cqe, &ignored, true);
    io_uring_cqe_seen(&r->ring, cqe);
  }
  while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
    labyrinth_completion ignored;
    handle_cqe(r, cqe, &ignored, true);
    io_uring_cqe_seen(&r->ring, cqe);
  }
  if (r->br_registered) {
    io_uring_unregister_buf_ring(&r->ring, r->bgid);
    r->br_registered = false;
  }
  for (std::uint32_t bid = 0; bid < r->bid_page.size(); ++bid) {
    if (void *page = r->bid_page[bid]) {
      r->bid_page[bid] = nullptr;
      page_release_from_io(r->pool, page);
      r->pbuf_pages.sub();
      r->pages_inflight.sub();
    }
  }
}

void free_ring(labyrinth_ring *r, bool held) {
  teardown(r);
  if (r->registered.load()) uring::unregister_arena(r->pool, r->ring.ring_fd, "labyrinth_ring_destroy", true);
  uring::managed_ring_remove(r);
  if (r->ring_ok) io_uring_queue_exit(&r->ring);
  if (r->br) munmap(r->br, r->br_bytes);
  if (held) pool_unhold(r->pool);
  delete r;
}

labyrinth_status ring_create(labyrinth_pool *pool, const labyrinth_ring_options *user_opts,
                             labyrinth_ring **out) {
  const char *what = "labyrinth_ring_create";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!out) return set_error(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  if (user_opts) {
    const std::size_t kMin = offsetof(labyrinth_ring_options, sq_entries) + sizeof(std::uint32_t);
    if (labyrinth_status st = check_struct_size(user_opts->struct_size, kMin, what, "opts",
                                                "initialise opts with labyrinth_ring_options_init()");
        st != LABYRINTH_OK)
      return st;
    copy_in(user_opts, &o);
  }
  if (o.sq_entries == 0 || o.sq_entries > 32768)
    return set_error(LABYRINTH_ERR_INVALID, "%s: sq_entries %u is not within 1..32768", what,
                     o.sq_entries);
  if (o.pbuf_entries > 32768 || (o.pbuf_entries & (o.pbuf_entries - 1)))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: pbuf_entries %u must be 0 or a power of two up to 32768", what,
                     o.pbuf_entries);
  if (o.flags & ~std::uint32_t{LABYRINTH_RING_ALL_FLAGS})
    return set_error(LABYRINTH_ERR_INVALID, "%s: unknown flags 0x%x", what,
                     o.flags & ~std::uint32_t{LABYRINTH_RING_ALL_FLAGS});
  if (o.reserved0 != 0)
    return set_error(LABYRINTH_ERR_INVALID, "%s: reserved0 must be 0", what);
  if (o.max_inflight == 0) o.max_inflight = 2 * o.sq_entries;
  if (o.max_inflight > 65536)
    return set_error(LABYRINTH_ERR_INVALID, "%s: max_inflight %u is above 65536", what,
                     o.max_inflight);

  auto *r = new labyrinth_ring;
  r->pool = pool;
  r->flags = o.flags;
  r->ops.resize(o.max_inflight);
  r->free_ops.reserve(o.max_inflight);
  for (std::uint32_t i = o.max_inflight; i-- > 0;) r->free_ops.push_back(i);

  // SUBMIT_ALL (5.18): an SQE failing at submission does not leave the
  // ones behind it unsubmitted. COOP_TASKRUN (5.19): no interrupt per
  // completion, the work runs when the thread next enters the kernel (or
  // SINGLE_ISSUER|DEFER_TASKRUN, 6.1, with LABYRINTH_RING_SINGLE_THREAD).
  // Each is dropped in turn if the kernel refuses it (EINVAL).
  std::uint32_t want_cq = round_pow2(o.max_inflight + o.pbuf_entries);
  if (want_cq < 2 * round_pow2(o.sq_entries)) want_cq = 2 * round_pow2(o.sq_entries);
  const std::uint32_t base_flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  const std::uint32_t tries[] = {
      (o.flags & LABYRINTH_RING_SINGLE_THREAD)
          ? base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                IORING_SETUP_DEFER_TASKRUN
          : base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                IORING_SETUP_TASKRUN_FLAG,
      base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      base_flags | IORING_SETUP_SUBMIT_ALL,
      base_flags,
  };
  io_uring_params params{};
  int ret = -EINVAL;
  for (std::uint32_t f : tries) {
    params = io_uring_params{};
    params.flags = f;
    params.cq_entries = want_cq;
    ret = io_uring_queue_init_params(o.sq_entries, &r->ring, &params);
    if (ret != -EINVAL) break;
  }
  r->defer_taskrun = ret == 0 && (params.flags & IORING_SETUP_DEFER_TASKRUN);
  r->single_issuer = ret == 0 && (params.flags & IORING_SETUP_SINGLE_ISSUER);
  r->creator = labyrinth_owner_self();
  if (ret < 0) {
    delete r;
    return uring::explain_unavailable(-ret, what, "io_uring_setup");
  }
  r->ring_ok = true;
  r->sq_entries = params.sq_entries;
  r->cq_entries = params.cq_entries;
  if (io_uring_probe *probe = io_uring_get_probe_ring(&r->ring)) {
    r->has_send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
  }
  pool_hold(pool);
  uring::managed_ring_add(r, r->ring.ring_fd, pool);

  if (!(o.flags & LABYRINTH_RING_NO_REGISTER)) {
    labyrinth_status st = uring::register_arena(pool, r->ring.ring_fd, r, what);
    if (st != LABYRINTH_OK) {
      free_ring(r, true);
      return st;
    }
  }
  if (o.pbuf_entries) {
    r->pb_entries = o.pbuf_entries;
    r->bgid = o.pbuf_group;
    r->br_bytes = sizeof(io_uring_buf) * o.pbuf_entries;
    void *mem = mmap(nullptr, r->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      int e = errno;
      free_ring(r, true);
      return set_error(LABYRINTH_ERR_NOMEM, "%s: mmap of the provided-buffer ring (%zu bytes) failed (%s)",
                       what, sizeof(io_uring_buf) * o.pbuf_entries, std::strerror(e));
    }
    r->br = static_cast<io_uring_buf_ring *>(mem);
    io_uring_buf_ring_init(r->br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = o.pbuf_entries;
    reg.bgid = o.pbuf_group;
    ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (ret < 0) {
      free_ring(r, true);
      if (ret == -EINVAL)
        return set_error(LABYRINTH_ERR_UNSUPPORTED,
                         "%s: this kernel has no provided-buffer rings (IORING_REGISTER_PBUF_RING "
                         "returned EINVAL; they need Linux 5.19)",
                         what);
      if (ret == -EEXIST)
        return set_error(LABYRINTH_ERR_INVALID, "%s: buffer group %u already exists", what,
                         o.pbuf_group);
      return set_error(LABYRINTH_ERR_SYSTEM,
                       "%s: registering the provided-buffer ring failed (%s, errno %d: %s)", what,
                       uring::errno_name(-ret), -ret, std::strerror(-ret));
    }
    r->br_registered = true;
    r->bid_page.assign(o.pbuf_entries, nullptr);
    r->free_bids.reserve(o.pbuf_entries);
    for (std::uint32_t b = o.pbuf_entries; b-- > 0;) r->free_bids.push_back(static_cast<std::uint16_t>(b));
    if (!(o.flags & LABYRINTH_RING_MANUAL_REFILL)) {
      pbuf_refill(r);
      if (r->pbuf_pages.get() == 0) {
        free_ring(r, true);
        return set_error(LABYRINTH_ERR_NOMEM,
                         "%s: the pool has no free page to fill the provided-buffer ring", what);
      }
    }
  }
  *out = r;
  return LABYRINTH_OK;
}

// While a receive is starved, a wait lasts at most this long, so that pages
// freed into the pool by other threads re-arm it.
constexpr long long kStarvedPollNs = 1000000;

// Wait for `want` CQEs until `deadline` (null: no limit), or kStarvedPollNs
// while a receive is starved. 1 if the deadline passed, else io_uring's result.
int wait_cqes(labyrinth_ring *r, unsigned want, const timespec *deadline) {
  long long left_ns = -1;
  if (deadline) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    left_ns = (static_cast<long long>(deadline->tv_sec) - now.tv_sec) * 1000000000LL +
              (deadline->tv_nsec - now.tv_nsec);
    if (left_ns <= 0) return 1;
  }
  if (!r->starved.empty() && (left_ns < 0 || left_ns > kStarvedPollNs)) left_ns = kStarvedPollNs;
  io_uring_cqe *cqe = nullptr;
  if (left_ns < 0) return io_uring_wait_cqes(&r->ring, &cqe, want, nullptr, nullptr);
  __kernel_timespec ts{};
  ts.tv_sec = left_ns / 1000000000LL;
  ts.tv_nsec = left_ns % 1000000000LL;
  return io_uring_wait_cqes(&r->ring, &cqe, want, &ts, nullptr);
}

labyrinth_status ring_complete(labyrinth_ring *r, labyrinth_completion *out, std::size_t max,
                               std::size_t wait_nr, std::uint32_t timeout_ms, std::size_t *count) {
  const char *what = "labyrinth_ring_complete";
  if (!r) return set_error(LABYRINTH_ERR_INVALID, "%s: ring is NULL", what);
  if (!out || !count) return set_error(LABYRINTH_ERR_INVALID, "%s: out or count is NULL", what);
  if (max == 0) return set_error(LABYRINTH_ERR_INVALID, "%s: max is 0", what);
  replenish(r);
  timespec deadline{};
  const bool infinite = timeout_ms == LABYRINTH_TIMEOUT_INFINITE;
  if (wait_nr && !infinite) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += static_cast<long>(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  std::size_t n = uring::recv_take_cancelled(r, out, max);
  labyrinth_status result = LABYRINTH_OK;
  bool flushed = false;
  while (n < max) {
    io_uring_cqe *cqe = nullptr;
    if (io_uring_peek_cqe(&r->ring, &cqe) == 0 && cqe) {
      if (handle_cqe(r, cqe, &out[n], false)) ++n;
      io_uring_cqe_seen(&r->ring, cqe);
      continue;
    }
    // Completion work the kernel deferred to us (COOP/DEFER_TASKRUN): run it
    // once, without waiting, before deciding there is nothing.
    if (!flushed && r->ops_inflight.get() &&
        (r->defer_taskrun || (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN))) {
      flushed = true;
      io_uring_get_events(&r->ring);
      continue;
    }
    // A starved receive counts as in flight: it goes on once pages are back.
    if (n >= wait_nr || (r->ops_inflight.get() == 0 && r->starved.empty())) break;
    // Pages handed back may refill the buffer ring and re-arm before we sleep.
    replenish(r);
    int ret = wait_cqes(r, static_cast<unsigned>(wait_nr - n), infinite ? nullptr : &deadline);
    if (ret == 1) break;
    flushed = false;
    if (ret == -ETIME || ret == -EINTR || ret == -EAGAIN) continue;
    if (ret < 0) {
      result = set_error(LABYRINTH_ERR_SYSTEM, "%s: waiting for completions failed (%s, errno %d)",
                         what, uring::errno_name(-ret), -ret);
      break;
    }
  }
  replenish(r);
  if (result != LABYRINTH_OK && n == 0) return result;
  *count = n;
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
    io_uring_sqe *sqe = get_sqe(r);
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
                     what, uring::errno_name(-ret));
  return LABYRINTH_OK;
}

// Put an order-0 exclusive page of the caller on the provided-buffer ring.
labyrinth_status ring_provide(labyrinth_ring *r, void *page, const char *what) {
  if (!page) return set_error(LABYRINTH_ERR_INVALID, "%s: page is NULL", what);
  if (!r->br)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring has no provided-buffer ring (created with pbuf_entries 0)", what);
  labyrinth_owner owner = LABYRINTH_OWNER_NONE;
  unsigned order = 0;
  labyrinth_status st = labyrinth_page_info(r->pool, page, &owner, &order);
  if (st != LABYRINTH_OK) return st;
  if (order != 0 || owner == LABYRINTH_OWNER_NONE)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: %p is not an order-0 exclusive page (order %u, %s)", what, page,
                     order, owner == LABYRINTH_OWNER_NONE ? "not exclusive" : "exclusive");
  if (r->free_bids.empty())
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: the provided-buffer ring is full (%u pages); the page stays yours",
                     what, r->pb_entries);
  st = page_begin_io(r->pool, page, labyrinth_owner_self());
  if (st != LABYRINTH_OK) return st;
  pbuf_add(r, page, 0);
  io_uring_buf_ring_advance(r->br, 1);
  uring::recv_rearm(r);
  return LABYRINTH_OK;
}

// ---------------------------------------------------------------------------
// C boundary
// ---------------------------------------------------------------------------

// A ring is usable while its pool is: not the parent's ring and pool in a
// forked child.
labyrinth_status enter_ring(const labyrinth_ring *r, const char *what) {
  if (!r) return set_error(LABYRINTH_ERR_INVALID, "%s: ring is NULL", what);
  return pool_usable(r->pool, what);
}

// The operations on a page (or, for multishot receive, on none).
labyrinth_status ring_op(labyrinth_ring *ring, unsigned op, int fd, void *page,
                                std::uint32_t len, std::uint64_t offset, int msg_flags,
                                std::uint64_t user_data) {
  const char *what = op_name(op);
  if (labyrinth_status st = enter_ring(ring, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] {
    return submit_op(ring, op, fd, page, len, offset, msg_flags, user_data);
  });
}

}  // namespace

extern "C" {

LABYRINTH_API void labyrinth_ring_options_init(labyrinth_ring_options *opts) {
  if (!opts) return;
  std::memset(opts, 0, sizeof(*opts));
  opts->struct_size = sizeof(*opts);
  opts->sq_entries = 256;
  opts->max_inflight = 0;
  opts->pbuf_entries = 0;
  opts->pbuf_group = 0;
  opts->flags = 0;
}

LABYRINTH_API labyrinth_status labyrinth_ring_create(labyrinth_pool *pool,
                                                     const labyrinth_ring_options *opts,
                                                     labyrinth_ring **out) {
  return guarded("labyrinth_ring_create", [&] { return ring_create(pool, opts, out); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_destroy(labyrinth_ring *ring) {
  const char *what = "labyrinth_ring_destroy";
  if (!ring) return LABYRINTH_OK;
  if (labyrinth_status st = enter_ring(ring, what); st != LABYRINTH_OK) return st;
  if (ring->single_issuer && labyrinth_owner_self() != ring->creator)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring was created with LABYRINTH_RING_SINGLE_THREAD by another "
                     "thread; only that thread can wait for its pages (nothing was changed)",
                     what);
  return guarded(what, [&] {
    free_ring(ring, true);
    return LABYRINTH_OK;
  });
}

LABYRINTH_API int labyrinth_ring_fd(const labyrinth_ring *ring) {
  return ring ? ring->ring.ring_fd : -1;
}

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

LABYRINTH_API labyrinth_status labyrinth_ring_cancel(labyrinth_ring *r, uint64_t user_data) {
  const char *what = "labyrinth_ring_cancel";
  if (labyrinth_status st = enter_ring(r, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return ring_cancel(r, user_data, what); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_provide(labyrinth_ring *r, void *page) {
  const char *what = "labyrinth_ring_provide";
  if (labyrinth_status st = enter_ring(r, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return ring_provide(r, page, what); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_complete(labyrinth_ring *ring,
                                                       labyrinth_completion *out, size_t max,
                                                       size_t wait_nr, uint32_t timeout_ms,
                                                       size_t *count) {
  const char *what = "labyrinth_ring_complete";
  if (labyrinth_status st = enter_ring(ring, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return ring_complete(ring, out, max, wait_nr, timeout_ms, count); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_get_stats(const labyrinth_ring *r,
                                                    labyrinth_ring_stats *out) {
  const char *what = "labyrinth_ring_get_stats";
  if (labyrinth_status st = enter_ring(r, what); st != LABYRINTH_OK) return st;
  if (!out) return set_error(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  if (labyrinth_status st = check_struct_size(out->struct_size,
                                              sizeof(std::size_t) + sizeof(std::uint64_t), what,
                                              "out", "set it to sizeof(labyrinth_ring_stats)");
      st != LABYRINTH_OK)
    return st;
  labyrinth_ring_stats s{};
  s.struct_size = sizeof s;
  s.submitted = r->submitted.get();
  s.submit_failures = r->submit_failures.get();
  s.completions = r->completions.get();
  s.ops_inflight = r->ops_inflight.get();
  s.pages_inflight = r->pages_inflight.get();
  s.pbuf_entries = r->pb_entries;
  s.pbuf_pages = r->pbuf_pages.get();
  s.pbuf_refills = r->pbuf_refills.get();
  s.pbuf_refill_failures = r->pbuf_refill_failures.get();
  s.pbuf_enobufs = r->pbuf_enobufs.get();
  s.recv_starvations = r->recv_starvations.get();
  s.recv_rearms = r->recv_rearms.get();
  s.recv_starved_ns = r->recv_starved_ns.get();
  s.recv_starved_now = r->recv_starved_now.get();
  s.sq_entries = r->sq_entries;
  s.cq_entries = r->cq_entries;
  s.registered = r->registered.load();
  s.fixed_buffers = uring::buffer_count(reinterpret_cast<std::uintptr_t>(pool_arena_base(r->pool)),
                                        pool_arena_size(r->pool));
  copy_out(s, out);
  return LABYRINTH_OK;
}

}  // extern "C"
