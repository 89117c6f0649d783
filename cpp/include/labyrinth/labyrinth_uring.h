/*
 * labyrinth_uring.h - zero-copy I/O with io_uring on Labyrinth pages.
 *
 * Two ways to use it:
 *
 *  1. Bring your own ring. labyrinth_pool_register_io_uring() registers the
 *     pool's whole arena as fixed buffers of an io_uring the application
 *     created (liburing's io_uring_queue_init), and labyrinth_page_buf_index()
 *     says which fixed buffer a page lies in (both declared in
 *     labyrinth_uring_buffers.h, which this header includes):
 *
 *       uint16_t idx;
 *       labyrinth_page_buf_index(pool, page, &idx);
 *       io_uring_prep_read_fixed(sqe, fd, page, 4096, off, idx);
 *
 *     The library cannot see the application's submissions, so it cannot
 *     enforce ownership while they are in flight: that is the application's
 *     job on such a ring.
 *
 *  2. Let Labyrinth drive the ring (labyrinth_ring). Every operation takes
 *     an owned page; while the kernel holds it the page belongs to the
 *     kernel: labyrinth_free_pages(), labyrinth_page_transfer() and a second
 *     submission of it return LABYRINTH_ERR_BUSY. Ownership comes back with
 *     the completion (for SEND_ZC, with its notification, the second
 *     completion). A submission that fails gives the page straight back.
 *     Multishot receive takes its pages from a provided-buffer ring that the
 *     ring keeps fed with the pool's atomic exclusive pages; when that runs
 *     dry the ring re-arms the receive by itself once pages are back.
 *     Destroying the ring cancels what is in flight and waits for the
 *     kernel to let go.
 *
 * Where io_uring is not available (kernel without it: ENOSYS; a seccomp
 * policy: EPERM; sysctl kernel.io_uring_disabled) or a feature is too old
 * (provided-buffer rings: Linux 5.19; SEND_ZC and multishot receive: 6.0),
 * calls return LABYRINTH_ERR_UNSUPPORTED with a message saying which. The
 * allocator itself works on.
 *
 * Memory locking: registration pins the arena and the kernel charges it to
 * RLIMIT_MEMLOCK for a user without CAP_IPC_LOCK (a charge separate from
 * the pool's own mlock). It is checked before pinning; when the limit
 * refuses, the message gives the limit, the size asked and how to raise it
 * (or to clone a registration, which is not charged again), and a managed
 * ring falls back to unregistered fixed I/O (labyrinth_uring_buffers.h).
 *
 * Conventions (ownership, blocking, signals, errors, struct_size) are those
 * of labyrinth.h. C99 and C++ compatible.
 */
#ifndef LABYRINTH_URING_H
#define LABYRINTH_URING_H

#include "labyrinth/labyrinth.h"
#include "labyrinth/labyrinth_uring_buffers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* The managed ring                                                        */
/* ---------------------------------------------------------------------- */

/** An io_uring driven by Labyrinth, bound to one pool. Opaque.
 *  Threads: one thread at a time may use a ring (like liburing's struct
 *  io_uring); labyrinth_ring_get_stats() may be called from any thread. */
typedef struct labyrinth_ring labyrinth_ring;

/** Ring flags (labyrinth_ring_options.flags). */
/** Do not refill the provided-buffer ring from the pool by itself: the
 *  application feeds it with labyrinth_ring_provide(). */
#define LABYRINTH_RING_MANUAL_REFILL (1u << 0)
/** Do not register the pool's arena with the ring at creation (fixed
 *  read/write then return INVALID until labyrinth_pool_register_io_uring()
 *  or labyrinth_pool_clone_io_uring() is called with labyrinth_ring_fd()). */
#define LABYRINTH_RING_NO_REGISTER (1u << 1)
/** Only the thread that creates the ring will ever use it (submit, complete,
 *  destroy): the kernel then runs completion work in batches when that
 *  thread asks for completions (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN,
 *  Linux 6.1; ignored on older kernels) instead of interrupting it for each
 *  one: the best throughput for a receive loop. Calls from another thread
 *  then fail (SYSTEM, EEXIST). */
