// Zones (pool.hpp): a pool of 8 MiB or more is split, at multiples of 4 MiB,
// into 2 to 4 buddy allocators with a mutex each. A free block is exactly
// what one buddy allocator over the whole arena would have; a thread that
// holds one zone's mutex (preempted in the middle of a refill, a free or a
// trim) keeps nobody out of the others; and no call ever holds two zones'
// mutexes, so one preempted thread can block one zone at most.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "pool.hpp"
#include "test_util.hpp"

using namespace labtest;

namespace {

// The free blocks of one buddy allocator over [0, npages): the largest
// aligned blocks, from the start.
std::vector<std::uint64_t> one_buddy_blocks(std::size_t npages) {
  std::vector<std::uint64_t> count(LABYRINTH_MAX_ORDER + 1, 0);
  for (std::size_t i = 0; i < npages;) {
    unsigned o = LABYRINTH_MAX_ORDER;
    while (o > 0 && ((i & ((std::size_t{1} << o) - 1)) != 0 || i + (std::size_t{1} << o) > npages)) --o;
    ++count[o];
    i += std::size_t{1} << o;
  }
  return count;
}

std::size_t page_index(labyrinth_pool *p, void *page) {
  return static_cast<std::size_t>(static_cast<std::uint8_t *>(page) - lab::from_handle(p)->base) /
         LABYRINTH_PAGE_SIZE;
}

}  // namespace

TEST(Zones, APoolSplitsAtMultiplesOf4MiBIntoAtMostFour) {
  struct Case {
    std::size_t pages;
    unsigned zones;
    std::vector<std::size_t> begins;
  };
  const Case cases[] = {
      {17, 1, {0}},           {1023, 1, {0}},         {1024, 1, {0}},          {2047, 1, {0}},
      {2048, 2, {0, 1024}},   {3000, 2, {0, 1024}},   {3072, 3, {0, 1024, 2048}},
      {4096, 4, {0, 1024, 2048, 3072}},               {16384, 4, {0, 4096, 8192, 12288}},
      {5 * 1024 + 7, 4, {0, 1024, 2048, 3072}},       {6 * 1024, 4, {0, 1024, 3072, 4096}},
  };
  for (const Case &c : cases) {
    labyrinth_pool_options o = options(c.pages * LABYRINTH_PAGE_SIZE);
    o.atomic_reserve_pages = 0;
    PoolGuard p(o);
    const lab::Pool *pool = lab::from_handle(p.pool);
    ASSERT_EQ(pool->nzones, c.zones) << c.pages << " pages";
    for (unsigned z = 0; z < pool->nzones; ++z) {
      EXPECT_EQ(pool->zones[z].begin, c.begins[z]) << c.pages << " pages, zone " << z;
      EXPECT_EQ(pool->zones[z].end, z + 1 < pool->nzones ? c.begins[z + 1] : c.pages) << c.pages << " pages";
    }
    // The same free blocks as one buddy allocator over the whole arena.
    const labyrinth_stats s = stats(p);
    const std::vector<std::uint64_t> want = one_buddy_blocks(c.pages);
    for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k)
      EXPECT_EQ(s.free_blocks[k], want[k]) << c.pages << " pages, order " << k;
  }
}

