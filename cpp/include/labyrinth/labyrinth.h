/*
 * labyrinth.h - the stable C ABI of Labyrinth, a user-space page allocator.
 *
 * Labyrinth hands out 4 KiB pages (and power-of-two blocks of them) from a
 * pinned arena, for code that must get memory *now* and own it alone: a
 * receive path, a signal handler, a real-time loop. The flagship call is
 * labyrinth_void_alloc_page_gfp_atomic_exclusive().
 *
 * Conventions used in every comment below
 * ---------------------------------------
 *  Ownership  "caller owns": the caller must release it with the named call.
 *             "borrowed": the callee keeps ownership; valid until the named
 *             event. Pointers passed *in* are always borrowed for the
 *             duration of the call unless said otherwise.
 *  Blocking   "never blocks": takes no lock that can be held by a sleeping
 *             thread, makes no system call, never sleeps.
 *             "may block": may take a mutex, make system calls or sleep.
 *  Signals    "async-signal-safe": may be called from a signal handler,
 *             including one that interrupted a Labyrinth call on the same
 *             thread.
 *  Errors     Calls returning labyrinth_status return LABYRINTH_OK or an
 *             error. On error, output parameters are left untouched, the
 *             thread-local labyrinth_last_status() and
 *             labyrinth_last_error_message() describe what went wrong, and
 *             the pool's statistics count the failure (failures[], by
 *             status). Successful calls leave them alone (like errno).
 *             A failed call leaves untouched every allocated block, its
 *             owner and order, the contents of every page, and the number
 *             of free pages (labyrinth_stats.allocated_pages is the same).
 *             It may tidy where free pages sit: a failing allocation may
 *             first move free pages from the caller's own thread cache and
 *             the depot (and, without ATOMIC, other threads' caches)
 *             into the buddy allocator, where they coalesce, as
 *             labyrinth_pool_trim() does; free_blocks[], shared_free_pages,
 *             cached_pages and free_pages may then read differently, their
 *             sum with reserve_pages does not.
 *  Handles    A pool handle is usable from labyrinth_pool_create() until
 *             labyrinth_pool_destroy(). After that, every call on it is
 *             refused with INVALID ("not a live pool (already destroyed?)")
 *             and changes nothing: a destroyed pool's handle is never given
 *             to another pool (the library keeps about 2 KiB per destroyed
 *             pool for that, for the life of the process). In a child made
 *             by fork(), every call on a pool the parent created is refused
 *             the same way (INVALID, "the pool belongs to the parent
 *             process") and changes nothing in either process; the child
 *             may create pools of its own. A call on a pool made while
 *             another thread destroys it is undefined.
 *  Threads    Every call may be made from any thread; no registration.
 *
 * ABI stability: names and meanings in this header never change within
 * major version 1. Structs passed in or out start with `struct_size`, so
 * fields can be appended later; the library reads or writes only the
 * fields the caller's struct_size covers.
 *
 * This header is C99 and C++ compatible.
 */
#ifndef LABYRINTH_H
#define LABYRINTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Versions and symbol visibility                                          */
/* ---------------------------------------------------------------------- */

#define LABYRINTH_ABI_VERSION_MAJOR 1
#define LABYRINTH_ABI_VERSION_MINOR 1
#define LABYRINTH_ABI_VERSION_PATCH 0
/** (major << 16) | (minor << 8) | patch, as returned by labyrinth_abi_version(). */
#define LABYRINTH_ABI_VERSION                                                  \
  ((LABYRINTH_ABI_VERSION_MAJOR << 16) | (LABYRINTH_ABI_VERSION_MINOR << 8) | \
   LABYRINTH_ABI_VERSION_PATCH)

#if defined(LABYRINTH_BUILDING_LIBRARY)
#define LABYRINTH_API __attribute__((visibility("default")))
#else
#define LABYRINTH_API
#endif

/** Marks a pointer whose ownership passes across the call (documentation only). */
#define LABYRINTH_OWN

/* ---------------------------------------------------------------------- */
/* Basic types                                                             */
/* ---------------------------------------------------------------------- */

/** A page pool: one arena and everything that manages it. Opaque. */
typedef struct labyrinth_pool labyrinth_pool;

