// Regressions: each test here failed on the core as it first landed on main,
// and names the bug it pins down. Found by fuzz/fuzz_pool.cpp or by review.
#include <atomic>
#include <thread>

#include "pool.hpp"
#include "zones_lock.hpp"
#include "test_util.hpp"

using namespace labtest;

// Bug 1 (fuzz_pool, UBSan "constructor call on misaligned address"): thread
// caches were laid out at a stride of 64 + 8 * thread_cache_pages bytes, so
// for capacities that are not a multiple of 8 every cache but the first was
// misaligned for its alignas(64) type (undefined behaviour) and shared cache
// lines with its neighbours (false sharing between threads).
TEST(Regression, ThreadCachesAreCacheLineAlignedForEveryCapacity) {
  for (std::uint32_t cap : {1u, 3u, 7u, 9u, 63u, 64u, 511u}) {
    labyrinth_pool_options o = options(1u << 20);
    o.max_thread_caches = 4;
    o.thread_cache_pages = cap;
    o.thread_cache_batch = 1;
    PoolGuard p(o);
    ASSERT_NE(p.pool, nullptr);
    const lab::Pool *pool = lab::from_handle(p.pool);
    for (std::uint32_t i = 0; i < o.max_thread_caches; ++i) {
      auto addr = reinterpret_cast<std::uintptr_t>(pool->cache_at(i));
      EXPECT_EQ(addr % 64, 0u) << "capacity " << cap << ", cache " << i;
    }
    // And they work: a page through the cache of a second thread.
    std::thread([&] {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr);
      ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
      ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
    }).join();
    EXPECT_EQ(stats(p).allocated_pages, 0u);
  }
}

// Bug 2 (fuzz_pool, "orphaned 0, model 2"): a thread's exit was recorded
// only if it had claimed a thread cache, so the exclusive pages of a thread
// that exited were never orphans (not counted, never reclaimable: lost
// until the pool is destroyed) when it used a pool without thread caches, a
// GUARD pool, or only received pages by transfer.
namespace {
void expect_orphan_reclaimed(labyrinth_pool *p, std::size_t blocks, std::size_t pages) {
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.orphaned_pages, pages);
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  EXPECT_EQ(n, blocks);
  s = stats(p);
  EXPECT_EQ(s.orphaned_pages, 0u);
  EXPECT_EQ(s.allocated_pages, 0u);
}
}  // namespace

