// bundle.cpp - bundles (IORING_RECVSEND_BUNDLE, Linux 6.10): a receive CQE
// that covers several provided pages, and a send of a queue of pages in one
// submission.
//
// Receive: the kernel fills consecutive entries of the provided-buffer ring,
// starting at the entry of the CQE's buffer id, and consumes as many as the
// bytes need (io_uring/net.c, io_bundle_nbufs: 0 for a result <= 0). The
// ring position of every bid is recorded when it is put on the ring
// (bid_pos), so the pages of a CQE are read from the entries that follow;
// they stay unchanged until taken, because a refill writes only into
// entries whose bids are free. Each page becomes its own completion, queued
// in bundle_pending and handed out by labyrinth_ring_complete() before any
// later CQE; a queued page stays in flight (page_end_io at hand-out), so
// teardown can give it back to the pool.
//
// Send: the caller's pages go, in order, into a buffer ring of the ring's
// own (group kSendGroup), and one IORING_OP_SEND with BUFFER_SELECT and the
// bundle flag sends them; the kernel adds MSG_WAITALL and keeps sending
// while the buffer ring has entries, posting a CQE (MORE) per round. A CQE
// of res bytes consumed the pages those bytes cover, a partly sent one
// included. At most one bundled send is in flight, so the buffer ring holds
// only its pages; if the send ends with pages unsent, they come back with
// its final CQE and the buffer ring is registered afresh (its kernel head
// would otherwise still point at them).
#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

