// recv_multishot.cpp - a multishot receive (or a bundle receive, multishot
// or one-shot) that survives an empty provided-buffer ring.
//
// The kernel ends a multishot receive with -ENOBUFS (no IORING_CQE_F_MORE)
// when it finds the provided-buffer ring empty; the data stays queued in the
// socket (a TCP stream keeps its bytes and their order; a UDP socket keeps
// its datagrams up to its receive buffer). Instead of handing that end to the
// application, the ring parks the receive (recv_park) and submits it again on
// the same op slot, with the same fd, flags and user_data, as soon as the
// buffer ring has pages again (recv_rearm). Pages come back through the
// ring's own calls only: labyrinth_ring_complete() refills from the pool
// before and while it waits (and, while a receive is starved, retries every
// kStarvedPollMs so that frees by other threads are seen), and
// labyrinth_ring_provide() adds a page. The pool's free path is untouched.
//
// Invariants: a starved slot is live, listed once in ring->starved, counted
// in recv_starved_now and not in ops_inflight (the kernel holds nothing for
// it, so teardown need not wait for it). A re-armed slot is back in
// ops_inflight. A starved slot the application cancelled moves to
// ring->cancelled and stays in recv_starved_now until its final completion
// is handed out, so that ops_inflight + recv_starved_now always counts the
// operations whose final completion the application has not taken. A slot the application cancelled (cancel_requested) is never
// parked or re-armed: its end is delivered.
#include <cerrno>
#include <ctime>

#include "uring/ring_internal.hpp"

namespace lab {
namespace uring {

namespace {

std::uint64_t now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(t.tv_nsec);
}

// Slot idx stops being starved: account the time it waited. The caller
// keeps recv_starved_now right.
void unstarve(labyrinth_ring *r, std::uint32_t idx, std::uint64_t now) {
  Op &o = r->ops[idx];
  o.starved = false;
  r->recv_starved_ns.add(now - o.starved_since_ns);
  for (std::size_t i = 0; i < r->starved.size(); ++i) {
    if (r->starved[i] == idx) {
      r->starved[i] = r->starved.back();
      r->starved.pop_back();
      break;
    }
  }
}

void release_slot(labyrinth_ring *r, std::uint32_t idx) {
  Op &o = r->ops[idx];
  o.live = false;
  o.starved = false;
  o.ended = false;
  o.page = nullptr;
  r->free_ops.push_back(idx);
}

}  // namespace

void recv_prep(labyrinth_ring *r, io_uring_sqe *sqe, std::uint32_t idx) {
  const Op &o = r->ops[idx];
  if (o.oneshot)
    io_uring_prep_recv(sqe, o.fd, nullptr, 0, o.msg_flags);
  else
    io_uring_prep_recv_multishot(sqe, o.fd, nullptr, 0, o.msg_flags);
  if (o.op == LABYRINTH_OP_RECV_BUNDLE) sqe->ioprio |= kRecvsendBundle;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = r->bgid;
  io_uring_sqe_set_data64(sqe, encode(kKindOp, idx));
}

bool recv_park(labyrinth_ring *r, std::uint32_t idx, bool teardown) {
  Op &o = r->ops[idx];
  if (teardown || o.cancel_requested || o.starved) return false;
  o.starved = true;
  o.starved_since_ns = now_ns();
  r->starved.push_back(idx);
  r->ops_inflight.sub();
  r->recv_starvations.add();
  r->recv_starved_now.add();
  return true;
}

bool recv_continue(labyrinth_ring *r, std::uint32_t idx, bool teardown) {
  Op &o = r->ops[idx];
  if (teardown || o.cancel_requested || o.starved) return false;
  if (io_uring_sqe *sqe = get_sqe(&r->ring)) {
    recv_prep(r, sqe, idx);
    if (submit_now(&r->ring) >= 0) return true;
    neutralize(sqe);  // not consumed
  }
  return recv_park(r, idx, teardown);  // recv_rearm retries it
}

void recv_rearm(labyrinth_ring *r) {
  if (r->starved.empty() || r->pbuf_pages.get() == 0) return;
  while (!r->starved.empty()) {
    const std::uint32_t idx = r->starved.back();
    io_uring_sqe *sqe = get_sqe(&r->ring);
    if (!sqe) return;  // the submission queue is full: the next call retries
    recv_prep(r, sqe, idx);
    if (submit_now(&r->ring) < 0) {
      // Not consumed: retract it and retry on the next call.
      neutralize(sqe);
      return;
    }
    unstarve(r, idx, now_ns());
    r->recv_starved_now.sub();
    r->recv_rearms.add();
    r->ops_inflight.add();
  }
}

bool recv_cancel_starved(labyrinth_ring *r, std::uint32_t idx) {
  if (!r->ops[idx].starved) return false;
  unstarve(r, idx, now_ns());
  r->ops[idx].ended = true;
  r->cancelled.push_back(idx);
  return true;
}

std::size_t recv_take_cancelled(labyrinth_ring *r, labyrinth_completion *out, std::size_t max) {
  std::size_t n = 0;
  while (n < max && !r->cancelled.empty()) {
    const std::uint32_t idx = r->cancelled.back();
    r->cancelled.pop_back();
    r->recv_starved_now.sub();
    labyrinth_completion c{};
    c.user_data = r->ops[idx].user_data;
    c.result = -ECANCELED;
    c.op = LABYRINTH_OP_RECV_MULTISHOT;
    release_slot(r, idx);
    r->completions.add();
    out[n++] = c;
  }
  return n;
}

void recv_drop_parked(labyrinth_ring *r) {
  const std::uint64_t now = now_ns();
  while (!r->starved.empty()) {
    const std::uint32_t idx = r->starved.back();
    unstarve(r, idx, now);
    r->recv_starved_now.sub();
    release_slot(r, idx);
  }
  for (std::uint32_t idx : r->cancelled) {
    r->recv_starved_now.sub();
    release_slot(r, idx);
  }
  r->cancelled.clear();
}

}  // namespace uring
}  // namespace lab
