/*
 * abi_test.c - the whole Labyrinth contract exercised from C99, compiled
 * against the *installed* header and library (pkg-config or CMake package),
 * with -std=c99 -Wall -Wextra -pedantic -Werror.
 * Exit status: 0 pass, 1 fail (liburing-style).
 */
#define _POSIX_C_SOURCE 200809L
#include <labyrinth/labyrinth.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s: %s\n", __FILE__,     \
              __LINE__, #cond, labyrinth_status_name(labyrinth_last_status()),       \
              labyrinth_last_error_message());                                        \
      failures++;                                                                     \
    }                                                                                 \
  } while (0)

static labyrinth_stats get_stats(labyrinth_pool *p) {
  labyrinth_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  CHECK(labyrinth_pool_stats(p, &s) == LABYRINTH_OK);
  return s;
}

struct handoff {
  labyrinth_pool *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  labyrinth_owner receiver;
  void *page;
  int result;
};

static void *receiver_main(void *arg) {
  struct handoff *h = (struct handoff *)arg;
  pthread_mutex_lock(&h->mu);
  h->receiver = labyrinth_owner_self();
  pthread_cond_broadcast(&h->cv);
  while (!h->page) pthread_cond_wait(&h->cv, &h->mu);
  /* We own it now: write all of it, then free it. */
  memset(h->page, 0xCD, LABYRINTH_PAGE_SIZE);
  h->result = labyrinth_free_pages(h->pool, h->page);
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

/* ABI 1.1 (labyrinth_arena.h): an arena from the heap (posix_memalign,
 * NO_ADVICE: heap memory must not be madvised), and a listener. */
static int arena_maps, arena_unmaps, told_added, told_removed;

static int heap_map(void *ctx, size_t size, void **base) {
  (void)ctx;
  arena_maps++;
  return posix_memalign(base, 4096, size);
}

static void heap_unmap(void *ctx, void *base, size_t size) {
  (void)ctx;
  (void)size;
  arena_unmaps++;
  free(base);
}

static int region_added(void *ctx, labyrinth_pool *pool, void *base, size_t size) {
  void *arena;
  size_t arena_size;
  CHECK(labyrinth_pool_arena(pool, &arena, &arena_size) == LABYRINTH_OK);
  CHECK(ctx == &told_added && base == arena && size == arena_size);
  told_added++;
  return 0;
}

static int destroy_requested(void *ctx, labyrinth_pool *pool) {
  (void)ctx;
  (void)pool;
  return told_removed ? 0 : EBUSY; /* lets go only once told to */
}

static void region_removed(void *ctx, labyrinth_pool *pool, void *base, size_t size) {
  (void)ctx;
  (void)pool;
  (void)base;
  (void)size;
  told_removed++;
}

static void check_arena_and_listeners(void) {
  labyrinth_arena_provider provider;
  labyrinth_arena_listener listener;
  labyrinth_pool_options opts;
  labyrinth_pool *pool = NULL;
  labyrinth_listener *sub = NULL;
  labyrinth_stats s;
  void *base;
  memset(&provider, 0, sizeof provider);
  provider.struct_size = sizeof provider;
  provider.name = "heap";
  provider.flags = LABYRINTH_ARENA_NO_ADVICE;
  provider.map = heap_map;
  provider.unmap = heap_unmap;
  labyrinth_pool_options_init(&opts);
  CHECK(opts.arena_provider == NULL);
  opts.size_bytes = 4u << 20;
  opts.flags &= ~LABYRINTH_POOL_PIN_MASK;
  opts.arena_provider = &provider;
  if (labyrinth_pool_create(&opts, &pool) != LABYRINTH_OK) {
    CHECK(!"pool on a provider arena");
    return;
  }
  CHECK(labyrinth_pool_arena(pool, &base, NULL) == LABYRINTH_OK);
  CHECK((uintptr_t)base % LABYRINTH_ARENA_ALIGN == 0);
  s = get_stats(pool);
  CHECK(strcmp(s.arena_provider, "heap") == 0 && s.arena_flags == LABYRINTH_ARENA_NO_ADVICE);
  memset(&listener, 0, sizeof listener);
  listener.struct_size = sizeof listener;
  listener.name = "c listener";
  listener.ctx = &told_added;
  listener.region_added = region_added;
  listener.destroy_requested = destroy_requested;
  listener.region_removed = region_removed;
  CHECK(labyrinth_pool_listen(pool, &listener, &sub) == LABYRINTH_OK && told_added == 1);
  CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_ERR_BUSY);
  CHECK(strstr(labyrinth_last_error_message(), "'c listener'") != NULL);
  CHECK(labyrinth_pool_unlisten(pool, sub) == LABYRINTH_OK && told_removed == 1);
  CHECK(labyrinth_pool_unlisten(pool, sub) == LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK);
  CHECK(arena_maps == 1 && arena_unmaps == 1);
}

