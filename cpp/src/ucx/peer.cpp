// peer.cpp - the remote side of labyrinth_ucx.h: connect to a node, receive
// lends, put into and get from them, return them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>
#include <new>

#include "ucx/ucx_internal.hpp"

namespace lab {
namespace ucx {
namespace {

void on_peer_error(void *arg, ucp_ep_h, ucs_status_t) {
  static_cast<labyrinth_ucx_peer *>(arg)->alive = false;
}

ucs_status_t on_welcome(void *arg, const void *header, size_t header_len, void *data,
                        size_t length, const ucp_am_recv_param_t *param) {
  auto *p = static_cast<labyrinth_ucx_peer *>(arg);
  WelcomeMsg m;
  if (header_len != sizeof m || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) return UCS_OK;
  std::memcpy(&m, header, sizeof m);
  if (m.magic != kMagic || length == 0) return UCS_OK;
  const char *d = static_cast<const char *>(data);
  p->node_address.assign(d, d + length);
  char boot[sizeof m.boot_id];
  p->same_host = boot_id(boot) && std::memcmp(boot, m.boot_id, sizeof boot) == 0;
  p->conn = m.conn;
  return UCS_OK;
}

ucs_status_t on_lend(void *arg, const void *header, size_t header_len, void *data, size_t length,
                     const ucp_am_recv_param_t *param) {
  auto *p = static_cast<labyrinth_ucx_peer *>(arg);
  LendMsg m;
  if (header_len != sizeof m || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) return UCS_OK;
  std::memcpy(&m, header, sizeof m);
  if (m.magic != kMagic) return UCS_OK;
  if (length) {  // a new rkey: unpacked outside the callback (next)
    const char *d = static_cast<const char *>(data);
    p->rkey_pending.assign(d, d + length);
    p->rkey_pending_gen = m.rkey_gen;
  }
  p->incoming.push_back(labyrinth_ucx_lent{m.id, m.addr, static_cast<size_t>(m.length), m.mode, 0});
  return UCS_OK;
}

labyrinth_status dead(const char *what) {
  return fail(LABYRINTH_ERR_SYSTEM, "%s: the connection to the node is lost", what);
}

void free_peer(labyrinth_ucx_peer *p) {
  if (p->rkey) ucp_rkey_destroy(p->rkey);
  if (p->rma_ep && p->rma_ep != p->ep) close_ep(p->worker, p->rma_ep, !p->alive);
  if (p->ep) close_ep(p->worker, p->ep, !p->alive);
  if (p->worker) ucp_worker_destroy(p->worker);
  if (p->ctx) ucp_cleanup(p->ctx);
  delete p;
}

// Make the endpoint (ep_params' address part is the caller's), send HELLO
// with our address when the node needs it, and wait for WELCOME.
labyrinth_status connect(ucp_ep_params_t *ep, bool hello, uint32_t timeout_ms,
                         labyrinth_ucx_peer **out) {
  constexpr const char *what = "labyrinth_ucx_peer_connect";
  if (!out) return fail(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  auto *p = new (std::nothrow) labyrinth_ucx_peer;
  if (!p) return fail(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);
  ucs_status_t s = open_worker(&p->ctx, &p->worker);
  if (s != UCS_OK) {
    delete p;
    return fail_ucx(what, "starting UCX (ucp_init, ucp_worker_create)", s);
  }
  if ((s = set_am_handler(p->worker, kAmWelcome, on_welcome, p)) != UCS_OK ||
      (s = set_am_handler(p->worker, kAmLend, on_lend, p)) != UCS_OK) {
    free_peer(p);
    return fail_ucx(what, "ucp_worker_set_am_recv_handler", s);
  }
  ep->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  ep->err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep->err_handler.cb = on_peer_error;
  ep->err_handler.arg = p;
  if ((s = ucp_ep_create(p->worker, ep, &p->ep)) != UCS_OK) {
    p->ep = nullptr;
    free_peer(p);
    return fail_ucx(what, "ucp_ep_create", s);
  }
  if (hello) {
    ucp_address_t *addr = nullptr;
    size_t len = 0;
    s = ucp_worker_get_address(p->worker, &addr, &len);
    if (s == UCS_OK) {
      HelloMsg h{kMagic, 0, {}};
      boot_id(h.boot_id);
      s = send_am(p->worker, p->ep, kAmHello, &h, sizeof h, addr, len);
      ucp_worker_release_address(p->worker, addr);
    }
    if (s != UCS_OK) {
      free_peer(p);
      return fail_ucx(what, "sending the hello", s);
    }
  }
  const std::uint64_t deadline = now_ns() + std::uint64_t{timeout_ms} * 1000000ull;
  while (p->conn == 0 && p->alive && now_ns() < deadline) progress_or_sleep(p->worker, 10);
  if (p->conn == 0) {
    bool alive = p->alive;
    free_peer(p);
    if (!alive) return fail(LABYRINTH_ERR_SYSTEM, "%s: the node refused or dropped the connection", what);
    return fail(LABYRINTH_ERR_TIMEOUT,
                "%s: the node did not accept within %u ms (is it progressing? "
                "labyrinth_ucx_accept or a progress thread)",
                what, timeout_ms);
  }
  if (p->same_host && shared_memory_enabled()) {
    ucp_ep_params_t rma{};
    rma.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
    rma.address = reinterpret_cast<const ucp_address_t *>(p->node_address.data());
    if ((s = ucp_ep_create(p->worker, &rma, &p->rma_ep)) != UCS_OK) {
      p->rma_ep = nullptr;
      free_peer(p);
      return fail_ucx(what, "ucp_ep_create (the RMA endpoint)", s);
    }
  } else {
    p->rma_ep = p->ep;
  }
  *out = p;
  return LABYRINTH_OK;
}

// The lend `id` held by the peer, for `mode`, covering [offset, offset+len).
labyrinth_status find_held(labyrinth_ucx_peer *p, uint64_t id, uint32_t mode, size_t offset,
                           size_t len, const void *buf, const char *what,
                           const labyrinth_ucx_lent **out) {
  if (!p) return fail(LABYRINTH_ERR_INVALID, "%s: peer is NULL", what);
  if (!buf) return fail(LABYRINTH_ERR_INVALID, "%s: buffer is NULL", what);
  auto it = p->held.find(id);
  if (it == p->held.end())
    return fail(LABYRINTH_ERR_INVALID, "%s: lend %llu is not held by this peer", what,
                static_cast<unsigned long long>(id));
  const labyrinth_ucx_lent &l = it->second;
  if (!(l.mode & mode))
    return fail(LABYRINTH_ERR_INVALID, "%s: lend %llu was not lent for %s", what,
                static_cast<unsigned long long>(id), mode == LABYRINTH_UCX_LEND_WRITE ? "WRITE" : "READ");
  if (offset > l.length || len > l.length - offset)
    return fail(LABYRINTH_ERR_INVALID, "%s: %zu bytes at offset %zu do not fit the %zu-byte block",
                what, len, offset, l.length);
  if (!p->alive) return dead(what);
  *out = &l;
  return LABYRINTH_OK;
}

// Put or get, then flush the endpoint.
labyrinth_status rma(labyrinth_ucx_peer *p, uint64_t id, uint32_t mode, size_t offset, void *buf,
                     size_t len, const char *what) {
  const labyrinth_ucx_lent *l = nullptr;
  if (labyrinth_status st = find_held(p, id, mode, offset, len, buf, what, &l)) return st;
  ucp_request_param_t rp{};
  const uint64_t remote = l->remote_addr + offset;
  void *req = mode == LABYRINTH_UCX_LEND_WRITE
                  ? ucp_put_nbx(p->rma_ep, buf, len, remote, p->rkey, &rp)
                  : ucp_get_nbx(p->rma_ep, buf, len, remote, p->rkey, &rp);
  ucs_status_t s = wait_request(p->worker, req);
  if (s == UCS_OK) s = wait_request(p->worker, ucp_ep_flush_nbx(p->rma_ep, &rp));
  if (s != UCS_OK) return p->alive ? fail_ucx(what, "the transfer", s) : dead(what);
  return LABYRINTH_OK;
}

}  // namespace
}  // namespace ucx
}  // namespace lab

using namespace lab::ucx;

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_connect_address(
    const void *address, size_t len, uint32_t timeout_ms, labyrinth_ucx_peer **out) {
  if (!address || len == 0)
    return fail(LABYRINTH_ERR_INVALID, "labyrinth_ucx_peer_connect_address: address is empty");
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  ep.address = static_cast<const ucp_address_t *>(address);
  return connect(&ep, true, timeout_ms, out);
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_connect_ip(const char *ip,
                                                                        uint16_t port,
                                                                        uint32_t timeout_ms,
                                                                        labyrinth_ucx_peer **out) {
  constexpr const char *what = "labyrinth_ucx_peer_connect_ip";
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (!ip || inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
    return fail(LABYRINTH_ERR_INVALID, "%s: '%s' is not an IPv4 address", what, ip ? ip : "(null)");
  ucp_ep_params_t ep{};
  ep.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
  ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
  ep.sockaddr.addr = reinterpret_cast<const sockaddr *>(&sa);
  ep.sockaddr.addrlen = sizeof sa;
  return connect(&ep, false, timeout_ms, out);
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_destroy(labyrinth_ucx_peer *p) {
  if (p) free_peer(p);
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_next(labyrinth_ucx_peer *p,
                                                                  uint32_t timeout_ms,
                                                                  labyrinth_ucx_lent *out) {
  constexpr const char *what = "labyrinth_ucx_peer_next";
  if (!p || !out) return fail(LABYRINTH_ERR_INVALID, "%s: peer or out is NULL", what);
  const std::uint64_t deadline = now_ns() + std::uint64_t{timeout_ms} * 1000000ull;
  while (p->incoming.empty()) {
    if (!p->alive) return dead(what);
    const std::uint64_t now = now_ns();
    if (now >= deadline) {
      if (ucp_worker_progress(p->worker) == 0 && p->incoming.empty())
        return fail(LABYRINTH_ERR_TIMEOUT, "%s: no lend within %u ms", what, timeout_ms);
    } else {
      progress_or_sleep(p->worker, static_cast<int>((deadline - now) / 1000000 + 1));
    }
  }
  if (!p->rkey_pending.empty()) {
    ucp_rkey_h rkey;
    ucs_status_t s = ucp_ep_rkey_unpack(p->rma_ep, p->rkey_pending.data(), &rkey);
    if (s != UCS_OK) return fail_ucx(what, "ucp_ep_rkey_unpack", s);
    if (p->rkey) ucp_rkey_destroy(p->rkey);
    p->rkey = rkey;
    p->rkey_gen = p->rkey_pending_gen;
    p->rkey_pending.clear();
  }
  *out = p->incoming.front();
  p->incoming.pop_front();
  p->held[out->id] = *out;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_put(labyrinth_ucx_peer *p,
                                                                 uint64_t id, size_t offset,
                                                                 const void *src, size_t len) {
  return rma(p, id, LABYRINTH_UCX_LEND_WRITE, offset, const_cast<void *>(src), len,
             "labyrinth_ucx_peer_put");
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_get(labyrinth_ucx_peer *p,
                                                                 uint64_t id, size_t offset,
                                                                 void *dst, size_t len) {
  return rma(p, id, LABYRINTH_UCX_LEND_READ, offset, dst, len, "labyrinth_ucx_peer_get");
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_peer_return(labyrinth_ucx_peer *p,
                                                                    uint64_t id, uint64_t value) {
  constexpr const char *what = "labyrinth_ucx_peer_return";
  if (!p) return fail(LABYRINTH_ERR_INVALID, "%s: peer is NULL", what);
  if (p->held.find(id) == p->held.end())
    return fail(LABYRINTH_ERR_INVALID, "%s: lend %llu is not held by this peer", what,
                static_cast<unsigned long long>(id));
  p->held.erase(id);
  if (!p->alive) return dead(what);
  ReturnMsg m{kMagic, 0, p->conn, id, value};
  ucs_status_t s = send_am(p->worker, p->rma_ep, kAmReturn, &m, sizeof m, nullptr, 0);
  if (s != UCS_OK) return p->alive ? fail_ucx(what, "sending the return", s) : dead(what);
  return LABYRINTH_OK;
}
