/*
 * labyrinth_uring_bundle.h - bundles on the managed ring (ABI 1.1):
 * receives whose one kernel completion carries several provided pages, and
 * sends of a queue of pages in one submission (IORING_RECVSEND_BUNDLE,
 * Linux 6.10). Included by labyrinth_uring.h; conventions are those of
 * labyrinth.h.
 *
 * How a bundle comes out of labyrinth_ring_complete(): one
 * labyrinth_completion per page, in the order of the bytes, consecutive in
 * `out` (a bundle that does not fit in `max` goes on at the start of the
 * next call, before anything else). Each carries its page, the bytes in that
 * page (`result`) and LABYRINTH_COMPLETION_BUNDLE; the last page of a kernel
 * completion also carries LABYRINTH_COMPLETION_BUNDLE_END. A loop written
 * for labyrinth_ring_recv_multishot (one page per completion) works
 * unchanged. Where the kernel lacks bundles (before 6.10) both calls return
 * LABYRINTH_ERR_UNSUPPORTED naming the version, and change nothing.
 */
#ifndef LABYRINTH_URING_BUNDLE_H
#define LABYRINTH_URING_BUNDLE_H

#include "labyrinth/labyrinth_uring.h"

#ifdef __cplusplus
extern "C" {
#endif

/** labyrinth_ring_recv_bundle flags: one receive (one kernel completion,
 *  however many pages it fills) instead of a multishot receive. */
#define LABYRINTH_RECV_BUNDLE_ONESHOT (1u << 0)

/** labyrinth_completion.flags: the page is one of the pages of one bundle
 *  (a kernel completion of labyrinth_ring_recv_bundle or
 *  labyrinth_ring_send_bundle). */
#define LABYRINTH_COMPLETION_BUNDLE (1u << 4)
/** The last page of that kernel completion. */
#define LABYRINTH_COMPLETION_BUNDLE_END (1u << 5)

/** Most pages one labyrinth_ring_send_bundle() takes. */
#define LABYRINTH_SEND_BUNDLE_MAX 256u

/**
 * Receive on socket fd into pages of the ring's provided-buffer ring, where
 * one kernel completion may fill several pages (IORING_RECVSEND_BUNDLE).
 * TCP: each completion carries what had arrived, up to as many consecutive
 * pages as the buffer ring holds and the bytes queued in the socket need:
 * fewer completions and kernel round trips per byte. UDP (any datagram
 * socket): the kernel sizes a bundle by the bytes the socket reports
 * queued, which datagram sockets do not report (Linux 6.18), so each
 * completion is one datagram in one page, exactly as with
 * labyrinth_ring_recv_multishot (a datagram longer than a page is cut).
 *
 * Each page comes out as its own completion (see above; op
 * LABYRINTH_OP_RECV_BUNDLE, `result` the bytes in that page, at its start),
 * owned by the thread that takes it, which frees it or gives it back with
 * labyrinth_ring_provide(). Multishot unless LABYRINTH_RECV_BUNDLE_ONESHOT;
 * everything labyrinth_ring_recv_multishot says about refilling, starvation
 * and re-arming (also for ONESHOT: a starved receive waits for pages),
 * cancelling and the final completion holds. The final completion of an
 * ONESHOT receive is the last page of its one kernel completion (no MORE),
 * or one without page for 0 bytes or an error. labyrinth_ring_stats counts
 * recv_bundles and recv_bundle_pages.
 *
 * Errors: INVALID (NULL ring, fd < 0, unknown flags, no provided-buffer
 * ring, a ring with incremental consumption), BUSY (max_inflight reached,
 * submission queue full), UNSUPPORTED (kernel before 6.10), SYSTEM.
 * Nothing changes on error. May block (system call); not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_recv_bundle(labyrinth_ring *ring, int fd,
                                                          int msg_flags, uint32_t flags,
                                                          uint64_t user_data);

/**
 * Send the `count` pages pages[0..count) (lens[i] bytes of pages[i], from
 * its start) on socket fd in one submission, in that order
 * (IORING_RECVSEND_BUNDLE on a send through a buffer group of the ring's
 * own). Every page is a block of the ring's pool the calling thread may use,
 * as for labyrinth_ring_send, listed once. On OK every page is the kernel's
 * (free, transfer and submissions of it return BUSY) until the completion
 * that hands it back: one completion per page, in order (op
 * LABYRINTH_OP_SEND_BUNDLE, flag LABYRINTH_COMPLETION_BUNDLE, `result` the
 * bytes of that page sent, or -errno for a page of which nothing was sent
 * because the send failed, -ECANCELED if it ended without error); the
 * page's owner at submission owns it again. Every completion but the last
 * of the operation carries LABYRINTH_COMPLETION_MORE. The kernel sends with
 * MSG_WAITALL: on a stream socket a page is sent partly only when the send
 * fails. On a datagram socket the pages one kernel send takes form one
 * datagram. One bundled send at a time per ring.
 *
 * pages and lens are borrowed for the call. Errors (nothing changes, every
 * page stays the caller's): INVALID (NULL ring/pages/lens, fd < 0, count 0
 * or above LABYRINTH_SEND_BUNDLE_MAX, a NULL page, a page listed twice, a
 * len of 0 or beyond its block), FOREIGN / DOUBLE_FREE / NOT_OWNER (a page
 * is not the caller's), BUSY (a page in flight, another bundled send in
 * flight, max_inflight reached, submission queue full), UNSUPPORTED (kernel
 * before 6.10), NOMEM, SYSTEM. May block (system call); not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ring_send_bundle(labyrinth_ring *ring, int fd,
                                                          void *const *pages,
                                                          const uint32_t *lens, size_t count,
                                                          int msg_flags, uint64_t user_data);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LABYRINTH_URING_BUNDLE_H */
