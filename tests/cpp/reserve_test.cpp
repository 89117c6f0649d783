// Watermarks and the atomic reserve: only ATOMIC callers dip below min and
// into the reserve; every reserve use is counted; pressure bypasses caches.
#include <algorithm>
#include <random>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace labtest;

namespace {
std::vector<void *> drain(labyrinth_pool *p, labyrinth_gfp gfp) {
  std::vector<void *> got;
  for (;;) {
    void *pg = nullptr;
    if (labyrinth_alloc_pages(p, 0, gfp, 0, &pg) != LABYRINTH_OK) break;
    got.push_back(pg);
  }
  return got;
}
}  // namespace

TEST(Reserve, OnlyAtomicCallersReachMinAndTheReserve) {
  labyrinth_pool_options o = options(4u << 20);  // 1024 pages
  o.atomic_reserve_pages = 32;
  o.watermark_min_pages = 64;
  o.watermark_low_pages = 100;
  o.watermark_high_pages = 200;
  PoolGuard p(o);
  auto normal = drain(p, LABYRINTH_GFP_EXCLUSIVE);
  EXPECT_EQ(normal.size(), 1024u - 32 - 64);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_NOMEM);
  EXPECT_NE(last_message().find("min watermark 64"), std::string::npos) << last_message();
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.reserve_uses, 0u);
  EXPECT_GE(s.pressure_events, 1u);

  auto atomic = drain(p, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);
  EXPECT_EQ(atomic.size(), 64u + 32);
  s = stats(p);
  EXPECT_EQ(s.reserve_uses, 32u);
  EXPECT_EQ(s.reserve_pages, 0u);
  EXPECT_EQ(s.allocated_pages, 1024u);
  EXPECT_GE(s.failures[LABYRINTH_ERR_NOMEM], 2u);

  // The flagship fails at once with NOMEM when everything is gone.
  EXPECT_EQ(labyrinth_void_alloc_page_gfp_atomic_exclusive(p), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_NOMEM);

  for (void *pg : normal) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  for (void *pg : atomic) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  s = stats(p);
  EXPECT_EQ(s.reserve_pages, 32u);  // refilled first as pages came back
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Trim renews the reserve: after pages came back in any order (the reserve
// refilled from scattered frees), a trimmed pool is block for block a fresh
// one, whatever the reserve's size (a power of two, not one, larger than the
// largest block) and the pool's (a power of two, or with small blocks at its
// end, which a fresh pool does not take its reserve from: Hypothesis found a
// 17-page pool with a reserve of 3 where trim did).
TEST(Reserve, TrimRenewsTheReserveAsAFreshPoolHasIt) {
  for (std::size_t pool_pages : {4096u, 17u, 1027u, 3000u}) {
    for (std::size_t reserve : {0u, 1u, 3u, 32u, 100u, 256u, 300u, 1024u, 1500u}) {
      if (reserve > pool_pages / 2) continue;
      SCOPED_TRACE("pool " + std::to_string(pool_pages) + " pages, reserve " + std::to_string(reserve));
      labyrinth_pool_options o = options(pool_pages * 4096);
      o.atomic_reserve_pages = reserve;
      PoolGuard p(o);
      auto pages = drain(p, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);
      ASSERT_EQ(pages.size(), pool_pages);
      std::shuffle(pages.begin(), pages.end(), std::mt19937(7));
      for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
      EXPECT_EQ(stats(p).reserve_pages, reserve);
      ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
      expect_maximal(p, o);
      expect_accounting(stats(p));
      ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);  // and again, from a fresh pool's state
      expect_maximal(p, o);
    }
  }
}

// With no free block as large as the reserve (every other page held), trim
// still renews it, page by page: full again, nothing lost.
TEST(Reserve, TrimRenewsTheReserveWithoutALargeBlock) {
  labyrinth_pool_options o = options(4u << 20);  // 1024 pages
  o.atomic_reserve_pages = 32;
  PoolGuard p(o);
  auto pages = drain(p, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);
  ASSERT_EQ(pages.size(), 1024u);
  std::sort(pages.begin(), pages.end());
  std::vector<void *> held;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (i % 2) held.push_back(pages[i]);
    else ASSERT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
  }
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.reserve_pages, 32u);
  EXPECT_EQ(s.free_blocks[1], 0u);  // no two free neighbours: only single pages
  EXPECT_EQ(s.free_pages, 512u - 32);
  expect_accounting(s);
  for (void *pg : held) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// A refill from the buddy allocator tops up a reserve that ATOMIC callers
