/* labyrinth_uring.h from C99 (-std=c99 -pedantic -Werror), against the
 * shared library: registration on a ring the program owns is not needed
 * here; the managed ring does a fixed write and read of one page through a
 * temp file, checks the data, and leaves nothing in flight or allocated.
 * Exit 0 pass, 1 fail, 77 skip (no io_uring here). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <labyrinth/labyrinth_uring.h>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: %s failed (%s)\n", __FILE__, __LINE__, #cond,      \
              labyrinth_last_error_message());                                   \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

int main(void) {
  labyrinth_pool_options po;
  labyrinth_pool *pool = NULL;
  labyrinth_ring_options ro;
  labyrinth_ring *ring = NULL;
  labyrinth_status st;
  labyrinth_completion c;
  labyrinth_stats ps;
  size_t n = 0;
  uint16_t idx = 99;
  char path[] = "/tmp/labyrinth-c99-uring-XXXXXX";
  int fd;
  unsigned char *page;

  labyrinth_pool_options_init(&po);
  po.size_bytes = 4u << 20;
  CHECK(labyrinth_pool_create(&po, &pool) == LABYRINTH_OK);
  labyrinth_ring_options_init(&ro);
  ro.sq_entries = 8;
  st = labyrinth_ring_create(pool, &ro, &ring);
  if (st == LABYRINTH_ERR_UNSUPPORTED) {
    printf("skip: %s\n", labyrinth_last_error_message());
    labyrinth_pool_destroy(pool);
    return 77;
  }
  CHECK(st == LABYRINTH_OK);
  fd = mkstemp(path);
  CHECK(fd >= 0);
  unlink(path);
  page = (unsigned char *)labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  CHECK(page != NULL);
  CHECK(labyrinth_page_buf_index(pool, page, &idx) == LABYRINTH_OK && idx == 0);
  memset(page, 0xa5, LABYRINTH_PAGE_SIZE);
  CHECK(labyrinth_ring_write_fixed(ring, fd, page, LABYRINTH_PAGE_SIZE, 0, 1) == LABYRINTH_OK);
  CHECK(labyrinth_free_pages(pool, page) == LABYRINTH_ERR_BUSY);
  CHECK(labyrinth_ring_complete(ring, &c, 1, 1, 5000, &n) == LABYRINTH_OK && n == 1);
  CHECK(c.page == page && c.result == LABYRINTH_PAGE_SIZE && c.op == LABYRINTH_OP_WRITE_FIXED);
  memset(page, 0, LABYRINTH_PAGE_SIZE);
  CHECK(labyrinth_ring_read_fixed(ring, fd, page, LABYRINTH_PAGE_SIZE, 0, 2) == LABYRINTH_OK);
  CHECK(labyrinth_ring_complete(ring, &c, 1, 1, 5000, &n) == LABYRINTH_OK && n == 1);
  CHECK(c.user_data == 2 && page[0] == 0xa5 && page[LABYRINTH_PAGE_SIZE - 1] == 0xa5);
  CHECK(labyrinth_free_pages(pool, page) == LABYRINTH_OK);
  CHECK(labyrinth_ring_destroy(ring) == LABYRINTH_OK);
  close(fd);
  memset(&ps, 0, sizeof(ps));
  ps.struct_size = sizeof(ps);
  CHECK(labyrinth_pool_stats(pool, &ps) == LABYRINTH_OK);
  CHECK(ps.inflight_pages == 0 && ps.allocated_pages == 0);
  CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK);
  printf("c99 io_uring: ok\n");
  return 0;
}
