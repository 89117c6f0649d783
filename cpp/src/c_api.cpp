// c_api.cpp - the C boundary. Every exported function validates its
// arguments, catches every exception (none may cross into C), and records
// failures in the thread's last status and message.
//
// The two hottest calls are written out here in full rather than layered:
// the flagship allocation and the free of an order-0 exclusive page by its
// owner are a thread-local pop/push plus one side-table store, with no
// atomic read-modify-write, no lock and no call.
#include <cstring>
#include <exception>
#include <new>

#include "internal_api.hpp"
#include "pool.hpp"

using namespace lab;

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

labyrinth_status internal_error(const char *what) {
  return set_error(LABYRINTH_ERR_SYSTEM, "%s: internal error (exception caught at the C boundary)",
                   what);
}

#define LAB_BOUNDARY(what, ...)                                                   \
  try {                                                                          \
    __VA_ARGS__                                                                  \
  } catch (const std::bad_alloc &) {                                             \
    return set_error(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);            \
  } catch (...) {                                                                \
    return internal_error(what);                                                 \
  }

// Everything but the cache hit, kept out of line so the hit needs no frame.
__attribute__((noinline)) void *flagship_slow(Pool *p) {
  void *out = nullptr;
  try {
    if (pool_alloc(p, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &out) == LABYRINTH_OK)
      return out;
  } catch (...) {
    internal_error("labyrinth_void_alloc_page_gfp_atomic_exclusive");
  }
  return nullptr;
}

__attribute__((noinline)) labyrinth_status free_slow(Pool *p, void *page) {
  LAB_BOUNDARY("labyrinth_free_pages", return pool_free(p, page);)
}

__attribute__((noinline)) labyrinth_status free_order_slow(Pool *p, void *page, unsigned order) {
  LAB_BOUNDARY("labyrinth_free_pages_order", return pool_free(p, page, static_cast<int>(order));)
}

labyrinth_status null_pool(const char *what) {
  return set_error(LABYRINTH_ERR_INVALID, "%s: pool is NULL", what);
}

}  // namespace

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
  LAB_BOUNDARY("labyrinth_pool_create", return pool_create(opts, out);)
}

LABYRINTH_API labyrinth_status labyrinth_pool_destroy(labyrinth_pool *pool) {
  LAB_BOUNDARY("labyrinth_pool_destroy", return pool_destroy(pool, 0);)
}

LABYRINTH_API labyrinth_status labyrinth_pool_destroy_ex(labyrinth_pool *pool, uint32_t flags) {
  LAB_BOUNDARY("labyrinth_pool_destroy_ex", return pool_destroy(pool, flags);)
}

LABYRINTH_API labyrinth_status labyrinth_pool_trim(labyrinth_pool *pool) {
  if (!pool) return null_pool("labyrinth_pool_trim");
  LAB_BOUNDARY("labyrinth_pool_trim", return pool_trim(from_handle(pool));)
}

LABYRINTH_API labyrinth_status labyrinth_pool_arena(const labyrinth_pool *pool, void **base,
                                                    size_t *size_bytes) {
  if (!pool) return null_pool("labyrinth_pool_arena");
  const Pool *p = from_handle(pool);
  if (base) *base = p->base;
  if (size_bytes) *size_bytes = p->size;
  return LABYRINTH_OK;
}

LABYRINTH_API void *labyrinth_void_alloc_page_gfp_atomic_exclusive(labyrinth_pool *pool) {
  // The common case is the header's inline code (one copy of the fast path).
  void *page = labyrinth_fast_alloc_v1_(pool);
  if (LAB_LIKELY(page != nullptr)) return page;
  if (LAB_LIKELY(pool != nullptr)) return flagship_slow(from_handle(pool));
  null_pool("labyrinth_void_alloc_page_gfp_atomic_exclusive");
  return nullptr;
}

