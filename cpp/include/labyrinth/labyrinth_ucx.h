/*
 * labyrinth_ucx.h - lending a pool's pages to a remote peer through UCX.
 *
 * Glossary:
 *  node    the owner's side: a UCP context and worker, attached to one pool
 *          (a registration listener, labyrinth_arena.h: the arena is
 *          registered with ucp_mem_map when the node attaches and
 *          unregistered when it detaches or the pool is destroyed). Peers
 *          connect to it by its worker address or by an ip:port listener.
 *  peer    the remote side: its own UCP context and worker, connected to one
 *          node. It receives lends, puts into or gets from them, and
 *          returns them.
 *  lend    an owner gives a connected peer the right to write (put) or
 *          read (get) one allocated block of the pool: the peer receives
 *          the block's address, length and the arena's packed rkey in an
 *          active message. While lent the block is "in flight" exactly like
 *          an io_uring submission: labyrinth_free_pages(),
 *          labyrinth_page_transfer() and a second lend return
 *          LABYRINTH_ERR_BUSY. It comes back to the owner it had when the
 *          peer returns it (an active message), or when the connection dies
 *          (UCX's endpoint error handler): no block is ever lost to a peer.
 *          The owner learns of each return through labyrinth_ucx_returned().
 *
 * Trust: the rkey a peer receives covers the whole registered arena, as a
 * UCX rkey always covers a whole registration; the peer library checks
 * every put and get against the lent block and its mode, but a peer that
 * bypasses it could reach other pages. Lend only to peers you trust.
 *
 * Progress: UCX moves data and runs the active-message handlers only inside
 * ucp_worker_progress. A node progresses in labyrinth_ucx_progress(), in
 * labyrinth_ucx_accept() and labyrinth_ucx_lend(), or continuously on its own
 * thread (LABYRINTH_UCX_NODE_PROGRESS_THREAD). Without RDMA hardware, or
 * over tcp, UCX emulates put and get with active messages that the TARGET
 * must progress: a peer's put into a node that nobody progresses waits.
 * Over shared memory with a UCX-allocated arena
 * (labyrinth_ucx_arena_provider) put and get are truly one-sided. A peer
 * progresses inside its own calls.
 *
 * Threads: a node may be used from several threads at once (one mutex
 * serialises its worker); a peer by one thread at a time. Fork: UCX is not
 * fork-safe; a forked child must not use its parent's node or peer (lends
 * there are refused anyway: the parent's pool is unusable in the child).
 * Start peer processes with posix_spawn or fork+exec. No call here is
 * async-signal-safe. Conventions (ownership, blocking, errors, struct_size)
 * are those of labyrinth.h. C99 and C++ compatible. Built only where UCX
 * (pkg-config ucx) is found: library labyrinth_ucx, liblabyrinth_ucx.so.1.
 * The process-wide UCX settings (UCX_TLS, UCX_NET_DEVICES, ...) choose the
 * transports.
 */
#ifndef LABYRINTH_UCX_H
#define LABYRINTH_UCX_H

#include "labyrinth/labyrinth.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The owner's side. Opaque. */
typedef struct labyrinth_ucx_node labyrinth_ucx_node;
/** The remote side. Opaque. */
typedef struct labyrinth_ucx_peer labyrinth_ucx_peer;
/** A peer connected to a node: ids start at 1 and are never reused by the
 *  node. */
typedef uint64_t labyrinth_ucx_conn;

/** Node flag: progress the worker on a thread of the node's own, from
 *  create to destroy (it sleeps on the worker's event fd when idle). */
#define LABYRINTH_UCX_NODE_PROGRESS_THREAD (1u << 0)

/** Lend modes (either or both). */
#define LABYRINTH_UCX_LEND_WRITE (1u << 0) /**< the peer may put */
#define LABYRINTH_UCX_LEND_READ (1u << 1)  /**< the peer may get */

/** How a lent block came back (labyrinth_ucx_returned_page.how). */
#define LABYRINTH_UCX_RETURNED 0u          /**< the peer returned it */
#define LABYRINTH_UCX_RETURNED_PEER_LOST 1u /**< the connection died */

/** Node counters. Set struct_size = sizeof(labyrinth_ucx_stats). */
typedef struct labyrinth_ucx_stats {
  size_t struct_size;
  uint64_t lent_now;               /**< blocks lent and not yet back */
  uint64_t lent_total;             /**< lends made */
  uint64_t returned;               /**< blocks returned by their peer */
  uint64_t returned_by_peer_death; /**< blocks that came back because the
                                        connection died */
  uint64_t connections_now;        /**< live connections */
  uint64_t connections_total;      /**< connections accepted */
  uint64_t connections_lost;       /**< connections that ended: the peer left or
                                        died (the endpoint error handler) */
  uint64_t registered_bytes;       /**< arena bytes registered with UCX (0 when
                                        detached) */
  uint64_t registration_ns;        /**< time ucp_mem_map and ucp_rkey_pack took at
                                        attach (0 for a UCX-allocated arena, which
                                        is registered as it is allocated) */
} labyrinth_ucx_stats;

