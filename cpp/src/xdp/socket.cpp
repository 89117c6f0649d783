// socket.cpp - binding an AF_XDP socket to (interface, queue) on a UMEM,
// the mode in use, and teardown that returns every frame the kernel held.
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "boundary.hpp"
#include "internal_api.hpp"
#include "xdp/xdp_internal.hpp"

using namespace lab;

namespace {

constexpr const char *kCreate = "labyrinth_xdp_socket_create";

labyrinth_status check_options(labyrinth_xdp_socket_options &o) {
  if (!o.ifname || !o.ifname[0])
    return set_error(LABYRINTH_ERR_INVALID, "%s: opts->ifname is NULL or empty", kCreate);
  if (o.ring_size < 64 || o.ring_size > 32768 || (o.ring_size & (o.ring_size - 1)))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: ring_size %u is not a power of two in [64, 32768]", kCreate, o.ring_size);
  if (o.fill_target == 0) o.fill_target = o.ring_size / 2;
  if (o.fill_target > o.ring_size)
    return set_error(LABYRINTH_ERR_INVALID, "%s: fill_target %u is above ring_size %u",
                     kCreate, o.fill_target, o.ring_size);
  if (o.flags & ~LABYRINTH_XDP_ALL)
    return set_error(LABYRINTH_ERR_INVALID, "%s: unknown flags 0x%x", kCreate,
                     o.flags & ~LABYRINTH_XDP_ALL);
  return LABYRINTH_OK;
}

// Bind with bind_flags; libxdp attaches its default program. 0 or -errno.
int bind_socket(labyrinth_xdp_socket *s, const labyrinth_xdp_socket_options &o,
                std::uint16_t bind_flags) {
  xsk_socket_config cfg{};
  cfg.rx_size = o.ring_size;
  cfg.tx_size = o.ring_size;
  cfg.xdp_flags = (o.flags & LABYRINTH_XDP_GENERIC) ? XDP_FLAGS_SKB_MODE : 0;
  cfg.bind_flags = bind_flags;
  // The UMEM's first socket binds the UMEM's own fd, whose FILL and
  // COMPLETION rings libxdp mapped at xsk_umem__create: pass libxdp's own
  // ring structs so that a failed attempt leaves them mapped for the next.
  labyrinth_xdp_umem *u = s->umem;
  const bool first = !u->own_fd_bound;
  int rc = xsk_socket__create_shared(&s->xsk, o.ifname, o.queue, u->umem, &s->rx, &s->tx,
                                     first ? &u->fill_save : &s->fill,
                                     first ? &u->comp_save : &s->comp, &cfg);
  if (rc == 0 && first) {
    s->fill = u->fill_save;
    s->comp = u->comp_save;
    s->on_umem_fd = true;
    u->own_fd_bound = true;
  }
  return rc;
}

// Zero-copy first unless COPY is asked; copy mode where the driver refuses.
labyrinth_status open_socket(labyrinth_xdp_socket *s, const labyrinth_xdp_socket_options &o) {
  int rc = -EBUSY;
  // A queue stays taken for a moment after its previous socket closed (the
  // kernel releases it from a workqueue): retry EBUSY for up to ~0.5 s.
  for (int tries = 0; rc == -EBUSY && tries < 50; ++tries) {
    if (tries) usleep(10 * 1000);
    rc = -EOPNOTSUPP;
    if (!(o.flags & LABYRINTH_XDP_COPY)) rc = bind_socket(s, o, XDP_ZEROCOPY);
    if (rc == -EOPNOTSUPP || rc == -EPROTONOSUPPORT || rc == -EINVAL) rc = bind_socket(s, o, XDP_COPY);
  }
  if (rc != 0) {
    s->xsk = nullptr;
    return xdp::explain_failure(-rc, kCreate,
                                "binding the AF_XDP socket and attaching the XDP program",
                                s->umem->size);
  }
  s->fd = xsk_socket__fd(s->xsk);
  xdp_options xo{};
  socklen_t len = sizeof xo;
  if (getsockopt(s->fd, SOL_XDP, XDP_OPTIONS, &xo, &len) == 0 && (xo.flags & XDP_OPTIONS_ZEROCOPY))
    s->info.mode = LABYRINTH_XDP_MODE_ZEROCOPY;
  else
    s->info.mode = LABYRINTH_XDP_MODE_COPY;
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(s->ifindex, 0, &q) == 0) s->info.generic = q.attach_mode == XDP_ATTACHED_SKB;
  return LABYRINTH_OK;
}

