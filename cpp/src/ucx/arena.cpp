// arena.cpp - the node and the pool's arena: the UCX arena provider
// (ucp_mem_map with UCP_MEM_MAP_ALLOCATE) and the registration listener
// through which a node attaches to a pool (ucp_mem_map of the arena,
// ucp_rkey_pack; unmapped when the region goes away).
#include <cerrno>
#include <cstring>

#include "ucx/ucx_internal.hpp"

namespace lab {
namespace ucx {
namespace {

int provider_map(void *ctx, size_t size, void **base) {
  auto *n = static_cast<labyrinth_ucx_node *>(ctx);
  std::lock_guard<std::mutex> lock(n->mutex);
  if (n->provided_memh) return EBUSY;
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS;
  mp.length = size;
  mp.flags = UCP_MEM_MAP_ALLOCATE;
  ucp_mem_h memh;
  if (ucp_mem_map(n->ctx, &mp, &memh) != UCS_OK) return ENOMEM;
  ucp_mem_attr_t attr{};
  attr.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
  if (ucp_mem_query(memh, &attr) != UCS_OK || attr.length < size) {
    ucp_mem_unmap(n->ctx, memh);
    return ENOMEM;
  }
  n->provided_memh = memh;
  n->provided_base = attr.address;
  n->provided_size = size;
  *base = attr.address;
  return 0;
}

void provider_unmap(void *ctx, void *base, size_t) {
  auto *n = static_cast<labyrinth_ucx_node *>(ctx);
  std::lock_guard<std::mutex> lock(n->mutex);
  if (!n->provided_memh || base != n->provided_base) return;
  ucp_mem_unmap(n->ctx, n->provided_memh);
  n->provided_memh = nullptr;
  n->provided_base = nullptr;
  n->provided_size = 0;
}

// The region's registration: the provider's own when it allocated this
// region, else a new one.
int region_added(void *ctx, labyrinth_pool *, void *base, size_t size) {
  auto *n = static_cast<labyrinth_ucx_node *>(ctx);
  // Called from labyrinth_pool_listen inside labyrinth_ucx_node_attach,
  // which holds the node's mutex.
  const std::uint64_t t0 = now_ns();
  const char *b = static_cast<const char *>(base);
  const char *pb = static_cast<const char *>(n->provided_base);
  if (n->provided_memh && b >= pb && b + size <= pb + n->provided_size) {
    n->memh = n->provided_memh;
    n->memh_owned = false;
  } else {
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = base;
    mp.length = size;
    if (ucp_mem_map(n->ctx, &mp, &n->memh) != UCS_OK) return ENOMEM;
    n->memh_owned = true;
  }
  if (ucp_rkey_pack(n->ctx, n->memh, &n->rkey_buf, &n->rkey_len) != UCS_OK) {
    if (n->memh_owned) ucp_mem_unmap(n->ctx, n->memh);
    n->memh = nullptr;
    return ENOMEM;
  }
  n->rkey_gen++;
  n->stats.registered_bytes = size;
  n->stats.registration_ns = n->memh_owned ? now_ns() - t0 : 0;
  return 0;
}

int destroy_requested(void *ctx, labyrinth_pool *) {
  auto *n = static_cast<labyrinth_ucx_node *>(ctx);
  std::lock_guard<std::mutex> lock(n->mutex);
  return n->lends.empty() ? 0 : EBUSY;
}

void release_region(labyrinth_ucx_node *n) {
  if (n->rkey_buf) ucp_rkey_buffer_release(n->rkey_buf);
  n->rkey_buf = nullptr;
  n->rkey_len = 0;
  if (n->memh && n->memh_owned) ucp_mem_unmap(n->ctx, n->memh);
  n->memh = nullptr;
  n->memh_owned = false;
  n->stats.registered_bytes = 0;
}

// From labyrinth_pool_destroy (the node's mutex is free) or from
// labyrinth_pool_unlisten inside labyrinth_ucx_node_detach (held).
void region_removed(void *ctx, labyrinth_pool *, void *, size_t) {
  auto *n = static_cast<labyrinth_ucx_node *>(ctx);
  if (n->subscription == nullptr) {  // detach: already locked
    release_region(n);
    return;
  }
  std::lock_guard<std::mutex> lock(n->mutex);
  release_region(n);
  n->pool = nullptr;
  n->subscription = nullptr;
}

}  // namespace
}  // namespace ucx
}  // namespace lab

using namespace lab::ucx;

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_arena_provider(
    labyrinth_ucx_node *n, labyrinth_arena_provider *out) {
  if (!n || !out)
    return fail(LABYRINTH_ERR_INVALID, "labyrinth_ucx_arena_provider: node or out is NULL");
  std::memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  out->name = "ucx";
  out->ctx = n;
  out->flags = 0;
  out->map = provider_map;
  out->unmap = provider_unmap;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_attach(labyrinth_ucx_node *n,
                                                                    labyrinth_pool *pool) {
  constexpr const char *what = "labyrinth_ucx_node_attach";
  if (!n) return fail(LABYRINTH_ERR_INVALID, "%s: node is NULL", what);
  std::lock_guard<std::mutex> lock(n->mutex);
  if (n->pool)
    return fail(LABYRINTH_ERR_BUSY, "%s: the node is already attached to a pool (one per node)",
                what);
  labyrinth_arena_listener l{};
  l.struct_size = sizeof l;
  l.name = "ucx";
  l.ctx = n;
  l.region_added = region_added;
  l.destroy_requested = destroy_requested;
  l.region_removed = region_removed;
  labyrinth_listener *sub = nullptr;
  if (labyrinth_status st = labyrinth_pool_listen(pool, &l, &sub)) return st;
  n->pool = pool;
  n->subscription = sub;
  return LABYRINTH_OK;
}

extern "C" LABYRINTH_API labyrinth_status labyrinth_ucx_node_detach(labyrinth_ucx_node *n) {
  constexpr const char *what = "labyrinth_ucx_node_detach";
  if (!n) return fail(LABYRINTH_ERR_INVALID, "%s: node is NULL", what);
  std::lock_guard<std::mutex> lock(n->mutex);
  if (!n->pool) return fail(LABYRINTH_ERR_INVALID, "%s: the node is not attached", what);
  if (!n->lends.empty())
    return fail(LABYRINTH_ERR_BUSY, "%s: %llu pages are lent; wait for them to come back", what,
                static_cast<unsigned long long>(n->lends.size()));
  labyrinth_listener *sub = n->subscription;
  n->subscription = nullptr;  // tells region_removed that the mutex is held
  labyrinth_status st = labyrinth_pool_unlisten(n->pool, sub);
  if (st != LABYRINTH_OK) {
    n->subscription = sub;
    return st;
  }
  n->pool = nullptr;
  return LABYRINTH_OK;
}
