// c_api.cpp - the exported calls of labyrinth.h. Each enters through the
// boundary (boundary.hpp): the handle must be a pool this process may use,
// arguments are checked, refusals are counted, no exception escapes. The
// hottest calls first try the header's inline common case (one copy of the
// fast path) and come here only when it cannot decide.
#include <cstring>

#include "boundary.hpp"
#include "internal_api.hpp"

using namespace lab;

namespace {

constexpr labyrinth_gfp kFlagshipGfp = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;

// Everything but the cache hit, kept out of line so the hit needs no frame.
__attribute__((noinline)) void *flagship_slow(labyrinth_pool *pool) {
  const char *what = "labyrinth_void_alloc_page_gfp_atomic_exclusive";
  Pool *p;
  if (usable_pool(pool, what, &p) != LABYRINTH_OK) return nullptr;
  void *out = nullptr;
  if (guarded(what, [&] { return pool_alloc(p, 0, kFlagshipGfp, 0, &out); }) != LABYRINTH_OK)
    return nullptr;
  return out;
}

// Frees that the inline code left to the library: of any order, or
// (known_order) only a block of exactly `order`.
__attribute__((noinline)) labyrinth_status free_slow(labyrinth_pool *pool, void *page,
                                                     bool known_order, unsigned order) {
  const char *what = known_order ? "labyrinth_free_pages_order" : "labyrinth_free_pages";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  if (known_order && order > LABYRINTH_MAX_ORDER)
    return refuse(p, LABYRINTH_ERR_INVALID, "%s: order %u is above the maximum %u", what, order,
                  LABYRINTH_MAX_ORDER);
  const int expected = known_order ? static_cast<int>(order) : -1;
  return guarded(what, [&] { return pool_free(p, page, expected); });
}

// Everything but a hit in the thread's caches, out of line so that the hit
// needs no stack frame.
__attribute__((noinline)) labyrinth_status alloc_pages_slow(labyrinth_pool *pool, unsigned order,
                                                            labyrinth_gfp gfp, uint32_t timeout_ms,
                                                            void **out_page) {
  const char *what = "labyrinth_alloc_pages";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  if (!out_page) return refuse(p, LABYRINTH_ERR_INVALID, "%s: out_page is NULL", what);
  if (gfp & ~LABYRINTH_GFP_ALL)
    return refuse(p, LABYRINTH_ERR_INVALID, "%s: unknown gfp bits 0x%x", what,
                  gfp & ~LABYRINTH_GFP_ALL);
  if ((gfp & LABYRINTH_GFP_ATOMIC) && (gfp & LABYRINTH_GFP_WAIT))
    return refuse(p, LABYRINTH_ERR_INVALID,
                  "%s: LABYRINTH_GFP_ATOMIC and LABYRINTH_GFP_WAIT exclude each other (an "
                  "atomic allocation never waits)",
                  what);
  if (order > LABYRINTH_MAX_ORDER)
    return refuse(p, LABYRINTH_ERR_INVALID, "%s: order %u is above the maximum %u", what, order,
                  LABYRINTH_MAX_ORDER);
  return guarded(what, [&] { return pool_alloc(p, order, gfp, timeout_ms, out_page); });
}

// Destroy: NULL is a no-op; otherwise the pool must be usable here.
labyrinth_status destroy(labyrinth_pool *pool, uint32_t flags, const char *what) {
  if (!pool) return LABYRINTH_OK;
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  if (flags & ~std::uint32_t{LABYRINTH_DESTROY_FORCE})
    return refuse(p, LABYRINTH_ERR_INVALID, "%s: unknown flags 0x%x", what,
                  flags & ~std::uint32_t{LABYRINTH_DESTROY_FORCE});
  return guarded(what, [&] { return pool_destroy(p, flags, what); });
}

}  // namespace

labyrinth_status lab::pool_reclaim_orphans_unless_in_use(labyrinth_pool *pool,
                                                         const void *const *in_use,
                                                         std::size_t n_in_use,
                                                         std::size_t *reclaimed) {
  const char *what = "labyrinth_pool_reclaim_orphans";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return pool_reclaim_orphans(p, reclaimed, in_use, n_in_use); });
}