/** Result of every call. Values are stable; new ones may be appended. */
typedef enum labyrinth_status {
  LABYRINTH_OK = 0,              /**< success */
  LABYRINTH_ERR_NOMEM = 1,       /**< no page available (without waiting); the
                                      message also counts the free pages still in
                                      thread caches (for ATOMIC, which may not take
                                      them, how many caches are in use) */
  LABYRINTH_ERR_INVALID = 2,     /**< bad argument: NULL handle, bad flags, bad size,
                                      pointer not the start of an allocated block */
  LABYRINTH_ERR_NOT_OWNER = 3,   /**< the page is exclusive to another owner */
  LABYRINTH_ERR_DOUBLE_FREE = 4, /**< the page is already free */
  LABYRINTH_ERR_FOREIGN = 5,     /**< the pointer is not inside this pool's arena */
  LABYRINTH_ERR_BUSY = 6,        /**< in use: page in flight in the kernel, pool has live
                                      pages, ring has operations in flight */
  LABYRINTH_ERR_TIMEOUT = 7,     /**< a WAIT allocation timed out */
  LABYRINTH_ERR_UNSUPPORTED = 8, /**< the kernel, CPU or build lacks a needed feature */
  LABYRINTH_ERR_SYSTEM = 9       /**< a system call failed; the message has errno */
} labyrinth_status;

/** Number of labyrinth_status values in this version of the header. */
#define LABYRINTH_STATUS_COUNT 10

/** "Get free pages" flags for labyrinth_alloc_pages(). */
typedef uint32_t labyrinth_gfp;
/** Never sleeps: no blocking lock, no syscall, async-signal-safe; fails at once
 *  with NOMEM. May use the pool's atomic reserve. Like Linux's GFP_ATOMIC. */
#define LABYRINTH_GFP_ATOMIC ((labyrinth_gfp)1u << 0)
/** May block until a page is freed, up to the timeout; waiters are served in
 *  arrival order. Like GFP_KERNEL. ATOMIC|WAIT is INVALID. */
#define LABYRINTH_GFP_WAIT ((labyrinth_gfp)1u << 1)
/** The block comes zero-filled. */
#define LABYRINTH_GFP_ZERO ((labyrinth_gfp)1u << 2)
/** The block has one owner (the calling thread) until freed or transferred. */
#define LABYRINTH_GFP_EXCLUSIVE ((labyrinth_gfp)1u << 3)
/** All flags this version knows; other bits are INVALID. */
#define LABYRINTH_GFP_ALL                                                      \
  (LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_WAIT | LABYRINTH_GFP_ZERO |            \
   LABYRINTH_GFP_EXCLUSIVE)

/** Who owns an exclusive page. Thread ids come from labyrinth_owner_self();
 *  ids are never reused within a process. 0 means "no owner". */
typedef uint64_t labyrinth_owner;
#define LABYRINTH_OWNER_NONE ((labyrinth_owner)0)
/** The largest owner id the library can record (ids are 48-bit). */
#define LABYRINTH_OWNER_MAX ((labyrinth_owner)0xFFFFFFFFFFF0ull)

/** Option value meaning "the library's default" (see each field). */
#define LABYRINTH_AUTO ((size_t)-1)

/** Size of one page, the unit of allocation. */
#define LABYRINTH_PAGE_SIZE 4096
/** Largest order: a block of (1 << order) pages; order 10 is 4 MiB. */
#define LABYRINTH_MAX_ORDER 10
/** labyrinth_alloc_pages() timeout value meaning "wait as long as it takes". */
#define LABYRINTH_TIMEOUT_INFINITE UINT32_MAX

/* ---------------------------------------------------------------------- */
/* Pools                                                                   */
/* ---------------------------------------------------------------------- */

/** Pool flags (labyrinth_pool_options.flags). */
/** Strict pinning: mlock() the arena so no page ever faults or is swapped;
 *  labyrinth_pool_create() fails (NOMEM, with RLIMIT_MEMLOCK's value and the
 *  fix) when the memlock limit refuses it. Not together with
 *  LABYRINTH_POOL_PIN_BEST_EFFORT (INVALID). Pinning happens at creation
 *  only (which may block); it changes no later call's blocking or
 *  signal-safety. */
