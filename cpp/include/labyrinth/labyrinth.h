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
 *             the shared list (and, without ATOMIC, other threads' caches)
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
#define LABYRINTH_ABI_VERSION_MINOR 0
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
                                    beyond that use the shared lock-free path
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
 * or the pool is registered with an io_uring or a managed ring. NULL is a
 * no-op returning OK. INVALID for a pool already destroyed, and in a forked
 * child for the parent's pool (see Handles above). No other thread may use
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
 *  are INVALID and change nothing. */
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

/** Reset this thread's last status to OK and its message to "". */
LABYRINTH_API void labyrinth_clear_last_error(void);

/** Name of a status ("LABYRINTH_ERR_NOMEM"); a static string, never NULL
 *  ("LABYRINTH_STATUS_UNKNOWN" for values this version does not know).
 *  Never blocks; async-signal-safe. */
LABYRINTH_API const char *labyrinth_status_name(labyrinth_status status);

/** LABYRINTH_ABI_VERSION of the library that is loaded. Compare its major with
 *  LABYRINTH_ABI_VERSION_MAJOR. Never blocks; async-signal-safe. */
LABYRINTH_API uint32_t labyrinth_abi_version(void);

/* ---------------------------------------------------------------------- */
/* Inline fast path (optional)                                             */
/* ---------------------------------------------------------------------- */
/*
 * labyrinth_alloc_page_inline() and labyrinth_free_page_inline() do exactly
 * what labyrinth_void_alloc_page_gfp_atomic_exclusive() and
 * labyrinth_free_pages() do, with the same guarantees (never block,
 * async-signal-safe), but their common case is compiled into the caller: on
 * machines where a call costs a few nanoseconds this roughly halves the cost
 * of an alloc+free pair. The common case is: the calling thread's cache for
 * the pool it used last has a page (alloc) or room (free), and the page is an
 * exclusive order-0 page it owns; for the free, also an exclusive block of
 * order 1..LABYRINTH_MAX_ORDER it owns, kept in its order cache. Everything
 * else calls the library. By default the flagship calls by name compile to
 * the same inline code (LABYRINTH_INLINE_CALLS, at the end of this section).
 *
 * They read the per-thread record below (labyrinth_fast_record), which the
 * library maintains, and the thread cache it points at
 * (labyrinth_thread_cache, with the thread's order cache inside it). These
 * structs, the LABYRINTH_FAST_BUSY_V1 protocol and the side-table words
 * named below (LABYRINTH_SIDE_*) are part of ABI 1.x (docs/abi.md): they
 * are compiled into callers, so within major version 1 their fields keep
 * their offsets and meanings, and new fields only take reserved space. Names
 * ending in _v1_ or _V1 belong to this inline protocol and are not for
 * direct use. Define LABYRINTH_NO_INLINE before including this header to
 * leave them out (for code loaded with dlopen, where initial-exec TLS may
 * not be available).
 */
#if !defined(LABYRINTH_NO_INLINE) && (defined(__GNUC__) || defined(__clang__))

/** Most blocks one order of an order cache can hold (what fills its line). */
#define LABYRINTH_ORDER_CACHE_SLOTS 7

/** One order's part of a thread's order cache: free blocks of that order
 *  the thread freed, kept for its next allocation of the same order. One
 *  64-byte line, so an alloc + free of a block touches one line of it.
 *  Written by the owning thread only (inline code and library); the library
 *  reads `count` from other threads for statistics. */
typedef struct labyrinth_order_slots {
  uint32_t count; /**< blocks held; the top is blocks[count - 1] */
  uint32_t limit; /**< a free may leave a block here while count < limit
                       (0..LABYRINTH_ORDER_CACHE_SLOTS). The library sets the
                       limits so that all orders' limits, in pages, stay
                       within the cache's budget (1/32 of the pool): the
                       inline free needs no running total of pages. */
  void *blocks[LABYRINTH_ORDER_CACHE_SLOTS]; /**< the blocks; a cached block's
                       first side-table word is LABYRINTH_SIDE_CACHED_V1 with
                       the order in bits 4-7, its other pages' words are as
                       inside a buddy block */
} labyrinth_order_slots;

/** A thread's cache for one pool: free order-0 pages and the order cache.
 *  Written by the owning thread, on the inline path only while its record
 *  is marked BUSY, with plain (relaxed) stores; `limit` is also written by
 *  any thread (memory pressure), and a thread reclaiming the cache writes
 *  it only after the owner provably left every call (see labyrinth_fast_record). */
typedef struct labyrinth_thread_cache {
  uint32_t count;      /**< pages held; the top is pages[count - 1] */
  uint32_t limit;      /**< a free may leave a page here while count < limit:
                            the cache's high mark, or 0 while the pool is
                            under memory pressure (which also closes the
                            order cache to frees) */
  uint32_t capacity;   /**< entries of `pages` */
  uint32_t order_hint; /**< order of the block last taken from `orders`
                            (0: none): the order an unsized free tries first */
  uint64_t reserved[6]; /**< zero; room for fields of later 1.x versions */
  labyrinth_order_slots orders[LABYRINTH_MAX_ORDER]; /**< orders[k - 1]: blocks
                            of order k (1..LABYRINTH_MAX_ORDER) */
  /* Followed in memory by its page slots, `capacity` pointers to free
   * order-0 pages, most recently freed on top (labyrinth_cache_pages_v1_;
   * not a flexible array member, which ISO C++ and C89 lack); each page's
   * side-table word is LABYRINTH_SIDE_CACHED_V1 (or a free-list word). */
} labyrinth_thread_cache;

/** Per-thread state of the inline fast path, one per thread (the TLS
 *  variable labyrinth_thread_fast). Written by the library on the owning
 *  thread, except that destroying a pool clears `pool` in records that name
 *  it, and another thread reclaiming this thread's cache points `cache` at
 *  an empty one (both with a compare-and-swap); read by the inline
 *  functions on the owning thread. */
typedef struct labyrinth_fast_record {
  const labyrinth_pool *pool;    /**< pool this record describes; NULL: none;
                                      LABYRINTH_FAST_BUSY_V1 while the thread is
                                      inside a Labyrinth call (so a signal handler
                                      that interrupts it takes the general path) */
  labyrinth_thread_cache *cache; /**< the thread's cache for `pool`; read only
                                      after marking the record BUSY */
  uint64_t *side_table;          /**< the pool's side table, one word per page */
  uintptr_t arena;               /**< the pool's arena (its first page) */
  uint64_t arena_pages;          /**< its size in pages */
  uint64_t alloc_word;           /**< side-table word of an exclusive order-0 page
                                      owned by this thread; an exclusive block of
                                      order k has this word with k in bits 4-7 */
  uint64_t reserved[2];          /**< zero; room for fields of later 1.x versions */
} labyrinth_fast_record;

/* The helpers below are GNU "extern inline" and always inlined: no symbol is
 * emitted for them anywhere, and (unlike static functions) they may be used
 * by the extern inline definitions at the end of this section. They name the
 * record directly (labyrinth_thread_fast.field), not through a pointer to it:
 * GCC 12's -fsanitize=null reported such a pointer as null in one death test
 * after inlining (a false report; the direct form has no pointer to check). */
/* Branch hint: the inline common case is laid out as straight-line code. */
#define LABYRINTH_UNLIKELY_V1_(x) __builtin_expect(!!(x), 0)
/* Make the compiler hold the address `p` in a register of its own, so the
 * load or store that uses it is addressed as (register) and not as
 * (base + index * scale). x86-64 cores that forward a store to a later load
 * without the usual latency (memory renaming, as on Intel since Golden Cove)
 * do so only for the first form (docs/performance.md has the figures). The
 * inline paths keep their cache
 * counters and slots in memory from one call to the next, so every such
 * round trip lies on the loop-carried path of an alloc + free loop. Costs at
 * most one LEA; a no-op elsewhere. */
#if defined(__x86_64__)
#define LABYRINTH_IN_REGISTER_V1_(p) __asm__("" : "+r"(p))
#else
#define LABYRINTH_IN_REGISTER_V1_(p) ((void)0)
#endif
#define LABYRINTH_INLINE_V1_ extern __inline__ __attribute__((__gnu_inline__, __always_inline__))

/** Sentinel in labyrinth_fast_record.pool: the thread is inside a call. */
#define LABYRINTH_FAST_BUSY_V1 ((const labyrinth_pool *)1)
/** Side-table word a free writes for a page it puts in a thread cache (ABI
 *  1.x). A page a refill took from the shared list keeps its free-list word
 *  there instead; either way never an owner's word, so a second free of a
 *  cached page is refused. */
#define LABYRINTH_SIDE_CACHED_V1 ((uint64_t)4)
/** State bits of a side-table word of an allocated block (ABI 1.x). */
#define LABYRINTH_SIDE_ALLOC_V1 ((uint64_t)2)
/** Where an exclusive block's owner id starts in its side-table word (ABI 1.x). */
#define LABYRINTH_SIDE_OWNER_SHIFT_V1 16

/** This thread's record (defined by the library, initial-exec TLS). */
LABYRINTH_API extern __thread labyrinth_fast_record labyrinth_thread_fast
    __attribute__((tls_model("initial-exec")));

/** The page slots of a thread cache: right after the struct. */
LABYRINTH_INLINE_V1_ void **labyrinth_cache_pages_v1_(labyrinth_thread_cache *c) { return (void **)(void *)(c + 1); }

/** End an inline call that marked the record BUSY: the record names `pool`
 *  again. A release store (the same plain store as a relaxed one on
 *  x86-64): a library thread that reclaims this thread's cache waits until it
 *  sees the record not BUSY, and must then see every change the call made
 *  to the cache. */
LABYRINTH_INLINE_V1_ void labyrinth_fast_leave_v1_(const labyrinth_pool *pool) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&labyrinth_thread_fast.pool, pool, __ATOMIC_RELEASE);
}

