// anatomy.cpp - what each part of the inline fast path costs. The variants
// below run on a real pool and the library's real per-thread record
// (labyrinth_thread_fast, part of ABI 1.x), single-threaded and without
// signals, each leaving out one element of the header's fast path:
//
//   header        labyrinth_alloc_page_inline / labyrinth_free_page_inline as shipped
//   no_guard      the same without the BUSY stores to the record and the
//                 signal fences (what makes it safe against a signal handler
//                 that allocates on the same thread)
//   no_owner      no_guard, and neither the side-table write at allocation
//                 nor the owner check at free (no exclusivity at all: the
//                 pages stay marked "cached", so the pool stays consistent)
//   pop_push      no_owner with the record's fields read once, before the
//                 loop: a pop and a push on the thread cache and nothing else
//
//   model_header_layout     a private copy of the header's fast path and
//                           data layout (count behind the record's pointer)
//   model_count_in_record   the same with the cache's count and limit moved
//                           into the per-thread record (one dependent load
//                           fewer per call)
//   model_cmpxchg_commit    no BUSY guard: the count shares a 64-bit word
//                           with a generation, and each pop and push commits
//                           with one unlocked cmpxchg (x86-64), which a
//                           signal handler cannot split; a handler that
//                           changed the cache in between makes it fail and
//                           retry (kept as the record of an idea that lost:
//                           it costs far more than the guard's stores)
//
// These are measurements of the cost structure, not alternative
// implementations: only "header" keeps Labyrinth's guarantees. Built as
// labyrinth_bench_anatomy; bench/profile/profile.sh runs it.
//
// labyrinth_bench_anatomy --interleaved [ROUNDS]: instead of Google
// Benchmark's one variant after another, every round times each variant for
// about a millisecond, in turn, in one process; prints each variant's median
// and, robust to the machine's drift (on our VMs the same loop swings
// 20-40 % from one second to the next), the median over rounds of its time
// divided by the header's in the same round.
#include <benchmark/benchmark.h>
#include <labyrinth/labyrinth.h>

#include <cstdint>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

labyrinth_pool *g_pool;

inline void touch(void *p, std::uint64_t k) {
  *reinterpret_cast<volatile std::uint64_t *>(static_cast<char *>(p) +
                                              ((((k * 13) & 63) << 6) | (((k >> 6) & 7) << 3))) = k;
}

// Make sure the record describes g_pool and its cache holds pages.
void prime() {
  void *v[128];
  for (auto &p : v) p = labyrinth_void_alloc_page_gfp_atomic_exclusive(g_pool);
  for (auto &p : v) labyrinth_free_pages(g_pool, p);
}

#define RELAXED __ATOMIC_RELAXED

inline void *alloc_no_guard(const labyrinth_pool *pool) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
  labyrinth_thread_cache *c = f->cache;
  uint32_t n = __atomic_load_n(&c->count, RELAXED);
  if (n == 0) return nullptr;
  void *page = labyrinth_cache_pages_v1_(c)[n - 1];
  __atomic_store_n(&c->count, n - 1, RELAXED);
  __atomic_store_n(&f->side_table[((uintptr_t)page - f->arena) >> 12], f->alloc_word, RELAXED);
  return page;
}

inline bool free_no_guard(const labyrinth_pool *pool, void *page) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  uintptr_t off = (uintptr_t)page - f->arena;
  if (((off >> 12) | (off << 52)) >= f->arena_pages) return false;
  uint64_t *word = &f->side_table[off >> 12];
  if (__atomic_load_n(word, RELAXED) != f->alloc_word) return false;
  labyrinth_thread_cache *c = f->cache;
  uint32_t n = __atomic_load_n(&c->count, RELAXED);
  if (n >= __atomic_load_n(&c->limit, RELAXED)) return false;
  __atomic_store_n(word, LABYRINTH_SIDE_CACHED_V1, RELAXED);
  labyrinth_cache_pages_v1_(c)[n] = page;
  __atomic_store_n(&c->count, n + 1, RELAXED);
  return true;
}

inline void *alloc_no_owner(const labyrinth_pool *pool) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
  labyrinth_thread_cache *c = f->cache;
  uint32_t n = __atomic_load_n(&c->count, RELAXED);
  if (n == 0) return nullptr;
  void *page = labyrinth_cache_pages_v1_(c)[n - 1];
  __atomic_store_n(&c->count, n - 1, RELAXED);
  return page;
}

