/*
 * labyrinth_xdp.h - AF_XDP sockets whose UMEM is a Labyrinth pool's arena.
 *
 * Glossary:
 *  UMEM    the pool's whole arena registered with the kernel, split into
 *          4 KiB frames: one frame is one page of the pool.
 *  socket  an AF_XDP socket bound to one (interface, queue); several sockets
 *          share one UMEM, each with its own FILL and COMPLETION rings.
 *  frame   a page the kernel holds: on a FILL ring, being received into, or
 *          queued for transmission. A frame is "in flight": free, transfer
 *          and a second transmission of it return LABYRINTH_ERR_BUSY.
 *
 * Receive: each socket keeps its FILL ring fed with the pool's atomic
 * exclusive pages and refills it as pages come back. labyrinth_xdp_receive()
 * hands each received frame to the calling thread as an exclusive page it
 * owns (free it with labyrinth_free_pages()), with the packet's offset and
 * length in the page. When the pool has no free page the FILL ring runs
 * low (counted in fill_starved); the next receive or refill after pages are
 * freed feeds it again.
 * Transmit: labyrinth_xdp_transmit() takes an owned page; it is in flight
 * until labyrinth_xdp_complete() reads it from the COMPLETION ring and gives
 * it back to the owner it had.
 * Teardown: labyrinth_xdp_socket_destroy() closes the socket, then frees the
 * pages the kernel held for receive and gives transmitted ones back to their
 * owners: no frame is lost.
 *
 * The XDP program is libxdp's default one (it redirects every packet of the
 * bound queue to the socket), attached when the first socket on an
 * interface is created and detached with the last one.
 * Zero-copy (XDP_ZEROCOPY) is asked for first and copy mode used where the
 * driver refuses it; labyrinth_xdp_socket_info() says which one is in use.
 *
 * Needs: a kernel with CONFIG_XDP_SOCKETS, CAP_NET_ADMIN and CAP_NET_RAW
 * (root), and RLIMIT_MEMLOCK room for the arena (the kernel charges the
 * registered UMEM to it unless CAP_IPC_LOCK). Each missing piece gets
 * UNSUPPORTED (or NOMEM for the memlock limit) with a message saying which
 * and what to do; an interface that does not exist is INVALID.
 *
 * Threads: a socket is used by one thread at a time (receive, refill,
 * transmit, complete); different sockets on one UMEM may be used by
 * different threads at once. The data-path calls (receive, refill,
 * transmit, complete) are async-signal-safe as labyrinth_owner_self() is:
 * not in a LABYRINTH_POOL_PKEYS pool. Conventions (ownership, blocking, signals,
 * errors, struct_size) are those of labyrinth.h. C99 and C++ compatible.
 * Built only where libxdp and libbpf are found (library labyrinth_xdp).
 */
#ifndef LABYRINTH_XDP_H
#define LABYRINTH_XDP_H

#include "labyrinth/labyrinth.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Frame size: one page. */
#define LABYRINTH_XDP_FRAME_BYTES 4096u

/** A pool's arena registered as a UMEM. Opaque. */
typedef struct labyrinth_xdp_umem labyrinth_xdp_umem;
/** An AF_XDP socket on a UMEM. Opaque. */
typedef struct labyrinth_xdp_socket labyrinth_xdp_socket;

/**
 * Register the arena of `pool` as a UMEM. *out (caller owns it, free with
 * labyrinth_xdp_umem_destroy) is written on success only. While the UMEM
 * exists labyrinth_pool_destroy() returns BUSY.
 * Errors: INVALID (NULL argument, unusable pool), UNSUPPORTED (no AF_XDP in
 * the kernel, no CAP_NET_RAW, a LABYRINTH_POOL_GUARD pool), NOMEM (RLIMIT_MEMLOCK refused the
 * registration: the message gives the limit and how to raise it), SYSTEM.
 * May block (system calls); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_umem_create(labyrinth_pool *pool,
                                                         labyrinth_xdp_umem **out);

/**
 * Unregister and free a UMEM. BUSY (nothing changes) while sockets use it.
 * NULL is accepted (OK). May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_umem_destroy(labyrinth_xdp_umem *umem);

/** Attach the XDP program in generic (SKB) mode instead of the driver's. */
#define LABYRINTH_XDP_GENERIC ((uint32_t)1u << 0)
/** Use copy mode; do not ask for zero-copy. */
#define LABYRINTH_XDP_COPY ((uint32_t)1u << 1)
/** All flags this version knows; other bits are INVALID. */
#define LABYRINTH_XDP_ALL (LABYRINTH_XDP_GENERIC | LABYRINTH_XDP_COPY)

/** Options of labyrinth_xdp_socket_create(). struct_size first. */
typedef struct labyrinth_xdp_socket_options {
  size_t struct_size;   /**< sizeof(labyrinth_xdp_socket_options) */
  const char *ifname;   /**< interface name; borrowed for the call */
  uint32_t queue;       /**< queue id on the interface (default 0) */
  uint32_t ring_size;   /**< entries of the RX and TX rings, and of the FILL and
                             COMPLETION rings except on a UMEM's first socket
                             (those have 32768): a power of two in [64, 32768]
                             (default 2048) */
  uint32_t fill_target; /**< pages kept on the FILL ring, at most ring_size
                             (0, the default: ring_size / 2) */
  uint32_t flags;       /**< LABYRINTH_XDP_* (default 0) */
} labyrinth_xdp_socket_options;

