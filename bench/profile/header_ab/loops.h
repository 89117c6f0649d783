/* loops.h - the bench's single-thread patterns (bench_patterns.hpp: pair,
 * burst of 256, order N), written once as a macro so that header_ab.sh can
 * compile them twice, against two versions of labyrinth.h, into one
 * program. Each version's inline fast path is compiled into its own
 * translation unit (the header's inline functions emit no symbols, so the
 * two never meet); both call the same library for everything else. */
#include <labyrinth/labyrinth.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAB_PAUSE() __builtin_ia32_pause()
#else
#define HAB_PAUSE() ((void)0)
#endif

/* A single-producer single-consumer ring of pages for the cross pattern.
 * Each side publishes its index every HAB_RING_PUBLISH pages (the producer
 * also at the end of its loop), as the bench's SpscRing does, so that the
 * ring's own cache-line traffic stays small next to the allocator's. */
#define HAB_RING_SIZE 1024
#define HAB_RING_PUBLISH 32
typedef struct hab_ring {
  _Alignas(64) _Atomic unsigned long head; /* next slot the consumer reads */
  _Alignas(64) _Atomic unsigned long tail; /* next slot the producer writes */
  _Alignas(64) unsigned long ptail;        /* producer's own copy of tail */
  unsigned long phead;                     /* head as the producer last saw it */
  _Alignas(64) unsigned long chead;        /* consumer's own copy of head */
  unsigned long ctail;                     /* tail as the consumer last saw it */
  _Alignas(64) void *slot[HAB_RING_SIZE];
} hab_ring;
static inline void hab_ring_push(hab_ring *r, void *p) {
  const unsigned long t = r->ptail;
  while (t - r->phead == HAB_RING_SIZE) {
    HAB_PAUSE();
    r->phead = atomic_load_explicit(&r->head, memory_order_acquire);
  }
  r->slot[t % HAB_RING_SIZE] = p;
  r->ptail = t + 1;
  if ((t + 1) % HAB_RING_PUBLISH == 0) atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}
static inline void hab_ring_flush(hab_ring *r) {
  atomic_store_explicit(&r->tail, r->ptail, memory_order_release);
}
static inline void *hab_ring_pop(hab_ring *r) {
  const unsigned long h = r->chead;
  void *p;
  while (r->ctail == h) {
    HAB_PAUSE();
    r->ctail = atomic_load_explicit(&r->tail, memory_order_acquire);
  }
  p = r->slot[h % HAB_RING_SIZE];
  r->chead = h + 1;
  if ((h + 1) % HAB_RING_PUBLISH == 0) atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return p;
}

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
  }                                                                                          \
  /* Cross: this thread allocates, touches and transfers each page to `to`, */              \
  /* which frees it (hab_cross_free_*, on another thread). */                               \
  long hab_cross_alloc_##SUFFIX(labyrinth_pool *pool, labyrinth_owner to, hab_ring *r,       \
                                long n) {                                                    \
    long bad = 0;                                                                            \
    for (long i = 0; i < n; ++i) {                                                           \
      void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);                        \
      if (!p) return -1;                                                                     \
      HAB_TOUCH(p, (uint64_t)i);                                                             \
      bad += labyrinth_page_transfer(pool, p, to) != LABYRINTH_OK;                           \
      hab_ring_push(r, p);                                                                   \
    }                                                                                        \
    hab_ring_flush(r);                                                                       \
    return bad;                                                                              \
  }                                                                                          \
  long hab_cross_free_##SUFFIX(labyrinth_pool *pool, hab_ring *r, long n) {                  \
    long bad = 0;                                                                            \
    for (long i = 0; i < n; ++i) bad += labyrinth_free_pages(pool, hab_ring_pop(r)) != LABYRINTH_OK; \
    return bad;                                                                              \
  }