#define LABYRINTH_POOL_PIN (1u << 0)
/** Ask for transparent huge pages (MADV_HUGEPAGE) where the system allows. */
#define LABYRINTH_POOL_HUGEPAGES (1u << 1)
/** Zero every block when it is freed, so one owner's data never reaches the
 *  next owner. Off by default: costs a 4 KiB memset per page freed. */
#define LABYRINTH_POOL_SCRUB (1u << 2)
/** Debug: fill freed blocks with the byte 0x6B and check it when they are
 *  handed out again. A write after free is then reported on stderr with the
 *  page, its last owner (the owner of the exclusive block, else the thread
 *  that freed it) and the first bad offset, and the process aborts: like
 *  GUARD's fault, but at the next hand-out of the page instead of at the
 *  access. Costs a 4 KiB fill per page freed, a 4 KiB check per page handed
 *  out and 8 bytes per page of side table; the inline fast path is off.
 *  Blocks hold the pattern when handed out (fresh pages: zeros) unless
 *  GFP_ZERO or SCRUB asks for zeros. No system call: ATOMIC calls stay
 *  syscall-free and async-signal-safe (the report uses write and abort). */
#define LABYRINTH_POOL_POISON (1u << 3)
/** Debug: mprotect(PROT_NONE) freed blocks so a use after free faults.
 *  Thread caches are off and every allocation and free makes an mprotect
 *  system call: ATOMIC calls are then neither syscall-free nor signal-safe. */
#define LABYRINTH_POOL_GUARD (1u << 4)
/** Hardware-enforced exclusivity with memory protection keys (x86 PKU). An
 *  exclusive block carries its owner thread's key and free pages a key no
 *  thread may use: another thread touching an owner's block, or anyone
 *  touching a free page, faults; a transfer moves the access to the new
 *  owner; shared blocks are open to all. Each owner thread takes a key at
 *  its first exclusive allocation (or labyrinth_owner_self() while a PKEYS
 *  pool exists) and gives it back when it has exited and no block carries
 *  it. Keys are few (about 13 owners at once): when none is left, the
 *  allocation (or a transfer to an owner without a key) is UNSUPPORTED with
 *  a message and changes nothing. Limits: a thread inherits its creator's
 *  rights until its first Labyrinth call; signal handlers run with the
 *  kernel's default rights; io_uring on PKEYS pools is untested. Costs a
 *  pkey_mprotect system call per allocation, free and transfer, thread caches
 *  are off, and the calls take a mutex: not async-signal-safe. Pool creation
 *  is UNSUPPORTED, saying whether the CPU or the kernel lacks keys, where
 *  they are missing. */
#define LABYRINTH_POOL_PKEYS (1u << 5)
/** Never take back other threads' cached pages. By default an allocation
 *  without ATOMIC that would fail or sleep first takes back the free pages in
 *  the caches of threads outside a call (labyrinth_alloc_pages); that makes a
 *  membarrier() system call, which interrupts every CPU then running a thread
 *  of the process (an inter-processor interrupt: microseconds), ATOMIC
 *  callers included. Set this for pools whose ATOMIC threads must never
 *  be interrupted, and in processes whose seccomp filter does not allow
 *  membarrier (the first reclaim asks the kernel with membarrier(QUERY));
 *  idle threads then keep their caches until they trim or exit. */
#define LABYRINTH_POOL_NO_RECLAIM (1u << 6)
/** Best-effort pinning (default on): mlock() the arena when RLIMIT_MEMLOCK
 *  (or CAP_IPC_LOCK) allows, as LABYRINTH_POOL_PIN does; otherwise create
 *  the pool unpinned and write one warning line to stderr per pool. The
 *  statistics' flags in effect then lack LABYRINTH_POOL_PIN (and keep this
 *  flag), so a caller can tell. An unpinned pool gives up: its pages may
 *  fault on first touch (an ATOMIC caller's first write to a fresh page may
 *  then sleep in the kernel's fault handler; the allocation call itself
 *  still makes no system call) and may be swapped out; the faster free path
 *  that keeps free lists inside free pages is off; registering it with
 *  io_uring pins the pages then and may fail on the same limit. Decided
 *  once, in labyrinth_pool_create() (may block; not async-signal-safe); it
 *  changes no later call's blocking or signal-safety. Not together with
 *  LABYRINTH_POOL_PIN (INVALID); neither flag: never pin. */
