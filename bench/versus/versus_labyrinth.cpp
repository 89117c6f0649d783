// versus_labyrinth.cpp - Labyrinth's side of labyrinth_bench_versus: a
// 128 MiB pool with the default flags, as the bench's; with
// LABYRINTH_VERSUS_POOL_MIB set, an unpinned pool of that many MiB (the order
// cache's budget is 1/32 of the pool, or one order-10 block from 64 MiB:
// blocks larger than that take the buddy allocator's path every time).
#include <labyrinth/labyrinth.h>

#include <cstdio>
#include <cstdlib>

#include "bench_patterns.hpp"
#include "versus/versus.hpp"

namespace versus {
namespace {
labyrinth_pool *g_pool;
}

bool lab_setup() {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = std::size_t{128} << 20;
  if (const char *mib = std::getenv("LABYRINTH_VERSUS_POOL_MIB")) {
    o.size_bytes = std::size_t(std::strtoul(mib, nullptr, 10)) << 20;
    o.flags &= ~LABYRINTH_POOL_PIN;
  }
  if (labyrinth_pool_create(&o, &g_pool) == LABYRINTH_OK) return true;
  o.flags &= ~LABYRINTH_POOL_PIN_MASK;  // RLIMIT_MEMLOCK
  if (labyrinth_pool_create(&o, &g_pool) == LABYRINTH_OK) return true;
  std::fprintf(stderr, "versus: pool: %s\n", labyrinth_last_error_message());
  return false;
}

namespace {
// The bench's pair and burst loops on `pool` (the flagship by name).
bool pair_on(labyrinth_pool *pool, long n) {
  for (long i = 0; i < n; ++i) {
    void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    if (__builtin_expect(!p, 0)) return false;
    labbench::touch(p, std::uint64_t(i));
    if (__builtin_expect(labyrinth_free_pages(pool, p) != LABYRINTH_OK, 0)) return false;
  }
  return true;
}

bool burst_on(labyrinth_pool *pool, long n) {
  void *v[labbench::kBurst];
  for (long i = 0; i < n; ++i) {
    for (int j = 0; j < labbench::kBurst; ++j) {
      v[j] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      if (__builtin_expect(!v[j], 0)) return false;
      labbench::touch(v[j], std::uint64_t(j));
    }
    for (int j = 0; j < labbench::kBurst; ++j)
      if (__builtin_expect(labyrinth_free_pages(pool, v[j]) != LABYRINTH_OK, 0)) return false;
  }
  return true;
}
}  // namespace

bool lab_pair(long n) { return pair_on(g_pool, n); }
bool lab_burst(long n) { return burst_on(g_pool, n); }

bool lab_order(unsigned order, long n) {
  const std::size_t bytes = std::size_t{4096} << order;
  for (long i = 0; i < n; ++i) {
    void *p = nullptr;
    if (__builtin_expect(labyrinth_alloc_pages(g_pool, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE,
                                               0, &p) != LABYRINTH_OK, 0))
      return false;
    labbench::touch_block(p, bytes, std::uint64_t(i));
    if (__builtin_expect(labyrinth_free_pages_order(g_pool, p, order) != LABYRINTH_OK, 0)) return false;
  }
  return true;
}

namespace {
labyrinth_pool *g_sized[2];  // unpinned 16 MiB and 16 GiB pools (lab_sizes_setup)
}

bool lab_sizes_setup() {
  for (int i = 0; i < 2; ++i) {
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    o.size_bytes = i == 0 ? std::size_t{16} << 20 : std::size_t{16} << 30;
    o.flags &= ~LABYRINTH_POOL_PIN_MASK;  // as the bench's size/ rows: only touched pages cost
    if (labyrinth_pool_create(&o, &g_sized[i]) != LABYRINTH_OK) {
      std::fprintf(stderr, "versus: %s pool: %s\n", i == 0 ? "16 MiB" : "16 GiB",
                   labyrinth_last_error_message());
      return false;
    }
  }
  return true;
}

bool lab_sized_pair(int big, long n) { return pair_on(g_sized[big], n); }
bool lab_sized_burst(int big, long n) { return burst_on(g_sized[big], n); }

std::uint64_t lab_owner() { return labyrinth_owner_self(); }

bool lab_cross_alloc(labbench::SpscRing *ring, std::uint64_t to, long n) {
  for (long i = 0; i < n; ++i) {
    void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(g_pool);
    if (__builtin_expect(!p, 0)) return false;
    labbench::touch(p, std::uint64_t(i));
    if (__builtin_expect(labyrinth_page_transfer(g_pool, p, to) != LABYRINTH_OK, 0)) return false;
    ring->push(p);
  }
  ring->flush();
  return true;
}

bool lab_cross_free(labbench::SpscRing *ring, long n) {
  bool ok = true;
  for (long i = 0; i < n; ++i) {
    void *p;
    while ((p = ring->pop()) == nullptr) labbench::cpu_relax();
    ok &= labyrinth_free_pages(g_pool, p) == LABYRINTH_OK;
  }
  return ok;
}

}  // namespace versus