// A free slot for a new socket on (ifindex, queue): OK with *slot, or BUSY.
labyrinth_status take_slot(labyrinth_xdp_umem *u, int ifindex, std::uint32_t queue,
                           std::uint8_t *slot) {
  int free_slot = -1;
  for (unsigned i = 0; i < xdp::kMaxSockets; ++i) {
    labyrinth_xdp_socket *s = u->slots[i];
    if (s && s->ifindex == ifindex && s->queue == queue)
      return set_error(LABYRINTH_ERR_BUSY,
                       "%s: this UMEM already has a socket on queue %u of that interface", kCreate,
                       queue);
    if (!s && free_slot < 0) free_slot = static_cast<int>(i);
  }
  if (free_slot < 0)
    return set_error(LABYRINTH_ERR_BUSY, "%s: this UMEM already has %u sockets", kCreate,
                     xdp::kMaxSockets);
  *slot = static_cast<std::uint8_t>(free_slot + 1);
  return LABYRINTH_OK;
}

// The id of the XDP program on the socket's interface in its mode, 0: none.
std::uint32_t attached_prog(const labyrinth_xdp_socket *s) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(s->ifindex, 0, &q) != 0) return 0;
  return s->info.generic ? q.skb_prog_id : q.drv_prog_id;
}

// libxdp leaves its program attached when it loaded it without the
// dispatcher (no bpffs): detach it when the last socket of this UMEM on the
// interface is gone and the program there is still the one it ran.
void detach_if_left(const labyrinth_xdp_socket *s, std::uint32_t prog) {
  if (prog == 0 || attached_prog(s) != prog) return;
  for (labyrinth_xdp_socket *o : s->umem->slots)
    if (o && o != s && o->ifindex == s->ifindex) return;
  bpf_xdp_detach(s->ifindex, s->info.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, nullptr);
}

}  // namespace