#define LABYRINTH_POOL_PIN_BEST_EFFORT (1u << 7)
/** Both pinning flags: clear it to never pin, or before setting one of them. */
#define LABYRINTH_POOL_PIN_MASK (LABYRINTH_POOL_PIN | LABYRINTH_POOL_PIN_BEST_EFFORT)
/** Default flags set by labyrinth_pool_options_init(). */
#define LABYRINTH_POOL_DEFAULT_FLAGS (LABYRINTH_POOL_PIN_BEST_EFFORT | LABYRINTH_POOL_HUGEPAGES)

/**
 * Options for labyrinth_pool_create(). Always initialise with
 * labyrinth_pool_options_init() and then change what you need: fields added
 * in later versions get their defaults that way.
 */
typedef struct labyrinth_pool_options {
  size_t struct_size;          /**< sizeof(labyrinth_pool_options); set by _init */
  size_t size_bytes;           /**< arena size: a non-zero multiple of 4 KiB */
  size_t atomic_reserve_pages; /**< pages only ATOMIC callers may take
                                    (LABYRINTH_AUTO, the default: 1/64 of the
                                    pool, at most 256) */
  uint32_t flags;              /**< LABYRINTH_POOL_* (default
                                    PIN_BEST_EFFORT|HUGEPAGES) */
  int numa_node;               /**< NUMA node to bind the arena to; -1: none */
  /* --- ABI 1.0 fields continue; fields of later versions follow these --- */
  size_t watermark_min_pages;  /**< below this many free pages only ATOMIC callers
                                    succeed (default 0) */
  size_t watermark_low_pages;  /**< below this, the pool is under pressure: freed
                                    pages bypass thread caches, and a thread's
                                    first free gives its cache back
                                    (LABYRINTH_AUTO: 1/16 of the pool) */
  size_t watermark_high_pages; /**< pressure ends at or above this (LABYRINTH_AUTO:
                                    1/8 of the pool) */
  uint32_t max_thread_caches;  /**< per-thread caches the pool can hand out; threads
                                    beyond that go straight to the depot
                                    (default 64, at most 1024) */
  uint32_t thread_cache_pages; /**< capacity of one thread cache: the most
                                    pages it may hold (default 2048, at most
                                    4096). Its high mark starts at
                                    min(512, this) (at least a batch) and
                                    rises, up to this or 1/16 of the pool
                                    if that is less, when the thread's
                                    bursts overflow it: the cache then drains
                                    pages past the mark and runs dry soon
                                    after. Memory pressure and
                                    labyrinth_pool_trim() lower it again. */
  uint32_t thread_cache_batch; /**< pages moved per refill or drain (default 64) */
  /* --- ABI 1.1 --- */
  const struct labyrinth_arena_provider *arena_provider; /**< where the arena
                                    comes from (labyrinth_arena.h; copied at
                                    create); NULL (default): anonymous mmap */
} labyrinth_pool_options;

/**
 * Fill *opts with defaults (struct_size included). size_bytes is 0 and must
 * be set. NULL is ignored.
 * Never blocks; async-signal-safe.
 */
LABYRINTH_API void labyrinth_pool_options_init(labyrinth_pool_options *opts);

/**
 * Create a pool. On success *out receives a pool the caller owns; destroy it
 * with labyrinth_pool_destroy(). Reserves and, with PIN or PIN_BEST_EFFORT,
 * locks the arena: failures say why (e.g. RLIMIT_MEMLOCK with the limit and
 * the size asked); PIN_BEST_EFFORT's fallback writes one line to stderr.
 * opts is borrowed for the call. May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status
labyrinth_pool_create(const labyrinth_pool_options *opts,
                      LABYRINTH_OWN labyrinth_pool **out);

/**
 * Destroy a pool and unmap its arena. Refused with BUSY (nothing changes) if
 * any block is still allocated (pages sitting in thread caches do not count)
 * or the pool is registered with an io_uring or a managed ring, or one of
 * its listeners refuses (labyrinth_arena.h; the listeners are asked first,
 * then told region_removed, then the arena is unmapped or given back to
 * its provider). NULL is a no-op returning OK. INVALID for a pool already
 * destroyed, and in a forked child for the parent's pool (see Handles above). No other thread may use
 * the pool during this call; afterwards every call on the handle is
 * refused. May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_destroy(labyrinth_pool *pool);

/** Flags for labyrinth_pool_destroy_ex(). */
/** Destroy even with blocks still allocated; every pointer into the arena
 *  becomes invalid (freeing one is refused: INVALID, the pool is destroyed).
 *  Still BUSY while the kernel may hold a page. */