inline bool free_no_owner(const labyrinth_pool *pool, void *page) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  labyrinth_thread_cache *c = f->cache;
  uint32_t n = __atomic_load_n(&c->count, RELAXED);
  if (n >= __atomic_load_n(&c->limit, RELAXED)) return false;
  labyrinth_cache_pages_v1_(c)[n] = page;
  __atomic_store_n(&c->count, n + 1, RELAXED);
  return true;
}

// alloc and free_ are lambdas, never plain function names: a function
// passed by name arrives as a pointer, and the calls through it are not
// inlined, so a variant passed that way would measure an indirect call, not
// the code.
template <int kBurst, class A, class F>
void run(benchmark::State &st, A alloc, F free_) {
  static_assert(!std::is_pointer<A>::value && !std::is_pointer<F>::value, "pass lambdas (see above)");
  prime();
  void *v[kBurst];
  std::uint64_t k = 0;
  for (auto _ : st) {
    for (int j = 0; j < kBurst; ++j) {
      v[j] = alloc(g_pool);
      if (__builtin_expect(!v[j], 0)) {
        st.SkipWithError("fast path missed (record not set up or cache empty)");
        return;
      }
      touch(v[j], k++);
    }
    for (int j = 0; j < kBurst; ++j)
      if (__builtin_expect(!free_(g_pool, v[j]), 0)) {
        st.SkipWithError("fast free missed");
        return;
      }
  }
  st.counters["pages"] = kBurst;
}

template <int kBurst>
void BM_header(benchmark::State &st) {
  run<kBurst>(st, [](labyrinth_pool *p) { return labyrinth_alloc_page_inline(p); },
              [](labyrinth_pool *p, void *pg) { return labyrinth_free_page_inline(p, pg) == LABYRINTH_OK; });
}
template <int kBurst>
void BM_no_guard(benchmark::State &st) {
  run<kBurst>(st, [](labyrinth_pool *p) { return alloc_no_guard(p); },
              [](labyrinth_pool *p, void *pg) { return free_no_guard(p, pg); });
}
template <int kBurst>
void BM_no_owner(benchmark::State &st) {
  run<kBurst>(st, [](labyrinth_pool *p) { return alloc_no_owner(p); },
              [](labyrinth_pool *p, void *pg) { return free_no_owner(p, pg); });
}
// A pop and a push on the thread cache, the record read once (when made):
// the pop_push variant, here and in the interleaved mode.
struct PopPush {
  labyrinth_thread_cache *c = labyrinth_thread_fast.cache;
  void **slots = labyrinth_cache_pages_v1_(c);
  void *pop() const {
    uint32_t n = __atomic_load_n(&c->count, RELAXED);
    void *page = slots[n - 1];
    __atomic_store_n(&c->count, n - 1, RELAXED);
    return page;
  }
  void push(void *page) const {
    uint32_t n = __atomic_load_n(&c->count, RELAXED);
    slots[n] = page;
    __atomic_store_n(&c->count, n + 1, RELAXED);
  }
};
template <int kBurst>
void BM_pop_push(benchmark::State &st) {
  prime();
  const PopPush pp;
  void *v[kBurst];
  std::uint64_t k = 0;
  if (pp.c->count < kBurst) return st.SkipWithError("cache too small");
  for (auto _ : st) {
    for (int j = 0; j < kBurst; ++j) {
      v[j] = pp.pop();
      touch(v[j], k++);
    }
    for (int j = 0; j < kBurst; ++j) pp.push(v[j]);
  }
  st.counters["pages"] = kBurst;
}

// ---- Models: a private copy of the fast path's data, to try layouts the
// library does not have. Both use this executable's TLS (local-exec: no GOT
// load for the record's offset), so compare them with each other.
struct alignas(64) ModelCache {
  uint32_t count, limit;
  uint32_t pad[14];
  void *slots[512];
};
struct ModelRecordV1 {  // the header's layout: the count behind a pointer
  const void *pool;
  uint32_t *cache;
  uint64_t *meta;
  uintptr_t base;
  uint64_t npages, alloc_word;
};
struct ModelRecordV2 {  // the count and limit in the record itself
  const void *pool;
  uint32_t count, limit;
  void **slots;
  uint64_t *meta;
  uintptr_t base;
  uint64_t npages, alloc_word;
};
thread_local ModelRecordV1 t_v1;
thread_local ModelRecordV2 t_v2;
ModelCache g_model_cache;
alignas(4096) char g_model_arena[512][4096];
uint64_t g_model_meta[512];
constexpr uint64_t kWord = 0x1234500000000001ull;