#define LABYRINTH_RING_SINGLE_THREAD (1u << 2)
/** Also tell the application each time a multishot receive starves (its
 *  provided-buffer ring ran dry): labyrinth_ring_complete() then hands out
 *  a completion with result -ENOBUFS, page NULL and flags
 *  LABYRINTH_COMPLETION_MORE | LABYRINTH_COMPLETION_STARVED. The receive
 *  goes on either way (see labyrinth_ring_recv_multishot); without this
 *  flag starvation shows only in labyrinth_ring_stats. */
#define LABYRINTH_RING_REPORT_STARVED (1u << 3)
/** Incremental consumption (IOU_PBUF_RING_INC, Linux 6.12): one block of
 *  the provided-buffer ring (a page, or 2^pbuf_order pages) takes several
 *  receives, and each receive hands out a slice of it (completion flag
 *  LABYRINTH_COMPLETION_SLICE) instead of a whole block: a 64-byte datagram
 *  holds 64 bytes of the pool, not 4 KiB. See labyrinth_ring_slice_release.
 *  The kernel cuts a datagram longer than the room left in the block and
 *  says nothing: set max_datagram (below), and read
 *  LABYRINTH_COMPLETION_MAYBE_TRUNC. A stream (TCP) loses nothing: what
 *  does not fit goes to the next block. Needs pbuf_entries; not with
 *  LABYRINTH_RING_MANUAL_REFILL. Where the kernel lacks it,
 *  labyrinth_ring_create() returns UNSUPPORTED naming the version. */
#define LABYRINTH_RING_PBUF_INCREMENTAL (1u << 4)
/** LABYRINTH_RING_PBUF_INCREMENTAL where the kernel has it, else one page
 *  per receive as without it (pbuf_order is then ignored);
 *  labyrinth_ring_stats.pbuf_incremental says which is in effect. */
#define LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE (1u << 5)
/** All ring flags this version knows; other bits are INVALID. */
#define LABYRINTH_RING_ALL_FLAGS                                                \
  (LABYRINTH_RING_MANUAL_REFILL | LABYRINTH_RING_NO_REGISTER | LABYRINTH_RING_SINGLE_THREAD | \
   LABYRINTH_RING_REPORT_STARVED | LABYRINTH_RING_PBUF_INCREMENTAL |            \
   LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE)

/**
 * Options for labyrinth_ring_create(). Initialise with
 * labyrinth_ring_options_init(), then change what you need.
 */
typedef struct labyrinth_ring_options {
  size_t struct_size;     /**< sizeof(labyrinth_ring_options); set by _init */
  uint32_t sq_entries;    /**< submission queue size, 1..32768 (default 256) */
  uint32_t max_inflight;  /**< operations in flight at most; more are refused with
                               BUSY (default 2 * sq_entries; 0 means default) */
  uint32_t pbuf_entries;  /**< pages in the provided-buffer ring for multishot
                               receive: 0 (none, the default) or a power of two
                               up to 32768 */
  uint16_t pbuf_group;    /**< buffer group id of that ring (default 0) */
  uint16_t reserved0;     /**< must be 0 */
  uint32_t flags;         /**< LABYRINTH_RING_* (default 0) */
  uint32_t pbuf_order;    /**< with incremental consumption: each block of the
                               provided-buffer ring is 2^pbuf_order pages
                               (0..LABYRINTH_MAX_ORDER, default 0: one page);
                               must be 0 otherwise */
  uint32_t max_datagram;  /**< (1.1) with incremental consumption: the largest
                               datagram to receive whole. The kernel then never
                               starts a receive in a block with less room left
                               (IOU_PBUF_RING_INC's min_left: Linux 7.1, also in
                               the 6.12 and 6.18 stable series; UNSUPPORTED,
                               or with _IF_AVAILABLE a page per receive, where
                               the kernel lacks it). 0 (default): no minimum.
                               At most the block's size */
  /* more fields may follow in later versions */
} labyrinth_ring_options;

/** Fill *opts with defaults (struct_size included). NULL is ignored.
 *  Never blocks; async-signal-safe. */
LABYRINTH_API void labyrinth_ring_options_init(labyrinth_ring_options *opts);

