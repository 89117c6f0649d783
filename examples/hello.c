/* hello.c: one pool, one atomic exclusive page, written, freed; every call
 * checked. Build against an installed Labyrinth:
 *   cc hello.c -o hello $(pkg-config --cflags --libs labyrinth)        */
#include <labyrinth/labyrinth.h>
#include <stdio.h>
#include <string.h>

/* Prints what went wrong on this thread, in the library's words. */
static int fail(const char *call) {
  fprintf(stderr, "%s failed: %s: %s\n", call, labyrinth_status_name(labyrinth_last_status()),
          labyrinth_last_error_message());
  return 1;
}

int main(void) {
  labyrinth_pool_options opts;
  labyrinth_pool_options_init(&opts); /* the defaults, then the size */
  opts.size_bytes = 16u << 20;        /* a 16 MiB arena */

  labyrinth_pool *pool = NULL;
  if (labyrinth_pool_create(&opts, &pool) != LABYRINTH_OK) return fail("labyrinth_pool_create");

  /* Never sleeps, makes no system call; the page belongs to this thread. */
  char *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  if (page == NULL) {
    fail("labyrinth_void_alloc_page_gfp_atomic_exclusive");
    labyrinth_pool_destroy(pool);
    return 1;
  }
  strcpy(page, "hello, page");
  printf("%s at %p\n", page, (void *)page);

  if (labyrinth_free_pages(pool, page) != LABYRINTH_OK) return fail("labyrinth_free_pages");

  labyrinth_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.struct_size = sizeof stats;
  if (labyrinth_pool_stats(pool, &stats) != LABYRINTH_OK) return fail("labyrinth_pool_stats");
  printf("%llu of %llu pages free, %s\n", (unsigned long long)stats.free_pages,
         (unsigned long long)stats.total_pages,
         (stats.flags & LABYRINTH_POOL_PIN) ? "pinned" : "not pinned");

  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) return fail("labyrinth_pool_destroy");
  return 0;
}
