// complete.cpp - taking the managed ring's completions.
//
// A page comes back with its operation's completion; for SEND_ZC with the
// notification CQE (IORING_CQE_F_NOTIF), not the first one. A multishot
// receive's CQE hands the provided page it filled to the thread taking the
// completion. Before and while it waits, labyrinth_ring_complete() refills
// the provided-buffer ring and re-arms starved receives (replenish).
#include <liburing.h>

#include <cerrno>
#include <ctime>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

using namespace lab;
using uring::kKindOp;
using uring::kKindShift;
using uring::Op;

namespace {

void give_back(labyrinth_ring *r, void *page) {
  page_end_io(r->pool, page, LABYRINTH_OWNER_NONE);
  r->pages_inflight.sub();
}

}  // namespace

namespace lab {
namespace uring {

// Pages may be back: top the buffer ring up, then re-arm starved receives.
void replenish(labyrinth_ring *r) {
  pbuf_refill(r);
  recv_rearm(r);
}

// Turn one CQE into at most one completion. In teardown nothing is handed
// to the application: its pages go back to their submitters, provided pages
// to the pool.
bool handle_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, labyrinth_completion *out,
                bool teardown) {
  std::uint64_t ud = cqe->user_data;
  if ((ud >> kKindShift) == uring::kKindTag) return uring::buffer_released(r);
  if ((ud >> kKindShift) != kKindOp) return false;
  std::uint32_t idx = static_cast<std::uint32_t>(ud & 0xffffffffu);
  if (idx >= r->ops.size() || !r->ops[idx].live) return false;
  Op &o = r->ops[idx];
  labyrinth_completion c{};
  c.user_data = o.user_data;
  c.op = o.op;
  c.result = cqe->res;
  bool final = true;
  bool queued = false;  // its completions went to bundle_pending
  const std::uint32_t f = cqe->flags;
  switch (o.op) {
    case LABYRINTH_OP_RECV_MULTISHOT:
    case LABYRINTH_OP_RECV_BUNDLE: {
      const bool bundle = o.op == LABYRINTH_OP_RECV_BUNDLE;
      if (bundle) {
        // Its pages are taken below, once `final` is known.
      } else if ((f & IORING_CQE_F_BUFFER) && r->incremental) {
        uring::slice_from_cqe(r, static_cast<std::uint16_t>(f >> IORING_CQE_BUFFER_SHIFT), cqe->res,
                              f & uring::kCqeBufMore, o.datagram, teardown, &c);
      } else if (f & IORING_CQE_F_BUFFER) {
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
      if (final && cqe->res > 0 && !o.oneshot && uring::recv_continue(r, idx, teardown))
        final = false;
      if (final && cqe->res == -ENOBUFS && recv_park(r, idx, teardown)) {
        // Starved, not ended: re-armed once pages are back (recv_multishot.cpp).
        if (!(r->flags & LABYRINTH_RING_REPORT_STARVED)) return false;
        c.flags = LABYRINTH_COMPLETION_MORE | LABYRINTH_COMPLETION_STARVED;
        r->completions.add();
        *out = c;
        return true;
      }
      // A bundle's pages come out of bundle_pending, one completion each.
      queued = bundle && uring::bundle_recv_cqe(r, cqe, o, final, teardown) > 0;
      if (!final) c.flags |= LABYRINTH_COMPLETION_MORE;
      break;
    }
    case LABYRINTH_OP_SEND_BUNDLE:
      final = !(f & IORING_CQE_F_MORE);
      uring::bundle_send_cqe(r, cqe, o, final, teardown);
      queued = true;
      break;
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
  if (teardown || queued) return false;
  r->completions.add();
  *out = c;
  return true;
}

}  // namespace uring
}  // namespace lab

namespace {

using uring::replenish;

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
    // A bundle's pages go out before any later completion.
    if (!r->bundle_pending.empty()) {
      n += uring::bundle_take_pending(r, out + n, max - n);
      continue;
    }
    io_uring_cqe *cqe = nullptr;
    if (io_uring_peek_cqe(&r->ring, &cqe) == 0 && cqe) {
      if (uring::handle_cqe(r, cqe, &out[n], false)) ++n;
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
                         what, errno_name(-ret), -ret);
      break;
    }
  }
  replenish(r);
  if (result != LABYRINTH_OK && n == 0) return result;
  *count = n;
  return LABYRINTH_OK;
}

}  // namespace

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_ring_complete(labyrinth_ring *ring,
                                                       labyrinth_completion *out, size_t max,
                                                       size_t wait_nr, uint32_t timeout_ms,
                                                       size_t *count) {
  const char *what = "labyrinth_ring_complete";
  if (labyrinth_status st = uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return ring_complete(ring, out, max, wait_nr, timeout_ms, count); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_get_stats(const labyrinth_ring *r,
                                                    labyrinth_ring_stats *out) {
  const char *what = "labyrinth_ring_get_stats";
  if (labyrinth_status st = uring::enter_ring(r, what); st != LABYRINTH_OK) return st;
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
  s.pbuf_incremental = r->incremental ? 1u : 0u;
  s.pbuf_block_bytes = r->pb_entries ? r->pb_block_bytes : 0u;
  s.slices_live = r->slices_live.load(std::memory_order_relaxed);
  s.slice_blocks_held = r->slice_blocks_held.load(std::memory_order_relaxed);
  s.recv_bundles = r->recv_bundles.get();
  s.recv_bundle_pages = r->recv_bundle_pages.get();
  s.send_bundles = r->send_bundles.get();
  s.send_bundle_pages = r->send_bundle_pages.get();
  s.recv_maybe_trunc = r->recv_maybe_trunc.get();
  s.pbuf_min_left = r->min_left;
  s.sq_entries = r->sq_entries;
  s.cq_entries = r->cq_entries;
  s.registered = r->registered.load();
  s.fixed_buffers = uring::buffer_count(reinterpret_cast<std::uintptr_t>(pool_arena_base(r->pool)),
                                        pool_arena_size(r->pool));
  uring::buffer_stats(r, &s);
  copy_out(s, out);
  return LABYRINTH_OK;
}

}  // extern "C"