namespace lab {
namespace uring {

namespace {

constexpr std::uint16_t kSendGroup = 0xfffe;  // the send buffer ring's group id
constexpr std::uint32_t kSendEntries = LABYRINTH_SEND_BUNDLE_MAX;
constexpr std::size_t kSendRingBytes = sizeof(io_uring_buf) * kSendEntries;

// One completion of a bundle page (the page is still in flight).
labyrinth_completion page_completion(const Op &o, void *page, std::int32_t result,
                                     std::uint32_t flags) {
  labyrinth_completion c{};
  c.user_data = o.user_data;
  c.page = page;
  c.result = result;
  c.op = o.op;
  c.flags = LABYRINTH_COMPLETION_BUNDLE | flags;
  return c;
}

// (Re)register the send buffer ring, empty. 0 or -errno.
int send_ring_register(labyrinth_ring *r) {
  SendBundle &sb = r->send_bundle;
  if (sb.registered) {
    io_uring_unregister_buf_ring(&r->ring, sb.bgid);
    sb.registered = false;
  }
  io_uring_buf_ring_init(sb.br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(sb.br);
  reg.ring_entries = kSendEntries;
  reg.bgid = sb.bgid;
  int ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
  sb.registered = ret == 0;
  return ret;
}

// Map and register the send buffer ring at the first bundled send.
labyrinth_status send_ring_setup(labyrinth_ring *r, const char *what) {
  SendBundle &sb = r->send_bundle;
  if (sb.registered) return LABYRINTH_OK;
  if (!sb.br) {
    void *mem = mmap(nullptr, kSendRingBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
      return set_error(LABYRINTH_ERR_NOMEM, "%s: mmap of the send buffer ring failed (%s)", what,
                       std::strerror(errno));
    sb.br = static_cast<io_uring_buf_ring *>(mem);
  }
  // The group must differ from the receive ring's.
  sb.bgid = (r->br && r->bgid == kSendGroup) ? kSendGroup + 1 : kSendGroup;
  int ret = send_ring_register(r);
  if (ret < 0)
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "%s: registering the send buffer ring failed (%s, errno %d: %s)", what,
                     errno_name(-ret), -ret, std::strerror(-ret));
  return LABYRINTH_OK;
}

// Every check of labyrinth_ring_send_bundle that needs no change.
labyrinth_status check_send(labyrinth_ring *r, int fd, void *const *pages,
                            const std::uint32_t *lens, std::size_t count, const char *what) {
  if (!r->has_bundle)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: this kernel has no bundles (IORING_RECVSEND_BUNDLE needs Linux 6.10; "
                     "IORING_FEAT_RECVSEND_BUNDLE is not set)",
                     what);
  if (fd < 0)
    return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not a file descriptor", what, fd);
  if (!pages || !lens) return set_error(LABYRINTH_ERR_INVALID, "%s: pages or lens is NULL", what);
  if (count == 0 || count > kSendEntries)
    return set_error(LABYRINTH_ERR_INVALID, "%s: count %zu is not within 1..%u", what, count,
                     kSendEntries);
  if (r->send_bundle.idx != ~0u)
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: a bundled send is already in flight on this ring; take its "
                     "completions first",
                     what);
  if (r->free_ops.empty())
    return set_error(LABYRINTH_ERR_BUSY, "%s: max_inflight operations are in flight", what);
  for (std::size_t i = 0; i < count; ++i) {
    if (!pages[i]) return set_error(LABYRINTH_ERR_INVALID, "%s: pages[%zu] is NULL", what, i);
    unsigned order = 0;
    if (labyrinth_status st = labyrinth_page_info(r->pool, pages[i], nullptr, &order);
        st != LABYRINTH_OK)
      return st;
    const std::size_t cap = std::size_t{LABYRINTH_PAGE_SIZE} << order;
    if (lens[i] == 0 || lens[i] > cap)
      return set_error(LABYRINTH_ERR_INVALID, "%s: lens[%zu] = %u is not within 1..%zu", what, i,
                       lens[i], cap);
    for (std::size_t j = 0; j < i; ++j)
      if (pages[j] == pages[i])
        return set_error(LABYRINTH_ERR_INVALID, "%s: page %p is listed twice (%zu and %zu)", what,
                         pages[i], j, i);
  }
  return LABYRINTH_OK;
}

// Pages [0, n) of the queue go back to the caller (a refused send).
void unbegin(labyrinth_ring *r, void *const *pages, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) page_end_io(r->pool, pages[i], LABYRINTH_OWNER_NONE);
}

labyrinth_status send_bundle(labyrinth_ring *r, int fd, void *const *pages,
                             const std::uint32_t *lens, std::size_t count, int msg_flags,
                             std::uint64_t user_data, const char *what) {
  if (labyrinth_status st = check_send(r, fd, pages, lens, count, what); st != LABYRINTH_OK)
    return st;
  if (labyrinth_status st = send_ring_setup(r, what); st != LABYRINTH_OK) return st;
  io_uring_sqe *sqe = get_sqe(&r->ring);
  if (!sqe)
    return set_error(LABYRINTH_ERR_BUSY, "%s: the submission queue is full; take completions first",
                     what);
  const labyrinth_owner self = labyrinth_owner_self();
  for (std::size_t i = 0; i < count; ++i) {
    if (labyrinth_status st = page_begin_io(r->pool, pages[i], self); st != LABYRINTH_OK) {
      unbegin(r, pages, i);
      neutralize(sqe);
      return st;
    }
  }
  SendBundle &sb = r->send_bundle;
  const int mask = io_uring_buf_ring_mask(kSendEntries);
  const std::uint16_t tail = sb.br->tail;
  for (std::size_t i = 0; i < count; ++i)
    io_uring_buf_ring_add(sb.br, pages[i], lens[i], static_cast<std::uint16_t>(i), mask,
                          static_cast<int>(i));
  io_uring_buf_ring_advance(sb.br, static_cast<int>(count));
  const std::uint32_t idx = r->free_ops.back();
  Op &o = r->ops[idx];
  o = Op{};
  o.user_data = user_data;
  o.op = LABYRINTH_OP_SEND_BUNDLE;
  o.live = true;
  o.fd = fd;
  o.msg_flags = msg_flags;
  io_uring_prep_send(sqe, fd, nullptr, 0, msg_flags);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = sb.bgid;
  sqe->ioprio |= kRecvsendBundle;
  io_uring_sqe_set_data64(sqe, encode(kKindOp, idx));
  int ret = submit_now(&r->ring);
  if (ret < 0) {
    // The kernel has seen neither the SQE nor, with no request of the
    // group in flight, the entries: take both back.
    neutralize(sqe);
    io_uring_smp_store_release(&sb.br->tail, tail);
    o.live = false;
    unbegin(r, pages, count);
    r->submit_failures.add();
    return set_error(-ret == EAGAIN || -ret == EBUSY ? LABYRINTH_ERR_BUSY : LABYRINTH_ERR_SYSTEM,
                     "%s: io_uring_enter failed (%s); the pages are yours again", what,
                     errno_name(-ret));
  }
  r->free_ops.pop_back();
  sb.idx = idx;
  sb.pages.assign(pages, pages + count);
  sb.lens.assign(lens, lens + count);
  sb.next = 0;
  sb.sent = 0;
  sb.total = 0;
  for (std::size_t i = 0; i < count; ++i) sb.total += lens[i];
  r->submitted.add();
  r->ops_inflight.add();
  r->pages_inflight.add(count);
  return LABYRINTH_OK;
}

}  // namespace

std::size_t bundle_recv_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, const Op &o, bool final,
                            bool teardown) {
  if (!(cqe->flags & IORING_CQE_F_BUFFER) || cqe->res <= 0) return 0;
  const std::uint16_t first = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  if (first >= r->pb_entries) return 0;
  const std::uint32_t mask = r->pb_entries - 1;
  std::uint32_t pos = r->bid_pos[first];
  std::uint32_t left = static_cast<std::uint32_t>(cqe->res);
  std::size_t n = 0;
  while (left > 0) {
    const io_uring_buf &e = r->br->bufs[pos & mask];
    const std::uint32_t bytes = left < e.len ? left : e.len;
    void *page = pbuf_take(r, e.bid);
    if (!page) break;  // not ours: the entries were not in ring order
    left -= bytes;
    ++pos;
    ++n;
    if (teardown) {
      page_release_from_io(r->pool, page);
      continue;
    }
    r->bundle_pending.push_back(page_completion(o, page, static_cast<std::int32_t>(bytes),
                                                LABYRINTH_COMPLETION_MORE));
  }
  if (!teardown && n) {
    r->bundle_pending.back().flags |= LABYRINTH_COMPLETION_BUNDLE_END;
    if (final) r->bundle_pending.back().flags &= ~LABYRINTH_COMPLETION_MORE;
  }
  r->recv_bundles.add();
  r->recv_bundle_pages.add(n);
  return n;
}