/**
 * Create a ring bound to `pool` (borrowed: the pool must outlive the ring;
 * labyrinth_pool_destroy() returns BUSY until the ring is destroyed). Sets
 * up an io_uring, registers the arena as fixed buffers (unless
 * LABYRINTH_RING_NO_REGISTER) and, with pbuf_entries, a provided-buffer ring
 * filled with atomic exclusive pages from the pool (owned by the kernel
 * while there). opts may be NULL for defaults; it is borrowed for the call.
 * On success *out receives a ring the caller owns: destroy it with
 * labyrinth_ring_destroy().
 * Errors: INVALID (bad options, wrong struct_size), UNSUPPORTED (no io_uring:
 * ENOSYS, EPERM from seccomp, kernel.io_uring_disabled; kernel without
 * provided-buffer rings), NOMEM (the pool cannot fill the provided-buffer
 * ring), SYSTEM. Where RLIMIT_MEMLOCK refuses the arena's registration the
 * ring is created without it and does its fixed I/O as plain read/write
 * (labyrinth_ring_stats.register_fallback, fallback_ops).
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_create(labyrinth_pool *pool,
                                                     const labyrinth_ring_options *opts,
                                                     LABYRINTH_OWN labyrinth_ring **out);

/**
 * Destroy a ring: cancel every operation in flight, wait until the kernel
 * has let go of every page (this may wait for a SEND_ZC notification, i.e.
 * for the network stack to release the data), then:
 *  - pages of operations whose completions were not taken go back to the
 *    owner they had when submitted (as if completed; the caller still holds
 *    their pointers and frees them),
 *  - pages in the provided-buffer ring, and pages the kernel filled from it
 *    that the application never took, go back to the pool,
 * unregister the arena and the provided-buffer ring and close the io_uring.
 * NULL is a no-op returning OK. BUSY, and nothing changes, while slices
 * are alive (incremental consumption): release them first. No other
 * thread may use the ring (slices included) during or after this call. A LABYRINTH_RING_SINGLE_THREAD ring can only be destroyed
 * by the thread that created it (INVALID otherwise, nothing changes).
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_destroy(labyrinth_ring *ring);

/** The ring's io_uring file descriptor (borrowed: closed by
 *  labyrinth_ring_destroy()), e.g. for labyrinth_pool_unregister_io_uring()
 *  or to poll it; -1 for NULL. Never blocks; async-signal-safe. */
LABYRINTH_API int labyrinth_ring_fd(const labyrinth_ring *ring);

/** Operations, as reported in labyrinth_completion.op. */
typedef enum labyrinth_ring_op {
  LABYRINTH_OP_NONE = 0,
  LABYRINTH_OP_READ_FIXED = 1,     /**< labyrinth_ring_read_fixed */
  LABYRINTH_OP_WRITE_FIXED = 2,    /**< labyrinth_ring_write_fixed */
  LABYRINTH_OP_SEND = 3,           /**< labyrinth_ring_send */
  LABYRINTH_OP_RECV = 4,           /**< labyrinth_ring_recv */
  LABYRINTH_OP_SEND_ZC = 5,        /**< labyrinth_ring_send_zc */
  LABYRINTH_OP_RECV_MULTISHOT = 6, /**< labyrinth_ring_recv_multishot */
  LABYRINTH_OP_RECV_BUNDLE = 7,    /**< labyrinth_ring_recv_bundle (1.1) */
  LABYRINTH_OP_SEND_BUNDLE = 8     /**< labyrinth_ring_send_bundle (1.1) */
} labyrinth_ring_op;

/**
 * Submitting. Every call below takes `page`, a block of the ring's pool that
 * the calling thread may use (allocated; if exclusive, owned by it), and
 * `len` bytes of it (1 .. the block's size). On OK the page is the kernel's
 * until the completion that hands it back (see labyrinth_completion);
 * meanwhile free, transfer and another submission of it return BUSY. On any
 * error the page stays (or is at once again) the caller's and nothing was
 * submitted. user_data is returned untouched in the completions.
 * Each call submits to the kernel at once (one io_uring_enter).
 * Errors: INVALID (NULL ring/page, len 0 or beyond the block, fixed I/O on a
 * ring whose arena is not registered), FOREIGN / DOUBLE_FREE / NOT_OWNER
 * (the page is not the caller's), BUSY (page already in flight, max_inflight
 * reached, submission queue full or the kernel asks to retry: EAGAIN/EBUSY),
 * UNSUPPORTED (SEND_ZC on an old kernel), SYSTEM (another errno).
 * May block (system call); not async-signal-safe.
 */
