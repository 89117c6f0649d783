/* loops.h - the bench's single-thread patterns (bench_patterns.hpp: pair,
 * burst of 256, order N), written once as a macro so that header_ab.sh can
 * compile them twice, against two versions of labyrinth.h, into one
 * program. Each version's inline fast path is compiled into its own
 * translation unit (the header's inline functions emit no symbols, so the
 * two never meet); both call the same library for everything else. */
#include <labyrinth/labyrinth.h>
#include <stddef.h>
#include <stdint.h>

#define HAB_TOUCH(p, k) \
  (*(volatile uint64_t *)((char *)(p) + ((((k)*13) & 63) << 6 | (((k) >> 6) & 7) << 3)) = (k))
#define HAB_TOUCH_BLOCK(p, bytes, k)                                  \
  (*(volatile uint64_t *)((char *)(p) + ((((k)*7) & (((bytes) >> 12) - 1)) << 12) + \
                          ((((k)*13) & 63) << 6 | (((k) >> 6) & 7) << 3)) = (k))

/* Each returns the number of failed calls, or -1 if an allocation failed. */
#define HAB_DEFINE_LOOPS(SUFFIX)                                                              \
  long hab_pair_##SUFFIX(labyrinth_pool *pool, long n) {                                     \
    long bad = 0;                                                                            \
    for (long i = 0; i < n; ++i) {                                                           \
      void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);                        \
      if (!p) return -1;                                                                     \
      HAB_TOUCH(p, (uint64_t)i);                                                             \
      bad += labyrinth_free_pages(pool, p) != LABYRINTH_OK;                                  \
    }                                                                                        \
    return bad;                                                                              \
  }                                                                                          \
  long hab_burst_##SUFFIX(labyrinth_pool *pool, long n) {                                    \
    void *v[256];                                                                            \
    long bad = 0;                                                                            \
    for (long i = 0; i < n; ++i) {                                                           \
      for (int j = 0; j < 256; ++j) {                                                        \
        v[j] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);                         \
        if (!v[j]) return -1;                                                                \
        HAB_TOUCH(v[j], (uint64_t)j);                                                        \
      }                                                                                      \
      for (int j = 0; j < 256; ++j) bad += labyrinth_free_pages(pool, v[j]) != LABYRINTH_OK; \
    }                                                                                        \
    return bad;                                                                              \
  }                                                                                          \
  long hab_order_##SUFFIX(labyrinth_pool *pool, unsigned order, long n) {                    \
    const size_t bytes = (size_t)4096 << order;                                              \
    long bad = 0;                                                                            \
    for (long i = 0; i < n; ++i) {                                                           \
      void *p = 0;                                                                           \
      if (labyrinth_alloc_pages(pool, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, \
                                0, &p) != LABYRINTH_OK)                                      \
        return -1;                                                                           \
      HAB_TOUCH_BLOCK(p, bytes, (uint64_t)i);                                                \
      bad += labyrinth_free_pages_order(pool, p, order) != LABYRINTH_OK;                     \
    }                                                                                        \
    return bad;                                                                              \
  }