#define LABYRINTH_DESTROY_FORCE (1u << 0)

/** labyrinth_pool_destroy() with flags (LABYRINTH_DESTROY_*); unknown flags
 *  are INVALID and change nothing. Ownership, blocking and signals as
 *  labyrinth_pool_destroy(). */
LABYRINTH_API labyrinth_status labyrinth_pool_destroy_ex(labyrinth_pool *pool,
                                                         uint32_t flags);

/**
 * Return the calling thread's cached pages and blocks and the pool's shared
 * free list to the buddy allocator, so free pages coalesce into the largest
 * blocks, and renew the atomic reserve: once every page is free, a trimmed
 * pool has exactly the blocks of a fresh one.
 * Other threads' caches are returned when those threads exit or call this,
 * or when an allocation without ATOMIC would otherwise fail.
 * Safe while other threads allocate: it holds one zone's mutex at a time,
 * for a few hundred pages at most (ATOMIC callers never wait for it, they
 * try another zone), and the reserve is swapped for its renewal in one
 * step, never left empty (except, with every page free, when no block is
 * large enough, or for a reserve larger than 4 MiB).
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_trim(labyrinth_pool *pool);

/**
 * Borrowed view of the arena: *base and *size_bytes receive its first byte
 * and length, valid until the pool is destroyed. Either output may be NULL.
 * Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_arena(const labyrinth_pool *pool,
                                                    void **base,
                                                    size_t *size_bytes);

/* ---------------------------------------------------------------------- */
/* Allocation                                                              */
/* ---------------------------------------------------------------------- */

/**
 * The flagship: one 4 KiB page, ATOMIC and EXCLUSIVE.
 * Returns a page-aligned page owned by the calling thread (free it with
 * labyrinth_free_pages() or hand it on with labyrinth_page_transfer()), or
 * NULL with labyrinth_last_status() saying why (NOMEM, INVALID, ...).
 * The page's contents are unspecified (zeroed if the pool has SCRUB and the
 * page was freed before). May use the atomic reserve.
 * Never blocks; async-signal-safe.
 */
LABYRINTH_API LABYRINTH_OWN void *
labyrinth_void_alloc_page_gfp_atomic_exclusive(labyrinth_pool *pool);

/**
 * Allocate a block of (1 << order) pages, aligned to its size.
 *  gfp:        LABYRINTH_GFP_* flags; ATOMIC|WAIT is INVALID; unknown bits INVALID.
 *  timeout_ms: with WAIT, how long to wait for pages to be freed
 *              (LABYRINTH_TIMEOUT_INFINITE: no limit; 0: do not wait, TIMEOUT
 *              if none is free); ignored otherwise.
 *  out_page:   on success receives the block; the caller owns it (with
 *              EXCLUSIVE: the calling thread is its only owner). Untouched on
 *              failure.
 * Without EXCLUSIVE, any thread may free the block.
 * With ATOMIC: never blocks, async-signal-safe, fails at once with NOMEM, and
 * may use the atomic reserve. Without ATOMIC: may block (a mutex; with WAIT,
 * sleeps up to timeout_ms); not async-signal-safe. Before it fails or sleeps,
 * a call without ATOMIC takes back the free pages in other threads' caches
 * (a thread that went idle keeps its cache), then tries once more: that costs
 * a membarrier() system call (it briefly interrupts every CPU running a
 * thread of the process) and the library's registry mutex, and waits at most
 * ~0.2 ms per round for threads inside a call (those keep their caches).
 * Not in pools with LABYRINTH_POOL_NO_RECLAIM, nor where the kernel lacks
 * membarrier(PRIVATE_EXPEDITED).
 */
LABYRINTH_API labyrinth_status labyrinth_alloc_pages(labyrinth_pool *pool,
                                                     unsigned order,
                                                     labyrinth_gfp gfp,
                                                     uint32_t timeout_ms,
                                                     LABYRINTH_OWN void **out_page);

