/*
 * labyrinth_uring_buffers.h - the pool's arena as fixed buffers of an
 * io_uring: registration with any ring, and which fixed buffer a page lies
 * in. Included by labyrinth_uring.h (its overview, the memory-locking note
 * and the managed ring are there); include that one.
 *
 * Conventions (ownership, blocking, signals, errors, struct_size) are those
 * of labyrinth.h. C99 and C++ compatible.
 */
#ifndef LABYRINTH_URING_BUFFERS_H
#define LABYRINTH_URING_BUFFERS_H

#include "labyrinth/labyrinth.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Registration with any io_uring                                          */
/* ---------------------------------------------------------------------- */

/** Largest fixed buffer the kernel accepts: the arena is registered in
 *  pieces of at most this size. */
#define LABYRINTH_URING_MAX_BUFFER_BYTES ((uint64_t)1 << 30)
/** Most fixed buffers one ring can hold (the kernel's limit). */
#define LABYRINTH_URING_MAX_BUFFERS 16384u

/**
 * Register the pool's whole arena as the fixed buffers of the io_uring
 * ring_fd (the application's ring; it keeps owning it). The arena is split
 * into as few buffers as the kernel allows: pieces of at most 1 GiB whose
 * boundaries are aligned to the largest block (4 MiB), so every block lies
 * in exactly one buffer. Buffer indices start at 0; labyrinth_page_buf_index()
 * maps a page to its index. A ring holds one table of fixed buffers, so the
 * ring must have none registered yet (BUSY otherwise).
 *
 * While registered, labyrinth_pool_destroy() returns BUSY. Call
 * labyrinth_pool_unregister_io_uring() before destroying the pool (and
 * preferably before closing the ring).
 *
 * Errors: INVALID (NULL pool, bad fd, fd not an io_uring), BUSY (the pool is
 * already registered with this ring, or the ring has fixed buffers),
 * UNSUPPORTED (no io_uring in this kernel, pool needs more than 16384
 * buffers), NOMEM (RLIMIT_MEMLOCK refused the pinning: the message gives
 * the limit, the size asked and how to raise it), SYSTEM (another errno).
 * May block (system call, pins memory); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_register_io_uring(labyrinth_pool *pool,
                                                                int ring_fd);

/**
 * Undo labyrinth_pool_register_io_uring() (or the registration a managed
 * ring made at its creation, see labyrinth_ring_fd()). For a managed ring,
 * refused with BUSY while pages are in flight through it (submitted
 * operations and pages in its provided-buffer ring); afterwards its fixed
 * operations return INVALID until the pool is registered again.
 * For an application's ring the library cannot see what is in flight; the
 * kernel keeps the buffers pinned until the requests using them finish.
 * If the ring was already closed, the kernel has dropped the buffers with
 * it and this call only releases the pool's hold (returns OK).
 * Errors: INVALID (NULL pool, pool not registered with ring_fd).
 * May block (system call); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_unregister_io_uring(labyrinth_pool *pool,
                                                                  int ring_fd);

/**
 * Which fixed buffer the address `page` (any byte of the arena) lies in,
 * for io_uring_prep_read_fixed()/write_fixed() on a ring the pool is
 * registered with. The mapping depends only on the arena, so it is the same
 * for every ring. *buf_index is written on success only.
 * Errors: INVALID (NULL pool or buf_index), FOREIGN (not in the arena).
 * Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_page_buf_index(const labyrinth_pool *pool,
                                                        const void *page,
                                                        uint16_t *buf_index);

/**
 * How many fixed buffers the arena is registered as (*count, written on
 * success). Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_io_uring_buffers(const labyrinth_pool *pool,
                                                               uint32_t *count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LABYRINTH_URING_BUFFERS_H */
