/* guard_models.c - what the inline fast path's signal guard costs, and what
 * other guards would cost, on private models of the header's pair
 * (alloc + touch + free of one page). Not Labyrinth: a copy of its data
 * layout (a per-thread record naming a cache whose count and slots sit in
 * memory, a side-table word per page) with the guard swapped out:
 *
 *   as_shipped       the header's protocol: the record's pool field is set
 *                    BUSY before the cache is read and restored after
 *                    (two stores a call), slots addressed through a
 *                    register (LABYRINTH_IN_REGISTER_V1_)
 *   count_in_record  the same with the count and limit in the record, on
 *                    the guard's line (an ABI change)
 *   xadd_guard       no BUSY stores: each call marks the count with one
 *                    unlocked xadd (a signal cannot split it), its final
 *                    count store unmarks it
 *   rseq_guard       no BUSY stores: a Linux restartable sequence (glibc
 *                    2.35+ registers one per thread): one store of the
 *                    sequence's descriptor per call, the count store as the
 *                    commit; the kernel moves a thread interrupted inside
 *                    it to an abort path that undoes the side-table word
 *                    and retries. x86-64 only; skipped when glibc has not
 *                    registered rseq
 *   no_guard         no guard at all (not signal-safe): the floor
 *
 * Single-threaded, no signals: these time the common case only; only
 * as_shipped's and rseq_guard's protocols would be safe as written. Each
 * round times every variant once, in turn; prints each variant's fastest
 * and median round and the median over rounds of its time divided by
 * as_shipped's in the same round (robust to the drift of our VMs).
 *
 * Build and run (docs/performance.md, "What a page pair is made of"):
 *   cc -O2 bench/profile/guard_models.c -o /tmp/guard_models
 *   taskset -c 1 /tmp/guard_models [ROUNDS [PAIRS_PER_ROUND]]
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELAXED __ATOMIC_RELAXED
#define FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define BUSY ((void *)1)
#define IN_REGISTER(p) __asm__("" : "+r"(p))
#define INLINE static inline __attribute__((always_inline))

enum { kPages = 1024, kCached = 64 };

typedef struct record {
  void *pool;
  uint32_t *cache; /* cache[0] count, cache[1] limit, slots from byte 64 */
  uint64_t *meta;
  uintptr_t base;
  uint64_t npages;
  uint64_t alloc_word;
  uint32_t count, limit; /* count_in_record only */
} record;

static __thread record rec __attribute__((tls_model("initial-exec"), aligned(64)));
static char *arena;
static uint64_t meta[kPages];
static uint32_t cache_mem[16 + 2 * 512] __attribute__((aligned(64)));
static void *const POOL = (void *)0x1234;

INLINE void **slot(uint32_t *c, uint32_t i) {
  void **s = (void **)(void *)((char *)c + 64) + i;
  IN_REGISTER(s);
  return s;
}
INLINE uint64_t *word_of(void *p) { return &rec.meta[((uintptr_t)p - rec.base) >> 12]; }
INLINE int in_arena(void *p) {
  const uintptr_t off = (uintptr_t)p - rec.base;
  return ((off >> 12) | (off << 52)) < rec.npages;
}

/* ---- as_shipped ---- */
INLINE void *alloc_shipped(void *pool) {
  uint32_t *c, n;
  void *p = 0;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool) return 0;
  __atomic_store_n(&rec.pool, BUSY, RELAXED);
  FENCE();
  c = rec.cache;
  n = __atomic_load_n(&c[0], RELAXED);
  if (n) {
    p = *slot(c, n - 1);
    __atomic_store_n(&c[0], n - 1, RELAXED);
    __atomic_store_n(word_of(p), rec.alloc_word, RELAXED);
  }
  FENCE();
  __atomic_store_n(&rec.pool, pool, RELAXED);
  return p;
}
INLINE int free_shipped(void *pool, void *p) {
  int done = 0;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool || !in_arena(p)) return 0;
  __atomic_store_n(&rec.pool, BUSY, RELAXED);
  FENCE();
  if (__atomic_load_n(word_of(p), RELAXED) == rec.alloc_word) {
    uint32_t *c = rec.cache;
    const uint32_t n = __atomic_load_n(&c[0], RELAXED);
    if (n < __atomic_load_n(&c[1], RELAXED)) {
      void **s = slot(c, n);
      __atomic_store_n(word_of(p), 4, RELAXED);
      *s = p;
      __atomic_store_n(&c[0], n + 1, RELAXED);
      done = 1;
    }
  }
  FENCE();
  __atomic_store_n(&rec.pool, pool, RELAXED);
  return done;
}

