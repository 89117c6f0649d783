// pbuf_ring.cpp - the managed ring's provided-buffer ring.
//
// A buffer ring (IORING_REGISTER_PBUF_RING) whose entries are order-0 atomic
// exclusive pages of the pool, each in flight (the kernel's) while it sits
// there. bid -> page is kept in bid_page; a free bid is in free_bids. A CQE
// with IORING_CQE_F_BUFFER hands that page to the thread taking the
// completion (pbuf_take). With incremental consumption the entries are
// blocks of 2^pb_order pages and a CQE hands out a slice (slices.cpp).
#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

namespace lab {
namespace uring {

// Put an in-flight page (already the kernel's) into the buffer ring slot
// `offset` past the tail; the caller advances the tail.
void pbuf_add(labyrinth_ring *r, void *page, int offset) {
  std::uint16_t bid = r->free_bids.back();
  r->free_bids.pop_back();
  r->bid_page[bid] = page;
  const int mask = io_uring_buf_ring_mask(r->pb_entries);
  r->bid_pos[bid] = static_cast<std::uint16_t>((r->br->tail + offset) & mask);  // bundle.cpp
  io_uring_buf_ring_add(r->br, page, r->pb_block_bytes, bid, mask, offset);
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
    void *page = nullptr;
    if (r->pb_order == 0)
      page = labyrinth_void_alloc_page_gfp_atomic_exclusive(r->pool);
    else if (labyrinth_alloc_pages(r->pool, r->pb_order,
                                   LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0,
                                   &page) != LABYRINTH_OK)
      page = nullptr;
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

// IORING_REGISTER_PBUF_RING of r's buffer ring, incremental if inc (then
// with o.max_datagram as min_left); sets r->incremental and r->min_left on
// success. 0 or -errno.
static int register_buf_ring(labyrinth_ring *r, const labyrinth_ring_options &o, bool inc) {
  BufRegMinLeft mine{};
  mine.ring_addr = reinterpret_cast<std::uint64_t>(r->br);
  mine.ring_entries = o.pbuf_entries;
  mine.bgid = o.pbuf_group;
  mine.flags = inc ? kPbufRingInc : 0;
  mine.min_left = inc ? o.max_datagram : 0;
  io_uring_buf_reg reg;
  std::memcpy(&reg, &mine, sizeof reg);
  int ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
  if (ret == 0) {
    r->incremental = inc;
    r->min_left = mine.min_left;
  }
  return ret;
}

// Map and register the buffer ring of `o` and fill it (unless
// LABYRINTH_RING_MANUAL_REFILL). On error the caller frees the ring.
labyrinth_status pbuf_setup(labyrinth_ring *r, const labyrinth_ring_options &o, const char *what) {
  r->pb_entries = o.pbuf_entries;
  r->bgid = o.pbuf_group;
  r->br_bytes = sizeof(io_uring_buf) * o.pbuf_entries;
  void *mem = mmap(nullptr, r->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    int e = errno;
    return set_error(LABYRINTH_ERR_NOMEM, "%s: mmap of the provided-buffer ring (%zu bytes) failed (%s)",
                     what, sizeof(io_uring_buf) * o.pbuf_entries, std::strerror(e));
  }
  r->br = static_cast<io_uring_buf_ring *>(mem);
  io_uring_buf_ring_init(r->br);
  const bool want_inc = o.flags & (LABYRINTH_RING_PBUF_INCREMENTAL |
                                   LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE);
  int ret = register_buf_ring(r, o, want_inc);
  if (ret == -EINVAL && want_inc) {
    if (o.flags & LABYRINTH_RING_PBUF_INCREMENTAL)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       o.max_datagram
                           ? "%s: this kernel cannot keep room for max_datagram in incremental "
                             "buffers (IOU_PBUF_RING_INC's min_left needs Linux 7.1, or 6.12/6.18 "
                             "stable kernels that have it; incremental consumption itself needs "
                             "6.12); use LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE to fall "
                             "back to a page per receive"
                           : "%s: this kernel has no incremental consumption of provided buffers "
                             "(IOU_PBUF_RING_INC needs Linux 6.12); use "
                             "LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE to fall back to a page "
                             "per receive",
                       what);
    ret = register_buf_ring(r, o, false);
  }
  if (ret < 0) {
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
                     errno_name(-ret), -ret, std::strerror(-ret));
  }
  r->br_registered = true;
  if (r->incremental) {
    r->pb_order = o.pbuf_order;
    r->pb_block_bytes = LABYRINTH_PAGE_SIZE << o.pbuf_order;
    r->bid_block.assign(o.pbuf_entries, nullptr);
    r->slice_arena = reinterpret_cast<std::uintptr_t>(pool_arena_base(r->pool));
    r->slice_index_len = pool_arena_size(r->pool) / r->pb_block_bytes;
    r->slice_index.reset(static_cast<SliceBlock **>(
        std::calloc(r->slice_index_len ? r->slice_index_len : 1, sizeof(SliceBlock *))));
    if (!r->slice_index)
      return set_error(LABYRINTH_ERR_NOMEM, "%s: no memory for the slice index (%zu blocks)",
                       what, r->slice_index_len);
  }
  r->bid_page.assign(o.pbuf_entries, nullptr);
  r->bid_pos.assign(o.pbuf_entries, 0);
  r->free_bids.reserve(o.pbuf_entries);
  for (std::uint32_t b = o.pbuf_entries; b-- > 0;) r->free_bids.push_back(static_cast<std::uint16_t>(b));
  if (!(o.flags & LABYRINTH_RING_MANUAL_REFILL)) {
    pbuf_refill(r);
    if (r->pbuf_pages.get() == 0)
      return set_error(LABYRINTH_ERR_NOMEM,
                       "%s: the pool has no free page to fill the provided-buffer ring", what);
  }
  return LABYRINTH_OK;
}

// Teardown, once the kernel holds no operation: unregister the buffer ring
// and give the pages still in it back to the pool.
void pbuf_release_all(labyrinth_ring *r) {
  if (r->br_registered) {
    io_uring_unregister_buf_ring(&r->ring, r->bgid);
    r->br_registered = false;
  }
  for (std::uint32_t bid = 0; bid < r->bid_page.size(); ++bid) {
    if (void *page = r->bid_page[bid]) {
      slice_forget_bid(r, static_cast<std::uint16_t>(bid));
      r->bid_page[bid] = nullptr;
      page_release_from_io(r->pool, page);
      r->pbuf_pages.sub();
      r->pages_inflight.sub();
    }
  }
}

// Put an order-0 exclusive page of the caller on the provided-buffer ring.
labyrinth_status ring_provide(labyrinth_ring *r, void *page, const char *what) {
  if (!page) return set_error(LABYRINTH_ERR_INVALID, "%s: page is NULL", what);
  if (!r->br)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring has no provided-buffer ring (created with pbuf_entries 0)", what);
  if (r->incremental)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring uses incremental consumption: it feeds its provided-buffer "
                     "ring itself (release slices with labyrinth_ring_slice_release)",
                     what);
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
  recv_rearm(r);
  return LABYRINTH_OK;
}

}  // namespace uring
}  // namespace lab
