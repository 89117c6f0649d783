// lend.cpp - lending blocks to peers and taking them back: a lent block is
// in flight in the core (lab_private_page_begin_io) from the lend until its
// RETURN message or the death of its connection (page_end_io back to the
// owner it had), so that free, transfer and a second lend are BUSY meanwhile.
#include <cstring>

#include "private_abi.h"
#include "ucx/ucx_internal.hpp"

namespace lab {
namespace ucx {
namespace {

// The block comes back to its owner; recorded for labyrinth_ucx_returned.
void take_back(labyrinth_ucx_node *n, std::uint64_t id, std::uint64_t value, std::uint32_t how) {
  auto it = n->lends.find(id);
  Lend l = it->second;
  n->lends.erase(it);
  lab_private_page_end_io(n->pool, l.page, LABYRINTH_OWNER_NONE);
  n->returned.push_back(labyrinth_ucx_returned_page{l.page, l.conn, value, how, 0});
  n->stats.lent_now--;
  if (how == LABYRINTH_UCX_RETURNED)
    n->stats.returned++;
  else
    n->stats.returned_by_peer_death++;
}

ucs_status_t on_return(void *arg, const void *header, size_t header_len, void *, size_t,
                       const ucp_am_recv_param_t *) {
  auto *n = static_cast<labyrinth_ucx_node *>(arg);
  if (header_len != sizeof(ReturnMsg)) return UCS_OK;
  ReturnMsg m;
  std::memcpy(&m, header, sizeof m);
  auto it = n->lends.find(m.id);
  // A return for a lend of another connection, or one already taken back
  // (its connection died first), is ignored.
  if (m.magic == kMagic && it != n->lends.end() && it->second.conn == m.conn)
    take_back(n, m.id, m.value, LABYRINTH_UCX_RETURNED);
  return UCS_OK;
}

labyrinth_status check_lend(labyrinth_ucx_node *n, labyrinth_ucx_conn conn, uint32_t mode,
                            Conn **out) {
  constexpr const char *what = "labyrinth_ucx_lend";
  if (!n->pool)
    return fail(LABYRINTH_ERR_INVALID,
                "%s: the node is not attached to a pool (labyrinth_ucx_node_attach)", what);
  if (mode == 0 || (mode & ~(LABYRINTH_UCX_LEND_WRITE | LABYRINTH_UCX_LEND_READ)))
    return fail(LABYRINTH_ERR_INVALID,
                "%s: mode 0x%x: use LABYRINTH_UCX_LEND_WRITE, _READ or both", what, mode);
  auto it = n->conns.find(conn);
  if (it == n->conns.end())
    return fail(LABYRINTH_ERR_INVALID, "%s: no connection %llu on this node", what,
                static_cast<unsigned long long>(conn));
  if (!it->second->alive)
    return fail(LABYRINTH_ERR_INVALID, "%s: connection %llu is lost (the peer died or left)",
                what, static_cast<unsigned long long>(conn));
  *out = it->second;
  return LABYRINTH_OK;
}

labyrinth_status lend_locked(labyrinth_ucx_node *n, labyrinth_ucx_conn conn, void *page,
                             uint32_t mode) {
  constexpr const char *what = "labyrinth_ucx_lend";
  Conn *c = nullptr;
  if (labyrinth_status st = check_lend(n, conn, mode, &c)) return st;
  unsigned order = 0;
  if (labyrinth_status st = labyrinth_page_info(n->pool, page, nullptr, &order)) return st;
  labyrinth_status st = lab_private_page_begin_io(n->pool, page, labyrinth_owner_self());
  if (st == LABYRINTH_ERR_BUSY)
    return fail(st, "%s: %p is already in flight (lent to a peer or submitted to the kernel)",
                what, page);
  if (st != LABYRINTH_OK) return st;
  LendMsg m{kMagic, mode, conn, n->next_lend, reinterpret_cast<std::uint64_t>(page),
            std::uint64_t{LABYRINTH_PAGE_SIZE} << order, n->rkey_gen};
  const bool with_rkey = c->rkey_gen_sent != n->rkey_gen;
  ucp_ep_h ep = c->am_ep ? c->am_ep : c->ep;
  ucs_status_t s = send_am(n->worker, ep, kAmLend, &m, sizeof m, with_rkey ? n->rkey_buf : nullptr,
                           with_rkey ? n->rkey_len : 0);
  if (s != UCS_OK) {
    lab_private_page_end_io(n->pool, page, LABYRINTH_OWNER_NONE);
    return fail_ucx(what, "sending the lend (ucp_am_send_nbx)", s);
  }
  c->rkey_gen_sent = n->rkey_gen;
  n->lends.emplace(n->next_lend++, Lend{page, conn});
  n->stats.lent_now++;
  n->stats.lent_total++;
  return LABYRINTH_OK;
}

}  // namespace

void conn_lost_locked(labyrinth_ucx_node *n, Conn *c) {
  if (!c->alive) return;
  c->alive = false;
  n->stats.connections_now--;
  n->stats.connections_lost++;
  std::vector<std::uint64_t> ids;
  for (const auto &kv : n->lends)
    if (kv.second.conn == c->id) ids.push_back(kv.first);
  for (std::uint64_t id : ids) take_back(n, id, 0, LABYRINTH_UCX_RETURNED_PEER_LOST);
  if (c->am_ep) close_ep(n->worker, c->am_ep, true);
  close_ep(n->worker, c->ep, true);
  c->ep = nullptr;
  c->am_ep = nullptr;
}

ucs_status_t lend_register_handlers(labyrinth_ucx_node *n) {
  return set_am_handler(n->worker, kAmReturn, on_return, n);
}

}  // namespace ucx
}  // namespace lab

using namespace lab::ucx;

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_lend(labyrinth_ucx_node *n,
                                                             labyrinth_ucx_conn conn, void *page,
                                                             uint32_t mode) {
  if (!n) return fail(LABYRINTH_ERR_INVALID, "labyrinth_ucx_lend: node is NULL");
  std::lock_guard<std::mutex> lock(n->mutex);
  return lend_locked(n, conn, page, mode);
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_returned(labyrinth_ucx_node *n,
                                                                 labyrinth_ucx_returned_page *out,
                                                                 size_t cap, size_t *count) {
  constexpr const char *what = "labyrinth_ucx_returned";
  if (!n) return fail(LABYRINTH_ERR_INVALID, "%s: node is NULL", what);
  if (!count || (!out && cap))
    return fail(LABYRINTH_ERR_INVALID, "%s: out or n is NULL", what);
  std::lock_guard<std::mutex> lock(n->mutex);
  std::size_t k = 0;
  while (k < cap && !n->returned.empty()) {
    out[k++] = n->returned.front();
    n->returned.pop_front();
  }
  *count = k;
  return LABYRINTH_OK;
}