// spent: before, only order-0 frees refilled it, and a thread that only
// allocated left it empty for good.
TEST(Reserve, ARefillFromTheBuddyTopsUpASpentReserve) {
  labyrinth_pool_options o = options(4u << 20);  // 1024 pages
  o.atomic_reserve_pages = 32;
  PoolGuard p(o);
  std::vector<void *> blocks;
  for (int i = 0; i < 120; ++i) {  // 960 pages as blocks of 8
    void *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK) << last_message();
    blocks.push_back(b);
  }
  auto atomic = drain(p, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);  // the rest and the reserve
  ASSERT_EQ(stats(p).reserve_pages, 0u) << "setup";
  for (void *b : blocks) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);  // to the buddy: no order-0 free
  ASSERT_EQ(stats(p).reserve_pages, 0u) << "setup";
  std::thread([&] {  // a thread with an empty cache refills from the buddy
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr);
    EXPECT_EQ(stats(p).reserve_pages, 32u);
    expect_accounting(stats(p));
    ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
  for (void *pg : atomic) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST(Reserve, HigherOrdersRespectTheMinWatermark) {
  labyrinth_pool_options o = options(4u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_min_pages = 512;
  o.watermark_low_pages = 512;
  o.watermark_high_pages = 512;
  PoolGuard p(o);
  void *a = nullptr, *b = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 9, 0, 0, &a), LABYRINTH_OK);       // 512 left
  EXPECT_EQ(labyrinth_alloc_pages(p, 9, 0, 0, &b), LABYRINTH_ERR_NOMEM);  // would go below min
  EXPECT_EQ(b, nullptr);
  ASSERT_EQ(labyrinth_alloc_pages(p, 9, LABYRINTH_GFP_ATOMIC, 0, &b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, a), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
}

TEST(Reserve, PressureSendsFreesPastTheCache) {
  labyrinth_pool_options o = options(4u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_low_pages = 900;
  o.watermark_high_pages = 1000;
  PoolGuard p(o);
  auto pages = drain(p, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);
  ASSERT_EQ(pages.size(), 1024u);
  EXPECT_GE(stats(p).pressure_events, 1u);
  // Under pressure freed pages become visible to everyone at once.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 0u);
  EXPECT_EQ(s.free_pages, 10u);
  for (std::size_t i = 10; i < pages.size(); ++i) ASSERT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST(Zero, ZeroFlagAndScrubPoolsNeverLeakOldData) {
  {
    PoolGuard p(options(1u << 20));
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    std::memset(pg, 0xEE, 4096);
    ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    void *z = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_ZERO | LABYRINTH_GFP_EXCLUSIVE, 0, &z), LABYRINTH_OK);
    EXPECT_EQ(z, pg);  // the same page, from the cache
    for (int i = 0; i < 4096; ++i) ASSERT_EQ(static_cast<unsigned char *>(z)[i], 0) << i;
    ASSERT_EQ(labyrinth_free_pages(p, z), LABYRINTH_OK);
  }
  {
    labyrinth_pool_options o = options(1u << 20);
    o.flags |= LABYRINTH_POOL_SCRUB;
    PoolGuard p(o);
    for (unsigned order : {0u, 3u}) {
      void *pg = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &pg), LABYRINTH_OK);
      std::memset(pg, 0xEE, 4096u << order);
      ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
      // Take every block of this order: the dirty one is among them, and all are zero.
      std::vector<void *> all;
      bool saw_it = false;
      for (void *b = nullptr; labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &b) == LABYRINTH_OK;) {
        all.push_back(b);
        saw_it |= b == pg;
        for (std::size_t i = 0; i < (4096u << order); ++i)
          ASSERT_EQ(static_cast<unsigned char *>(b)[i], 0) << i;
      }
      EXPECT_TRUE(saw_it);
      for (void *b : all) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    }
  }
}
