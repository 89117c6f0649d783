// WAIT allocations: they sleep until pages come back, in arrival order, and
// honour their timeout. Timing bounds are loose on purpose (shared machine).
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "test_util.hpp"

using namespace labtest;
using namespace std::chrono;

namespace {
// A pool whose pages are all allocated; returns them.
std::vector<void *> exhaust(labyrinth_pool *p) {
  std::vector<void *> got;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) got.push_back(pg);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_NOMEM);
  return got;
}
void wait_until(const std::function<bool()> &cond) {
  auto end = steady_clock::now() + seconds(20);
  while (!cond() && steady_clock::now() < end) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(cond());
}
}  // namespace

TEST(Wait, SleepsUntilAPageIsFreed) {
  PoolGuard p(1u << 20);
  auto pages = exhaust(p);
  std::atomic<void *> got{nullptr};
  std::thread waiter([&] {
    void *pg = nullptr;
    EXPECT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_WAIT | LABYRINTH_GFP_EXCLUSIVE, 30000, &pg),
              LABYRINTH_OK)
        << last_message();
    got = pg;
  });
  wait_until([&] { return stats(p).waits == 1; });
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(got.load(), nullptr);  // still waiting
  // Returned pages refill the atomic reserve first (only ATOMIC callers may
  // use it); the waiter gets the first page beyond it.
  const std::size_t reserve = stats(p).reserve_target;
  for (std::size_t i = 0; i <= reserve; ++i) {
    ASSERT_EQ(labyrinth_free_pages(p, pages.back()), LABYRINTH_OK);
    pages.pop_back();
  }
  waiter.join();
  EXPECT_NE(got.load(), nullptr);
  EXPECT_EQ(stats(p).reserve_pages, reserve);
  for (void *pg : pages)
    if (pg) {
      ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    }
  // The waiter's thread exited owning its page: reclaim it.
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 1u);
}

TEST(Wait, TimesOut) {
  PoolGuard p(1u << 20);
  auto pages = exhaust(p);
  void *pg = reinterpret_cast<void *>(0x1);
  auto t0 = steady_clock::now();
  EXPECT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_WAIT, 50, &pg), LABYRINTH_ERR_TIMEOUT);
  auto waited = duration_cast<milliseconds>(steady_clock::now() - t0).count();
  EXPECT_GE(waited, 45);
  EXPECT_LT(waited, 5000);  // loose: the bound we promise is timeout + scheduling delay
  EXPECT_EQ(pg, reinterpret_cast<void *>(0x1));
  EXPECT_NE(last_message().find("within 50 ms"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_WAIT, 0, &pg), LABYRINTH_ERR_TIMEOUT);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.timeouts, 2u);
  EXPECT_EQ(s.failures[LABYRINTH_ERR_TIMEOUT], 2u);
  for (void *q : pages) ASSERT_EQ(labyrinth_free_pages(p, q), LABYRINTH_OK);
}

TEST(Wait, WaitersAreServedInArrivalOrder) {
  PoolGuard p(1u << 20);
  auto pages = exhaust(p);
  const int kWaiters = 4;
  std::vector<int> served;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      void *pg = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_WAIT, 60000, &pg), LABYRINTH_OK);
      {
        std::lock_guard<std::mutex> lock(mu);
        served.push_back(i);
      }
      ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);  // non-exclusive: anyone may free
    });
    // Make arrival order certain before starting the next waiter.
    wait_until([&] { return stats(p).waits == static_cast<uint64_t>(i + 1); });
  }
  // Refill the reserve, then free one page more: it travels through all
  // waiters in order (each frees it for the next).
  for (std::size_t i = 0; i <= stats(p).reserve_target; ++i) {
    ASSERT_EQ(labyrinth_free_pages(p, pages.back()), LABYRINTH_OK);
    pages.pop_back();
  }
  for (auto &t : threads) t.join();
  EXPECT_EQ(served, (std::vector<int>{0, 1, 2, 3}));
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

TEST(Wait, LargeBlocksWaitToo) {
  labyrinth_pool_options o = options(4u << 20);
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  void *big = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 10, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK);
  std::thread waiter([&] {
    void *b = nullptr;
    EXPECT_EQ(labyrinth_alloc_pages(p, 9, LABYRINTH_GFP_WAIT, 30000, &b), LABYRINTH_OK) << last_message();
    EXPECT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  });
  wait_until([&] { return stats(p).waits == 1; });
  ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  waiter.join();
}