#define SIGFENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define BUSY ((const void *)1)

inline void *v1_alloc(const void *pool) {
  ModelRecordV1 *f = &t_v1;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
  uint32_t *c = f->cache;
  uint32_t n = __atomic_load_n(&c[0], RELAXED);
  if (n == 0) return nullptr;
  __atomic_store_n(&f->pool, BUSY, RELAXED);
  SIGFENCE();
  void *page = ((void **)(void *)((char *)c + 64))[n - 1];
  __atomic_store_n(&c[0], n - 1, RELAXED);
  __atomic_store_n(&f->meta[((uintptr_t)page - f->base) >> 12], f->alloc_word, RELAXED);
  SIGFENCE();
  __atomic_store_n(&f->pool, pool, RELAXED);
  return page;
}
inline bool v1_free(const void *pool, void *page) {
  ModelRecordV1 *f = &t_v1;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  uintptr_t off = (uintptr_t)page - f->base;
  if (((off >> 12) | (off << 52)) >= f->npages) return false;
  uint64_t *word = &f->meta[off >> 12];
  if (__atomic_load_n(word, RELAXED) != f->alloc_word) return false;
  uint32_t *c = f->cache;
  uint32_t n = __atomic_load_n(&c[0], RELAXED);
  if (n >= __atomic_load_n(&c[1], RELAXED)) return false;
  __atomic_store_n(&f->pool, BUSY, RELAXED);
  SIGFENCE();
  __atomic_store_n(word, 4, RELAXED);
  ((void **)(void *)((char *)c + 64))[n] = page;
  __atomic_store_n(&c[0], n + 1, RELAXED);
  SIGFENCE();
  __atomic_store_n(&f->pool, pool, RELAXED);
  return true;
}
inline void *v2_alloc(const void *pool) {
  ModelRecordV2 *f = &t_v2;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
  uint32_t n = __atomic_load_n(&f->count, RELAXED);
  if (n == 0) return nullptr;
  __atomic_store_n(&f->pool, BUSY, RELAXED);
  SIGFENCE();
  void *page = f->slots[n - 1];
  __atomic_store_n(&f->count, n - 1, RELAXED);
  __atomic_store_n(&f->meta[((uintptr_t)page - f->base) >> 12], f->alloc_word, RELAXED);
  SIGFENCE();
  __atomic_store_n(&f->pool, pool, RELAXED);
  return page;
}
inline bool v2_free(const void *pool, void *page) {
  ModelRecordV2 *f = &t_v2;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  uintptr_t off = (uintptr_t)page - f->base;
  if (((off >> 12) | (off << 52)) >= f->npages) return false;
  uint64_t *word = &f->meta[off >> 12];
  if (__atomic_load_n(word, RELAXED) != f->alloc_word) return false;
  uint32_t n = __atomic_load_n(&f->count, RELAXED);
  if (n >= __atomic_load_n(&f->limit, RELAXED)) return false;
  __atomic_store_n(&f->pool, BUSY, RELAXED);
  SIGFENCE();
  __atomic_store_n(word, 4, RELAXED);
  f->slots[n] = page;
  __atomic_store_n(&f->count, n + 1, RELAXED);
  SIGFENCE();
  __atomic_store_n(&f->pool, pool, RELAXED);
  return true;
}

#if defined(__x86_64__)
// model_cmpxchg_commit: word = generation << 32 | count.
struct alignas(64) ModelCache3 {
  uint64_t word;
  uint32_t limit;
  uint32_t pad[13];
  void *slots[512];
};
ModelCache3 g_model_cache3;
thread_local ModelRecordV1 t_v3;  // cache points at g_model_cache3
alignas(4096) char g_model_arena3[512][4096];
uint64_t g_model_meta3[512];

