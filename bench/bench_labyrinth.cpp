// bench_labyrinth.cpp - Labyrinth in every pattern of bench_patterns.hpp, two
// ways:
//   labyrinth       the flagship calls by name, as a C or C++ application
//                   writes them (labyrinth_void_alloc_page_gfp_atomic_exclusive
//                   + labyrinth_free_pages): the header compiles their common
//                   case inline and calls the shared library for the rest
//   labyrinth_call  the same exported functions called out of line, through
//                   the PLT of the shared library, as callers get them through
//                   dlsym, FFI (Rust, Python) or -DLABYRINTH_NO_INLINE_CALLS
// Ownership checks are included in both: every page is ATOMIC and EXCLUSIVE,
// and in the cross-thread pattern each page is transferred
// (labyrinth_page_transfer) to the freeing thread before it is passed on.
//
// Labyrinth-only patterns:
//   slow/<variant>         trim (thread cache and depot back to the
//                          buddy), then time 64 allocations: one refill from
//                          the buddy plus 63 cache hits; ns per page, and
//                          refills per iteration as a check; the counter
//                          median_ns_per_page is the median iteration (what
//                          the driver reports: robust to being preempted)
//   pool16MiB_pair, pool16GiB_pair, pool16MiB_burst256, pool16GiB_burst256
//                          the same loops on unpinned 16 MiB and 16 GiB pools
//   metadata/labyrinth_<size>   stats.metadata_bytes / stats.total_pages
//   tail/labyrinth_cache512/1024   the tail pattern on a pool whose thread
//                          caches hold at most 512 pages (thread_cache_pages
//                          = 512: a fixed high mark, where the default one
//                          rises to the bursts), so that every 64th
//                          allocation refills from the depot: what a
//                          refill costs, as p99.9
//   cross/labyrinth_batch256, tail/labyrinth_cache512_batch256/1024
//                          the cross pattern, and the cache512 tail, on pools
//                          with thread_cache_batch = 256 (refills and drains
//                          of 256 pages): what larger batches gain across
//                          CPUs and what they cost one allocation's worst case
//   order/labyrinth_unsized/<n>   order blocks freed with labyrinth_free_pages
//                          (the labyrinth rows free them with
//                          labyrinth_free_pages_order, saying the order)
#include <labyrinth/labyrinth.h>

#include "bench_patterns.hpp"

using namespace labbench;

