// slices.cpp - incremental consumption: one provided block, several receives.
//
// With IOU_PBUF_RING_INC the kernel fills a block of the buffer ring from
// its start, one receive after another, and keeps the block at the ring's
// head while room is left: each CQE names the block (its bid) and carries
// IORING_CQE_F_BUF_MORE while the kernel goes on filling it. The kernel does
// not say where in the block the data lies: the ring counts it (fill).
// Each receive of n > 0 bytes becomes a slice [fill, fill + n) owned by the
// thread that takes the completion.
//
// A block leaves the buffer ring (its bid is free again) at its CQE without
// BUF_MORE. It goes back to the pool when it has left the buffer ring and
// its last slice is released, whichever comes last; until then it stays in
// flight in the pool's eyes, so labyrinth_free_pages() on it is BUSY.
// Slices are released from any thread: every SliceBlock, slice_index and
// the spare list are guarded by slice_mu; bid_block is the ring thread's.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

namespace lab {
namespace uring {

namespace {

// Add d to a slice counter. Every writer holds slice_mu, so a plain load
// and store (no locked instruction) cannot lose an update; readers of the
// stats see a near snapshot, as documented.
void bump(std::atomic<std::uint64_t> &counter, int d) {
  counter.store(counter.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d),
                std::memory_order_relaxed);
}

// slice_index's entry for the block holding address a, or null outside the
// arena.
SliceBlock **slice_slot(labyrinth_ring *r, std::uintptr_t a) {
  if (a < r->slice_arena) return nullptr;
  const std::size_t i = (a - r->slice_arena) / r->pb_block_bytes;
  return i < r->slice_index_len ? &r->slice_index[i] : nullptr;
}

// A SliceBlock for the block at page (under slice_mu).
SliceBlock *block_new(labyrinth_ring *r, void *page) {
  SliceBlock *b;
  if (r->spare_blocks.empty()) {
    r->all_blocks.push_back(std::make_unique<SliceBlock>());
    b = r->all_blocks.back().get();
    b->slices.reserve(r->pb_block_bytes / 64);
  } else {
    b = r->spare_blocks.back();
    r->spare_blocks.pop_back();
  }
  b->base = reinterpret_cast<std::uintptr_t>(page);
  b->fill = 0;
  b->live = 0;
  b->filling = true;
  b->slices.clear();
  *slice_slot(r, b->base) = b;  // a pool block: inside the arena
  return b;
}

// Forget b (under slice_mu); the caller has dealt with its page.
void block_drop(labyrinth_ring *r, SliceBlock *b) {
  *slice_slot(r, b->base) = nullptr;
  r->spare_blocks.push_back(b);
}

// Why the slice named (p, gen) is not s, the slice now at p (gen != s.gen).
labyrinth_status stale_slice(const Slice &s, void *p, std::uint32_t gen, const char *what) {
  // Serial-number order: gen was handed out before s.gen (within 2^31).
  if (static_cast<std::int32_t>(gen - s.gen) < 0)
    return set_error(LABYRINTH_ERR_DOUBLE_FREE,
                     "%s: the slice at %p of generation %u was already released (its block went "
                     "back to the pool; the slice there now is generation %u, not yours to name)",
                     what, p, gen, s.gen);
  return set_error(LABYRINTH_ERR_INVALID,
                   "%s: generation %u was never handed out for the slice at %p (it is "
                   "generation %u): pass the completion's slice_gen",
                   what, gen, p, s.gen);
}

// The live slice that starts at p (under slice_mu) and, unless gen is 0,
// has generation gen; or a status saying why not.
labyrinth_status slice_find(labyrinth_ring *r, void *p, std::uint32_t gen, const char *what,
                            SliceBlock **block, Slice **slice) {
  if (!p) return set_error(LABYRINTH_ERR_INVALID, "%s: slice is NULL", what);
  if (!r->incremental)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring does not use incremental consumption (no slices)", what);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  SliceBlock **slot = slice_slot(r, a);
  if (SliceBlock *b = slot ? *slot : nullptr) {
    if (a >= b->base && a < b->base + r->pb_block_bytes) {
      const auto off = static_cast<std::uint32_t>(a - b->base);
      auto s = std::lower_bound(b->slices.begin(), b->slices.end(), off,
                                [](const Slice &x, std::uint32_t o) { return x.off < o; });
      if (s != b->slices.end() && s->off == off) {
        if (gen && gen != s->gen) return stale_slice(*s, p, gen, what);
        if (s->owner == LABYRINTH_OWNER_NONE)
          return set_error(LABYRINTH_ERR_DOUBLE_FREE,
                           "%s: the slice at %p (%u bytes) was already released", what, p, s->len);
        if (s->owner != labyrinth_owner_self())
          return set_error(LABYRINTH_ERR_NOT_OWNER,
                           "%s: the slice at %p belongs to thread %llu, not to the calling "
                           "thread %llu",
                           what, p, static_cast<unsigned long long>(s->owner),
                           static_cast<unsigned long long>(labyrinth_owner_self()));
        *block = b;
        *slice = &*s;
        return LABYRINTH_OK;
      }
    }
  }
  return set_error(LABYRINTH_ERR_INVALID,
                   "%s: %p is not the start of a slice this ring holds (a slice is the page of "
                   "a completion flagged LABYRINTH_COMPLETION_SLICE; its block may already be "
                   "back in the pool)",
                   what, p);
}

}  // namespace

void slice_from_cqe(labyrinth_ring *r, std::uint16_t bid, std::int32_t res, bool more,
                    bool datagram, bool teardown, labyrinth_completion *c) {
  if (bid >= r->pb_entries || !r->bid_page[bid]) return;
  std::lock_guard<std::mutex> lock(r->slice_mu);
  SliceBlock *&b = r->bid_block[bid];
  if (!b) b = block_new(r, r->bid_page[bid]);
  const std::uint32_t room = r->pb_block_bytes - b->fill;
  const std::uint32_t len = res > 0 ? std::min(static_cast<std::uint32_t>(res), room) : 0;
  if (len && !teardown) {
    if (++r->slice_gen == 0) r->slice_gen = 1;
    b->slices.push_back(Slice{b->fill, len, r->slice_gen, labyrinth_owner_self()});
    b->live++;
    bump(r->slices_live, +1);
    c->page = reinterpret_cast<void *>(b->base + b->fill);
    c->result = static_cast<std::int32_t>(len);
    c->slice_gen = r->slice_gen;
    c->flags |= LABYRINTH_COMPLETION_SLICE;
    // The kernel cuts a datagram at the block's end and says nothing: one
    // that reached the last byte may have been longer.
    if (datagram && len == room) {
      c->flags |= LABYRINTH_COMPLETION_MAYBE_TRUNC;
      r->recv_maybe_trunc.add();
    }
  }
  b->fill += len;
  if (more) return;
  // The kernel has moved past this block: it leaves the buffer ring.
  SliceBlock *done = b;
  b = nullptr;
  void *page = pbuf_take(r, bid);
  done->filling = false;
  if (done->live) {
    bump(r->slice_blocks_held, +1);
    return;
  }
  block_drop(r, done);
  page_release_from_io(r->pool, page);
}

labyrinth_status slice_release(labyrinth_ring *r, void *p, std::uint32_t gen, const char *what) {
  void *back = nullptr;
  {
    std::lock_guard<std::mutex> lock(r->slice_mu);
    SliceBlock *b = nullptr;
    Slice *s = nullptr;
    if (labyrinth_status st = slice_find(r, p, gen, what, &b, &s); st != LABYRINTH_OK) return st;
    s->owner = LABYRINTH_OWNER_NONE;
    b->live--;
    bump(r->slices_live, -1);
    if (b->live || b->filling) return LABYRINTH_OK;
    back = reinterpret_cast<void *>(b->base);
    bump(r->slice_blocks_held, -1);
    block_drop(r, b);
  }
  // Out of the map: no other thread can reach the block any more.
  return page_release_from_io(r->pool, back);
}

labyrinth_status slice_transfer(labyrinth_ring *r, void *p, std::uint32_t gen, labyrinth_owner to,
                                const char *what) {
  if (to == LABYRINTH_OWNER_NONE || to > LABYRINTH_OWNER_MAX)
    return set_error(LABYRINTH_ERR_INVALID, "%s: new_owner %llu is not a thread id", what,
                     static_cast<unsigned long long>(to));
  std::lock_guard<std::mutex> lock(r->slice_mu);
  SliceBlock *b = nullptr;
  Slice *s = nullptr;
  if (labyrinth_status st = slice_find(r, p, gen, what, &b, &s); st != LABYRINTH_OK) return st;
  s->owner = to;
  return LABYRINTH_OK;
}

labyrinth_status slice_check_recv(labyrinth_ring *r, int fd, int msg_flags, const char *what,
                                  bool *datagram) {
  *datagram = false;
  if (!r->incremental) return LABYRINTH_OK;
  // With MSG_TRUNC the kernel reports a datagram's full length and moves
  // its fill point by that much, past the bytes it wrote and into the next
  // block: the ring could no longer say where a slice lies.
  if (msg_flags & MSG_TRUNC)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: MSG_TRUNC is refused with incremental consumption (the kernel would "
                     "consume the datagram's full length from the provided blocks); cut "
                     "datagrams are flagged LABYRINTH_COMPLETION_MAYBE_TRUNC instead",
                     what);
  int type = 0;
  socklen_t len = sizeof type;
  // Not a socket: the receive itself fails with -ENOTSOCK.
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
    *datagram = type == SOCK_DGRAM || type == SOCK_SEQPACKET;
  return LABYRINTH_OK;
}

void slice_forget_bid(labyrinth_ring *r, std::uint16_t bid) {
  if (bid >= r->bid_block.size() || !r->bid_block[bid]) return;
  std::lock_guard<std::mutex> lock(r->slice_mu);
  block_drop(r, r->bid_block[bid]);
  r->bid_block[bid] = nullptr;
}

}  // namespace uring
}  // namespace lab

