/*
 * arena_memfd.h - an arena provider backed by a memfd (labyrinth_arena.h):
 * the pool's pages are a file that another process can map too (send it
 * the fd over a Unix socket), or that a driver can take by fd. Copy it
 * into your code and change what you need; examples/arena_memfd.c uses it.
 *
 *   arena_memfd m = ARENA_MEMFD_INIT;
 *   labyrinth_arena_provider provider = arena_memfd_provider(&m);
 *   opts.arena_provider = &provider;     // then labyrinth_pool_create
 *   ... m.fd is the file while the pool lives; page p is at offset
 *       (char *)p - (char *)m.base in it.
 *
 * How it aligns: the pool asks for its size plus LABYRINTH_ARENA_ALIGN -
 * 4096 bytes and uses the 4 MiB-aligned window inside. This provider
 * reserves address space, maps the file at a 4 MiB-aligned address in it
 * and returns that: the pool's window starts at offset 0 of the file, and
 * the slack at the file's end is never touched (a memfd is sparse: untouched
 * bytes cost no memory).
 *
 * Huge pages: with huge = 1 the file is a hugetlbfs one (MFD_HUGETLB, 2 MiB
 * pages by default), mapped with MAP_POPULATE so that every page is resident
 * and cannot be swapped: the provider then says LABYRINTH_ARENA_PINNED and
 * the pool does not mlock it. That needs huge pages reserved beforehand
 * (sysctl vm.nr_hugepages, or /sys/kernel/mm/hugepages/); without them map
 * fails with ENOMEM and labyrinth_pool_create says so (NOMEM, naming the
 * provider). The pool's GUARD and PKEYS modes change protection per 4 KiB
 * page, which hugetlb mappings refuse: use neither with huge = 1.
 *
 * Thread safety: one arena_memfd per pool. Needs Linux 3.17 (memfd_create)
 * and glibc 2.27; hugetlb memfds Linux 4.14.
 */
#ifndef ARENA_MEMFD_H
#define ARENA_MEMFD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <labyrinth/labyrinth.h>

typedef struct arena_memfd {
  int huge;       /* in: 1 for a hugetlbfs file (see above) */
  int fd;         /* out: the file, while the pool lives; -1 otherwise */
  void *base;     /* out: where the file is mapped (4 MiB-aligned) */
  size_t size;    /* out: the file's size (what the pool asked for, rounded
                     up to LABYRINTH_ARENA_ALIGN for hugetlbfs) */
} arena_memfd;

#define ARENA_MEMFD_INIT {0, -1, NULL, 0}

/* The provider's map: a memfd of `size` bytes, mapped shared at a
 * LABYRINTH_ARENA_ALIGN-aligned address. Returns 0 or an errno value;
 * on failure nothing is left open or mapped. */
static int arena_memfd_map(void *ctx, size_t size, void **base) {
  arena_memfd *m = (arena_memfd *)ctx;
  const size_t align = LABYRINTH_ARENA_ALIGN;
  int e, fd = memfd_create("labyrinth-arena", MFD_CLOEXEC | (m->huge ? MFD_HUGETLB : 0));
  void *reserve, *file;
  uintptr_t start, aligned;
  /* A hugetlbfs file holds whole huge pages: round up to the alignment. */
  if (m->huge) size = (size + align - 1) & ~(align - 1);
  if (fd < 0) return errno;
  if (ftruncate(fd, (off_t)size) != 0) goto fail_fd;
  /* Address space only (PROT_NONE, no memory), wide enough for an aligned window. */
  reserve = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) goto fail_fd;
  start = (uintptr_t)reserve;
  aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
  file = mmap((void *)aligned, size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_FIXED | (m->huge ? MAP_POPULATE : 0), fd, 0);
  if (file == MAP_FAILED) {
    e = errno;
    munmap(reserve, size + align);
    close(fd);
    return e;
  }
  /* Give back the reservation around the file. */
  if (aligned > start) munmap(reserve, aligned - start);
  if (start + size + align > aligned + size)
    munmap((void *)(aligned + size), start + size + align - (aligned + size));
  m->fd = fd;
  m->base = file;
  m->size = size;
  *base = file;
  return 0;
fail_fd:
  e = errno;
  close(fd);
  return e;
}

/* The provider's unmap: what map mapped (m->size: the size asked, rounded
 * up for hugetlbfs); the file goes with it. */
static void arena_memfd_unmap(void *ctx, void *base, size_t size) {
  arena_memfd *m = (arena_memfd *)ctx;
  (void)size;
  munmap(base, m->size);
  close(m->fd);
  m->fd = -1;
  m->base = NULL;
  m->size = 0;
}

/* A provider for labyrinth_pool_options.arena_provider; m must outlive
 * the pool. */
static labyrinth_arena_provider arena_memfd_provider(arena_memfd *m) {
  labyrinth_arena_provider p;
  p.struct_size = sizeof p;
  p.name = m->huge ? "memfd-hugetlb" : "memfd";
  p.ctx = m;
  p.flags = m->huge ? LABYRINTH_ARENA_PINNED : 0u;
  p.map = arena_memfd_map;
  p.unmap = arena_memfd_unmap;
  return p;
}

#endif /* ARENA_MEMFD_H */