/** Read len bytes at file offset `offset` of fd into page, through the
 *  arena's fixed buffer (O_DIRECT files included: page, len and offset must
 *  then meet the device's alignment, else the completion carries -EINVAL). */
LABYRINTH_API labyrinth_status labyrinth_ring_read_fixed(labyrinth_ring *ring, int fd,
                                                         void *page, uint32_t len,
                                                         uint64_t offset, uint64_t user_data);
/** Write len bytes of page at file offset `offset` of fd (fixed buffer). */
LABYRINTH_API labyrinth_status labyrinth_ring_write_fixed(labyrinth_ring *ring, int fd,
                                                          void *page, uint32_t len,
                                                          uint64_t offset, uint64_t user_data);
/** send(2) len bytes of page on socket fd with msg_flags. */
LABYRINTH_API labyrinth_status labyrinth_ring_send(labyrinth_ring *ring, int fd, void *page,
                                                   uint32_t len, int msg_flags,
                                                   uint64_t user_data);
/** recv(2) up to len bytes into page from socket fd with msg_flags. */
LABYRINTH_API labyrinth_status labyrinth_ring_recv(labyrinth_ring *ring, int fd, void *page,
                                                   uint32_t len, int msg_flags,
                                                   uint64_t user_data);
/** Zero-copy send (IORING_OP_SEND_ZC, through the fixed buffer when the arena
 *  is registered). Two completions: the first (flag MORE, page NULL) carries
 *  the bytes sent; the page comes back only with the second (flag NOTIF),
 *  when the network stack no longer reads it. If the kernel posts no
 *  notification (no MORE on the first), the first completion hands back the
 *  page. UNSUPPORTED on kernels without SEND_ZC (before 6.0). */
LABYRINTH_API labyrinth_status labyrinth_ring_send_zc(labyrinth_ring *ring, int fd,
                                                      void *page, uint32_t len,
                                                      int msg_flags, uint64_t user_data);