extern "C" LABYRINTH_API void labyrinth_xdp_socket_options_init(labyrinth_xdp_socket_options *opts) {
  if (!opts) return;
  std::memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->ring_size = 2048;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_socket_create(
    labyrinth_xdp_umem *umem, const labyrinth_xdp_socket_options *opts, labyrinth_xdp_socket **out) {
  return guarded(kCreate, [&]() -> labyrinth_status {
    if (!umem || !opts || !out)
      return set_error(LABYRINTH_ERR_INVALID, "%s: umem, opts or out is NULL", kCreate);
    Pool *p;
    if (labyrinth_status st = usable_pool(umem->pool, kCreate, &p)) return st;
    if (labyrinth_status st =
            check_struct_size(opts->struct_size, sizeof(labyrinth_xdp_socket_options), kCreate,
                              "opts", "call labyrinth_xdp_socket_options_init first"))
      return counted(p, st);
    labyrinth_xdp_socket_options o;
    labyrinth_xdp_socket_options_init(&o);
    copy_in(opts, &o);
    if (labyrinth_status st = check_options(o)) return counted(p, st);
    const int ifindex = static_cast<int>(if_nametoindex(o.ifname));
    if (ifindex == 0)
      return refuse(p, LABYRINTH_ERR_INVALID,
                    "%s: no interface named '%s' in this network namespace (see ip link show)",
                    kCreate, o.ifname);
    std::lock_guard<std::mutex> lock(umem->mutex);
    if (!umem->umem)
      if (labyrinth_status st = xdp::register_arena(umem, kCreate)) return counted(p, st);
    std::uint8_t slot = 0;
    if (labyrinth_status st = take_slot(umem, ifindex, o.queue, &slot)) return counted(p, st);
    auto *s = new labyrinth_xdp_socket;
    s->umem = umem;
    s->slot = slot;
    s->ifindex = ifindex;
    s->queue = o.queue;
    s->fill_target = o.fill_target;
    s->info.struct_size = sizeof s->info;
    if (labyrinth_status st = open_socket(s, o)) {
      delete s;
      return counted(p, st);
    }
    umem->slots[slot - 1] = s;
    labyrinth_xdp_refill(s, nullptr);
    *out = s;
    return LABYRINTH_OK;
  });
}

void lab::xdp::return_frames(labyrinth_xdp_socket *s, bool park) {
  labyrinth_xdp_umem *u = s->umem;
  const std::uint8_t fill_mark = s->slot, tx_mark = static_cast<std::uint8_t>(s->slot | kTxBit);
  for (std::size_t i = 0; i < u->frame_owner.size(); ++i) {
    const std::uint8_t m = u->frame_owner.get(i);
    if (m != fill_mark && m != tx_mark) continue;
    void *page = reinterpret_cast<void *>(u->base + i * LABYRINTH_XDP_FRAME_BYTES);
    if (park) {
      u->frame_owner.set(i, m == tx_mark ? kParkedTx : kParkedRx);
      continue;
    }
    u->frame_owner.set(i, 0);
    if (m == tx_mark)
      page_end_io(u->pool, page, LABYRINTH_OWNER_NONE);
    else
      page_release_from_io(u->pool, page);
  }
  s->info.fill_frames = 0;
  s->info.tx_in_flight = 0;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_socket_destroy(labyrinth_xdp_socket *sock) {
  if (!sock) return LABYRINTH_OK;
  return guarded("labyrinth_xdp_socket_destroy", [&]() -> labyrinth_status {
    labyrinth_xdp_umem *u = sock->umem;
    std::lock_guard<std::mutex> lock(u->mutex);
    const std::uint32_t prog = attached_prog(sock);
    // Closing the socket ends the kernel's use of every frame it held.
    // A socket on the UMEM's own fd leaves that fd open (libxdp): its
    // frames stay the kernel's until the registration closes.
    xsk_socket__delete(sock->xsk);
    detach_if_left(sock, prog);
    xdp::return_frames(sock, sock->on_umem_fd);
    u->slots[sock->slot - 1] = nullptr;
    delete sock;
    bool any = false;
    for (labyrinth_xdp_socket *o : u->slots) any = any || o;
    if (!any && u->own_fd_bound) xdp::close_registration(u);
    return LABYRINTH_OK;
  });
}

extern "C" LABYRINTH_API int labyrinth_xdp_socket_fd(const labyrinth_xdp_socket *sock) {
  return sock ? sock->fd : -1;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_socket_info_get(
    const labyrinth_xdp_socket *sock, labyrinth_xdp_socket_info *info) {
  constexpr const char *what = "labyrinth_xdp_socket_info_get";
  if (!sock || !info) return set_error(LABYRINTH_ERR_INVALID, "%s: sock or info is NULL", what);
  if (labyrinth_status st =
          check_struct_size(info->struct_size, sizeof(std::size_t) + sizeof(labyrinth_xdp_mode),
                            what, "info", "set info.struct_size = sizeof info"))
    return st;
  labyrinth_xdp_socket_info full = sock->info;
  xdp_statistics xs{};
  socklen_t len = sizeof xs;
  if (getsockopt(sock->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0) {
    full.rx_dropped = xs.rx_dropped;
    full.rx_ring_full = xs.rx_ring_full;
    full.fill_ring_empty = xs.rx_fill_ring_empty_descs;
  }
  copy_out(full, info);
  return LABYRINTH_OK;
}