/** A block that came back to its owner. */
typedef struct labyrinth_ucx_returned_page {
  void *page;              /**< the block, owned again by the owner that lent it */
  labyrinth_ucx_conn conn; /**< the connection it was lent on */
  uint64_t value;          /**< the peer's word (labyrinth_ucx_peer_return);
                                0 when the peer was lost */
  uint32_t how;            /**< LABYRINTH_UCX_RETURNED or _RETURNED_PEER_LOST */
  uint32_t reserved;
} labyrinth_ucx_returned_page;

/* ---------------------------------------------------------------------- */
/* Node (the owner's side)                                                 */
/* ---------------------------------------------------------------------- */

/**
 * Create a node: a UCP context (active messages and RMA) and a worker.
 * flags: LABYRINTH_UCX_NODE_* (unknown bits INVALID). *out receives a node
 * the caller owns (labyrinth_ucx_node_destroy). SYSTEM with UCX's message if
 * UCX cannot start. May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_create(uint32_t flags,
                                                         LABYRINTH_OWN labyrinth_ucx_node **out);

/**
 * Destroy a node: stops its progress thread, closes its connections and
 * frees the worker and context. BUSY (nothing changes) while it is attached
 * to a pool (detach or destroy the pool first) or while an arena it
 * provided is still mapped. NULL is OK. No other thread may use the node
 * during this call. May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_destroy(labyrinth_ucx_node *node);

/**
 * Fill *out with an arena provider (labyrinth_arena.h) that allocates the
 * arena with ucp_mem_map(UCP_MEM_MAP_ALLOCATE) on this node's context: over
 * shared memory, put and get into it are one-sided. The provider borrows the
 * node: the node must outlive every pool created with it (destroy refuses
 * otherwise), and it maps one arena at a time (a second map fails with
 * EBUSY). Attach the node to the pool afterwards to lend its pages: the
 * registration is reused. INVALID for NULL. Never blocks; not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_arena_provider(labyrinth_ucx_node *node,
                                                            labyrinth_arena_provider *out);

/**
 * Attach the node to a pool (labyrinth_pool_listen): registers the arena
 * (ucp_mem_map; nothing new for an arena this node's provider allocated) and
 * packs its rkey. From then on the pool's destroy is BUSY while pages are
 * lent. One pool per node: BUSY if already attached. Refusals as
 * labyrinth_pool_listen (a forked child's or destroyed pool: INVALID; UCX
 * failing to register: SYSTEM). May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_attach(labyrinth_ucx_node *node,
                                                         labyrinth_pool *pool);

/**
 * Detach from the pool (labyrinth_pool_unlisten): unregisters the arena.
 * BUSY while pages are lent; INVALID when not attached. May block; not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_detach(labyrinth_ucx_node *node);

/**
 * Copy the node's worker address (opaque bytes for
 * labyrinth_ucx_peer_connect_address) into buf. *len receives its length;
 * INVALID if cap is smaller (buf untouched) or an argument is NULL.
 * Never blocks; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_address(labyrinth_ucx_node *node, void *buf,
                                                          size_t cap, size_t *len);

/**
 * Listen for peers on ip:port (ucp_listener_create; ip NULL: every
 * interface; port 0: any free port). *bound_port (may be NULL) receives the
 * port. BUSY if already listening; INVALID for a bad ip; SYSTEM with UCX's
 * message otherwise. May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_listen(labyrinth_ucx_node *node, const char *ip,
                                                         uint16_t port, uint16_t *bound_port);

/**
 * Wait up to timeout_ms (progressing the worker unless the node has its own
 * thread) for a peer to connect; *conn receives its id. TIMEOUT if none did.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_accept(labyrinth_ucx_node *node, uint32_t timeout_ms,
                                                    labyrinth_ucx_conn *conn);

/**
 * Lend the block `page` (allocated from the attached pool; if exclusive,
 * owned by the calling thread) to the peer on `conn`, for `mode`
 * (LABYRINTH_UCX_LEND_*). On OK the block is in flight until it comes back
 * (labyrinth_ucx_returned). Refusals, each changing nothing: INVALID (node
 * not attached, bad mode, unknown or dead connection, not an allocated
 * block), FOREIGN, DOUBLE_FREE, NOT_OWNER (as labyrinth_free_pages), BUSY
 * (already lent or in the kernel), SYSTEM (the message could not be sent).
 * May block briefly (progresses the worker until UCX has taken the
 * message); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_lend(labyrinth_ucx_node *node, labyrinth_ucx_conn conn,
                                                  void *page, uint32_t mode);

/**
 * Progress the node's worker (returns, lends acknowledged, connections
 * accepted or lost); when there was nothing to do, sleep up to timeout_ms
 * (at most 60 s; 0: never) until UCX has an event (the worker's event fd),
 * so that a loop of this call gives its CPU away while waiting. *events (may
 * be NULL) receives how many UCX events it handled. With
 * LABYRINTH_UCX_NODE_PROGRESS_THREAD it is not needed, and harmless.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_progress(labyrinth_ucx_node *node, uint32_t timeout_ms,
                                                      unsigned *events);

/**
 * Move up to cap records of blocks that came back (returned or by a lost
 * connection), oldest first, into out; *n receives how many. The blocks are
 * owned again by whoever lent them. Never blocks beyond the node's mutex;
 * not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_returned(labyrinth_ucx_node *node,
                                                      labyrinth_ucx_returned_page *out, size_t cap,
                                                      size_t *n);

/** Copy the node's counters (up to stats->struct_size). Never blocks beyond
 *  the node's mutex; not async-signal-safe. */