namespace {

labyrinth_pool *g_pool;      // 128 MiB, default flags (pinned, huge pages asked)
labyrinth_pool *g_pool_16m;  // 16 MiB, unpinned
labyrinth_pool *g_pool_16g;  // 16 GiB, unpinned (MAP_NORESERVE: only touched pages cost)
labyrinth_pool *g_pool_cache512;  // 128 MiB like g_pool (pinned if it was), caches of 512 pages
// The same two pools with thread_cache_batch = 256 instead of 64: the
// trade-off the cross-thread target poses (see the rows below).
labyrinth_pool *g_pool_batch256, *g_pool_cache512_batch256;

template <labyrinth_pool **PP>
struct LabBase {
  static labyrinth_pool *pool() { return *PP; }
  static const char *thread_enter() { return nullptr; }
  static void thread_leave() {}
  LABBENCH_HOT static void *alloc_order(unsigned order) {
    void *p = nullptr;
    return labyrinth_alloc_pages(*PP, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0,
                                 &p) == LABYRINTH_OK
               ? p
               : nullptr;
  }
  // A block's caller knows its order, as with every peer here (DPDK needs the
  // pool of that size): the sized free. The labyrinth_unsized variant
  // measures labyrinth_free_pages, which reads the order from the side table.
  LABBENCH_HOT static bool free_order(void *p, unsigned order) {
    return labyrinth_free_pages_order(*PP, p, order) == LABYRINTH_OK;
  }
  static std::uint64_t receiver_token() { return labyrinth_owner_self(); }
  static bool hand_over(void *p, std::uint64_t to) {
    return labyrinth_page_transfer(*PP, p, to) == LABYRINTH_OK;
  }
  static const char *last_error() { return labyrinth_last_error_message(); }
};

#ifndef LABYRINTH_INLINE_CALLS
#error "this benchmark measures the flagship calls as labyrinth.h compiles them by default"
#endif

// The flagship calls by name.
template <labyrinth_pool **PP>
struct LabByName : LabBase<PP> {
  LABBENCH_HOT static void *alloc() { return labyrinth_void_alloc_page_gfp_atomic_exclusive(*PP); }
  LABBENCH_HOT static bool free(void *p) { return labyrinth_free_pages(*PP, p) == LABYRINTH_OK; }
};

// The exported functions, called out of line (labyrinth.h declares them
// under these second names, exported aliases of the same functions).
template <labyrinth_pool **PP>
struct LabCall : LabBase<PP> {
  LABBENCH_HOT static void *alloc() { return labyrinth_call_alloc_page_v1_(*PP); }
  LABBENCH_HOT static bool free(void *p) { return labyrinth_call_free_pages_v1_(*PP, p) == LABYRINTH_OK; }
};

// Order blocks freed without their order (labyrinth_free_pages).
template <labyrinth_pool **PP>
struct LabUnsized : LabByName<PP> {
  LABBENCH_HOT static bool free_order(void *p, unsigned) { return labyrinth_free_pages(*PP, p) == LABYRINTH_OK; }
};

bool read_stats(labyrinth_pool *pool, labyrinth_stats *s) {
  std::memset(s, 0, sizeof *s);
  s->struct_size = sizeof *s;
  return labyrinth_pool_stats(pool, s) == LABYRINTH_OK;
}

// Slow path: every iteration starts with an empty thread cache and an empty
// depot, so the first allocation refills a batch from the buddy.
template <class P>
void BM_slow(benchmark::State &st) {
  constexpr int kPages = 64;  // the default thread_cache_batch: one refill
  labyrinth_pool *pool = P::pool();
  void *v[kPages];
  std::uint64_t k = 0;
  labyrinth_stats before, after;
  if (!read_stats(pool, &before)) return st.SkipWithError(labyrinth_last_error_message());
  std::uint64_t iters = 0;
  std::vector<double> per_iter;  // seconds; the median resists preemption by other work
  for (auto _ : st) {
    if (labyrinth_pool_trim(pool) != LABYRINTH_OK) {
      st.SkipWithError(labyrinth_last_error_message());
      break;
    }
    auto t0 = std::chrono::steady_clock::now();
    int got = 0;
    for (; got < kPages; ++got) {
      void *p = P::alloc();
      if (!p) break;
      touch(p, k++);
      v[got] = p;
    }
    auto t1 = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    st.SetIterationTime(secs);
    per_iter.push_back(secs);
    for (int j = 0; j < got; ++j) P::free(v[j]);
    if (got < kPages) {
      fail<P>(st, "alloc");
      break;
    }
    ++iters;
  }
  if (read_stats(pool, &after) && iters)
    st.counters["refills_per_iter"] = double(after.refills - before.refills) / double(iters);
  if (!per_iter.empty()) {
    std::nth_element(per_iter.begin(), per_iter.begin() + per_iter.size() / 2, per_iter.end());
    st.counters["median_ns_per_page"] = per_iter[per_iter.size() / 2] * 1e9 / kPages;
  }
  st.counters["pages"] = kPages;
}

void BM_metadata(benchmark::State &st, labyrinth_pool **pp) {
  labyrinth_stats s;
  for (auto _ : st) {
    if (!read_stats(*pp, &s)) {
      st.SkipWithError(labyrinth_last_error_message());
      break;
    }
  }
  st.counters["bytes_per_page"] = s.total_pages ? double(s.metadata_bytes) / double(s.total_pages) : 0;
  st.counters["metadata_bytes"] = double(s.metadata_bytes);
  st.counters["total_pages"] = double(s.total_pages);
}

labyrinth_status make_pool(std::size_t bytes, std::uint32_t flags, labyrinth_pool **out,
                           std::uint32_t cache_pages = 0, std::uint32_t batch = 0) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  o.flags = flags;
  if (cache_pages) o.thread_cache_pages = cache_pages;
  if (batch) o.thread_cache_batch = batch;
  return labyrinth_pool_create(&o, out);
}

}  // namespace