extern "C" {

LABYRINTH_API void labyrinth_pool_options_init(labyrinth_pool_options *opts) {
  if (!opts) return;
  std::memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->size_bytes = 0;
  opts->atomic_reserve_pages = LABYRINTH_AUTO;
  opts->flags = LABYRINTH_POOL_DEFAULT_FLAGS;
  opts->numa_node = -1;
  opts->watermark_min_pages = 0;
  opts->watermark_low_pages = LABYRINTH_AUTO;
  opts->watermark_high_pages = LABYRINTH_AUTO;
  opts->max_thread_caches = 64;
  opts->thread_cache_pages = 2048;
  opts->thread_cache_batch = 64;
}

LABYRINTH_API labyrinth_status labyrinth_pool_create(const labyrinth_pool_options *opts,
                                                     labyrinth_pool **out) {
  const char *what = "labyrinth_pool_create";
  if (!opts || !out)
    return set_error(LABYRINTH_ERR_INVALID, "%s: %s is NULL", what, !opts ? "opts" : "out");
  const std::size_t kMin = offsetof(labyrinth_pool_options, numa_node) + sizeof(int);
  if (labyrinth_status st = check_struct_size(opts->struct_size, kMin, what, "opts",
                                              "call labyrinth_pool_options_init first");
      st != LABYRINTH_OK)
    return st;
  labyrinth_pool_options full;
  labyrinth_pool_options_init(&full);
  copy_in(opts, &full);
  return guarded(what, [&] { return pool_create(&full, out); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_destroy(labyrinth_pool *pool) {
  return destroy(pool, 0, "labyrinth_pool_destroy");
}

LABYRINTH_API labyrinth_status labyrinth_pool_destroy_ex(labyrinth_pool *pool, uint32_t flags) {
  return destroy(pool, flags, "labyrinth_pool_destroy_ex");
}

LABYRINTH_API labyrinth_status labyrinth_pool_trim(labyrinth_pool *pool) {
  const char *what = "labyrinth_pool_trim";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return pool_trim(p); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_arena(const labyrinth_pool *pool, void **base,
                                                    size_t *size_bytes) {
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, "labyrinth_pool_arena", &p); st != LABYRINTH_OK)
    return st;
  if (base) *base = p->base;
  if (size_bytes) *size_bytes = p->size;
  return LABYRINTH_OK;
}

LABYRINTH_API void *labyrinth_void_alloc_page_gfp_atomic_exclusive(labyrinth_pool *pool) {
  void *page = labyrinth_fast_alloc_v1_(pool);
  if (LAB_LIKELY(page != nullptr)) return page;
  return flagship_slow(pool);
}

LABYRINTH_API labyrinth_status labyrinth_alloc_pages(labyrinth_pool *pool, unsigned order,
                                                     labyrinth_gfp gfp, uint32_t timeout_ms,
                                                     void **out_page) {
  // The common cases first: a block from the thread's caches.
  if (LAB_LIKELY(out_page && (gfp & ~kFlagshipGfp) == 0)) {
    void *b = order - 1u < LABYRINTH_MAX_ORDER
                  ? labyrinth_fast_alloc_block_v1_(pool, order, (gfp & LABYRINTH_GFP_EXCLUSIVE) != 0)
              : (order == 0 && (gfp & LABYRINTH_GFP_EXCLUSIVE)) ? labyrinth_fast_alloc_v1_(pool)
                                                               : nullptr;
    if (LAB_LIKELY(b != nullptr)) {
      *out_page = b;
      return LABYRINTH_OK;
    }
  }
  return alloc_pages_slow(pool, order, gfp, timeout_ms, out_page);
}

LABYRINTH_API labyrinth_status labyrinth_free_pages(labyrinth_pool *pool, void *page) {
  if (LAB_LIKELY(labyrinth_fast_free_v1_(pool, page))) return LABYRINTH_OK;
  return free_slow(pool, page, false, 0);
}

LABYRINTH_API labyrinth_status labyrinth_free_pages_order(labyrinth_pool *pool, void *page,
                                                          unsigned order) {
  if (LAB_LIKELY(labyrinth_fast_free_order_v1_(pool, page, order))) return LABYRINTH_OK;
  return free_slow(pool, page, true, order);
}

LABYRINTH_API labyrinth_status labyrinth_page_transfer(labyrinth_pool *pool, void *page,
                                                       labyrinth_owner new_owner) {
  if (LAB_LIKELY(labyrinth_fast_transfer_v1_(pool, page, new_owner))) return LABYRINTH_OK;
  const char *what = "labyrinth_page_transfer";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return pool_transfer(p, page, new_owner); });
}

LABYRINTH_API labyrinth_status labyrinth_page_info(const labyrinth_pool *pool, const void *page,
                                                   labyrinth_owner *owner, unsigned *order) {
  const char *what = "labyrinth_page_info";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return counted(p, pool_page_info(p, page, owner, order)); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_reclaim_orphans(labyrinth_pool *pool,
                                                              size_t *reclaimed) {
  return pool_reclaim_orphans_unless_in_use(pool, nullptr, 0, reclaimed);
}

LABYRINTH_API labyrinth_status labyrinth_pool_stats(const labyrinth_pool *pool,
                                                    labyrinth_stats *out) {
  const char *what = "labyrinth_pool_stats";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  if (!out) return refuse(p, LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  const std::size_t kMin = offsetof(labyrinth_stats, total_pages) + sizeof(uint64_t);
  if (labyrinth_status st = check_struct_size(out->struct_size, kMin, what, "out",
                                              "set it to sizeof(labyrinth_stats)");
      st != LABYRINTH_OK)
    return counted(p, st);
  return guarded(what, [&] {
    labyrinth_stats full;
    labyrinth_status st = pool_stats(p, &full);
    if (st == LABYRINTH_OK) copy_out(full, out);
    return st;
  });
}

// The second names labyrinth.h's inline code calls (see there): aliases, so
// each is the very same function as its first name.
LABYRINTH_API void *labyrinth_call_alloc_page_v1_(labyrinth_pool *pool)
    __attribute__((alias("labyrinth_void_alloc_page_gfp_atomic_exclusive")));
LABYRINTH_API labyrinth_status labyrinth_call_free_pages_v1_(labyrinth_pool *pool, void *page)
    __attribute__((alias("labyrinth_free_pages")));
LABYRINTH_API labyrinth_status labyrinth_call_free_pages_order_v1_(labyrinth_pool *pool, void *page,
                                                                   unsigned order)
    __attribute__((alias("labyrinth_free_pages_order")));
LABYRINTH_API labyrinth_status labyrinth_call_alloc_pages_v1_(labyrinth_pool *pool, unsigned order,
                                                              labyrinth_gfp gfp, uint32_t timeout_ms,
                                                              void **out_page)
    __attribute__((alias("labyrinth_alloc_pages")));
LABYRINTH_API labyrinth_status labyrinth_call_page_transfer_v1_(labyrinth_pool *pool, void *page,
                                                                labyrinth_owner new_owner)
    __attribute__((alias("labyrinth_page_transfer")));

}  // extern "C"