inline bool commit_word(uint64_t *w, uint64_t expect, uint64_t desired) {
  bool ok;
  __asm__ __volatile__("cmpxchgq %3, %1" : "=@ccz"(ok), "+m"(*w), "+a"(expect) : "r"(desired) : "memory");
  return ok;
}
inline void *v3_alloc(const void *pool) {
  ModelRecordV1 *f = &t_v3;
  for (;;) {
    if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
    ModelCache3 *c = reinterpret_cast<ModelCache3 *>(f->cache);
    uint64_t *meta = f->meta;
    const uintptr_t base = f->base;
    const uint64_t aw = f->alloc_word;
    const uint64_t w = __atomic_load_n(&c->word, RELAXED);
    const uint32_t n = static_cast<uint32_t>(w);
    if (n == 0) return nullptr;
    void *page = c->slots[n - 1];
    SIGFENCE();
    // The record may have been switched to another pool by a handler: check again.
    if (__atomic_load_n(&f->pool, RELAXED) != pool) return nullptr;
    if (commit_word(&c->word, w, w + (uint64_t{1} << 32) - 1)) {
      __atomic_store_n(&meta[((uintptr_t)page - base) >> 12], aw, RELAXED);
      return page;
    }
  }
}
inline bool v3_free(const void *pool, void *page) {
  ModelRecordV1 *f = &t_v3;
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  ModelCache3 *c = reinterpret_cast<ModelCache3 *>(f->cache);
  const uint64_t aw = f->alloc_word;
  uintptr_t off = (uintptr_t)page - f->base;
  if (((off >> 12) | (off << 52)) >= f->npages) return false;
  uint64_t *word = &f->meta[off >> 12];
  SIGFENCE();
  if (__atomic_load_n(&f->pool, RELAXED) != pool) return false;
  if (__atomic_load_n(word, RELAXED) != aw) return false;
  __atomic_store_n(word, 4, RELAXED);
  for (;;) {
    const uint64_t w = __atomic_load_n(&c->word, RELAXED);
    const uint32_t n = static_cast<uint32_t>(w);
    if (n >= __atomic_load_n(&c->limit, RELAXED)) {
      __atomic_store_n(word, aw, RELAXED);
      return false;
    }
    c->slots[n] = page;
    if (commit_word(&c->word, w, w + (uint64_t{1} << 32) + 1)) return true;
  }
}
#endif

void model_setup() {
  static int dummy_pool;
  for (int i = 0; i < 512; ++i) {
    g_model_cache.slots[i] = g_model_arena[i];
    g_model_meta[i] = 4;
  }
  g_model_cache.count = 512;
  g_model_cache.limit = 512;
  t_v1 = ModelRecordV1{&dummy_pool, &g_model_cache.count, g_model_meta,
                       (uintptr_t)g_model_arena, 512, kWord};
  t_v2 = ModelRecordV2{&dummy_pool, 512, 512, g_model_cache.slots, g_model_meta,
                       (uintptr_t)g_model_arena, 512, kWord};
#if defined(__x86_64__)
  for (int i = 0; i < 512; ++i) {
    g_model_cache3.slots[i] = g_model_arena3[i];
    g_model_meta3[i] = 4;
  }
  g_model_cache3.word = 512;
  g_model_cache3.limit = 512;
  t_v3 = ModelRecordV1{&dummy_pool, reinterpret_cast<uint32_t *>(&g_model_cache3), g_model_meta3,
                       (uintptr_t)g_model_arena3, 512, kWord};
#endif
}

template <int kBurst, class A, class F>
void run_model(benchmark::State &st, A alloc, F free_) {
  static_assert(!std::is_pointer<A>::value && !std::is_pointer<F>::value, "pass lambdas (see run)");
  model_setup();
  const void *pool = t_v1.pool;
  void *v[kBurst];
  std::uint64_t k = 0;
  for (auto _ : st) {
    for (int j = 0; j < kBurst; ++j) {
      v[j] = alloc(pool);
      if (__builtin_expect(!v[j], 0)) return st.SkipWithError("model alloc missed");
      touch(v[j], k++);
    }
    for (int j = 0; j < kBurst; ++j)
      if (__builtin_expect(!free_(pool, v[j]), 0)) return st.SkipWithError("model free missed");
  }
  st.counters["pages"] = kBurst;
}
template <int kBurst>
void BM_model_v1(benchmark::State &st) {
  run_model<kBurst>(st, [](const void *p) { return v1_alloc(p); },
                    [](const void *p, void *pg) { return v1_free(p, pg); });
}
template <int kBurst>
void BM_model_v2(benchmark::State &st) {
  run_model<kBurst>(st, [](const void *p) { return v2_alloc(p); },
                    [](const void *p, void *pg) { return v2_free(p, pg); });
}