/**
 * Free a block returned by this pool, of any order (the pool knows it).
 * Exclusive blocks may be freed only by their owner (NOT_OWNER otherwise).
 * Refused with BUSY while the kernel holds the page (io_uring in flight),
 * DOUBLE_FREE if already free, FOREIGN if not from this pool, INVALID if not
 * the first page of an allocated block. The caller gives up ownership.
 * Never blocks and async-signal-safe for an exclusive order-0 page in a pool
 * without the GUARD/PKEYS modes; otherwise may block (a zone's mutex, mprotect).
 */
LABYRINTH_API labyrinth_status labyrinth_free_pages(labyrinth_pool *pool,
                                                    void *page);

/**
 * labyrinth_free_pages() for a caller that knows the block's order (like
 * Linux's free_pages(addr, order)): the same checks, ownership transfer,
 * blocking and async-signal-safety, plus one: if `page` is not the first
 * page of an allocated block of exactly `order`, INVALID and nothing changes
 * (order above LABYRINTH_MAX_ORDER is INVALID too). Knowing the order lets the
 * common case of an order >= 1 block go to the thread's order cache without
 * first reading the order from the side table (about twice as fast when
 * blocks are freed and allocated in a tight loop).
 */
LABYRINTH_API labyrinth_status labyrinth_free_pages_order(labyrinth_pool *pool,
                                                          void *page,
                                                          unsigned order);

/**
 * Hand an exclusive block to another owner. Only the current owner may
 * (NOT_OWNER otherwise); BUSY while in flight; INVALID for a non-exclusive
 * block, or for new_owner NONE or above LABYRINTH_OWNER_MAX. After it, only
 * new_owner may free or transfer the block. Transferring to the id of a
 * thread that has exited makes the block an orphan (see
 * labyrinth_pool_reclaim_orphans). The caller must pass the pointer to the
 * new owner through its own synchronisation (a queue, a lock): that is what
 * makes the new owner see the transfer.
 * Never blocks; async-signal-safe (without PKEYS).
 */
LABYRINTH_API labyrinth_status labyrinth_page_transfer(labyrinth_pool *pool,
                                                       void *page,
                                                       labyrinth_owner new_owner);

/**
 * Look up a block: *owner receives its owner (NONE if not exclusive, or the
 * previous owner while in flight) and *order its order. Either output may be
 * NULL. Fails like labyrinth_free_pages() for pointers that are not an
 * allocated block. Never blocks; async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_page_info(const labyrinth_pool *pool,
                                                   const void *page,
                                                   labyrinth_owner *owner,
                                                   unsigned *order);

/**
 * The calling thread's owner id: a 64-bit number never reused for another
 * thread in this process (not pthread_self()). Never blocks;
 * async-signal-safe, except while a LABYRINTH_POOL_PKEYS pool exists: the
 * thread then also takes its protection key (a mutex and a system call), so
 * that blocks can be transferred to it.
 */
LABYRINTH_API labyrinth_owner labyrinth_owner_self(void);

/**
 * Return to the pool every exclusive block whose owner thread has exited
 * (orphans). *reclaimed (may be NULL) receives how many blocks. Blocks
 * transferred to ids that never belonged to a thread are not touched.
 * May block; not async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_reclaim_orphans(labyrinth_pool *pool,
                                                              size_t *reclaimed);

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */
/* ---------------------------------------------------------------------- */

/**
 * Pool statistics. Set struct_size = sizeof(labyrinth_stats) before calling
 * labyrinth_pool_stats(); fields past the caller's struct_size are not
 * written. Counters are read without stopping other threads: under
 * concurrent use they are each exact but not a single snapshot.
 */