int main(void) {
  labyrinth_pool_options opts;
  labyrinth_pool *pool = NULL;
  labyrinth_stats s;
  void *page, *block, *pages[64];
  labyrinth_owner owner;
  unsigned order, i;
  labyrinth_status st;

  CHECK(labyrinth_abi_version() >> 16 == LABYRINTH_ABI_VERSION_MAJOR);
  CHECK(strcmp(labyrinth_status_name(LABYRINTH_ERR_NOT_OWNER), "LABYRINTH_ERR_NOT_OWNER") == 0);

  labyrinth_pool_options_init(&opts);
  CHECK(opts.struct_size == sizeof opts);
  opts.size_bytes = 8u << 20;
  opts.flags &= ~LABYRINTH_POOL_PIN_MASK; /* may run unprivileged with a small memlock limit */
  opts.atomic_reserve_pages = 16;
  st = labyrinth_pool_create(&opts, &pool);
  CHECK(st == LABYRINTH_OK);
  if (st != LABYRINTH_OK) return 1;

  /* The flagship. */
  page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  CHECK(page != NULL);
  CHECK(((size_t)page & (LABYRINTH_PAGE_SIZE - 1)) == 0);
  memset(page, 0xAB, LABYRINTH_PAGE_SIZE);
  CHECK(labyrinth_page_info(pool, page, &owner, &order) == LABYRINTH_OK);
  CHECK(owner == labyrinth_owner_self() && order == 0);

  /* General allocation at several orders, zeroed. */
  for (order = 0; order <= LABYRINTH_MAX_ORDER; order += 5) {
    const unsigned char *bytes;
    size_t k;
    CHECK(labyrinth_alloc_pages(pool, order, LABYRINTH_GFP_ZERO | LABYRINTH_GFP_EXCLUSIVE, 0, &block) ==
          LABYRINTH_OK);
    bytes = (const unsigned char *)block;
    for (k = 0; k < ((size_t)LABYRINTH_PAGE_SIZE << order); k += 511) CHECK(bytes[k] == 0);
    CHECK(labyrinth_free_pages(pool, block) == LABYRINTH_OK);
  }

  /* Misuse: each returns its status and changes nothing. */
  s = get_stats(pool);
  CHECK(labyrinth_free_pages(pool, (char *)page + 1) == LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_free_pages(pool, &opts) == LABYRINTH_ERR_FOREIGN);
  CHECK(labyrinth_alloc_pages(pool, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_WAIT, 0, &block) ==
        LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_alloc_pages(pool, LABYRINTH_MAX_ORDER + 1, 0, 0, &block) == LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_free_pages(NULL, page) == LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_page_transfer(pool, page, LABYRINTH_OWNER_NONE) == LABYRINTH_ERR_INVALID);
  CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_ERR_BUSY);
  CHECK(strstr(labyrinth_last_error_message(), "still allocated") != NULL);
  CHECK(get_stats(pool).allocated_pages == s.allocated_pages);
  CHECK(((unsigned char *)page)[4095] == 0xAB);

  /* Ownership crosses threads only by transfer. */
  {
    struct handoff h;
    pthread_t t;
    memset(&h, 0, sizeof h);
    h.pool = pool;
    h.result = -1;
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    CHECK(pthread_create(&t, NULL, receiver_main, &h) == 0);
    pthread_mutex_lock(&h.mu);
    while (!h.receiver) pthread_cond_wait(&h.cv, &h.mu);
    CHECK(labyrinth_page_transfer(pool, page, h.receiver) == LABYRINTH_OK);
    CHECK(labyrinth_free_pages(pool, page) == LABYRINTH_ERR_NOT_OWNER);
    h.page = page;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
    CHECK(h.result == LABYRINTH_OK);
    CHECK(labyrinth_free_pages(pool, page) == LABYRINTH_ERR_DOUBLE_FREE);
  }

  /* Exhaust, dip into the reserve, fail fast, give everything back. */
  {
    size_t n = 0, cap = 4096;
    void **all = (void **)malloc(cap * sizeof *all);
    while (n < cap && (all[n] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool)) != NULL) n++;
    CHECK(n == 2048);
    CHECK(labyrinth_last_status() == LABYRINTH_ERR_NOMEM);
    s = get_stats(pool);
    CHECK(s.reserve_uses == 16);
    CHECK(s.allocated_pages == 2048);
    CHECK(labyrinth_alloc_pages(pool, 0, LABYRINTH_GFP_WAIT, 10, &block) == LABYRINTH_ERR_TIMEOUT);
    for (i = 0; i < n; i++) CHECK(labyrinth_free_pages(pool, all[i]) == LABYRINTH_OK);
    free(all);
  }
  for (i = 0; i < 64; i++) pages[i] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  for (i = 0; i < 64; i++) CHECK(labyrinth_free_pages(pool, pages[i]) == LABYRINTH_OK);
  CHECK(labyrinth_pool_trim(pool) == LABYRINTH_OK);
  s = get_stats(pool);
  CHECK(s.allocated_pages == 0 && s.cached_pages == 0);
  CHECK(s.free_pages + s.reserve_pages == s.total_pages);
  CHECK(s.free_blocks[LABYRINTH_MAX_ORDER] == 1); /* 8 MiB minus the 16-page reserve */
  CHECK(s.failures[LABYRINTH_ERR_NOMEM] >= 1);

  CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK);
  CHECK(labyrinth_pool_destroy(NULL) == LABYRINTH_OK);
  check_arena_and_listeners();

  if (failures) {
    fprintf(stderr, "abi_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("abi_test: all checks passed\n");
  return 0;
}