#if defined(__x86_64__)
template <int kBurst>
void BM_model_v3(benchmark::State &st) {
  run_model<kBurst>(st, [](const void *p) { return v3_alloc(p); },
                    [](const void *p, void *pg) { return v3_free(p, pg); });
}
#endif

}  // namespace

BENCHMARK(BM_model_v1<1>)->Name("anatomy_pair/model_header_layout");
BENCHMARK(BM_model_v2<1>)->Name("anatomy_pair/model_count_in_record");
BENCHMARK(BM_model_v1<256>)->Name("anatomy_burst256/model_header_layout");
BENCHMARK(BM_model_v2<256>)->Name("anatomy_burst256/model_count_in_record");
#if defined(__x86_64__)
BENCHMARK(BM_model_v3<1>)->Name("anatomy_pair/model_cmpxchg_commit");
BENCHMARK(BM_model_v3<256>)->Name("anatomy_burst256/model_cmpxchg_commit");
#endif
BENCHMARK(BM_header<1>)->Name("anatomy_pair/header");
BENCHMARK(BM_no_guard<1>)->Name("anatomy_pair/no_guard");
BENCHMARK(BM_no_owner<1>)->Name("anatomy_pair/no_owner");
BENCHMARK(BM_pop_push<1>)->Name("anatomy_pair/pop_push");
BENCHMARK(BM_header<256>)->Name("anatomy_burst256/header");
BENCHMARK(BM_no_guard<256>)->Name("anatomy_burst256/no_guard");
BENCHMARK(BM_no_owner<256>)->Name("anatomy_burst256/no_owner");
BENCHMARK(BM_pop_push<256>)->Name("anatomy_burst256/pop_push");