// Everything but a hit in the thread's caches, out of line so that the hit
// needs no stack frame.
__attribute__((noinline)) static labyrinth_status alloc_pages_slow(labyrinth_pool *pool, unsigned order,
                                                                  labyrinth_gfp gfp, uint32_t timeout_ms,
                                                                  void **out_page) {
  const char *what = "labyrinth_alloc_pages";
  if (!pool) return null_pool(what);
  Pool *p = from_handle(pool);
  if (!out_page) return set_error(p->fail(LABYRINTH_ERR_INVALID), "%s: out_page is NULL", what);
  if (gfp & ~LABYRINTH_GFP_ALL)
    return set_error(p->fail(LABYRINTH_ERR_INVALID), "%s: unknown gfp bits 0x%x", what,
                     gfp & ~LABYRINTH_GFP_ALL);
  if ((gfp & LABYRINTH_GFP_ATOMIC) && (gfp & LABYRINTH_GFP_WAIT))
    return set_error(p->fail(LABYRINTH_ERR_INVALID),
                     "%s: LABYRINTH_GFP_ATOMIC and LABYRINTH_GFP_WAIT exclude each other (an "
                     "atomic allocation never waits)",
                     what);
  if (order > LABYRINTH_MAX_ORDER)
    return set_error(p->fail(LABYRINTH_ERR_INVALID), "%s: order %u is above the maximum %u", what,
                     order, LABYRINTH_MAX_ORDER);
  LAB_BOUNDARY(what, return pool_alloc(p, order, gfp, timeout_ms, out_page);)
}


LABYRINTH_API labyrinth_status labyrinth_alloc_pages(labyrinth_pool *pool, unsigned order,
                                                     labyrinth_gfp gfp, uint32_t timeout_ms,
                                                     void **out_page) {
  // The common cases first: a block from the thread's caches.
  if (LAB_LIKELY(out_page && (gfp & ~(LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE)) == 0)) {
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
  if (LAB_LIKELY(pool != nullptr)) return free_slow(from_handle(pool), page);
  return null_pool("labyrinth_free_pages");
}

LABYRINTH_API labyrinth_status labyrinth_free_pages_order(labyrinth_pool *pool, void *page,
                                                          unsigned order) {
  if (LAB_LIKELY(labyrinth_fast_free_order_v1_(pool, page, order))) return LABYRINTH_OK;
  if (!pool) return null_pool("labyrinth_free_pages_order");
  if (order > LABYRINTH_MAX_ORDER)
    return set_error(from_handle(pool)->fail(LABYRINTH_ERR_INVALID),
                     "labyrinth_free_pages_order: order %u is above the maximum %u", order,
                     LABYRINTH_MAX_ORDER);
  return free_order_slow(from_handle(pool), page, order);
}

LABYRINTH_API labyrinth_status labyrinth_page_transfer(labyrinth_pool *pool, void *page,
                                                       labyrinth_owner new_owner) {
  if (LAB_LIKELY(labyrinth_fast_transfer_v1_(pool, page, new_owner))) return LABYRINTH_OK;
  if (!pool) return null_pool("labyrinth_page_transfer");
  LAB_BOUNDARY("labyrinth_page_transfer", return pool_transfer(from_handle(pool), page, new_owner);)
}

LABYRINTH_API labyrinth_status labyrinth_page_info(const labyrinth_pool *pool, const void *page,
                                                   labyrinth_owner *owner, unsigned *order) {
  if (!pool) return null_pool("labyrinth_page_info");
  LAB_BOUNDARY("labyrinth_page_info", return pool_page_info(from_handle(pool), page, owner, order);)
}

LABYRINTH_API labyrinth_status labyrinth_pool_reclaim_orphans(labyrinth_pool *pool,
                                                              size_t *reclaimed) {
  if (!pool) return null_pool("labyrinth_pool_reclaim_orphans");
  LAB_BOUNDARY("labyrinth_pool_reclaim_orphans",
               return pool_reclaim_orphans(from_handle(pool), reclaimed);)
}

LABYRINTH_API labyrinth_status labyrinth_pool_stats(const labyrinth_pool *pool,
                                                    labyrinth_stats *out) {
  const char *what = "labyrinth_pool_stats";
  if (!pool) return null_pool(what);
  if (!out) return set_error(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  const std::size_t kMin = offsetof(labyrinth_stats, total_pages) + sizeof(uint64_t);
  if (out->struct_size < kMin || out->struct_size > (1u << 16))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: out->struct_size is %zu; set it to sizeof(labyrinth_stats) (at least %zu)",
                     what, out->struct_size, kMin);
  LAB_BOUNDARY(what, return pool_stats(from_handle(pool), out);)
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

