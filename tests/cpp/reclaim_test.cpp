// Reclaiming other threads' caches (thread_cache.hpp, reclaim_caches) while
// those threads allocate and free through every path that touches their
// cache: the inline page and block paths, the library's refills, drains and
// order cache, and the record switching back and forth between two pools.
// A page handed to two owners at once, a page lost, or a cache left
// inconsistent fails it.
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "pool.hpp"
#include "test_util.hpp"
#include "thread_cache.hpp"

using namespace labtest;

namespace {

bool membarrier_available() {
  const long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0U, 0);
  return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

// Who holds each page now (0: nobody): a second holder of a page is a page
// handed out twice.
struct Holders {
  explicit Holders(std::size_t pages) : who(pages) {}
  std::vector<std::atomic<std::uint32_t>> who;
};

}  // namespace

TEST(Reclaim, BusyThreadsLoseNothingAndNeverShareAPage) {
  if (!membarrier_available())
    GTEST_SKIP() << "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available: reclaiming other "
                    "threads' caches is off on this kernel";
  labyrinth_pool_options o = options(16u << 20);
  o.atomic_reserve_pages = 16;
  o.watermark_min_pages = o.watermark_low_pages = o.watermark_high_pages = 0;  // caches always in use
  o.thread_cache_pages = 256;
  o.thread_cache_batch = 32;
  PoolGuard p(o);
  PoolGuard other(options(4u << 20));  // the workers' records switch pools too
  lab::Pool *pool = lab::from_handle(p);
  const std::size_t npages = stats(p).total_pages;
  Holders holders(npages);
  char *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(p, reinterpret_cast<void **>(&base), nullptr), LABYRINTH_OK);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> twice{0}, failures{0}, ops{0};

  auto worker = [&](std::uint32_t id) {
    std::mt19937 rng(id);
    std::vector<std::pair<void *, unsigned>> held;
    auto take = [&](void *b, unsigned order) {
      const std::size_t first = static_cast<std::size_t>(static_cast<char *>(b) - base) >> 12;
      for (std::size_t i = first; i < first + (std::size_t{1} << order); ++i) {
        std::uint32_t expected = 0;
        if (!holders.who[i].compare_exchange_strong(expected, id)) twice.fetch_add(1);
      }
      held.emplace_back(b, order);
    };
    auto give = [&](std::size_t k) {
      auto [b, order] = held[k];
      held[k] = held.back();
      held.pop_back();
      const std::size_t first = static_cast<std::size_t>(static_cast<char *>(b) - base) >> 12;
      for (std::size_t i = first; i < first + (std::size_t{1} << order); ++i) holders.who[i].store(0);
      const labyrinth_status st = order == 0 && (rng() & 1) ? labyrinth_free_pages(p, b)
                                                            : labyrinth_free_pages_order(p, b, order);
      if (st != LABYRINTH_OK) failures.fetch_add(1);
    };
    while (!stop.load(std::memory_order_relaxed)) {
      const unsigned what = rng() % 16;
      if (what < 9) {  // a burst of pages, inline
        const unsigned n = 1 + rng() % 200;
        for (unsigned i = 0; i < n; ++i)
          if (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) take(pg, 0);
      } else if (what < 12) {  // blocks of order 1-3 (the order cache)
        const unsigned order = 1 + rng() % 3;
        void *b = nullptr;
        if (labyrinth_alloc_pages(p, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b) ==
            LABYRINTH_OK)
          take(b, order);
      } else if (what < 13) {  // through the library, not inline
        void *b = nullptr;
        if (labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &b) == LABYRINTH_OK) take(b, 0);
      } else if (what < 14) {  // the record now names the other pool
        void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(other);
        if (pg && labyrinth_free_pages(other, pg) != LABYRINTH_OK) failures.fetch_add(1);
      }
      // Free a random part of what is held, newest and oldest alike.
      std::size_t frees = held.empty() ? 0 : rng() % (held.size() + 1);
      while (frees-- && !held.empty()) give(rng() % held.size());
      ops.fetch_add(1, std::memory_order_relaxed);
    }
    while (!held.empty()) give(held.size() - 1);
  };

  std::thread a(worker, 1), b(worker, 2);
  std::size_t reclaimed = 0, calls = 0;
  // 1.5 s under ctest; LABYRINTH_RECLAIM_SECONDS for a longer campaign.
  const char *env = std::getenv("LABYRINTH_RECLAIM_SECONDS");
  const double seconds = env ? std::atof(env) : 1.5;
  const auto end = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  while (std::chrono::steady_clock::now() < end) {
    reclaimed += lab::reclaim_caches(pool, 1);
    ++calls;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  stop.store(true);
  a.join();
  b.join();
  EXPECT_EQ(twice.load(), 0u) << "pages handed to two holders at once";
  EXPECT_EQ(failures.load(), 0u) << "frees refused";
  EXPECT_GT(reclaimed, 0u) << "no cache was ever reclaimed in " << calls << " calls";
  EXPECT_GT(ops.load(), 1000u);
  std::printf("[ info ] %zu reclaims took %zu pages back; %llu worker steps\n", calls, reclaimed,
              static_cast<unsigned long long>(ops.load()));
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.reclaimed_pages, reclaimed);
  EXPECT_GT(s.cache_reclaims, 0u);
  EXPECT_EQ(s.allocated_pages, 0u);
  EXPECT_EQ(s.cached_pages, 0u);  // the workers exited
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
  EXPECT_EQ(lab::g_zone_nesting.load(), 0u);
}