/* ---- count_in_record ---- */
INLINE void *alloc_in_record(void *pool) {
  uint32_t n;
  void *p = 0;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool) return 0;
  __atomic_store_n(&rec.pool, BUSY, RELAXED);
  FENCE();
  n = __atomic_load_n(&rec.count, RELAXED);
  if (n) {
    p = *slot(rec.cache, n - 1);
    __atomic_store_n(word_of(p), rec.alloc_word, RELAXED);
    __atomic_store_n(&rec.count, n - 1, RELAXED);
  }
  FENCE();
  __atomic_store_n(&rec.pool, pool, RELAXED);
  return p;
}
INLINE int free_in_record(void *pool, void *p) {
  int done = 0;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool || !in_arena(p)) return 0;
  __atomic_store_n(&rec.pool, BUSY, RELAXED);
  FENCE();
  if (__atomic_load_n(word_of(p), RELAXED) == rec.alloc_word) {
    const uint32_t n = __atomic_load_n(&rec.count, RELAXED);
    if (n < __atomic_load_n(&rec.limit, RELAXED)) {
      *slot(rec.cache, n) = p;
      __atomic_store_n(word_of(p), 4, RELAXED);
      __atomic_store_n(&rec.count, n + 1, RELAXED);
      done = 1;
    }
  }
  FENCE();
  __atomic_store_n(&rec.pool, pool, RELAXED);
  return done;
}

/* ---- no_guard ---- */
INLINE void *alloc_unguarded(void *pool) {
  uint32_t *c, n;
  void *p = 0;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool) return 0;
  c = rec.cache;
  n = __atomic_load_n(&c[0], RELAXED);
  if (n) {
    p = *slot(c, n - 1);
    __atomic_store_n(word_of(p), rec.alloc_word, RELAXED);
    __atomic_store_n(&c[0], n - 1, RELAXED);
  }
  FENCE();
  return p;
}
INLINE int free_unguarded(void *pool, void *p) {
  uint32_t *c, n;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool || !in_arena(p)) return 0;
  if (__atomic_load_n(word_of(p), RELAXED) != rec.alloc_word) return 0;
  c = rec.cache;
  n = __atomic_load_n(&c[0], RELAXED);
  if (n >= __atomic_load_n(&c[1], RELAXED)) return 0;
  *slot(c, n) = p;
  __atomic_store_n(word_of(p), 4, RELAXED);
  __atomic_store_n(&c[0], n + 1, RELAXED);
  FENCE();
  return 1;
}

#if defined(__x86_64__)
/* ---- xadd_guard ---- */
#define MARK 0x80000000u
INLINE uint32_t xadd_unlocked(uint32_t *p, uint32_t v) {
  __asm__ __volatile__("xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
  return v;
}
INLINE void sub_unlocked(uint32_t *p, uint32_t v) {
  __asm__ __volatile__("subl %1, %0" : "+m"(*p) : "r"(v) : "memory");
}
INLINE void *alloc_xadd(void *pool) {
  uint32_t *c, n;
  void *p;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool) return 0;
  c = rec.cache;
  n = xadd_unlocked(&c[0], MARK);
  /* Marked already (a call this handler interrupted), empty, or the record
   * changed under us: unmark and let the library decide. */
  if (__builtin_expect((n & MARK) || n == 0 || __atomic_load_n(&rec.pool, RELAXED) != pool, 0)) {
    sub_unlocked(&c[0], MARK);
    return 0;
  }
  p = *slot(c, n - 1);
  __atomic_store_n(word_of(p), rec.alloc_word, RELAXED);
  FENCE();
  __atomic_store_n(&c[0], n - 1, RELAXED);
  return p;
}
INLINE int free_xadd(void *pool, void *p) {
  uint32_t *c, n;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool || !in_arena(p)) return 0;
  if (__atomic_load_n(word_of(p), RELAXED) != rec.alloc_word) return 0;
  c = rec.cache;
  n = xadd_unlocked(&c[0], MARK);
  if (__builtin_expect((n & MARK) || n >= __atomic_load_n(&c[1], RELAXED) ||
                           __atomic_load_n(&rec.pool, RELAXED) != pool, 0)) {
    sub_unlocked(&c[0], MARK);
    return 0;
  }
  *slot(c, n) = p;
  __atomic_store_n(word_of(p), 4, RELAXED);
  FENCE();
  __atomic_store_n(&c[0], n + 1, RELAXED);
  return 1;
}

