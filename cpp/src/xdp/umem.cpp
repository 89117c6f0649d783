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
    u->frame_owner.assign(u->size / LABYRINTH_XDP_FRAME_BYTES, 0);
    xsk_umem_config cfg{};
    cfg.fill_size = xdp::kUmemRingSize;
    cfg.comp_size = xdp::kUmemRingSize;
    cfg.frame_size = LABYRINTH_XDP_FRAME_BYTES;
    cfg.frame_headroom = 0;
    cfg.flags = 0;
    int rc = xsk_umem__create(&u->umem, reinterpret_cast<void *>(u->base), u->size,
                              &u->fill_save, &u->comp_save, &cfg);
    if (rc != 0) {
      delete u;
      return counted(p, xdp::explain_failure(-rc, what, "registering the arena (XDP_UMEM_REG)",
                                             pool_arena_size(pool)));
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
    int rc = xsk_umem__delete(umem->umem);
    if (rc != 0)
      return set_error(LABYRINTH_ERR_BUSY, "%s: libxdp still counts sockets on this UMEM (%d)",
                       what, rc);
    pool_unhold(umem->pool);
    delete umem;
    return LABYRINTH_OK;
  });
}