int main(int argc, char **argv) {
  std::string pinned = "yes";
  if (make_pool(std::size_t{128} << 20, LABYRINTH_POOL_DEFAULT_FLAGS, &g_pool) != LABYRINTH_OK) {
    std::fprintf(stderr, "labbench labyrinth: a pinned 128 MiB pool failed (%s); using an unpinned one\n",
                 labyrinth_last_error_message());
    pinned = std::string("no (") + labyrinth_last_error_message() + ")";
    if (make_pool(std::size_t{128} << 20, LABYRINTH_POOL_DEFAULT_FLAGS & ~LABYRINTH_POOL_PIN_MASK,
                  &g_pool) != LABYRINTH_OK) {
      std::fprintf(stderr, "labbench labyrinth: pool creation failed: %s\n",
                   labyrinth_last_error_message());
      return 3;
    }
  }
  const std::uint32_t unpinned = LABYRINTH_POOL_DEFAULT_FLAGS & ~LABYRINTH_POOL_PIN_MASK;
  if (make_pool(std::size_t{16} << 20, unpinned, &g_pool_16m) != LABYRINTH_OK ||
      make_pool(std::size_t{16} << 30, unpinned, &g_pool_16g) != LABYRINTH_OK ||
      make_pool(std::size_t{128} << 20, pinned == "yes" ? LABYRINTH_POOL_DEFAULT_FLAGS : unpinned,
                &g_pool_cache512, 512) != LABYRINTH_OK ||
      make_pool(std::size_t{128} << 20, pinned == "yes" ? LABYRINTH_POOL_DEFAULT_FLAGS : unpinned,
                &g_pool_batch256, 0, 256) != LABYRINTH_OK ||
      make_pool(std::size_t{128} << 20, pinned == "yes" ? LABYRINTH_POOL_DEFAULT_FLAGS : unpinned,
                &g_pool_cache512_batch256, 512, 256) != LABYRINTH_OK) {
    std::fprintf(stderr, "labbench labyrinth: pool creation failed: %s\n",
                 labyrinth_last_error_message());
    return 3;
  }
  labyrinth_stats s;
  read_stats(g_pool, &s);
  benchmark::AddCustomContext("labbench_labyrinth_pool", "128 MiB, pinned: " + pinned +
                                                             ", huge pages: " +
                                                             (s.huge_pages ? "yes" : "no"));
  benchmark::AddCustomContext("labbench_labyrinth_abi", std::to_string(labyrinth_abi_version()));

  register_patterns<LabCall<&g_pool>>("labyrinth_call", Patterns{true, true, false, true, true});
  register_patterns<LabByName<&g_pool>>("labyrinth", Patterns{true, true, true, true, true});
  register_patterns<LabUnsized<&g_pool>>("labyrinth_unsized", Patterns{false, false, true, false, false});
  benchmark::RegisterBenchmark("slow/labyrinth_call", BM_slow<LabCall<&g_pool>>)->UseManualTime();
  benchmark::RegisterBenchmark("slow/labyrinth", BM_slow<LabByName<&g_pool>>)->UseManualTime();
  const Patterns pair_burst{true, true, false, false, false};
  register_patterns<LabCall<&g_pool_16m>>("labyrinth_call", pair_burst, "pool16MiB_");
  register_patterns<LabByName<&g_pool_16m>>("labyrinth", pair_burst, "pool16MiB_");
  register_patterns<LabCall<&g_pool_16g>>("labyrinth_call", pair_burst, "pool16GiB_");
  register_patterns<LabByName<&g_pool_16g>>("labyrinth", pair_burst, "pool16GiB_");
  // Bursts of 1024 fit in a default thread cache once its high mark has
  // risen; in one of 512 pages at most, every 64th allocation refills.
  benchmark::RegisterBenchmark("tail/labyrinth_cache512", BM_tail<LabByName<&g_pool_cache512>>,
                               std::string("tail/labyrinth_cache512/1024"))
      ->Arg(1024);
  // Refills and drains of 256 pages instead of 64: a cross-thread stream
  // pays the refill's cross-CPU misses once per 256 pages, and one
  // allocation in 256 waits for the longer refill (its tail row).
  benchmark::RegisterBenchmark("cross/labyrinth_batch256", BM_cross<LabByName<&g_pool_batch256>>)->UseRealTime();
  benchmark::RegisterBenchmark("tail/labyrinth_cache512_batch256", BM_tail<LabByName<&g_pool_cache512_batch256>>,
                               std::string("tail/labyrinth_cache512_batch256/1024"))
      ->Arg(1024);
  benchmark::RegisterBenchmark("metadata/labyrinth_16MiB", BM_metadata, &g_pool_16m);
  benchmark::RegisterBenchmark("metadata/labyrinth_128MiB", BM_metadata, &g_pool);
  benchmark::RegisterBenchmark("metadata/labyrinth_16GiB", BM_metadata, &g_pool_16g);

  int rc = run_main(argc, argv, "labyrinth");
  for (labyrinth_pool *p :
       {g_pool, g_pool_16m, g_pool_16g, g_pool_cache512, g_pool_batch256, g_pool_cache512_batch256}) {
    if (labyrinth_pool_destroy(p) != LABYRINTH_OK) {
      std::fprintf(stderr, "labbench labyrinth: destroy: %s\n", labyrinth_last_error_message());
      rc = rc ? rc : 4;
    }
  }
  return rc;
}
