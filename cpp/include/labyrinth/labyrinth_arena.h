/*
 * labyrinth_arena.h - where a pool's arena comes from (bring your own arena)
 * and who is told about it (registration listeners). ABI 1.1.
 *
 * Included by labyrinth.h; include that instead. The conventions of
 * labyrinth.h (ownership, blocking, signals, errors, handles) apply.
 *
 * Bring your own arena: by default a pool maps its arena anonymously. A
 * provider (labyrinth_pool_options.arena_provider) gives it memory from
 * elsewhere instead: a memfd or hugetlbfs file, memory a network engine
 * allocated and registered (UCX), DPDK or CUDA host memory. The pool keeps
 * every promise it makes of an anonymous arena: its base is aligned to
 * LABYRINTH_ARENA_ALIGN, the side table lives outside the pages, the pool
 * advises (MADV_DONTFORK, MADV_HUGEPAGE) and pins (mlock) the memory as its
 * flags ask unless the provider says otherwise (LABYRINTH_ARENA_PINNED,
 * LABYRINTH_ARENA_NO_ADVICE), and the memory goes back to the provider
 * exactly once. examples/arena_memfd.c is a provider to copy.
 *
 * Registration listeners: an engine that registers memory (io_uring fixed
 * buffers, ibv_reg_mr, ucp_mem_map) subscribes to a pool's arena with
 * labyrinth_pool_listen(). It is told the region when it subscribes, asked
 * before the pool is destroyed (and may refuse: destroy is then BUSY), and
 * told when the region goes away.
 */
#ifndef LABYRINTH_ARENA_H
#define LABYRINTH_ARENA_H

#include "labyrinth.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Arenas are used from a 4 MiB-aligned base (the largest block, order 10). */
#define LABYRINTH_ARENA_ALIGN ((size_t)4 << 20)

/* ---------------------------------------------------------------------- */
/* Bring your own arena                                                    */
/* ---------------------------------------------------------------------- */

/* Provider flags (labyrinth_arena_provider.flags). */
/** The memory is already pinned (registered, hugetlb, mlocked by the
 *  provider): the pool does not mlock it, whatever its pin flags, and
 *  reports it pinned (LABYRINTH_POOL_PIN in labyrinth_stats.flags). */
#define LABYRINTH_ARENA_PINNED (1u << 0)
/** The pool must not madvise the memory (no MADV_DONTFORK, no
 *  MADV_HUGEPAGE: e.g. memory a driver maps). labyrinth_stats.huge_pages is
 *  then 0 and labyrinth_stats.arena_flags has this bit. Without DONTFORK a
 *  forked child inherits the mapping as the provider made it (a MAP_SHARED
 *  mapping is then shared with the child); the child still cannot use the
 *  pool (labyrinth.h, Handles). With numa_node >= 0 the pool is refused
 *  (INVALID): binding is advice; bind in the provider instead. */
#define LABYRINTH_ARENA_NO_ADVICE (1u << 1)

/**
 * Where an arena comes from. Set labyrinth_pool_options.arena_provider to
 * one; labyrinth_pool_create() copies *provider (so the struct itself is
 * borrowed for the call), but `name` and `ctx` are borrowed until the pool
 * is destroyed (or its creation fails).
 *
 * labyrinth_pool_create() refuses with INVALID, changing nothing and calling
 * neither callback, when: struct_size is smaller than this version's struct
 * or absurd; name, map or unmap is NULL; flags has unknown bits;
 * NO_ADVICE is set and numa_node >= 0.
 */
typedef struct labyrinth_arena_provider {
  size_t struct_size; /**< sizeof(labyrinth_arena_provider) */
  const char *name;   /**< for messages and stats, e.g. "memfd", "ucx";
                           borrowed, must outlive the pool */
  void *ctx;          /**< passed to both calls; borrowed, must outlive the pool */
  uint32_t flags;     /**< LABYRINTH_ARENA_* */
  /**
   * Give the pool at least `size` bytes. Return 0 and set *base, or an
   * errno value (the pool's error message names the provider and strerror;
   * ENOMEM makes labyrinth_pool_create return NOMEM, any other SYSTEM).
   * The pool asks for size + LABYRINTH_ARENA_ALIGN - 4096 bytes (its arena
   * size plus the slack to align the base itself) and uses the
   * LABYRINTH_ARENA_ALIGN-aligned window of the arena's size inside; it
   * never touches the bytes outside that window, so a provider that returns
   * a base aligned to LABYRINTH_ARENA_ALIGN and backs memory on first touch
   * (MAP_NORESERVE, a sparse file) wastes nothing
   * (labyrinth_stats.arena_unused_bytes counts the slack).
   * The memory must be readable and writable, mapped in this process, and
   * stay so until unmap. *base must be 4096-aligned: a NULL base with 0 is
   * refused (SYSTEM; unmap is not called: there is nothing to give back),
   * as are a base that is not 4096-aligned, a range that wraps around, or a
   * range that is not wholly mapped (SYSTEM; unmap is called with it).
   * Called once, from labyrinth_pool_create, on the creating thread.
   * May block. Must not call into Labyrinth for this pool (it does not
   * exist yet).
   */
  int (*map)(void *ctx, size_t size, void **base);
  /**
   * Take back exactly what map gave (same base and size). Called once,
   * from labyrinth_pool_destroy/_ex or from a failed labyrinth_pool_create
   * after map succeeded, on that call's thread. The memory comes back
   * unlocked (if the pool locked it), with MADV_DOFORK (if the pool set
   * MADV_DONTFORK) and readable and writable (GUARD and PKEYS pools); its
   * contents are whatever the pool's users left. Must not fail; may block.
   */
  void (*unmap)(void *ctx, void *base, size_t size);
} labyrinth_arena_provider;