// ---- Interleaved mode (see the top of the file).
// ns per block of `total` blocks through alloc/free in bursts of kBurst,
// each block touched once by touch_at(block, k) (-1: a fast path missed).
template <int kBurst, class A, class F, class T>
double slice_ns(A alloc, F free_, T touch_at, long total) {
  void *v[kBurst];
  static std::uint64_t k = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long done = 0; done < total; done += kBurst) {
    for (int j = 0; j < kBurst; ++j) {
      v[j] = alloc(g_pool);
      if (__builtin_expect(!v[j], 0)) return -1;
      touch_at(v[j], k++);
    }
    for (int j = 0; j < kBurst; ++j)
      if (__builtin_expect(!free_(g_pool, v[j]), 0)) return -1;
  }
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
         double(total);
}
// Call after the record describes g_pool: pop_push reads it here, once.
template <int kBurst>
std::vector<std::pair<const char *, std::function<double(long)>>> interleaved_variants() {
  auto hdr_a = [](labyrinth_pool *p) { return labyrinth_alloc_page_inline(p); };
  auto hdr_f = [](labyrinth_pool *p, void *pg) { return labyrinth_free_page_inline(p, pg) == LABYRINTH_OK; };
  auto ng_a = [](labyrinth_pool *p) { return alloc_no_guard(p); };
  auto ng_f = [](labyrinth_pool *p, void *pg) { return free_no_guard(p, pg); };
  auto no_a = [](labyrinth_pool *p) { return alloc_no_owner(p); };
  auto no_f = [](labyrinth_pool *p, void *pg) { return free_no_owner(p, pg); };
  const PopPush pp;
  auto pp_a = [pp](labyrinth_pool *) { return pp.pop(); };
  auto pp_f = [pp](labyrinth_pool *, void *pg) {
    pp.push(pg);
    return true;
  };
  return {
      {"header", [=](long n) { return slice_ns<kBurst>(hdr_a, hdr_f, touch, n); }},
      {"no_guard", [=](long n) { return slice_ns<kBurst>(ng_a, ng_f, touch, n); }},
      {"no_owner", [=](long n) { return slice_ns<kBurst>(no_a, no_f, touch, n); }},
      {"pop_push", [=](long n) { return slice_ns<kBurst>(pp_a, pp_f, touch, n); }},
  };
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Time each variant for `work` units a slice, in turn (the order rotating
// each round), `rounds` times; print medians and median fractions of the
// first variant's time in the same round.
int interleave(const char *label, std::vector<std::pair<const char *, std::function<double(long)>>> &variants,
               int rounds, long work) {
  const std::size_t nv = variants.size();
  std::vector<std::vector<double>> ns(nv), rel(nv);
  for (auto &v : variants) v.second(work);  // warm up
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> t(nv);
    for (std::size_t i = 0; i < nv; ++i) {
      const std::size_t j = (i + std::size_t(r)) % nv;
      t[j] = variants[j].second(work);
      if (t[j] < 0) {
        std::fprintf(stderr, "anatomy: %s: %s: the fast path missed\n", label, variants[j].first);
        return 1;
      }
    }
    for (std::size_t i = 0; i < nv; ++i) {
      ns[i].push_back(t[i]);
      rel[i].push_back(t[i] / t[0]);
    }
  }
  std::printf("%s, %d rounds, interleaved:\n", label, rounds);
  std::printf("  %-24s %10s %20s\n", "variant", "median ns", "median of / first");
  for (std::size_t i = 0; i < nv; ++i)
    std::printf("  %-24s %10.2f %20.3f\n", variants[i].first, median(ns[i]), median(rel[i]));
  return 0;
}

template <int kBurst>
int run_interleaved(const char *label, int rounds) {
  std::vector<void *> held(300);  // fill the cache beyond a burst
  for (auto &p : held) p = labyrinth_void_alloc_page_gfp_atomic_exclusive(g_pool);
  for (auto *p : held) labyrinth_free_pages(g_pool, p);
  if (labyrinth_thread_fast.pool != g_pool || labyrinth_thread_fast.cache->count < kBurst) {
    std::fprintf(stderr, "anatomy: the thread cache is not set up with %d pages\n", kBurst);
    return 1;
  }
  auto variants = interleaved_variants<kBurst>();
  return interleave(label, variants, rounds, 200000);
}

// ---- Interleaved, blocks of order `kOrder` through the order cache: the
// header's labyrinth_alloc_pages + labyrinth_free_pages_order against copies
// of its block fast path with one element left out each. Only "header" keeps
// the guarantees; the others measure what an element costs:
//   header_ptr      the header's pointer-returning block helper instead of
//                   labyrinth_alloc_pages' out parameter
//   block_copy      the header's block path, copied (the baseline for the rest)
//   block_no_hint   without the order_hint store at allocation
//   block_line_once the order's line of the order cache found once, not
//                   through the record's cache pointer on every call
//   block_neither   both left out
// Mode bits: 2 no hint, 4 the order's line given.
template <int kMode>
inline void *block_alloc(const labyrinth_pool *pool, unsigned order, labyrinth_order_slots *given) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__builtin_expect(__atomic_load_n(&f->pool, RELAXED) != pool, 0)) return nullptr;
  __atomic_store_n(&f->pool, LABYRINTH_FAST_BUSY_V1, RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  labyrinth_thread_cache *c = f->cache;
  labyrinth_order_slots *os = (kMode & 4) ? given : &c->orders[order - 1];
  const uint32_t n = os->count;
  void *block = nullptr;
  if (__builtin_expect(n != 0, 1)) {
    block = os->blocks[n - 1];
    os->count = n - 1;
    if (!(kMode & 2) && c->order_hint != order) c->order_hint = order;
    __atomic_store_n(&f->side_table[((uintptr_t)block - f->arena) >> 12], f->alloc_word | (uint64_t{order} << 4),
                     __ATOMIC_RELEASE);
  }
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&f->pool, pool, RELAXED);
  return block;
}
template <int kMode>
inline bool block_free(const labyrinth_pool *pool, void *page, unsigned order, labyrinth_order_slots *given) {
  labyrinth_fast_record *f = &labyrinth_thread_fast;
  if (__builtin_expect(__atomic_load_n(&f->pool, RELAXED) != pool, 0)) return false;
  const uintptr_t off = (uintptr_t)page - f->arena;
  if (__builtin_expect(((off >> 12) | (off << 52)) >= f->arena_pages, 0)) return false;
  __atomic_store_n(&f->pool, LABYRINTH_FAST_BUSY_V1, RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  uint64_t *word = &f->side_table[off >> 12];
  bool done = false;
  if (__builtin_expect(__atomic_load_n(word, RELAXED) == (f->alloc_word | (uint64_t{order} << 4)), 1)) {
    labyrinth_thread_cache *c = f->cache;
    labyrinth_order_slots *os = (kMode & 4) ? given : &c->orders[order - 1];
    const uint32_t n = os->count;
    if (__builtin_expect(n < os->limit && __atomic_load_n(&c->limit, RELAXED) != 0, 1)) {
      __atomic_store_n(word, LABYRINTH_SIDE_CACHED_V1 | (uint64_t{order} << 4), __ATOMIC_RELEASE);
      os->blocks[n] = page;
      os->count = n + 1;
      done = true;
    }
  }
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&f->pool, pool, RELAXED);
  return done;
}