typedef struct labyrinth_stats {
  size_t struct_size;           /**< set by the caller */
  uint64_t total_pages;         /**< pages in the arena */
  uint64_t free_pages;          /**< free in the buddy and the shared free list,
                                     the reserve not included */
  uint64_t reserve_pages;       /**< pages now in the atomic reserve */
  uint64_t reserve_target;      /**< the reserve's configured size */
  uint64_t cached_pages;        /**< free pages sitting in thread caches
                                     (order-0 pages and cached blocks of
                                     order 1..10) */
  uint64_t allocated_pages;     /**< pages in allocated blocks (in flight included) */
  uint64_t inflight_pages;      /**< allocated pages the kernel holds now */
  uint64_t orphaned_pages;      /**< exclusive pages whose owner thread exited */
  uint64_t free_blocks[LABYRINTH_MAX_ORDER + 1]; /**< buddy free blocks per order */
  uint64_t shared_free_pages;   /**< order-0 pages in the depot, the lock-free
                                     list thread caches drain to and refill
                                     from; included in free_pages */
  uint64_t reserve_uses;        /**< allocations served from the atomic reserve */
  uint64_t failures[LABYRINTH_STATUS_COUNT]; /**< failed calls by status */
  uint64_t waits;               /**< WAIT allocations that had to sleep */
  uint64_t timeouts;            /**< WAIT allocations that timed out */
  uint64_t refills;             /**< thread-cache refills (batches) */
  uint64_t drains;              /**< thread-cache drains (batches) */
  uint64_t pressure_events;     /**< times free pages fell below the low mark */
  uint64_t watermark_min;       /**< configured watermarks, in pages */
  uint64_t watermark_low;
  uint64_t watermark_high;
  uint64_t thread_caches_in_use; /**< thread caches handed out now */
  uint64_t metadata_bytes;      /**< bytes of side table (per-page metadata) */
  uint32_t flags;               /**< the pool's LABYRINTH_POOL_* flags in effect
                                     (PIN only while the arena is locked) */
  uint32_t huge_pages;          /**< 1 if MADV_HUGEPAGE was accepted */
  uint64_t cache_reclaims;      /**< other threads' caches taken back by
                                     allocations without ATOMIC that would
                                     otherwise have failed or slept */
  uint64_t reclaimed_pages;     /**< free pages those caches held */
  /* --- ABI 1.1 --- */
  const char *arena_provider;   /**< the arena provider's name, "anonymous"
                                     without one; borrowed: valid while the
                                     pool lives */
  uint64_t arena_unused_bytes;  /**< bytes mapped for the arena that the pool
                                     never touches (alignment slack) */
  uint32_t arena_flags;         /**< the provider's LABYRINTH_ARENA_* flags */
} labyrinth_stats;

/**
 * Fill *out (borrowed; struct_size set by the caller). The counts are read
 * without stopping other threads: exact when none is allocating or freeing.
 * May block briefly (the registry mutex, for orphaned pages); not
 * async-signal-safe.
 */
LABYRINTH_API labyrinth_status labyrinth_pool_stats(const labyrinth_pool *pool,
                                                    labyrinth_stats *out);

/* ---------------------------------------------------------------------- */
/* Errors and versions                                                     */
/* ---------------------------------------------------------------------- */

/** Status of the most recent failed call on this thread; LABYRINTH_OK if none
 *  failed yet. Thread-local, like errno. Never blocks; async-signal-safe. */
LABYRINTH_API labyrinth_status labyrinth_last_status(void);

/** Message of the most recent failed call on this thread ("" if none). The
 *  string is borrowed: valid until the next Labyrinth call on this thread.
 *  Never blocks; async-signal-safe. */
LABYRINTH_API const char *labyrinth_last_error_message(void);

/** Reset this thread's last status to OK and its message to "".
 *  Never blocks; async-signal-safe. */
LABYRINTH_API void labyrinth_clear_last_error(void);

/** Name of a status ("LABYRINTH_ERR_NOMEM"); a static string, never NULL
 *  ("LABYRINTH_STATUS_UNKNOWN" for values this version does not know).
 *  Never blocks; async-signal-safe. */
LABYRINTH_API const char *labyrinth_status_name(labyrinth_status status);

/** LABYRINTH_ABI_VERSION of the library that is loaded. Compare its major with
 *  LABYRINTH_ABI_VERSION_MAJOR. Never blocks; async-signal-safe. */
LABYRINTH_API uint32_t labyrinth_abi_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* The inline fast path (optional; labyrinth_inline.h says what it is). */
#include "labyrinth_inline.h"

/* Bring your own arena and registration listeners (ABI 1.1). */
#include "labyrinth_arena.h"

#endif /* LABYRINTH_H */