/* labyrinth_pool_options.arena_provider (labyrinth.h): NULL by default, an
 * anonymous mmap; the pool copies *arena_provider at create. */

/* ---------------------------------------------------------------------- */
/* Registration listeners                                                  */
/* ---------------------------------------------------------------------- */

/**
 * A subscriber to a pool's arena. labyrinth_pool_listen() copies the struct;
 * `name` and `ctx` are borrowed until the subscription ends (unlisten, or
 * the pool's destroy).
 *
 * Order: listeners are told region_added as they subscribe, asked
 * destroy_requested in the order they subscribed, and told region_removed
 * at destroy in the reverse order (the last to subscribe lets go first).
 *
 * Callbacks run on the thread of the call that triggers them, with no
 * Labyrinth lock held, and must return (C++: must not throw). A callback may call any Labyrinth function except
 * labyrinth_pool_destroy/_ex of the same pool (refused: BUSY, it is being
 * destroyed or listened to); labyrinth_pool_listen on the same pool from a
 * callback run by its destroy is refused (BUSY). destroy_requested and
 * region_removed, when called by destroy, must not allocate from the pool
 * nor register it with anything (destroy checks again after them and is
 * BUSY if a page or registration appeared, with the listeners already gone).
 */
typedef struct labyrinth_arena_listener {
  size_t struct_size; /**< sizeof(labyrinth_arena_listener) */
  const char *name;   /**< for messages ("io_uring fd 5", "ucx"); borrowed */
  void *ctx;          /**< passed to every call; borrowed */
  /**
   * The pool's arena region (one per pool in 1.1): base is aligned to
   * LABYRINTH_ARENA_ALIGN, size is the pool's size_bytes. Called once, from
   * labyrinth_pool_listen; a nonzero errno refuses the subscription
   * (SYSTEM with the name and strerror) and nothing is kept. May block.
   * Required (not NULL).
   */
  int (*region_added)(void *ctx, labyrinth_pool *pool, void *base, size_t size);
  /**
   * Asked by labyrinth_pool_destroy before anything is freed (after the
   * pool's own checks passed: no live block unless FORCE, no hold): return
   * 0 to let go (region_removed follows unless destroy is then refused for
   * another reason: a later listener refusing, or the pool changed by a
   * callback), or EBUSY to refuse (any nonzero value refuses): destroy is
   * then BUSY naming the listener and changes nothing. A question only: the
   * listener keeps its registration until region_removed. NULL: always lets
   * go. May block.
   */
  int (*destroy_requested)(void *ctx, labyrinth_pool *pool);
  /**
   * The region is going away (unlisten, or destroy after every listener
   * agreed); the arena is still mapped during the call and is unmapped
   * after it. Must not fail. May block. Required (not NULL).
   */
  void (*region_removed)(void *ctx, labyrinth_pool *pool, void *base, size_t size);
} labyrinth_arena_listener;

/** An opaque subscription handle. It is never dereferenced by the library
 *  and never reused, so a stale or foreign handle is always recognised. */
typedef struct labyrinth_listener labyrinth_listener;

/**
 * Subscribe `listener` (copied; borrowed for the call) to the pool's arena:
 * calls listener->region_added once with the region, and on success sets
 * *out to a subscription the caller owns (end it with
 * labyrinth_pool_unlisten, or let labyrinth_pool_destroy end it).
 * Refused, changing nothing and calling nothing:
 *  INVALID  pool NULL, destroyed, or the parent's pool in a forked child;
 *           listener or out NULL; listener->struct_size too small or
 *           absurd; name, region_added or region_removed NULL.
 *  BUSY     the pool is being destroyed (a call from one of its listeners'
 *           callbacks).
 * SYSTEM (naming the listener and strerror) when region_added returns
 * nonzero: the listener is not kept and region_removed is not called.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_listen(labyrinth_pool *pool,
                                                     const labyrinth_arena_listener *listener,
                                                     LABYRINTH_OWN labyrinth_listener **out);

/**
 * End a subscription: calls its region_removed once, then forgets it (the
 * handle is then invalid). Refused with INVALID, changing nothing and
 * calling nothing: pool NULL, destroyed or the parent's (forked child);
 * subscription NULL, unknown, already ended (a second unlisten, or the
 * pool's destroy ended it), or a subscription of another pool.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_unlisten(labyrinth_pool *pool,
                                                       labyrinth_listener *subscription);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LABYRINTH_ARENA_H */
