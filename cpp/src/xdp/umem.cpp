// umem.cpp - a pool's arena registered as an AF_XDP UMEM, and the messages
// that explain why AF_XDP is unavailable.
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "boundary.hpp"
#include "internal_api.hpp"
#include "xdp/xdp_internal.hpp"

namespace lab {
namespace xdp {

namespace {

bool has_cap(int cap) {
  __user_cap_header_struct hdr{};
  __user_cap_data_struct data[2]{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

}  // namespace

labyrinth_status explain_failure(int err, const char *what, const char *step, std::size_t bytes) {
  if (err == EAFNOSUPPORT)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: AF_XDP is not available: %s returned EAFNOSUPPORT (a kernel built "
                     "without CONFIG_XDP_SOCKETS)",
                     what, step);
  if (err == EPERM || err == EACCES)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: %s returned %s: AF_XDP needs CAP_NET_RAW and CAP_NET_ADMIN; run as "
                     "root or grant them (setcap cap_net_raw,cap_net_admin+ep PROGRAM)",
                     what, step, err == EPERM ? "EPERM" : "EACCES");
  if (err == ENOBUFS || err == ENOMEM) {
    struct rlimit rl {};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && !has_cap(CAP_IPC_LOCK))
      return set_error(LABYRINTH_ERR_NOMEM,
                       "%s: %s: pinning %llu bytes is above RLIMIT_MEMLOCK %llu bytes (no "
                       "CAP_IPC_LOCK); raise it: ulimit -l, prlimit --memlock, limits.conf",
                       what, step, static_cast<unsigned long long>(bytes),
                       static_cast<unsigned long long>(rl.rlim_cur));
  }
  return set_error(LABYRINTH_ERR_SYSTEM, "%s: %s failed (errno %d: %s)", what, step, err,
                   std::strerror(err));
}

labyrinth_status register_arena(labyrinth_xdp_umem *u, const char *what) {
  xsk_umem_config cfg{};
  cfg.fill_size = kUmemRingSize;
  cfg.comp_size = kUmemRingSize;
  cfg.frame_size = LABYRINTH_XDP_FRAME_BYTES;
  u->fill_save = xsk_ring_prod{};
  u->comp_save = xsk_ring_cons{};
  u->own_fd_bound = false;
  int rc = xsk_umem__create(&u->umem, reinterpret_cast<void *>(u->base), u->size, &u->fill_save,
                            &u->comp_save, &cfg);
  if (rc == 0) return LABYRINTH_OK;
  u->umem = nullptr;
  return explain_failure(-rc, what, "registering the arena (XDP_UMEM_REG)", u->size);
}

void close_registration(labyrinth_xdp_umem *u) {
  if (!u->umem) return;
  xsk_umem__delete(u->umem);
  u->umem = nullptr;
  for (std::size_t i = 0; i < u->frame_owner.size(); ++i) {
    const std::uint8_t m = u->frame_owner.get(i);
    if (m != kParkedRx && m != kParkedTx) continue;
    void *page = reinterpret_cast<void *>(u->base + i * LABYRINTH_XDP_FRAME_BYTES);
    u->frame_owner.set(i, 0);
    if (m == kParkedTx)
      page_end_io(u->pool, page, LABYRINTH_OWNER_NONE);
    else
      page_release_from_io(u->pool, page);
  }
}

}  // namespace xdp
}  // namespace lab

using namespace lab;

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_umem_create(labyrinth_pool *pool,
                                                                    labyrinth_xdp_umem **out) {
  constexpr const char *what = "labyrinth_xdp_umem_create";
  return guarded(what, [&]() -> labyrinth_status {
    Pool *p;
    if (labyrinth_status st = usable_pool(pool, what, &p)) return st;
    if (!out) return refuse(p, LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
    if (p->flags & LABYRINTH_POOL_GUARD)
      return refuse(p, LABYRINTH_ERR_UNSUPPORTED,
                    "%s: a LABYRINTH_POOL_GUARD pool keeps its free pages inaccessible, so the "
                    "kernel cannot pin its arena as a UMEM; use a pool without GUARD",
                    what);
    auto *u = new labyrinth_xdp_umem;
    u->pool = pool;
    u->base = reinterpret_cast<std::uintptr_t>(pool_arena_base(pool));
    u->size = pool_arena_size(pool);
    u->frame_owner.reset(u->size / LABYRINTH_XDP_FRAME_BYTES);
    if (labyrinth_status st = xdp::register_arena(u, what)) {
      delete u;
      return counted(p, st);
    }
    pool_hold(pool);
    *out = u;
    return LABYRINTH_OK;
  });
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_xdp_umem_destroy(labyrinth_xdp_umem *umem) {
  constexpr const char *what = "labyrinth_xdp_umem_destroy";
  if (!umem) return LABYRINTH_OK;
  return guarded(what, [&]() -> labyrinth_status {
    {
      std::lock_guard<std::mutex> lock(umem->mutex);
      for (labyrinth_xdp_socket *s : umem->slots)
        if (s)
          return set_error(LABYRINTH_ERR_BUSY,
                           "%s: sockets still use this UMEM; destroy them first "
                           "(labyrinth_xdp_socket_destroy)",
                           what);
    }
    xdp::close_registration(umem);
    pool_unhold(umem->pool);
    delete umem;
    return LABYRINTH_OK;
  });
}