/** Fill *opts with the defaults (struct_size included). Never blocks;
 *  async-signal-safe. */
LABYRINTH_API void labyrinth_xdp_socket_options_init(labyrinth_xdp_socket_options *opts);

/**
 * Bind an AF_XDP socket to opts->ifname / opts->queue on `umem`, attach the
 * XDP program if the interface has none of ours yet, and feed its FILL ring
 * with fill_target pages allocated with
 * labyrinth_void_alloc_page_gfp_atomic_exclusive(). *out (caller owns it,
 * free with labyrinth_xdp_socket_destroy) is written on success only; on any
 * failure nothing is left behind (no page, no program, no socket).
 * Errors: INVALID (NULL argument, bad struct_size or flags, ring_size not a
 * power of two, no such interface), BUSY (a socket of this UMEM is already
 * bound to that queue), UNSUPPORTED (no AF_XDP, no CAP_NET_ADMIN, the XDP
 * program cannot be attached), NOMEM (memlock), SYSTEM.
 * May block (system calls); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status
labyrinth_xdp_socket_create(labyrinth_xdp_umem *umem, const labyrinth_xdp_socket_options *opts,
                            labyrinth_xdp_socket **out);

/**
 * Close the socket; free the pages it held for receive (FILL ring, frames
 * received but not taken) and give pages still queued for transmission
 * back to their owners. One exception: the UMEM's first socket is bound on
 * the UMEM's own registration, which stays open while other sockets use the
 * UMEM; its pages stay in flight until the UMEM's last socket is destroyed,
 * and are given back then. NULL is accepted (OK). May block; not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_socket_destroy(labyrinth_xdp_socket *sock);

/** The socket's file descriptor, for poll(); borrowed, valid until the socket
 *  is destroyed. -1 for NULL. Never blocks; async-signal-safe. */
LABYRINTH_API int labyrinth_xdp_socket_fd(const labyrinth_xdp_socket *sock);

/** Which data path a socket uses. */
typedef enum labyrinth_xdp_mode {
  LABYRINTH_XDP_MODE_COPY = 0,     /**< the kernel copies packets into frames */
  LABYRINTH_XDP_MODE_ZEROCOPY = 1, /**< the NIC writes into frames directly */
} labyrinth_xdp_mode;

/** A socket's state; filled by labyrinth_xdp_socket_info(). */
typedef struct labyrinth_xdp_socket_info {
  size_t struct_size;        /**< set by the caller: sizeof(labyrinth_xdp_socket_info) */
  labyrinth_xdp_mode mode;   /**< copy or zero-copy */
  uint32_t generic;          /**< 1: XDP program in generic (SKB) mode */
  uint64_t fill_frames;      /**< pages the kernel holds for receive */
  uint64_t tx_in_flight;     /**< pages transmitted, not yet completed */
  uint64_t received;         /**< frames handed to callers */
  uint64_t completed;        /**< transmitted frames given back */
  uint64_t fill_starved;     /**< refills that found the pool empty */
  uint64_t rx_dropped;       /**< packets the socket dropped (XDP_STATISTICS) */
  uint64_t rx_ring_full;     /**< of those: the RX ring was full (receive sooner) */
  uint64_t fill_ring_empty;  /**< times the kernel found the FILL ring empty */
} labyrinth_xdp_socket_info;

/**
 * Fill *info (fields up to info->struct_size). Errors: INVALID.
 * Never blocks (one getsockopt); async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_socket_info_get(const labyrinth_xdp_socket *sock,
                                                             labyrinth_xdp_socket_info *info);

/** A received packet: `page` (the taker owns it, free with
 *  labyrinth_free_pages) holds `len` bytes starting at byte `offset`. */
typedef struct labyrinth_xdp_frame {
  void *page;
  uint32_t offset;
  uint32_t len;
} labyrinth_xdp_frame;

/**
 * Take up to `max` received frames into frames[0..*n); each page becomes an
 * exclusive page of the calling thread. Then refills the FILL ring.
 * *n = 0 when nothing has arrived (OK: it does not wait; poll() the fd).
 * Errors: INVALID (NULL argument). Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_receive(labyrinth_xdp_socket *sock,
                                                     labyrinth_xdp_frame *frames, size_t max,
                                                     size_t *n);

/**
 * Feed the FILL ring up to fill_target with atomic exclusive pages; *added
 * (may be NULL) gets how many. Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_refill(labyrinth_xdp_socket *sock, size_t *added);

/**
 * Queue `len` bytes at `offset` of `page` for transmission and wake the
 * kernel. The page must be a page of the UMEM's pool owned by the calling
 * thread; it is in flight (BUSY to free, transfer or transmit) until
 * labyrinth_xdp_complete() gives it back. On failure nothing changes.
 * Errors: INVALID (NULL, offset + len beyond the page, interior pointer),
 * FOREIGN (not the pool's), NOT_OWNER, DOUBLE_FREE (a free page), BUSY
 * (already in flight, or the TX ring is full: call labyrinth_xdp_complete).
 * Never blocks (sendto with MSG_DONTWAIT); async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_transmit(labyrinth_xdp_socket *sock, void *page,
                                                      uint32_t offset, uint32_t len);

/**
 * Read the COMPLETION ring: each transmitted page the kernel is done with
 * goes back to the owner it had at labyrinth_xdp_transmit(). *n (may be NULL)
 * gets how many. Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_xdp_complete(labyrinth_xdp_socket *sock, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_XDP_H */
