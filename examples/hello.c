/* hello.c: one pool, one atomic exclusive page, written and freed.
 *   cc hello.c -o hello $(pkg-config --cflags --libs labyrinth)        */
#include <labyrinth/labyrinth.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *call) { /* what went wrong, in the library's words */
  fprintf(stderr, "%s: %s: %s\n", call, labyrinth_status_name(labyrinth_last_status()),
          labyrinth_last_error_message());
  return 1;
}

int main(void) {
  labyrinth_pool_options opts;
  labyrinth_pool_options_init(&opts); /* the defaults: pinned if the limit allows */
  opts.size_bytes = 16u << 20;        /* a 16 MiB arena */
  labyrinth_pool *pool = NULL;
  if (labyrinth_pool_create(&opts, &pool) != LABYRINTH_OK) return fail("labyrinth_pool_create");

  char *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool); /* never sleeps */
  if (page == NULL) return fail("labyrinth_void_alloc_page_gfp_atomic_exclusive");
  strcpy(page, "hello, page");
  printf("%s at %p\n", page, (void *)page);
  if (labyrinth_free_pages(pool, page) != LABYRINTH_OK) return fail("labyrinth_free_pages");

  labyrinth_stats stats = {.struct_size = sizeof stats};
  if (labyrinth_pool_stats(pool, &stats) != LABYRINTH_OK) return fail("labyrinth_pool_stats");
  printf("%llu of %llu pages free, %s\n", (unsigned long long)stats.free_pages,
         (unsigned long long)stats.total_pages,
         (stats.flags & LABYRINTH_POOL_PIN) ? "pinned" : "not pinned");
  return labyrinth_pool_destroy(pool) == LABYRINTH_OK ? 0 : fail("labyrinth_pool_destroy");
}