TEST(Regression, ThreadExitOrphansItsPagesInAPoolWithoutThreadCaches) {
  labyrinth_pool_options o = options(1u << 20);
  o.max_thread_caches = 0;
  PoolGuard p(o);
  std::thread([&] {
    void *a = labyrinth_void_alloc_page_gfp_atomic_exclusive(p), *b = nullptr;
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(labyrinth_alloc_pages(p, 2, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
  }).join();
  expect_orphan_reclaimed(p, 2, 1 + 4);
}

TEST(Regression, ThreadExitOrphansItsPagesInAGuardPool) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_GUARD;
  PoolGuard p(o);
  std::thread([&] { ASSERT_NE(labyrinth_void_alloc_page_gfp_atomic_exclusive(p), nullptr); }).join();
  expect_orphan_reclaimed(p, 1, 1);
}

TEST(Regression, AThreadThatOnlyReceivedPagesLeavesOrphans) {
  PoolGuard p(1u << 20);
  std::atomic<labyrinth_owner> id{0};
  std::atomic<bool> go{false};
  std::thread receiver([&] {
    id = labyrinth_owner_self();  // publishes its id; never calls the pool
    while (!go) std::this_thread::yield();
  });
  while (!id) std::this_thread::yield();
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(pg, nullptr);
  ASSERT_EQ(labyrinth_page_transfer(p, pg, id), LABYRINTH_OK);
  go = true;
  receiver.join();
  expect_orphan_reclaimed(p, 1, 1);
}

// Bug 3 (fuzz_pool, "order-0 allocation refused with 54 free pages above the
// min watermark 0, 54 of them in the shared list"): a thread-cache refill for
// a non-ATOMIC caller skipped the depot whenever fewer than a
// batch of pages were free above the min watermark, so with the buddy empty
// and pages sitting in the depot (freed under pressure) every
// non-ATOMIC order-0 allocation failed with NOMEM although pages were free.
TEST(Regression, NonAtomicAllocationTakesPagesFromTheDepot) {
  labyrinth_pool_options o = options(1u << 20);  // 256 pages
  o.atomic_reserve_pages = 0;
  o.thread_cache_batch = 64;
  PoolGuard p(o);
  std::vector<void *> pages;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) pages.push_back(pg);
  ASSERT_EQ(pages.size(), 256u);
  for (int i = 0; i < 10; ++i) {  // under pressure: to the depot
    ASSERT_EQ(labyrinth_free_pages(p, pages.back()), LABYRINTH_OK);
    pages.pop_back();
  }
  labyrinth_stats s = stats(p);
  ASSERT_EQ(s.shared_free_pages, 10u);
  ASSERT_EQ(s.free_pages, 10u);
  for (int i = 0; i < 10; ++i) {
    void *pg = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &pg), LABYRINTH_OK)
        << "page " << i << ": " << last_message();
    pages.push_back(pg);
  }
  void *pg = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(p, 0, 0, 0, &pg), LABYRINTH_ERR_NOMEM);  // now truly empty
  for (void *q : pages) ASSERT_EQ(labyrinth_free_pages(p, q), LABYRINTH_OK);
}

// The same with a min watermark: non-ATOMIC callers get exactly the pages
// above it from the depot, not one more.
TEST(Regression, NonAtomicAllocationFromTheDepotStopsAtTheMinWatermark) {
  labyrinth_pool_options o = options(1u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_min_pages = 4;
  o.thread_cache_batch = 64;
  PoolGuard p(o);
  std::vector<void *> pages;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) pages.push_back(pg);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(labyrinth_free_pages(p, pages.back()), LABYRINTH_OK);
    pages.pop_back();
  }
  int got = 0;
  for (void *pg = nullptr; labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &pg) == LABYRINTH_OK; ++got)
    pages.push_back(pg);
  EXPECT_EQ(got, 6);
  EXPECT_EQ(stats(p).free_pages, 4u);
  for (void *q : pages) ASSERT_EQ(labyrinth_free_pages(p, q), LABYRINTH_OK);
}

// An ATOMIC allocation of order > 0 that finds every zone's mutex held fails
// at once (it never waits), and its NOMEM message says that was why, not only
// how many pages are free (a researcher saw such failures with pages free).
TEST(Regression, AtomicNomemSaysWhenEveryZoneMutexWasBusy) {
  PoolGuard p(16u << 20);
  lab::Pool *pool = lab::from_handle(p.pool);
  void *b = nullptr;
  {
    labtest::ZonesLock hold(pool);  // every zone's mutex
    std::thread([&] {
      EXPECT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b),
                LABYRINTH_ERR_NOMEM);
      EXPECT_NE(last_message().find("mutex of a zone with free blocks was busy"), std::string::npos) << last_message();
    }).join();
  }
  EXPECT_EQ(b, nullptr);
  ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b),
            LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  // With the mutex free, a real shortage does not mention it.
  labyrinth_pool_options o = options(1u << 20);
  o.atomic_reserve_pages = 0;
  PoolGuard small(o);
  void *big = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(small, 8, LABYRINTH_GFP_ATOMIC, 0, &big), LABYRINTH_OK);
  void *more = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(small, 8, LABYRINTH_GFP_ATOMIC, 0, &more), LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(last_message().find("mutex"), std::string::npos) << last_message();
  ASSERT_EQ(labyrinth_free_pages(small, big), LABYRINTH_OK);
}
