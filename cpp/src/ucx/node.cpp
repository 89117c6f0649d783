// node.cpp - the owner's side of labyrinth_ucx.h: the node's worker, its
// connections (by listener or by worker address), its progress and its
// progress thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <new>

#include "ucx/ucx_internal.hpp"

namespace lab {
namespace ucx {
namespace {

void on_ep_error(void *arg, ucp_ep_h, ucs_status_t) {
  auto *c = static_cast<Conn *>(arg);
  if (c->alive) c->node->pending.lost.push_back(c);
}

void on_conn_request(ucp_conn_request_h req, void *arg) {
  static_cast<labyrinth_ucx_node *>(arg)->pending.requests.push_back(req);
}

ucs_status_t on_hello(void *arg, const void *header, size_t header_len, void *data, size_t length,
                      const ucp_am_recv_param_t *param) {
  HelloMsg m;
  if (header_len != sizeof m || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) return UCS_OK;
  std::memcpy(&m, header, sizeof m);
  if (m.magic != kMagic) return UCS_OK;
  auto *n = static_cast<labyrinth_ucx_node *>(arg);
  const char *d = static_cast<const char *>(data);
  char boot[sizeof m.boot_id];
  const bool same = boot_id(boot) && std::memcmp(boot, m.boot_id, sizeof boot) == 0;
  n->pending.hellos.push_back(Pending::Hello{std::vector<char>(d, d + length), same});
  return UCS_OK;
}

// A new connection: an endpoint with an error handler, made from
// `ep_params`, and for a peer on this host (shm_address: its worker address)
// one without, for the lends, where UCX may use shared memory.
void add_conn(labyrinth_ucx_node *n, ucp_ep_params_t *ep_params,
              const std::vector<char> *shm_address) {
  auto *c = new Conn;
  c->node = n;
  ep_params->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  ep_params->err_mode = UCP_ERR_HANDLING_MODE_PEER;
  ep_params->err_handler.cb = on_ep_error;
  ep_params->err_handler.arg = c;
  if (ucp_ep_create(n->worker, ep_params, &c->ep) != UCS_OK) {
    delete c;
    return;
  }
  if (shm_address && shared_memory_enabled()) {
    ucp_ep_params_t am{};
    am.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
    am.address = reinterpret_cast<const ucp_address_t *>(shm_address->data());
    if (ucp_ep_create(n->worker, &am, &c->am_ep) != UCS_OK) c->am_ep = nullptr;
  }
  c->id = n->next_conn++;
  WelcomeMsg w{kMagic, 0, c->id, {}};
  boot_id(w.boot_id);
  if (send_am(n->worker, c->ep, kAmWelcome, &w, sizeof w, n->address.data(), n->address.size()) !=
      UCS_OK) {
    if (c->am_ep) close_ep(n->worker, c->am_ep, true);
    close_ep(n->worker, c->ep, true);
    delete c;
    return;
  }
  n->conns[c->id] = c;
  n->accepted.push_back(c->id);
  n->stats.connections_now++;
  n->stats.connections_total++;
}

void handle_pending(labyrinth_ucx_node *n) {
  // Swapped out first: the calls below progress the worker, which may queue
  // more (handled on the next round).
  Pending p;
  std::swap(p, n->pending);
  for (ucp_conn_request_h req : p.requests) {
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST;
    ep.conn_request = req;
    add_conn(n, &ep, nullptr);
  }
  for (const Pending::Hello &h : p.hellos) {
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
    ep.address = reinterpret_cast<const ucp_address_t *>(h.address.data());
    add_conn(n, &ep, h.same_host ? &h.address : nullptr);
  }
  for (Conn *c : p.lost) conn_lost_locked(n, c);
}

void progress_loop(labyrinth_ucx_node *n) {
  while (!n->stopping.load(std::memory_order_acquire)) node_wait(n, 100);
}

labyrinth_status bad_node(const char *what) {
  return fail(LABYRINTH_ERR_INVALID, "%s: node is NULL", what);
}

}  // namespace

void node_progress_locked(labyrinth_ucx_node *n, unsigned *events) {
  unsigned e = 0;
  unsigned k;
  while ((k = ucp_worker_progress(n->worker)) != 0) e += k;
  if (!n->pending.requests.empty() || !n->pending.hellos.empty() || !n->pending.lost.empty()) {
    handle_pending(n);
    ++e;
  }
  if (events) *events = e;
}

unsigned node_wait(labyrinth_ucx_node *n, int timeout_ms) {
  unsigned e = 0;
  {
    std::lock_guard<std::mutex> lock(n->mutex);
    node_progress_locked(n, &e);
    if (e) return e;
    if (ucp_worker_arm(n->worker) != UCS_OK) return 1;  // BUSY: events came meanwhile
  }
  if (timeout_ms) sleep_on(n->worker, timeout_ms);
  return 0;
}

ucs_status_t node_register_handlers(labyrinth_ucx_node *n) {
  ucs_status_t s = set_am_handler(n->worker, kAmHello, on_hello, n);
  return s == UCS_OK ? lend_register_handlers(n) : s;
}

}  // namespace ucx
}  // namespace lab