// The test holds zones 0 and 1 (as a preempted thread would hold one each):
// ATOMIC allocations of order 0 and 3 on another thread are served by zones 2
// and 3 at once, and so is a caller that may block (it tries every zone
// before it waits for one).
TEST(Zones, WhileSomeZonesAreHeldCallersAreServedByTheOthers) {
  labyrinth_pool_options o = options(16u << 20);  // 4 zones of 1024 pages
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  lab::Pool *pool = lab::from_handle(p.pool);
  ASSERT_EQ(pool->nzones, 4u);
  std::vector<void *> got;
  {
    std::lock_guard<lab::ZoneMutex> hold0(pool->zones[0].mu);
    std::lock_guard<lab::ZoneMutex> hold1(pool->zones[1].mu);
    std::thread other([&] {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      got.push_back(pg);
      void *b = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK)
          << last_message();
      got.push_back(b);
      ASSERT_EQ(labyrinth_alloc_pages(p, 5, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK) << last_message();
      got.push_back(b);
      for (void *q : got) EXPECT_GE(page_index(p, q), 2048u) << "from a held zone";
      for (void *q : got) ASSERT_EQ(labyrinth_free_pages(p, q), LABYRINTH_OK);
    });
    other.join();
  }
  ASSERT_EQ(got.size(), 3u);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Every path that takes a zone's mutex, on several threads at once: refills
// and drains, blocks of orders 1-6 (order caches, their evictions and
// carving), ATOMIC and waiting callers, frees by other threads, trims with
// the reserve's renewal, the depot flushed for a large block, thread
// exits, and pressure. Not once does a thread take a zone's mutex while it
// holds another (g_zone_nesting), and nothing is lost.
TEST(Zones, NoCallHoldsTwoZonesMutexes) {
  labyrinth_pool_options o = options(16u << 20);
  o.atomic_reserve_pages = 64;
  o.thread_cache_pages = 256;
  o.thread_cache_batch = 32;
  o.watermark_low_pages = 3072;  // pressure once a quarter of the pool is out
  o.watermark_high_pages = 3328;
  PoolGuard p(o);
  ASSERT_EQ(lab::from_handle(p.pool)->nzones, 4u);
  const std::uint64_t nesting_before = lab::g_zone_nesting.load();
  constexpr unsigned kThreads = 3;
  std::atomic<labyrinth_owner> ids[kThreads] = {};
  std::atomic<long> failures{0};
  auto worker = [&](unsigned t) {
    std::mt19937 rng(t * 7 + 1);
    ids[t] = labyrinth_owner_self();
    for (unsigned next = (t + 1) % kThreads; !ids[next].load();) std::this_thread::yield();
    std::vector<void *> mine;
    for (int round = 0; round < 60; ++round) {
      const int n = 20 + static_cast<int>(rng() % 300);
      for (int i = 0; i < n; ++i) {
        const unsigned order = rng() % 4 == 0 ? 1 + rng() % 6 : 0;
        const labyrinth_gfp gfp = LABYRINTH_GFP_EXCLUSIVE | (rng() % 2 ? LABYRINTH_GFP_ATOMIC : 0) |
                                  (rng() % 8 == 0 ? LABYRINTH_GFP_WAIT : 0);
        void *b = nullptr;
        if (labyrinth_alloc_pages(p, order, gfp, 1, &b) == LABYRINTH_OK) mine.push_back(b);
        else ++failures;
      }
      std::shuffle(mine.begin(), mine.end(), rng);
      // A few go to the next thread's owner and are freed by it later (or
      // orphaned and reclaimed if it has exited): frees by other threads.
      const std::size_t keep = mine.size() / 8;
      while (mine.size() > keep) {
        void *b = mine.back();
        mine.pop_back();
        if (rng() % 16 == 0) {
          ASSERT_EQ(labyrinth_page_transfer(p, b, ids[(t + 1) % kThreads].load()), LABYRINTH_OK);
        } else {
          ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK) << last_message();
        }
      }
      if (round % 10 == 9) {
        ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
      }
    }
    for (void *b : mine) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread &th : threads) th.join();
  // Pages transferred to a thread that exited are orphans: reclaim them.
  std::size_t reclaimed = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &reclaimed), LABYRINTH_OK);
  // A large block with the free pages scattered in the depot: the
  // list is flushed into the zones (one mutex at a time) to make it.
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);  // the reserve in one place, the reserve full
  std::thread([&] {  // its cache goes to the depot when it exits
    std::vector<void *> pages;
    for (void *pg; (pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) != nullptr;) pages.push_back(pg);
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
  {
    ASSERT_LT(lab::from_handle(p.pool)->largest_free_order(), 10);
    void *big = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 10, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK) << last_message();
    ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  }
  EXPECT_EQ(lab::g_zone_nesting.load() - nesting_before, 0u);
  const labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  EXPECT_GT(s.pressure_events, 0u) << "the test should have crossed the low watermark";
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
  std::printf("[zones] %ld allocations refused, %llu waits, %llu pressure events, %zu orphans reclaimed\n",
              failures.load(), static_cast<unsigned long long>(s.waits),
              static_cast<unsigned long long>(s.pressure_events), reclaimed);
}