/**
 * Multishot receive on socket fd (UDP: one datagram per completion; TCP:
 * whatever arrived) into pages the kernel picks from the ring's
 * provided-buffer ring. Each completion hands one page (owned by the thread
 * that takes the completion; the datagram at its start, `result` bytes) to
 * the application, which frees it or gives it back with
 * labyrinth_ring_provide(); with incremental consumption
 * (LABYRINTH_RING_PBUF_INCREMENTAL) it hands a slice instead (flag
 * LABYRINTH_COMPLETION_SLICE), released with labyrinth_ring_slice_release(). Unless LABYRINTH_RING_MANUAL_REFILL, every
 * labyrinth_ring_complete() call tops the provided-buffer ring up with
 * atomic exclusive pages from the pool.
 *
 * Starvation: when the provided-buffer ring is empty the kernel ends the
 * receive (-ENOBUFS); the data stays queued in the socket. The ring then
 * re-arms the receive by itself, with the same fd, msg_flags and
 * user_data, as soon as the provided-buffer ring has pages again: at the
 * next labyrinth_ring_complete() after pages went back to the pool (it
 * also retries every millisecond while it waits, so frees by other threads
 * count) or at the next labyrinth_ring_provide(). The application never
 * calls this again for it; a TCP stream loses and reorders no bytes; a UDP
 * socket drops datagrams only if its receive buffer (SO_RCVBUF) overflows
 * meanwhile. Each starvation is counted in labyrinth_ring_stats
 * (recv_starvations, recv_rearms, recv_starved_ns, recv_starved_now) and,
 * with LABYRINTH_RING_REPORT_STARVED, reported as a completion carrying
 * LABYRINTH_COMPLETION_STARVED. A starved receive holds no page; it counts
 * as in flight for labyrinth_ring_complete()'s wait (if the waiting thread
 * itself holds every page, wait with a timeout), not in ops_inflight.
 * When the kernel ends the receive on a datagram because it could not post
 * the next completion (the completion queue was full: one block gives many
 * completions with incremental consumption), the ring submits it again at
 * once; that completion carries MORE like the others.
 * The receive ends for good only with a final completion without MORE:
 * an error other than -ENOBUFS, 0 (TCP peer closed), or -ECANCELED after
 * labyrinth_ring_cancel().
 *
 * Errors as above; INVALID if the ring has no provided-buffer ring
 * (pbuf_entries 0), or for MSG_TRUNC with incremental consumption (the
 * kernel would consume a cut datagram's full length from the blocks). May block (system call); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_recv_multishot(labyrinth_ring *ring, int fd,
                                                             int msg_flags,
                                                             uint64_t user_data);

/**
 * Ask the kernel to cancel every operation in flight submitted with
 * user_data. Their completions follow as usual (result -ECANCELED, or their
 * real result if they finished first) and hand their pages back. A starved
 * multishot receive (waiting for pages, see labyrinth_ring_recv_multishot)
 * ends at once: the next labyrinth_ring_complete() hands out its final
 * completion (-ECANCELED, page NULL). A cancelled receive is never re-armed.
 * Errors: INVALID (NULL ring, nothing in flight with that user_data), BUSY
 * (submission queue full), SYSTEM. May block (system call); not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_cancel(labyrinth_ring *ring, uint64_t user_data);

/**
 * Give an order-0 exclusive page the caller owns to the ring's
 * provided-buffer ring: from now on the kernel owns it, until a multishot
 * receive hands it back. The quickest way to recycle a received page.
 * If a multishot receive is starved, this re-arms it (one io_uring_enter
 * that does not wait); otherwise no system call.
 * Errors: INVALID (NULL, no provided-buffer ring, not an order-0 exclusive
 * block), NOT_OWNER / FOREIGN / DOUBLE_FREE, BUSY (the provided-buffer ring
 * is full, or the page is in flight); the caller keeps the page on error.
 * Never blocks; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_provide(labyrinth_ring *ring, void *page);

/**
 * Release a slice: `slice` is the `page` of a completion flagged
 * LABYRINTH_COMPLETION_SLICE (the start of `result` bytes inside a block of
 * the provided-buffer ring), owned by the calling thread. A slice is owned
 * by the thread that took its completion until it releases it or hands it
 * on with labyrinth_ring_slice_transfer(). Its block goes back to the pool
 * when the kernel has stopped filling it and its last slice is released;
 * until then the block is not the application's: labyrinth_free_pages() on
 * it returns BUSY. Unlike the rest of the ring, any thread may call this
 * (and labyrinth_ring_slice_transfer) for the slices it owns, at the same
 * time as the ring's thread uses the ring, until labyrinth_ring_destroy().
 * Errors: INVALID (NULL ring or slice, a ring without incremental
 * consumption, not the start of a slice this ring handed out and whose
 * block it still holds), NOT_OWNER (another thread owns the slice),
 * DOUBLE_FREE (already released; detected while its block is held: a
 * release after the block went back to the pool is INVALID). Nothing
 * changes on error. The address alone cannot tell a stale pointer from a
 * newer slice at the same address (the block went back to the pool and
 * came back): labyrinth_ring_slice_release_gen() can.
 * May block (the ring's slice mutex, held briefly; a zone's mutex when the
 * block goes back to the pool); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_slice_release(labyrinth_ring *ring, void *slice);

/**
 * Hand a slice the calling thread owns to new_owner (a thread id from
 * labyrinth_owner_self()); afterwards only new_owner may release or
 * transfer it. Pass the pointer through your own synchronisation, as for
 * labyrinth_page_transfer(). Errors: as labyrinth_ring_slice_release, and
 * INVALID for new_owner NONE or above LABYRINTH_OWNER_MAX. Nothing changes
 * on error. May block (the ring's slice mutex, briefly); not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_slice_transfer(labyrinth_ring *ring, void *slice,
                                                             labyrinth_owner new_owner);

/**
 * (1.1) As labyrinth_ring_slice_release / _transfer, for the slice of
 * generation `gen` (the completion's slice_gen): a slice already released,
 * even after a newer slice took its address, is refused with DOUBLE_FREE
 * and changes nothing; a generation never handed out at that address (0
 * included) is INVALID. Blocking and signals as those calls.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_slice_release_gen(labyrinth_ring *ring, void *slice,
                                                                uint32_t gen);
LABYRINTH_API labyrinth_status labyrinth_ring_slice_transfer_gen(labyrinth_ring *ring, void *slice,
                                                                 uint32_t gen,
                                                                 labyrinth_owner new_owner);

/** labyrinth_completion.flags */
/** More completions will follow for this operation: a multishot receive
 *  goes on, or a SEND_ZC still holds its page until its notification. */