namespace {

// The four public calls: gen 0 for the calls without one (any generation).
labyrinth_status release_call(labyrinth_ring *ring, void *slice, std::uint32_t gen, bool has_gen) {
  const char *what = has_gen ? "labyrinth_ring_slice_release_gen" : "labyrinth_ring_slice_release";
  if (labyrinth_status st = lab::uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  if (has_gen && gen == 0)
    return lab::set_error(LABYRINTH_ERR_INVALID, "%s: generation 0 is never handed out", what);
  return lab::guarded(what, [&] { return lab::uring::slice_release(ring, slice, gen, what); });
}

labyrinth_status transfer_call(labyrinth_ring *ring, void *slice, std::uint32_t gen, bool has_gen,
                               labyrinth_owner to) {
  const char *what =
      has_gen ? "labyrinth_ring_slice_transfer_gen" : "labyrinth_ring_slice_transfer";
  if (labyrinth_status st = lab::uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  if (has_gen && gen == 0)
    return lab::set_error(LABYRINTH_ERR_INVALID, "%s: generation 0 is never handed out", what);
  return lab::guarded(what,
                      [&] { return lab::uring::slice_transfer(ring, slice, gen, to, what); });
}

}  // namespace

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_ring_slice_release(labyrinth_ring *ring, void *slice) {
  return release_call(ring, slice, 0, false);
}

LABYRINTH_API labyrinth_status labyrinth_ring_slice_release_gen(labyrinth_ring *ring, void *slice,
                                                                uint32_t gen) {
  return release_call(ring, slice, gen, true);
}

LABYRINTH_API labyrinth_status labyrinth_ring_slice_transfer(labyrinth_ring *ring, void *slice,
                                                             labyrinth_owner new_owner) {
  return transfer_call(ring, slice, 0, false, new_owner);
}

LABYRINTH_API labyrinth_status labyrinth_ring_slice_transfer_gen(labyrinth_ring *ring, void *slice,
                                                                 uint32_t gen,
                                                                 labyrinth_owner new_owner) {
  return transfer_call(ring, slice, gen, true, new_owner);
}

}  // extern "C"