/** The record's cache pointer. Read only after the record was marked BUSY:
 *  a thread reclaiming this thread's cache points it at an empty cache, then
 *  waits, after a membarrier(), until it sees the record not BUSY; a call
 *  that marked it BUSY after that barrier sees the empty cache here and
 *  takes the library's path. An atomic load (a plain load on every target)
 *  because that other thread writes it. */
LABYRINTH_INLINE_V1_ labyrinth_thread_cache *labyrinth_fast_cache_v1_(void) {
  return __atomic_load_n(&labyrinth_thread_fast.cache, __ATOMIC_RELAXED);
}

/** The inline common case of the flagship; NULL when the library must decide.
 *  The record is marked BUSY *before* the cache is read: a signal handler
 *  that runs in between then takes the general path and cannot change the
 *  cache under us (reading the count first and marking afterwards would let
 *  a handler's refill or drain be overwritten with a stale count). */
LABYRINTH_INLINE_V1_ void *labyrinth_fast_alloc_v1_(const labyrinth_pool *pool) {
  labyrinth_thread_cache *c;
  uint32_t n;
  void *page;
  if (LABYRINTH_UNLIKELY_V1_(!pool || __atomic_load_n(&labyrinth_thread_fast.pool, __ATOMIC_RELAXED) != pool))
    return (void *)0;
  __atomic_store_n(&labyrinth_thread_fast.pool, LABYRINTH_FAST_BUSY_V1, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  c = labyrinth_fast_cache_v1_();
  n = __atomic_load_n(&c->count, __ATOMIC_RELAXED);
  page = (void *)0;
  if (__builtin_expect(n != 0, 1)) {
    void **top = labyrinth_cache_pages_v1_(c) + (n - 1);
    LABYRINTH_IN_REGISTER_V1_(top);
    page = *top;
    __atomic_store_n(&c->count, n - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&labyrinth_thread_fast.side_table[((uintptr_t)page - labyrinth_thread_fast.arena) >> 12],
                     labyrinth_thread_fast.alloc_word, __ATOMIC_RELAXED);
  }
  labyrinth_fast_leave_v1_(pool);
  return page;
}

/** A block of order 1..LABYRINTH_MAX_ORDER from the thread's order cache, as
 *  an exclusive block of the thread or (exclusive = 0) a shared one; NULL when
 *  the library must decide. The same guard as labyrinth_fast_alloc_v1_. */
LABYRINTH_INLINE_V1_ void *labyrinth_fast_alloc_block_v1_(const labyrinth_pool *pool, unsigned order,
                                                           int exclusive) {
  labyrinth_thread_cache *c;
  labyrinth_order_slots *os;
  uint32_t n;
  void *block;
  if (LABYRINTH_UNLIKELY_V1_(!pool || __atomic_load_n(&labyrinth_thread_fast.pool, __ATOMIC_RELAXED) != pool))
    return (void *)0;
  __atomic_store_n(&labyrinth_thread_fast.pool, LABYRINTH_FAST_BUSY_V1, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  c = labyrinth_fast_cache_v1_();
  os = &c->orders[order - 1];
  LABYRINTH_IN_REGISTER_V1_(os);
  n = __atomic_load_n(&os->count, __ATOMIC_RELAXED);
  block = (void *)0;
  if (__builtin_expect(n != 0, 1)) {
    void **top = &os->blocks[n - 1];
    LABYRINTH_IN_REGISTER_V1_(top);
    block = *top;
    __atomic_store_n(&os->count, n - 1, __ATOMIC_RELAXED);
    if (c->order_hint != order) c->order_hint = order; /* a store only when the hint changes */
    __atomic_store_n(&labyrinth_thread_fast.side_table[((uintptr_t)block - labyrinth_thread_fast.arena) >> 12],
                     (exclusive ? labyrinth_thread_fast.alloc_word : LABYRINTH_SIDE_ALLOC_V1) | ((uint64_t)order << 4),
                     __ATOMIC_RELEASE);
  }
  labyrinth_fast_leave_v1_(pool);
  return block;
}

/** Push an exclusive order-0 page of the thread (its side-table word at
 *  `word`) onto the thread's cache if there is room; 1 if it did. Call only
 *  while the record is marked BUSY. */
LABYRINTH_INLINE_V1_ int labyrinth_page_cache_push_v1_(labyrinth_thread_cache *c, uint64_t *word, void *page) {
  const uint32_t n = __atomic_load_n(&c->count, __ATOMIC_RELAXED);
  void **top;
  if (LABYRINTH_UNLIKELY_V1_(n >= __atomic_load_n(&c->limit, __ATOMIC_RELAXED))) return 0;
  top = labyrinth_cache_pages_v1_(c) + n;
  LABYRINTH_IN_REGISTER_V1_(top);
  __atomic_store_n(word, LABYRINTH_SIDE_CACHED_V1, __ATOMIC_RELAXED);
  *top = page;
  __atomic_store_n(&c->count, n + 1, __ATOMIC_RELAXED);
  return 1;
}

/** Push an exclusive block of order 1..LABYRINTH_MAX_ORDER of the thread onto
 *  its order cache if that order is below its limit and the pool is not
 *  under memory pressure; 1 if it did. Call only while marked BUSY. */
LABYRINTH_INLINE_V1_ int labyrinth_order_cache_push_v1_(labyrinth_thread_cache *c, uint64_t *word, void *page,
                                                         unsigned order) {
  labyrinth_order_slots *os = &c->orders[order - 1];
  uint32_t n;
  void **top;
  LABYRINTH_IN_REGISTER_V1_(os);
  n = __atomic_load_n(&os->count, __ATOMIC_RELAXED);
  if (LABYRINTH_UNLIKELY_V1_(n >= os->limit || __atomic_load_n(&c->limit, __ATOMIC_RELAXED) == 0)) return 0;
  top = &os->blocks[n];
  LABYRINTH_IN_REGISTER_V1_(top);
  __atomic_store_n(word, LABYRINTH_SIDE_CACHED_V1 | ((uint64_t)order << 4), __ATOMIC_RELEASE);
  *top = page;
  __atomic_store_n(&os->count, n + 1, __ATOMIC_RELAXED);
  return 1;
}

/** Start a free or transfer on the inline path: if the record describes `pool` and
 *  `page` is a page of its arena, mark the record BUSY, point *word at the
 *  page's side-table word and return 1; else 0 (nothing marked: the library
 *  decides). */
LABYRINTH_INLINE_V1_ int labyrinth_fast_enter_page_v1_(const labyrinth_pool *pool, void *page,
                                                        uint64_t **word) {
  uintptr_t off;
  if (LABYRINTH_UNLIKELY_V1_(!pool || __atomic_load_n(&labyrinth_thread_fast.pool, __ATOMIC_RELAXED) != pool))
    return 0;
  off = (uintptr_t)page - labyrinth_thread_fast.arena;
  /* In the arena and page-aligned, in one compare: a misaligned offset
   * rotates its low bits to the top and fails the bound. */
  if (LABYRINTH_UNLIKELY_V1_(((off >> 12) | (off << 52)) >= labyrinth_thread_fast.arena_pages)) return 0;
  __atomic_store_n(&labyrinth_thread_fast.pool, LABYRINTH_FAST_BUSY_V1, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  *word = &labyrinth_thread_fast.side_table[off >> 12];
  return 1;
}

/** The inline common case of freeing; returns 0 when the library must decide.
 *  Marked BUSY before anything the decision depends on is read (see above).
 *  An exclusive order-0 page of the thread goes to its cache; an exclusive
 *  block of order >= 1 (its word is the thread's order-0 word with the order
 *  in bits 4-7) to its order cache. */
LABYRINTH_INLINE_V1_ int labyrinth_fast_free_v1_(const labyrinth_pool *pool, void *page) {
  uint64_t *word, w;
  int done = 0;
  if (!labyrinth_fast_enter_page_v1_(pool, page, &word)) return 0;
  w = __atomic_load_n(word, __ATOMIC_RELAXED);
  if (__builtin_expect(w == labyrinth_thread_fast.alloc_word, 1)) { /* an order-0 page: the flagship's */
    done = labyrinth_page_cache_push_v1_(labyrinth_fast_cache_v1_(), word, page);
  } else {
    /* A block: most often of the order last taken from the order cache. Try
     * that order first, as a separate branch: the push then need not wait
     * for the word to be read to know where to go (the branch is predicted),
     * which halves a tight alloc + free loop. */
    labyrinth_thread_cache *c = labyrinth_fast_cache_v1_();
    const unsigned hint = c->order_hint;
    if (hint - 1u < LABYRINTH_MAX_ORDER && w == (labyrinth_thread_fast.alloc_word | ((uint64_t)hint << 4))) {
      done = labyrinth_order_cache_push_v1_(c, word, page, hint);
    } else if ((w & ~(uint64_t)0xF0) == labyrinth_thread_fast.alloc_word &&
               ((unsigned)(w >> 4) & 0xF) - 1u < LABYRINTH_MAX_ORDER) {
      /* Keeps the compiler from merging the two pushes into one whose order
       * is selected from the word (a data dependency again). */
      __asm__ __volatile__("" ::: "memory");
      done = labyrinth_order_cache_push_v1_(c, word, page, (unsigned)(w >> 4) & 0xF);
    }
  }
  labyrinth_fast_leave_v1_(pool);
  return done;
}

/** labyrinth_fast_free_v1_ for a block whose order the caller states: done
 *  only if the page's word is exactly the thread's exclusive word for that
 *  order. The order cache slot it pushes to does not wait for the word to be
 *  read (with the order read from the word, each free of a block waits for
 *  the side-table load before it can touch the order cache). */
LABYRINTH_INLINE_V1_ int labyrinth_fast_free_order_v1_(const labyrinth_pool *pool, void *page,
                                                        unsigned order) {
  uint64_t *word;
  int done = 0;
  if (LABYRINTH_UNLIKELY_V1_(order > LABYRINTH_MAX_ORDER) || !labyrinth_fast_enter_page_v1_(pool, page, &word))
    return 0;
  if (__builtin_expect(__atomic_load_n(word, __ATOMIC_RELAXED) ==
                           (labyrinth_thread_fast.alloc_word | ((uint64_t)order << 4)),
                       1))
    done = order == 0 ? labyrinth_page_cache_push_v1_(labyrinth_fast_cache_v1_(), word, page)
                      : labyrinth_order_cache_push_v1_(labyrinth_fast_cache_v1_(), word, page, order);
  labyrinth_fast_leave_v1_(pool);
  return done;
}

/** The inline common case of labyrinth_page_transfer(): the calling thread
 *  hands an exclusive block of any order it owns to a valid new owner. One
 *  load and one store of the block's side-table word, guarded like a free;
 *  0 when the library must decide (and explain a refusal). */
LABYRINTH_INLINE_V1_ int labyrinth_fast_transfer_v1_(const labyrinth_pool *pool, void *page,
                                                      labyrinth_owner new_owner) {
  uint64_t *word, w;
  int done = 0;
  if (new_owner == LABYRINTH_OWNER_NONE || new_owner > LABYRINTH_OWNER_MAX ||
      !labyrinth_fast_enter_page_v1_(pool, page, &word))
    return 0;
  w = __atomic_load_n(word, __ATOMIC_RELAXED);
  if ((w & ~(uint64_t)0xF0) == labyrinth_thread_fast.alloc_word) {
    __atomic_store_n(word,
                     (w & (((uint64_t)1 << LABYRINTH_SIDE_OWNER_SHIFT_V1) - 1)) |
                         ((uint64_t)new_owner << LABYRINTH_SIDE_OWNER_SHIFT_V1),
                     __ATOMIC_RELEASE);
    done = 1;
  }
  labyrinth_fast_leave_v1_(pool);
  return done;
}

/* The library's entry points under second names: the same functions,
 * exported under both names. The inline functions below call these rather
 * than the names themselves: where a name has an inline definition
 * (LABYRINTH_INLINE_CALLS), its body calling the same symbol would be a call
 * to itself, and clang then does not inline the name at all. Not for direct
 * use. */
LABYRINTH_API void *labyrinth_call_alloc_page_v1_(labyrinth_pool *pool);
LABYRINTH_API labyrinth_status labyrinth_call_free_pages_v1_(labyrinth_pool *pool, void *page);
LABYRINTH_API labyrinth_status labyrinth_call_free_pages_order_v1_(labyrinth_pool *pool, void *page,
                                                                   unsigned order);
LABYRINTH_API labyrinth_status labyrinth_call_alloc_pages_v1_(labyrinth_pool *pool, unsigned order,
                                                              labyrinth_gfp gfp, uint32_t timeout_ms,
                                                              void **out_page);
LABYRINTH_API labyrinth_status labyrinth_call_page_transfer_v1_(labyrinth_pool *pool, void *page,
                                                                labyrinth_owner new_owner);

/** labyrinth_void_alloc_page_gfp_atomic_exclusive(), inline common case.
 *  Same ownership, blocking and signal-safety contract. */
static inline LABYRINTH_OWN void *labyrinth_alloc_page_inline(labyrinth_pool *pool) {
  void *page = labyrinth_fast_alloc_v1_(pool);
  return page ? page : labyrinth_call_alloc_page_v1_(pool);
}

/** labyrinth_free_pages(), inline common case. Same contract. */
static inline labyrinth_status labyrinth_free_page_inline(labyrinth_pool *pool, void *page) {
  return __builtin_expect(labyrinth_fast_free_v1_(pool, page), 1) ? LABYRINTH_OK
                                                                 : labyrinth_call_free_pages_v1_(pool, page);
}

/*
 * Calls by name. Unless LABYRINTH_NO_INLINE_CALLS (or LABYRINTH_NO_INLINE) is
 * defined, a C or C++ call to labyrinth_void_alloc_page_gfp_atomic_exclusive(),
 * labyrinth_free_pages(), labyrinth_free_pages_order(),
 * labyrinth_page_transfer() or labyrinth_alloc_pages() (for ATOMIC|EXCLUSIVE)
 * compiles to the inline common case above, exactly
 * as labyrinth_alloc_page_inline() / labyrinth_free_page_inline() do, and
 * calls into the library only when it must decide. These are GNU
 * "extern inline" definitions: the exported functions are unchanged and are
 * what function pointers, dlsym() and other languages (Rust, Python's ctypes)
 * reach. The contract is the same either way.
 */
#if !defined(LABYRINTH_BUILDING_LIBRARY) && !defined(LABYRINTH_NO_INLINE_CALLS)
#define LABYRINTH_INLINE_CALLS 1
LABYRINTH_INLINE_V1_ LABYRINTH_OWN void *
labyrinth_void_alloc_page_gfp_atomic_exclusive(labyrinth_pool *pool) {
  void *page = labyrinth_fast_alloc_v1_(pool);
  return __builtin_expect(page != (void *)0, 1) ? page : labyrinth_call_alloc_page_v1_(pool);
}
LABYRINTH_INLINE_V1_ labyrinth_status labyrinth_free_pages(labyrinth_pool *pool, void *page) {
  return __builtin_expect(labyrinth_fast_free_v1_(pool, page), 1) ? LABYRINTH_OK
                                                                 : labyrinth_call_free_pages_v1_(pool, page);
}
LABYRINTH_INLINE_V1_ labyrinth_status labyrinth_page_transfer(labyrinth_pool *pool, void *page,
                                                              labyrinth_owner new_owner) {
  return __builtin_expect(labyrinth_fast_transfer_v1_(pool, page, new_owner), 1)
             ? LABYRINTH_OK
             : labyrinth_call_page_transfer_v1_(pool, page, new_owner);
}
LABYRINTH_INLINE_V1_ labyrinth_status labyrinth_free_pages_order(labyrinth_pool *pool, void *page,
                                                                 unsigned order) {
  return __builtin_expect(labyrinth_fast_free_order_v1_(pool, page, order), 1)
             ? LABYRINTH_OK
             : labyrinth_call_free_pages_order_v1_(pool, page, order);
}
/* Inline only for ATOMIC|EXCLUSIVE (the check folds away when gfp is a
 * constant); every other request is the library's. */
LABYRINTH_INLINE_V1_ labyrinth_status labyrinth_alloc_pages(labyrinth_pool *pool, unsigned order,
                                                            labyrinth_gfp gfp, uint32_t timeout_ms,
                                                            LABYRINTH_OWN void **out_page) {
  if (gfp == (LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE) && out_page &&
      order <= LABYRINTH_MAX_ORDER) {
    void *b = order == 0 ? labyrinth_fast_alloc_v1_(pool) : labyrinth_fast_alloc_block_v1_(pool, order, 1);
    if (__builtin_expect(b != (void *)0, 1)) {
      *out_page = b;
      return LABYRINTH_OK;
    }
  }
  return labyrinth_call_alloc_pages_v1_(pool, order, gfp, timeout_ms, out_page);
}
#endif

#endif /* inline fast path */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LABYRINTH_H */
