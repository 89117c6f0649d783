// datapath.cpp - the rings: FILL fed with atomic exclusive pages, RX frames
// handed to the taking thread, TX pages in flight until COMPLETION.
// Every call here is lock-free and async-signal-safe: ring indices, the
// pool's atomic calls and one sendto(MSG_DONTWAIT).
#include <sys/socket.h>

#include <cerrno>

#include "boundary.hpp"
#include "internal_api.hpp"
#include "xdp/xdp_internal.hpp"

using namespace lab;

namespace {

inline void *page_at(const labyrinth_xdp_umem *u, std::uint64_t addr) {
  return reinterpret_cast<void *>(u->base + (addr & ~std::uint64_t{LABYRINTH_XDP_FRAME_BYTES - 1}));
}

// Wake the kernel's TX path (copy mode sends only from this call).
void kick(const labyrinth_xdp_socket *s) { sendto(s->fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0); }

}  // namespace

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_refill(labyrinth_xdp_socket *s, size_t *added) {
  if (added) *added = 0;
  if (!s) return set_error(LABYRINTH_ERR_INVALID, "labyrinth_xdp_refill: sock is NULL");
  labyrinth_xdp_umem *u = s->umem;
  if (s->info.fill_frames >= s->fill_target) return LABYRINTH_OK;
  const std::uint32_t want = static_cast<std::uint32_t>(s->fill_target - s->info.fill_frames);
  std::uint32_t idx = 0;
  const std::uint32_t got = xsk_ring_prod__reserve(&s->fill, want, &idx);
  const labyrinth_owner self = labyrinth_owner_self();
  std::uint32_t n = 0;
  for (; n < got; ++n) {
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(u->pool);
    if (!page) {
      ++s->info.fill_starved;
      break;
    }
    if (page_begin_io(u->pool, page, self) != LABYRINTH_OK) {  // cannot fail: a fresh page of ours
      labyrinth_free_pages(u->pool, page);
      break;
    }
    const std::uint64_t addr = reinterpret_cast<std::uintptr_t>(page) - u->base;
    u->frame_owner.set(xdp::frame_of(addr), s->slot);
    *xsk_ring_prod__fill_addr(&s->fill, idx + n) = addr;
  }
  s->fill.cached_prod -= got - n;  // give back the reserved slots not filled
  xsk_ring_prod__submit(&s->fill, n);
  s->info.fill_frames += n;
  if (added) *added = n;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_receive(labyrinth_xdp_socket *s,
                                                                labyrinth_xdp_frame *frames,
                                                                size_t max, size_t *n) {
  if (n) *n = 0;
  if (!s || !frames || !n)
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_xdp_receive: sock, frames or n is NULL");
  labyrinth_xdp_umem *u = s->umem;
  std::uint32_t idx = 0;
  const std::uint32_t cap = max > 0xFFFFu ? 0xFFFFu : static_cast<std::uint32_t>(max);
  const std::uint32_t got = xsk_ring_cons__peek(&s->rx, cap, &idx);
  const labyrinth_owner self = labyrinth_owner_self();
  size_t taken = 0;
  for (std::uint32_t i = 0; i < got; ++i) {
    const xdp_desc *d = xsk_ring_cons__rx_desc(&s->rx, idx + i);
    const std::uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
    const std::size_t frame = xdp::frame_of(addr);
    if (u->frame_owner.get(frame) != s->slot) continue;  // never given by this socket: not ours
    u->frame_owner.set(frame, 0);
    --s->info.fill_frames;
    void *page = page_at(u, addr);
    page_end_io(u->pool, page, self);
    frames[taken].page = page;
    frames[taken].offset = static_cast<std::uint32_t>(addr & (LABYRINTH_XDP_FRAME_BYTES - 1));
    frames[taken].len = d->len;
    ++taken;
  }
  xsk_ring_cons__release(&s->rx, got);
  s->info.received += taken;
  *n = taken;
  return labyrinth_xdp_refill(s, nullptr);
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_transmit(labyrinth_xdp_socket *s, void *page,
                                                                 uint32_t offset, uint32_t len) {
  constexpr const char *what = "labyrinth_xdp_transmit";
  if (!s) return set_error(LABYRINTH_ERR_INVALID, "%s: sock is NULL", what);
  labyrinth_xdp_umem *u = s->umem;
  Pool *p;
  if (labyrinth_status st = usable_pool(u->pool, what, &p)) return st;
  if (len == 0 || offset >= LABYRINTH_XDP_FRAME_BYTES || len > LABYRINTH_XDP_FRAME_BYTES - offset)
    return refuse(p, LABYRINTH_ERR_INVALID,
                  "%s: offset %u + len %u is not inside one 4096-byte page", what, offset, len);
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(page);
  if (a >= u->base && a < u->base + u->size && (a & (LABYRINTH_XDP_FRAME_BYTES - 1)))
    return refuse(p, LABYRINTH_ERR_INVALID,
                  "%s: %p is inside a page, not its start; pass the page and an offset", what,
                  page);
  if (labyrinth_status st = page_begin_io(u->pool, page, labyrinth_owner_self())) return counted(p, st);
  std::uint32_t idx = 0;
  if (xsk_ring_prod__reserve(&s->tx, 1, &idx) != 1) {
    page_end_io(u->pool, page, LABYRINTH_OWNER_NONE);
    return refuse(p, LABYRINTH_ERR_BUSY,
                  "%s: the TX ring is full; call labyrinth_xdp_complete and retry", what);
  }
  const std::uint64_t addr = a - u->base;
  u->frame_owner.set(xdp::frame_of(addr), static_cast<std::uint8_t>(s->slot | xdp::kTxBit));
  xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, idx);
  d->addr = addr + offset;
  d->len = len;
  d->options = 0;
  xsk_ring_prod__submit(&s->tx, 1);
  ++s->info.tx_in_flight;
  kick(s);
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_complete(labyrinth_xdp_socket *s, size_t *n) {
  if (n) *n = 0;
  if (!s) return set_error(LABYRINTH_ERR_INVALID, "labyrinth_xdp_complete: sock is NULL");
  labyrinth_xdp_umem *u = s->umem;
  if (s->info.tx_in_flight) kick(s);
  std::uint32_t idx = 0;
  const std::uint32_t got = xsk_ring_cons__peek(&s->comp, 0xFFFFu, &idx);
  const std::uint8_t tx_mark = static_cast<std::uint8_t>(s->slot | xdp::kTxBit);
  size_t done = 0;
  for (std::uint32_t i = 0; i < got; ++i) {
    const std::uint64_t addr = *xsk_ring_cons__comp_addr(&s->comp, idx + i);
    const std::size_t frame = xdp::frame_of(addr);
    if (u->frame_owner.get(frame) != tx_mark) continue;
    u->frame_owner.set(frame, 0);
    page_end_io(u->pool, page_at(u, addr), LABYRINTH_OWNER_NONE);
    ++done;
  }
  xsk_ring_cons__release(&s->comp, got);
  s->info.tx_in_flight -= done;
  s->info.completed += done;
  if (n) *n = done;
  return LABYRINTH_OK;
}
