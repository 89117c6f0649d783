/*
 * labyrinth_inline.h - the inline fast path of labyrinth.h (ABI 1.x).
 *
 * Included by labyrinth.h; include that header, not this one. It holds the
 * structs the inline code reads and the inline functions themselves, kept
 * apart so that labyrinth.h reads as the API and this file as the protocol
 * between the header's inline code and the library (docs/abi.md).
 */
#ifndef LABYRINTH_INLINE_H
#define LABYRINTH_INLINE_H

#ifndef LABYRINTH_H
#error "include <labyrinth/labyrinth.h>, not labyrinth_inline.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

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
                       within the cache's budget (docs/design.md): the
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
 *  1.x). A page a refill took from the depot keeps its free-list word
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
static inline __attribute__((__always_inline__)) LABYRINTH_OWN void *
labyrinth_alloc_page_inline(labyrinth_pool *pool) {
  void *page = labyrinth_fast_alloc_v1_(pool);
  return page ? page : labyrinth_call_alloc_page_v1_(pool);
}

/** labyrinth_free_pages(), inline common case. Same contract. */
static inline __attribute__((__always_inline__)) labyrinth_status
labyrinth_free_page_inline(labyrinth_pool *pool, void *page) {
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

#endif /* LABYRINTH_INLINE_H */