#define LABYRINTH_COMPLETION_MORE (1u << 0)
/** The SEND_ZC notification: the network stack is done with the page. */
#define LABYRINTH_COMPLETION_NOTIF (1u << 1)
/** A multishot receive starved (result -ENOBUFS, page NULL, MORE also set):
 *  the ring re-arms it when pages are back. Only with
 *  LABYRINTH_RING_REPORT_STARVED. */
#define LABYRINTH_COMPLETION_STARVED (1u << 2)
/** `page` is a slice of a provided block, not a block (incremental
 *  consumption): the calling thread owns the `result` bytes at `page` until
 *  it calls labyrinth_ring_slice_release(). A receive of 0 bytes hands out
 *  no slice (page NULL). */
#define LABYRINTH_COMPLETION_SLICE (1u << 3)
/** (ABI 1.1) A slice of a datagram socket that reached the last byte of its
 *  block: the datagram may have been longer and cut (the kernel does not
 *  say; one that fit exactly is flagged too). Counted in recv_maybe_trunc.
 *  Never with max_datagram set and datagrams up to that size, except an
 *  exact fit. */
#define LABYRINTH_COMPLETION_MAYBE_TRUNC (1u << 6)

/**
 * One completion. The array element type of labyrinth_ring_complete(); its
 * layout is fixed for ABI 1.
 */
typedef struct labyrinth_completion {
  uint64_t user_data; /**< as given at submission */
  void *page;         /**< the page handed back: the caller owns it again (the
                           submitter's page, or a provided page now owned by the
                           calling thread); NULL if no page comes back with this
                           completion (SEND_ZC before its notification, a
                           multishot receive that ended without data) */
  int32_t result;     /**< bytes transferred, or -errno (as io_uring's res); for
                           a SEND_ZC notification, the first completion's result */
  uint32_t op;        /**< labyrinth_ring_op */
  uint32_t flags;     /**< LABYRINTH_COMPLETION_* */
  uint32_t slice_gen; /**< (1.1) a SLICE completion: the slice's generation,
                           never 0, for labyrinth_ring_slice_release_gen();
                           otherwise 0 */
} labyrinth_completion;