template <unsigned kOrder>
int run_interleaved_blocks(int rounds) {
  for (int i = 0; i < 8; ++i) {  // put blocks of kOrder in the order cache
    void *b = nullptr;
    if (labyrinth_alloc_pages(g_pool, kOrder, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b) !=
            LABYRINTH_OK ||
        labyrinth_free_pages_order(g_pool, b, kOrder) != LABYRINTH_OK) {
      std::fprintf(stderr, "anatomy: order %u: %s\n", kOrder, labyrinth_last_error_message());
      return 1;
    }
  }
  labyrinth_order_slots *os = &labyrinth_thread_fast.cache->orders[kOrder - 1];
  // One page of the block, a different one each time, is touched.
  auto touch_block = [](void *b, std::uint64_t k) {
    touch(static_cast<char *>(b) + (((k * 7) & ((1u << kOrder) - 1)) << 12), k);
  };
  auto slice = [touch_block](auto alloc, auto free_) {
    return [=](long n) {
      return slice_ns<1>([alloc](labyrinth_pool *) { return alloc(); },
                         [free_](labyrinth_pool *, void *b) { return free_(b); }, touch_block, n);
    };
  };
  auto variant = [&](auto mode) {
    constexpr int m = decltype(mode)::value;
    return slice([os] { return block_alloc<m>(g_pool, kOrder, os); },
                 [os](void *b) { return block_free<m>(g_pool, b, kOrder, os); });
  };
  std::vector<std::pair<const char *, std::function<double(long)>>> variants = {
      {"header", slice(
                     [] {
                       void *b = nullptr;
                       return labyrinth_alloc_pages(g_pool, kOrder,
                                                    LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0,
                                                    &b) == LABYRINTH_OK
                                  ? b
                                  : nullptr;
                     },
                     [](void *b) { return labyrinth_free_pages_order(g_pool, b, kOrder) == LABYRINTH_OK; })},
      // The header's block fast path through its pointer-returning helper,
      // without labyrinth_alloc_pages' out parameter (which makes the
      // caller's variable live in memory: its address goes to the library
      // call of the slow path).
      {"header_ptr", slice(
                         [] {
                           void *b = labyrinth_fast_alloc_block_v1_(g_pool, kOrder, 1);
                           if (__builtin_expect(!b, 0) &&
                               labyrinth_alloc_pages(g_pool, kOrder,
                                                     LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0,
                                                     &b) != LABYRINTH_OK)
                             return static_cast<void *>(nullptr);
                           return b;
                         },
                         [](void *b) { return labyrinth_free_pages_order(g_pool, b, kOrder) == LABYRINTH_OK; })},
      {"block_copy", variant(std::integral_constant<int, 0>())},
      {"block_no_hint", variant(std::integral_constant<int, 2>())},
      {"block_line_once", variant(std::integral_constant<int, 4>())},
      {"block_neither", variant(std::integral_constant<int, 6>())},
  };
  char label[64];
  std::snprintf(label, sizeof label, "blocks of order %u (ns a pair)", kOrder);
  return interleave(label, variants, rounds, 200000);
}

int main(int argc, char **argv) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = std::size_t{64} << 20;
  if (labyrinth_pool_create(&o, &g_pool) != LABYRINTH_OK) {
    o.flags &= ~LABYRINTH_POOL_PIN_MASK;
    if (labyrinth_pool_create(&o, &g_pool) != LABYRINTH_OK) {
      std::fprintf(stderr, "pool: %s\n", labyrinth_last_error_message());
      return 3;
    }
  }
  if (argc >= 2 && std::string(argv[1]) == "--interleaved") {
    const int rounds = argc >= 3 ? std::atoi(argv[2]) : 200;
    int rc = run_interleaved<1>("pair (ns a pair)", rounds);
    if (rc == 0) rc = run_interleaved<256>("burst of 256 (ns a page)", rounds);
    if (rc == 0) rc = run_interleaved_blocks<2>(rounds);
    if (rc == 0) rc = run_interleaved_blocks<6>(rounds);
    return labyrinth_pool_destroy(g_pool) == LABYRINTH_OK ? rc : 4;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return labyrinth_pool_destroy(g_pool) == LABYRINTH_OK ? 0 : 4;
}
