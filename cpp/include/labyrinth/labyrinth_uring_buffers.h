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
 * While registered, labyrinth_pool_destroy() returns BUSY: from ABI 1.1
 * the registration is a registration listener of the pool (labyrinth_arena.h,
 * named "io_uring fixed buffers on fd N") that refuses the destroy, and the
 * message names it. Call
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
 * kernel keeps the buffers pinned until the requests using them finish
 * (labyrinth_pool_register_io_uring_tagged() makes that visible). For a
 * registration made with labyrinth_pool_register_io_uring_tagged(), the
 * pool stays held (labyrinth_pool_destroy() BUSY) after this call until
 * every tag came back through labyrinth_pool_io_uring_released(); calling
 * this again then returns INVALID, or OK and lets go if the ring was
 * closed meanwhile.
 * If the ring was already closed, the kernel has dropped the buffers with
 * it and this call only releases the pool's hold (returns OK).
 * Errors: INVALID (NULL pool, pool not registered with ring_fd).
 * May block (system call); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_unregister_io_uring(labyrinth_pool *pool,
                                                                  int ring_fd);

/**
 * Memory locking, checked before pinning: the kernel charges a fresh
 * registration's pages to RLIMIT_MEMLOCK (a user without CAP_IPC_LOCK),
 * once per registration. When the arena's size plus what this process's
 * registrations already pin exceeds the limit, the registration calls return
 * NOMEM before any system call, with a message naming the limit, the sizes
 * and the remedies (ulimit -l, prlimit --memlock, or a clone, which is not
 * charged again). The kernel's own check stays (other processes of the same
 * user count too): its refusal is the same NOMEM. labyrinth_ring_create()
 * does not fail for it: see labyrinth_ring_stats.register_fallback.
 */

/**
 * Register the arena with the application's ring ring_fd like
 * labyrinth_pool_register_io_uring(), with tags (ABI 1.1): the table is
 * registered sparse (Linux 5.19) and fixed buffer i carries the tag
 * tag_base + i. When the pool is unregistered from the ring, the kernel
 * posts one completion per buffer on ring_fd, user_data tag_base + i,
 * res 0, once no request holds that buffer any more, that is once the
 * kernel has let go of it (for a buffer cloned into other rings, their own
 * registrations keep its pages pinned after that, see
 * labyrinth_pool_clone_io_uring). The application passes each such
 * completion's user_data to labyrinth_pool_io_uring_released(); until all
 * came back the pool counts the registration as held and
 * labyrinth_pool_destroy() returns BUSY, so the arena is never unmapped
 * (or handed back to its provider) while the kernel may still write to it.
 * Pages keep their ownership rules meanwhile: the library does not see the
 * application's requests. If registration fails, completions with some of
 * these tags may still appear: ignore them.
 * Choose tag_base so that [tag_base, tag_base + count) (count from
 * labyrinth_pool_io_uring_buffers) is apart from your own user_data.
 * Errors: as labyrinth_pool_register_io_uring, and INVALID (tag_base 0, or
 * within 16384 of UINT64_MAX), UNSUPPORTED (kernel without sparse tables).
 * May block (system call, pins memory); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_register_io_uring_tagged(labyrinth_pool *pool,
                                                                       int ring_fd,
                                                                       uint64_t tag_base);

/**
 * Hand back one tag completion (its user_data) of a tagged registration of
 * the pool with ring_fd that was unregistered (ABI 1.1). When the last one
 * is back the pool no longer counts the registration (see
 * labyrinth_pool_register_io_uring_tagged). Errors: INVALID (NULL pool, not
 * a tag of such a registration, the registration still live, the tag
 * already handed back); nothing changes on error. May block (a mutex,
 * briefly); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_io_uring_released(labyrinth_pool *pool, int ring_fd,
                                                                uint64_t user_data);

/**
 * Give the io_uring dst_ring_fd the fixed buffers of src_ring_fd, a ring the
 * pool is registered with, without pinning the arena again
 * (IORING_REGISTER_CLONE_BUFFERS, ABI 1.1, Linux 6.12): the way to give
 * per-thread rings one registration. Both are rings of this process, an
 * application's or a managed one (labyrinth_ring_fd(); create it with
 * LABYRINTH_RING_NO_REGISTER); dst must have no fixed buffers. Indices are
 * the same as on src (labyrinth_page_buf_index). The clone is not charged
 * to RLIMIT_MEMLOCK. dst is then registered like any other ring (destroy
 * BUSY, labyrinth_pool_unregister_io_uring(pool, dst_ring_fd) undoes it);
 * the kernel keeps the pages pinned until src and every clone dropped them,
 * whichever goes first. Clones carry no tags.
 * Errors: INVALID (NULL pool, bad or equal fds, the pool not registered
 * with src, dst a managed ring of another pool), BUSY (dst already has
 * fixed buffers), UNSUPPORTED (kernel before 6.12), SYSTEM.
 * May block (system call); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_clone_io_uring(labyrinth_pool *pool,
                                                             int src_ring_fd, int dst_ring_fd);

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