/* ---- rseq_guard ---- */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
static int rseq_usable(void) { return &__rseq_size != 0 && __rseq_size >= 20; }
/* The descriptor (struct rseq_cs: version, flags, start_ip,
 * post_commit_offset, abort_ip) in __rseq_cs; the abort path in
 * __rseq_failure, after the signature the kernel checks (RSEQ_SIG). The
 * abort path goes back to the start, which stores the descriptor again. */
#define RSEQ_CS(label_start, label_commit, label_abort)                              \
  ".pushsection __rseq_cs, \"aw\"\n\t.balign 32\n3:\n\t.long 0x0, 0x0\n\t.quad " \
  label_start ", (" label_commit " - " label_start "), " label_abort "\n\t.popsection\n\t"
INLINE void *alloc_rseq(void *pool) {
  uint32_t *c;
  void *p;
  uint64_t n;
  void **tmp;
  const ptrdiff_t rs = __rseq_offset;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool) return 0;
  c = rec.cache;
  __asm__ __volatile__(
      RSEQ_CS("1f", "2f", "4f")
      "7:\n\t"
      "leaq 3b(%%rip), %[p]\n\t"
      "movq %[p], %%fs:8(%[rs])\n" /* rseq->rseq_cs = &descriptor */
      "1:\n\t"
      "movl (%[c]), %k[n]\n\t"
      "testl %k[n], %k[n]\n\t"
      "jz 5f\n\t"
      "leaq 56(%[c],%[n],8), %[tmp]\n\t"
      "movq (%[tmp]), %[p]\n\t"
      "decl %k[n]\n\t"
      "movl %k[n], (%[c])\n" /* commit */
      "2:\n\t"
      "jmp 6f\n\t"
      ".pushsection __rseq_failure, \"ax\"\n\t.byte 0x0f, 0xb9, 0x3d\n\t.long 0x53053053\n"
      "4:\n\t"
      "jmp 7b\n\t"
      ".popsection\n"
      "5:\n\t"
      "xorl %k[p], %k[p]\n"
      "6:\n"
      : [p] "=&r"(p), [n] "=&r"(n), [tmp] "=&r"(tmp)
      : [c] "r"(c), [rs] "r"(rs)
      : "memory", "cc");
  if (p) __atomic_store_n(word_of(p), rec.alloc_word, RELAXED);
  return p;
}
INLINE int free_rseq(void *pool, void *p) {
  uint64_t *w, aw, n;
  uint32_t *c;
  void **tmp;
  int ok;
  const ptrdiff_t rs = __rseq_offset;
  if (__atomic_load_n(&rec.pool, RELAXED) != pool || !in_arena(p)) return 0;
  w = word_of(p);
  aw = rec.alloc_word;
  if (__atomic_load_n(w, RELAXED) != aw) return 0;
  c = rec.cache;
  __asm__ __volatile__(
      RSEQ_CS("1f", "2f", "4f")
      "7:\n\t"
      "leaq 3b(%%rip), %[tmp]\n\t"
      "movq %[tmp], %%fs:8(%[rs])\n"
      "1:\n\t"
      "movl (%[c]), %k[n]\n\t"
      "cmpl 4(%[c]), %k[n]\n\t"
      "jae 5f\n\t"
      "leaq 64(%[c],%[n],8), %[tmp]\n\t"
      "movq %[pg], (%[tmp])\n\t"
      "movq $4, (%[w])\n\t"
      "incl %k[n]\n\t"
      "movl %k[n], (%[c])\n" /* commit */
      "2:\n\t"
      "movl $1, %[ok]\n\t"
      "jmp 6f\n\t"
      ".pushsection __rseq_failure, \"ax\"\n\t.byte 0x0f, 0xb9, 0x3d\n\t.long 0x53053053\n"
      "4:\n\t"
      "movq %[aw], (%[w])\n\t" /* undo the word, then again */
      "jmp 7b\n\t"
      ".popsection\n"
      "5:\n\t"
      "xorl %[ok], %[ok]\n"
      "6:\n"
      : [ok] "=&r"(ok), [n] "=&r"(n), [tmp] "=&r"(tmp)
      : [c] "r"(c), [rs] "r"(rs), [pg] "r"(p), [w] "r"(w), [aw] "r"(aw)
      : "memory", "cc");
  return ok;
}
#endif

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void reset(int in_record) {
  for (int i = 0; i < kPages; ++i) meta[i] = 4;
  for (int i = 0; i < kCached; ++i) ((void **)(void *)((char *)cache_mem + 64))[i] = arena + 4096 * i;
  cache_mem[0] = kCached;
  cache_mem[1] = 512;
  rec.count = kCached;
  rec.limit = 512;
  (void)in_record;
}

