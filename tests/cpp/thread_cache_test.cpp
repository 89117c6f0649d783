// Per-thread caches: refill and drain in batches, the high mark, the
// remote-free path, thread exit, and threads beyond the cache limit.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "test_util.hpp"

using namespace labtest;

TEST(ThreadCache, RefillsAndDrainsInBatches) {
  labyrinth_pool_options o = options(16u << 20);
  o.thread_cache_pages = 128;
  o.thread_cache_batch = 32;
  PoolGuard p(o);
  void *first = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(first, nullptr);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.refills, 1u);
  EXPECT_EQ(s.cached_pages, 31u);  // one batch of 32, one handed out
  EXPECT_EQ(s.thread_caches_in_use, 1u);
  ASSERT_EQ(labyrinth_free_pages(p, first), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 32u);
  // The same page comes back first (LIFO keeps caches warm).
  void *again = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  EXPECT_EQ(again, first);
  ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);

  // Past the high mark a batch drains to the shared list.
  std::vector<void *> pages;
  for (int i = 0; i < 200; ++i) pages.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  s = stats(p);
  EXPECT_LE(s.cached_pages, 128u);
  EXPECT_GE(s.drains, 1u);
  EXPECT_GT(s.shared_free_pages, 0u);
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  s = stats(p);
  EXPECT_EQ(s.cached_pages, 0u);
  EXPECT_EQ(s.shared_free_pages, 0u);
  expect_maximal(p, o);
}

TEST(ThreadCache, ThreadExitReturnsItsCache) {
  labyrinth_pool_options o = options(16u << 20);
  PoolGuard p(o);
  std::thread t([&] {
    std::vector<void *> pages;
    for (int i = 0; i < 100; ++i) pages.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    EXPECT_GT(stats(p).cached_pages, 0u);
    EXPECT_EQ(stats(p).thread_caches_in_use, 1u);
  });
  t.join();
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 0u);
  EXPECT_EQ(s.thread_caches_in_use, 0u);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
}

TEST(ThreadCache, RemoteFreeGoesBackWithoutLoss) {
  // One thread allocates and transfers, another frees: pages flow back to the
  // allocator through the lock-free shared list.
  labyrinth_pool_options o = options(4u << 20);
  o.thread_cache_pages = 64;
  o.thread_cache_batch = 16;
  PoolGuard p(o);
  labyrinth_owner consumer_id = 0;
  std::vector<void *> handoff;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread consumer([&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      consumer_id = labyrinth_owner_self();
    }
    cv.notify_all();
    std::size_t freed = 0;
    for (;;) {
      std::vector<void *> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done || !handoff.empty(); });
        batch.swap(handoff);
        if (batch.empty() && done) break;
      }
      for (void *pg : batch) {
        ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK) << last_message();
        ++freed;
      }
    }
    EXPECT_EQ(freed, 20000u);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return consumer_id != 0; });
  }
  // 20000 pages through a 1024-page pool: only possible if remote frees come back.
  for (int i = 0; i < 20000; ++i) {
    void *pg = nullptr;
    while (!(pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p))) std::this_thread::yield();
    std::memcpy(pg, &i, sizeof i);
    ASSERT_EQ(labyrinth_page_transfer(p, pg, consumer_id), LABYRINTH_OK) << last_message();
    // After the transfer we are not the owner any more.
    EXPECT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_ERR_NOT_OWNER);
    {
      std::lock_guard<std::mutex> lock(mu);
      handoff.push_back(pg);
    }
    cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  consumer.join();
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST(ThreadCache, ThreadsBeyondTheLimitUseTheSharedPath) {
  labyrinth_pool_options o = options(4u << 20);
  o.max_thread_caches = 1;
  PoolGuard p(o);
  void *mine = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);  // we take the only cache
  ASSERT_NE(mine, nullptr);
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      std::memset(pg, 1, 4096);
      ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    }
    EXPECT_EQ(stats(p).thread_caches_in_use, 1u);
  });
  t.join();
  ASSERT_EQ(labyrinth_free_pages(p, mine), LABYRINTH_OK);
  expect_accounting(stats(p));
}

TEST(ThreadCache, PoolWithoutCachesStillWorks) {
  labyrinth_pool_options o = options(1u << 20);
  o.max_thread_caches = 0;
  PoolGuard p(o);
  std::vector<void *> pages;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) pages.push_back(pg);
  EXPECT_EQ(pages.size(), 256u);
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}