LABYRINTH_API labyrinth_status labyrinth_ucx_node_stats(labyrinth_ucx_node *node,
                                                        labyrinth_ucx_stats *stats);

/* ---------------------------------------------------------------------- */
/* Peer (the remote side)                                                  */
/* ---------------------------------------------------------------------- */

/** A lend as the peer sees it. */
typedef struct labyrinth_ucx_lent {
  uint64_t id;         /**< the node's lend id (unique per node) */
  uint64_t remote_addr; /**< the block's address in the node's process */
  size_t length;       /**< the block's length in bytes */
  uint32_t mode;       /**< LABYRINTH_UCX_LEND_* */
  uint32_t reserved;
} labyrinth_ucx_lent;

/**
 * Connect to a node by its worker address (labyrinth_ucx_node_address,
 * carried to this process by any means) and wait up to timeout_ms for the
 * node to accept. *out receives a peer the caller owns. TIMEOUT if the node
 * did not answer (it must progress); SYSTEM with UCX's message otherwise.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_connect_address(
    const void *address, size_t len, uint32_t timeout_ms, LABYRINTH_OWN labyrinth_ucx_peer **out);

/** labyrinth_ucx_peer_connect_address to a node listening on ip:port; the
 *  same ownership, refusals and blocking. Not async-signal-safe. */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_connect_ip(const char *ip, uint16_t port,
                                                             uint32_t timeout_ms,
                                                             LABYRINTH_OWN labyrinth_ucx_peer **out);

/**
 * Disconnect and free the peer. Blocks still lent to it go back to their
 * owner on the node's side (counted as returned by peer death). NULL is OK.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_destroy(labyrinth_ucx_peer *peer);

/**
 * Wait up to timeout_ms for the next lend (progressing the peer's worker);
 * *out receives it. TIMEOUT if none came; SYSTEM if the connection died.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_next(labyrinth_ucx_peer *peer, uint32_t timeout_ms,
                                                       labyrinth_ucx_lent *out);

/**
 * Write len bytes from src at offset in the lent block (ucp_put_nbx), then
 * flush: on OK the bytes are in the node's memory. INVALID (unknown lend,
 * not lent for WRITE, outside the block); SYSTEM if the connection died.
 * Blocks until the flush completes (the node must progress unless the
 * transport is one-sided); not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_put(labyrinth_ucx_peer *peer, uint64_t lend_id,
                                                      size_t offset, const void *src, size_t len);

/** Read len bytes at offset of the lent block into dst (ucp_get_nbx);
 *  refusals and blocking as labyrinth_ucx_peer_put, for READ. Not
 *  async-signal-safe. */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_get(labyrinth_ucx_peer *peer, uint64_t lend_id,
                                                      size_t offset, void *dst, size_t len);

/**
 * Give the lent block back to its owner with a word of the peer's (e.g. the
 * bytes it wrote), in an active message. After OK the peer may no longer
 * use the lend. INVALID for an unknown lend; SYSTEM if the connection died
 * (the node takes the block back itself). May block briefly; not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_ucx_peer_return(labyrinth_ucx_peer *peer, uint64_t lend_id,
                                                         uint64_t value);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_UCX_H */
