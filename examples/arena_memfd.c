/*
 * arena_memfd.c - a pool whose arena is a memfd (arena_memfd.h): a page
 * written through the pool is read back through the file, as another
 * process that mapped the fd would see it.
 *
 *   arena_memfd          a 16 MiB pool on a memfd
 *   arena_memfd --huge   the same on a hugetlbfs memfd (needs reserved huge
 *                        pages: sysctl vm.nr_hugepages=16); says why not
 * Exit status: 0 done, 1 failed, 2 huge pages unavailable here.
 */
#include "arena_memfd.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  arena_memfd m = ARENA_MEMFD_INIT;
  labyrinth_arena_provider provider;
  labyrinth_pool_options opts;
  labyrinth_pool *pool = NULL;
  labyrinth_stats s;
  char back[16] = {0};
  char *page;
  m.huge = argc > 1 && strcmp(argv[1], "--huge") == 0;
  provider = arena_memfd_provider(&m);
  labyrinth_pool_options_init(&opts);
  opts.size_bytes = (size_t)16 << 20;
  opts.arena_provider = &provider;
  if (labyrinth_pool_create(&opts, &pool) != LABYRINTH_OK) {
    fprintf(stderr, "arena_memfd: %s\n", labyrinth_last_error_message());
    return m.huge && labyrinth_last_status() == LABYRINTH_ERR_NOMEM ? 2 : 1;
  }
  page = (char *)labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  if (!page) {
    fprintf(stderr, "arena_memfd: %s\n", labyrinth_last_error_message());
    return 1;
  }
  strcpy(page, "hello, memfd");
  if (pread(m.fd, back, sizeof back - 1, page - (char *)m.base) < 0) perror("pread");
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  labyrinth_pool_stats(pool, &s);
  printf("arena from '%s' (fd %d, %zu bytes, %llu unused), pinned %s; page at offset %td reads "
         "back \"%s\" through the file\n",
         s.arena_provider, m.fd, m.size, (unsigned long long)s.arena_unused_bytes,
         (s.flags & LABYRINTH_POOL_PIN) ? "yes" : "no", page - (char *)m.base, back);
  labyrinth_free_pages(pool, page);
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) {
    fprintf(stderr, "arena_memfd: %s\n", labyrinth_last_error_message());
    return 1;
  }
  return strcmp(back, "hello, memfd") == 0 && m.fd == -1 ? 0 : 1;
}