void bundle_send_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, const Op &o, bool final,
                     bool teardown) {
  SendBundle &sb = r->send_bundle;
  const std::size_t first = sb.next;
  std::uint32_t left = cqe->res > 0 ? static_cast<std::uint32_t>(cqe->res) : 0;
  std::vector<std::int32_t> results;
  if (!final && cqe->res > 0) sb.sent += static_cast<std::uint64_t>(cqe->res);
  while (sb.next < sb.pages.size() && left > 0) {
    const std::uint32_t bytes = left < sb.lens[sb.next] ? left : sb.lens[sb.next];
    results.push_back(static_cast<std::int32_t>(bytes));
    left -= bytes;
    ++sb.next;
  }
  if (final) {
    const std::int32_t unsent = cqe->res < 0 ? cqe->res : -ECANCELED;
    // Short of every byte, the kernel may have left entries on the ring:
    // start it afresh so that the next send does not find them.
    if (sb.next < sb.pages.size() || sb.sent + (cqe->res > 0 ? cqe->res : 0) < sb.total)
      send_ring_register(r);
    while (sb.next < sb.pages.size()) {
      results.push_back(unsent);
      ++sb.next;
    }
  }
  r->send_bundles.add();
  for (std::size_t i = 0; i < results.size(); ++i) {
    void *page = sb.pages[first + i];
    r->send_bundle_pages.add();
    if (teardown) {
      page_end_io(r->pool, page, LABYRINTH_OWNER_NONE);
      r->pages_inflight.sub();
      continue;
    }
    const bool last = final && i + 1 == results.size();
    r->bundle_pending.push_back(page_completion(o, page, results[i],
                                                last ? 0u : LABYRINTH_COMPLETION_MORE));
  }
  if (!results.empty() && !teardown)
    r->bundle_pending.back().flags |= LABYRINTH_COMPLETION_BUNDLE_END;
  if (final && results.empty() && !teardown)  // every page came back before: say it ended
    r->bundle_pending.push_back(page_completion(o, nullptr, cqe->res, 0));
  if (final) {
    sb.idx = ~0u;
    sb.pages.clear();
    sb.lens.clear();
    sb.next = 0;
  }
}

std::size_t bundle_take_pending(labyrinth_ring *r, labyrinth_completion *out, std::size_t max) {
  std::size_t n = 0;
  const labyrinth_owner self = labyrinth_owner_self();
  while (n < max && !r->bundle_pending.empty()) {
    labyrinth_completion c = r->bundle_pending.front();
    r->bundle_pending.pop_front();
    if (c.page) {
      // A received page goes to the taker, a sent one to its owner.
      page_end_io(r->pool, c.page, c.op == LABYRINTH_OP_RECV_BUNDLE ? self : LABYRINTH_OWNER_NONE);
      if (c.op == LABYRINTH_OP_SEND_BUNDLE) r->pages_inflight.sub();
    }
    r->completions.add();
    out[n++] = c;
  }
  return n;
}

void bundle_release_all(labyrinth_ring *r) {
  for (const labyrinth_completion &c : r->bundle_pending) {
    if (!c.page) continue;
    if (c.op == LABYRINTH_OP_RECV_BUNDLE) {
      page_release_from_io(r->pool, c.page);
    } else {
      page_end_io(r->pool, c.page, LABYRINTH_OWNER_NONE);
      r->pages_inflight.sub();
    }
  }
  r->bundle_pending.clear();
  SendBundle &sb = r->send_bundle;
  if (sb.registered) io_uring_unregister_buf_ring(&r->ring, sb.bgid);
  sb.registered = false;
  if (sb.br) munmap(sb.br, kSendRingBytes);
  sb.br = nullptr;
}

}  // namespace uring
}  // namespace lab

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_ring_send_bundle(labyrinth_ring *ring, int fd,
                                                          void *const *pages,
                                                          const uint32_t *lens, size_t count,
                                                          int msg_flags, uint64_t user_data) {
  const char *what = "labyrinth_ring_send_bundle";
  if (labyrinth_status st = lab::uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  return lab::guarded(what, [&] {
    return lab::uring::send_bundle(ring, fd, pages, lens, count, msg_flags, user_data, what);
  });
}

}  // extern "C"