using namespace lab::ucx;

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_create(uint32_t flags,
                                                                    labyrinth_ucx_node **out) {
  constexpr const char *what = "labyrinth_ucx_node_create";
  if (!out) return fail(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  if (flags & ~LABYRINTH_UCX_NODE_PROGRESS_THREAD)
    return fail(LABYRINTH_ERR_INVALID, "%s: unknown flags 0x%x", what, flags);
  auto *n = new (std::nothrow) labyrinth_ucx_node;
  if (!n) return fail(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);
  n->stats.struct_size = sizeof n->stats;
  ucs_status_t s = open_worker(&n->ctx, &n->worker);
  if (s != UCS_OK) {
    delete n;
    return fail_ucx(what, "starting UCX (ucp_init, ucp_worker_create)", s);
  }
  ucp_address_t *addr = nullptr;
  size_t len = 0;
  s = ucp_worker_get_address(n->worker, &addr, &len);
  if (s == UCS_OK) {
    n->address.assign(reinterpret_cast<char *>(addr), reinterpret_cast<char *>(addr) + len);
    ucp_worker_release_address(n->worker, addr);
    s = node_register_handlers(n);
  }
  if (s != UCS_OK) {
    ucp_worker_destroy(n->worker);
    ucp_cleanup(n->ctx);
    delete n;
    return fail_ucx(what, "setting up the worker", s);
  }
  if (flags & LABYRINTH_UCX_NODE_PROGRESS_THREAD) n->progress_thread = std::thread(progress_loop, n);
  *out = n;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_destroy(labyrinth_ucx_node *n) {
  constexpr const char *what = "labyrinth_ucx_node_destroy";
  if (!n) return LABYRINTH_OK;
  {
    std::lock_guard<std::mutex> lock(n->mutex);
    if (n->pool)
      return fail(LABYRINTH_ERR_BUSY,
                  "%s: the node is attached to a pool; detach it (labyrinth_ucx_node_detach) or "
                  "destroy the pool first",
                  what);
    if (n->provided_memh)
      return fail(LABYRINTH_ERR_BUSY,
                  "%s: a pool's arena allocated by this node's provider is still mapped; destroy "
                  "that pool first",
                  what);
  }
  n->stopping.store(true, std::memory_order_release);
  if (n->progress_thread.joinable()) {
    ucp_worker_signal(n->worker);
    n->progress_thread.join();
  }
  if (n->listener) ucp_listener_destroy(n->listener);
  for (auto &kv : n->conns) {
    if (kv.second->am_ep) close_ep(n->worker, kv.second->am_ep, false);
    if (kv.second->ep) close_ep(n->worker, kv.second->ep, false);
    delete kv.second;
  }
  ucp_worker_destroy(n->worker);
  ucp_cleanup(n->ctx);
  delete n;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_address(labyrinth_ucx_node *n,
                                                                     void *buf, size_t cap,
                                                                     size_t *len) {
  constexpr const char *what = "labyrinth_ucx_node_address";
  if (!n) return bad_node(what);
  if (!buf || !len) return fail(LABYRINTH_ERR_INVALID, "%s: buf or len is NULL", what);
  if (cap < n->address.size())
    return fail(LABYRINTH_ERR_INVALID, "%s: the address takes %zu bytes, buf has %zu", what,
                n->address.size(), cap);
  std::memcpy(buf, n->address.data(), n->address.size());
  *len = n->address.size();
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_listen(labyrinth_ucx_node *n,
                                                                    const char *ip, uint16_t port,
                                                                    uint16_t *bound_port) {
  constexpr const char *what = "labyrinth_ucx_node_listen";
  if (!n) return bad_node(what);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (ip && inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
    return fail(LABYRINTH_ERR_INVALID, "%s: '%s' is not an IPv4 address", what, ip);
  std::lock_guard<std::mutex> lock(n->mutex);
  if (n->listener) return fail(LABYRINTH_ERR_BUSY, "%s: the node already listens", what);
  ucp_listener_params_t lp{};
  lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  lp.sockaddr.addr = reinterpret_cast<const sockaddr *>(&sa);
  lp.sockaddr.addrlen = sizeof sa;
  lp.conn_handler.cb = on_conn_request;
  lp.conn_handler.arg = n;
  ucs_status_t s = ucp_listener_create(n->worker, &lp, &n->listener);
  if (s != UCS_OK) {
    n->listener = nullptr;
    return fail_ucx(what, "ucp_listener_create", s);
  }
  if (bound_port) {
    ucp_listener_attr_t la{};
    la.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
    if (ucp_listener_query(n->listener, &la) == UCS_OK)
      *bound_port = ntohs(reinterpret_cast<const sockaddr_in *>(&la.sockaddr)->sin_port);
  }
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_accept(labyrinth_ucx_node *n,
                                                               uint32_t timeout_ms,
                                                               labyrinth_ucx_conn *conn) {
  constexpr const char *what = "labyrinth_ucx_accept";
  if (!n) return bad_node(what);
  if (!conn) return fail(LABYRINTH_ERR_INVALID, "%s: conn is NULL", what);
  const std::uint64_t deadline = now_ns() + std::uint64_t{timeout_ms} * 1000000ull;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(n->mutex);
      if (!n->progress_thread.joinable()) node_progress_locked(n, nullptr);
      if (!n->accepted.empty()) {
        *conn = n->accepted.front();
        n->accepted.pop_front();
        return LABYRINTH_OK;
      }
    }
    const std::uint64_t now = now_ns();
    if (now >= deadline)
      return fail(LABYRINTH_ERR_TIMEOUT, "%s: no peer connected within %u ms", what, timeout_ms);
    const int ms = static_cast<int>((deadline - now) / 1000000 + 1);
    if (n->progress_thread.joinable()) {
      struct timespec ts = {0, 1000000};  // the thread progresses; look again in 1 ms
      nanosleep(&ts, nullptr);
    } else {
      node_wait(n, ms < 10 ? ms : 10);
    }
  }
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_progress(labyrinth_ucx_node *n,
                                                                 uint32_t timeout_ms,
                                                                 unsigned *events) {
  if (!n) return bad_node("labyrinth_ucx_progress");
  const int ms = timeout_ms > 60000 ? 60000 : static_cast<int>(timeout_ms);
  const unsigned e = node_wait(n, ms);
  if (events) *events = e;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_stats(labyrinth_ucx_node *n,
                                                                   labyrinth_ucx_stats *stats) {
  constexpr const char *what = "labyrinth_ucx_node_stats";
  if (!n) return bad_node(what);
  if (!stats || stats->struct_size < sizeof(size_t))
    return fail(LABYRINTH_ERR_INVALID, "%s: stats is NULL or its struct_size is unset", what);
  std::lock_guard<std::mutex> lock(n->mutex);
  std::size_t len = stats->struct_size < sizeof n->stats ? stats->struct_size : sizeof n->stats;
  std::memcpy(reinterpret_cast<char *>(stats) + sizeof(size_t),
              reinterpret_cast<const char *>(&n->stats) + sizeof(size_t), len - sizeof(size_t));
  return LABYRINTH_OK;
}