#define TOUCH(p, k) (*(volatile uint64_t *)((char *)(p) + ((((k)*13) & 63) << 6 | (((k) >> 6) & 7) << 3)) = (k))
#define DEFINE_LOOP(name, A, F)                        \
  static __attribute__((noinline)) int loop_##name(long n) { \
    for (long i = 0; i < n; ++i) {                     \
      void *p = A(POOL);                               \
      if (!p) return 0;                                \
      TOUCH(p, (uint64_t)i);                           \
      if (!F(POOL, p)) return 0;                       \
    }                                                  \
    return 1;                                          \
  }
DEFINE_LOOP(as_shipped, alloc_shipped, free_shipped)
DEFINE_LOOP(count_in_record, alloc_in_record, free_in_record)
DEFINE_LOOP(no_guard, alloc_unguarded, free_unguarded)
#if defined(__x86_64__)
DEFINE_LOOP(xadd_guard, alloc_xadd, free_xadd)
DEFINE_LOOP(rseq_guard, alloc_rseq, free_rseq)
#endif

struct variant {
  const char *name;
  int (*loop)(long);
  int in_record;
};

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 30;
  const long pairs = argc > 2 ? atol(argv[2]) : 5000000L;
  struct variant v[5];
  int nv = 0;
  double *t, *ratio, tmp[1024];
  if (rounds < 1 || rounds > 1024 || pairs < 1) {
    fprintf(stderr, "usage: %s [ROUNDS 1..1024 [PAIRS_PER_ROUND]]\n", argv[0]);
    return 2;
  }
  arena = aligned_alloc(4096, (size_t)4096 * kPages);
  if (!arena) return 1;
  memset(arena, 1, (size_t)4096 * kPages);
  rec.pool = POOL;
  rec.cache = cache_mem;
  rec.meta = meta;
  rec.base = (uintptr_t)arena;
  rec.npages = kPages;
  rec.alloc_word = 2 | (1ull << 8) | (77ull << 16);
  v[nv++] = (struct variant){"as_shipped", loop_as_shipped, 0};
  v[nv++] = (struct variant){"count_in_record", loop_count_in_record, 1};
#if defined(__x86_64__)
  v[nv++] = (struct variant){"xadd_guard", loop_xadd_guard, 0};
  if (rseq_usable()) v[nv++] = (struct variant){"rseq_guard", loop_rseq_guard, 0};
  else printf("rseq_guard: skipped (glibc has not registered rseq for this thread)\n");
#endif
  v[nv++] = (struct variant){"no_guard", loop_no_guard, 0};
  t = malloc(sizeof(double) * (size_t)(nv * rounds));
  ratio = malloc(sizeof(double) * (size_t)(nv * rounds));
  if (!t || !ratio) return 1;
  for (int r = 0; r < rounds; ++r)
    for (int i = 0; i < nv; ++i) {
      double t0;
      reset(v[i].in_record);
      t0 = now_ns();
      if (!v[i].loop(pairs)) {
        fprintf(stderr, "%s: a call failed\n", v[i].name);
        return 1;
      }
      t[i * rounds + r] = (now_ns() - t0) / (double)pairs;
    }
  for (int i = 0; i < nv; ++i)
    for (int r = 0; r < rounds; ++r) ratio[i * rounds + r] = t[i * rounds + r] / t[r];
  printf("%d rounds of %ld pairs; ns a pair (alloc + touch + free)\n", rounds, pairs);
  printf("%-16s %8s %8s %22s\n", "variant", "fastest", "median", "/ as_shipped (median)");
  for (int i = 0; i < nv; ++i) {
    double lo, med, rmed;
    memcpy(tmp, t + i * rounds, sizeof(double) * (size_t)rounds);
    qsort(tmp, (size_t)rounds, sizeof(double), by_value);
    lo = tmp[0];
    med = tmp[rounds / 2];
    memcpy(tmp, ratio + i * rounds, sizeof(double) * (size_t)rounds);
    qsort(tmp, (size_t)rounds, sizeof(double), by_value);
    rmed = tmp[rounds / 2];
    printf("%-16s %8.2f %8.2f %22.3f\n", v[i].name, lo, med, rmed);
  }
  free(t);
  free(ratio);
  free(arena);
  return 0;
}