/**
 * Take up to max completions into out[0..max) and write their number to
 * *count. Waits until at least wait_nr completions were taken or timeout_ms
 * passed (LABYRINTH_TIMEOUT_INFINITE: no limit); wait_nr 0 never waits. It
 * returns early, with what it has, when nothing is left in flight (a
 * starved multishot receive counts as in flight). Returns
 * OK also when *count < wait_nr (time ran out). Then, unless
 * LABYRINTH_RING_MANUAL_REFILL, refills the provided-buffer ring from the
 * pool (atomic allocations; a shortage is counted in the ring's stats, not
 * reported as an error), and re-arms starved multishot receives once the
 * provided-buffer ring has pages (see labyrinth_ring_recv_multishot); a
 * starved receive keeps a wait going (it is retried every millisecond).
 * out is borrowed; every page in it is owned by the caller afterwards.
 * Errors: INVALID (NULL ring/out/count, max 0), SYSTEM.
 * With wait_nr 0: no blocking lock, at most a non-blocking system call;
 * otherwise may block. Not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_complete(labyrinth_ring *ring,
                                                       labyrinth_completion *out, size_t max,
                                                       size_t wait_nr, uint32_t timeout_ms,
                                                       size_t *count);

/** Ring statistics; set struct_size before labyrinth_ring_get_stats(). */
typedef struct labyrinth_ring_stats {
  size_t struct_size;            /**< set by the caller */
  uint64_t submitted;            /**< operations accepted by the kernel */
  uint64_t submit_failures;      /**< submissions that failed (page given back) */
  uint64_t completions;          /**< completions handed to the application */
  uint64_t ops_inflight;         /**< operations the kernel still holds */
  uint64_t pages_inflight;       /**< pages the kernel holds through this ring
                                      (operations and provided-buffer ring) */
  uint64_t pbuf_entries;         /**< size of the provided-buffer ring */
  uint64_t pbuf_pages;           /**< pages now in the provided-buffer ring */
  uint64_t pbuf_refills;         /**< pages put into it (refill and provide) */
  uint64_t pbuf_refill_failures; /**< refills the pool could not serve (NOMEM) */
  uint64_t pbuf_enobufs;         /**< receives that found it empty (-ENOBUFS) */
  uint32_t sq_entries;           /**< the io_uring's sizes */
  uint32_t cq_entries;
  uint32_t registered;           /**< 1 if the arena is registered with this ring */
  uint32_t fixed_buffers;        /**< how many fixed buffers it takes */
  uint64_t recv_starvations;     /**< multishot receives the kernel ended with
                                      -ENOBUFS and the ring kept (each one is
                                      re-armed, cancelled or torn down) */
  uint64_t recv_rearms;          /**< starved receives the ring re-armed */
  uint64_t recv_starved_ns;      /**< total time receives spent starved, in ns
                                      (added when each starvation ends) */
  uint64_t recv_starved_now;     /**< receives starved right now: waiting for
                                      pages, or cancelled while starved with
                                      their final completion not yet taken.
                                      Not in ops_inflight: the two add up to
                                      the operations not yet finished */
  uint32_t pbuf_incremental;     /**< 1 if incremental consumption is in effect */
  uint32_t pbuf_block_bytes;     /**< size of a provided block */
  uint64_t slices_live;          /**< slices handed out and not yet released */
  uint64_t slice_blocks_held;    /**< blocks the kernel has stopped filling that
                                      wait for their last slice (not in
                                      pages_inflight) */
  /* ABI 1.1 (registered buffers, labyrinth_uring_buffers.h): */
  uint32_t register_fallback;    /**< 1 if RLIMIT_MEMLOCK refused the arena's
                                      registration at creation: read_fixed and
                                      write_fixed then run as plain read and
                                      write (said once per process on stderr) */
  uint32_t buffers_pinned;       /**< fixed buffers of the ring's own tagged
                                      registration that the kernel has not
                                      released: all of them while registered,
                                      then fewer as labyrinth_ring_complete()
                                      takes the kernel's release completions
                                      (not for clones or old kernels) */
  uint64_t fallback_ops;         /**< read_fixed / write_fixed sent as plain
                                      read / write because of the fallback */
  /* ABI 1.1 (bundles, labyrinth_uring_bundle.h): */
  uint64_t recv_bundles;         /**< bundle receive completions with data */
  uint64_t recv_bundle_pages;    /**< pages they carried (per bundle: / recv_bundles) */
  uint64_t send_bundles;         /**< kernel completions of bundled sends */
  uint64_t send_bundle_pages;    /**< pages bundled sends handed back */
  /* ABI 1.1 (datagram slices that may be cut, labyrinth_ring_options.max_datagram): */
  uint64_t recv_maybe_trunc;     /**< completions flagged
                                      LABYRINTH_COMPLETION_MAYBE_TRUNC */
  uint64_t pbuf_min_left;        /**< max_datagram in effect (0: none) */
} labyrinth_ring_stats;

/** Fill *out (borrowed; struct_size set by the caller). Exact for the
 *  ring's thread; a near snapshot from other threads. Never blocks;
 *  async-signal-safe. */
LABYRINTH_API labyrinth_status labyrinth_ring_get_stats(const labyrinth_ring *ring,
                                                    labyrinth_ring_stats *out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#include "labyrinth/labyrinth_uring_bundle.h"

#endif /* LABYRINTH_URING_H */
