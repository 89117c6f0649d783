// Per-thread caches: refill and drain in batches, the high mark, the
// remote-free path, thread exit, and threads beyond the cache limit.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <random>
#include <set>
#include <mutex>
#include <thread>

#include "pool.hpp"
#include "test_util.hpp"
#include "zones_lock.hpp"

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

  // Past the high mark a batch drains to the depot.
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

// A refill from the buddy allocator that finds the depot empty also
// puts two batches there (in whole blocks, smallest first), so the next
// threads to refill take them without a zone's mutex: another thread's
// first refill takes one of those chains and the buddy allocator is not
// touched. When the depot has pages, a refill takes those and stocks
// nothing.
TEST(ThreadCache, ARefillFromTheBuddyStocksAnEmptyDepot) {
  labyrinth_pool_options o = options(16u << 20);
  o.thread_cache_pages = 128;
  o.thread_cache_batch = 32;
  PoolGuard p(o);
  const std::uint64_t buddy_before = stats(p).free_pages;
  void *first = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(first, nullptr);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 31u);
  EXPECT_EQ(s.shared_free_pages, 64u);  // two batches
  EXPECT_EQ(s.free_pages, buddy_before - 32);  // the stock is still free
  expect_accounting(s);
  std::thread other([&] {
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr);
    labyrinth_stats t = stats(p);
    EXPECT_EQ(t.shared_free_pages, 32u);  // one chain taken, nothing stocked
    EXPECT_EQ(t.free_pages, buddy_before - 64);
    EXPECT_EQ(t.cached_pages, 31u + 31u);
    ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  });
  other.join();
  ASSERT_EQ(labyrinth_free_pages(p, first), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// A whole cache goes back to the depot (here at thread exit; also at
// trim and on the first free under pressure) in chains of a batch at most.
// A refill pops a whole chain and hides it from other threads until it has
// taken its batch and pushed the rest back; with chains of a batch at most,
// no refill walks more than a batch while the depot could look empty to the
// others.
TEST(ThreadCache, AWholeCacheGoesBackInChainsOfABatchAtMost) {
  labyrinth_pool_options o = options(64u << 20);
  o.thread_cache_batch = 32;
  PoolGuard p(o);
  std::uint64_t cached = 0;
  std::thread t([&] {
    std::vector<void *> pages;
    for (int i = 0; i < 400; ++i) pages.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    cached = stats(p).cached_pages;
  });
  t.join();
  ASSERT_GE(cached, 10 * 32u) << "the thread should have left many batches in its cache";
  const labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 0u);
  // Take the depot apart (nothing else runs), look at each chain, put it back.
  lab::Depot &depot = lab::from_handle(p)->depot;
  std::vector<std::pair<std::size_t, std::size_t>> chains;  // first page, length
  std::size_t total = 0;
  for (std::size_t first; (first = depot.pop_chain()) != lab::side::kNoPage;) {
    const std::size_t length = depot.length_from(first);
    EXPECT_LE(length, 32u) << "chain " << chains.size();
    chains.emplace_back(first, length);
    depot.taken(length);
    total += length;
  }
  EXPECT_EQ(total, s.shared_free_pages);
  EXPECT_GE(chains.size(), cached / 32 - 8);  // the reserve took a few pages first
  for (auto it = chains.rbegin(); it != chains.rend(); ++it) depot.push_linked(it->first, it->second);
  expect_accounting(stats(p));
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// While other threads hold every zone's mutex (refills or frees preempted
// in the middle of their holds, one per zone; simulated here by holding them
// all), an ATOMIC caller whose cache runs dry can still have every page of
// the depot and the reserve, without waiting; after that it is refused
// at once, saying why.
TEST(ThreadCache, WhileTheMutexIsHeldAtomicCallersHaveTheLockFreePages) {
  labyrinth_pool_options o = options(64u << 20);
  o.atomic_reserve_pages = 32;
  PoolGuard p(o);
  std::vector<void *> mine;
  for (int i = 0; i < 3000; ++i) mine.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  for (void *pg : mine) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);  // most to the depot
  labyrinth_stats s = stats(p);
  ASSERT_GT(s.shared_free_pages, 1000u);
  ASSERT_EQ(s.reserve_pages, 32u);
  std::vector<void *> theirs;
  std::string refusal;
  {
    labtest::ZonesLock hold(lab::from_handle(p));  // every zone's mutex
    std::thread other([&] {
      while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) theirs.push_back(pg);
      refusal = last_message();
      for (void *pg : theirs) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    });
    other.join();
  }
  EXPECT_EQ(theirs.size(), s.shared_free_pages + s.reserve_pages);
  EXPECT_NE(refusal.find("mutex of a zone with free blocks was busy"), std::string::npos) << refusal;
  s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
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

// Pages in an idle thread's cache are out of reach of the other threads'
// ATOMIC calls, which may not block: their refusal says how many caches are
// in use. A call that may block takes them back (reclaim_caches) before it
// fails; the idle thread then goes on with an empty cache, and nothing is
// lost. With LABYRINTH_POOL_NO_RECLAIM (the parameter false) it does not,
// and its refusal counts them.
class IdleCache : public ::testing::TestWithParam<bool> {};

TEST_P(IdleCache, AnAllocationThatWouldFailTakesItBackUnlessThePoolSaysNo) {
  const bool reclaim = GetParam();
  labyrinth_pool_options o = options(16u << 20);
  o.atomic_reserve_pages = 16;
  if (!reclaim) o.flags |= LABYRINTH_POOL_NO_RECLAIM;
  PoolGuard p(o);
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;  // 1: the idle thread's cache is full; 2: go on; 3: done
  std::vector<void *> theirs_after;
  labyrinth_owner idle_owner = LABYRINTH_OWNER_NONE;
  std::thread idle([&] {
    idle_owner = labyrinth_owner_self();
    std::vector<void *> pages;
    for (int i = 0; i < 100; ++i) pages.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
    std::unique_lock<std::mutex> lock(mu);
    phase = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 2; });
    // If its cache was taken while it slept, it allocates as before all the
    // same, through the inline path once its record names its cache again.
    for (int i = 0; i < 50; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      if (pg) theirs_after.push_back(pg);
    }
    phase = 3;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return phase == 1; });
  }
  const std::uint64_t theirs = stats(p).cached_pages;
  ASSERT_GE(theirs, 100u);
  std::vector<void *> mine;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) mine.push_back(pg);
  const std::string atomic = last_message();
  EXPECT_NE(atomic.find("(ATOMIC): 0 free outside the 2 thread caches in use"), std::string::npos) << atomic;
  EXPECT_EQ(stats(p).cached_pages, theirs);  // ATOMIC callers never take them
  EXPECT_EQ(mine.size(), stats(p).total_pages - theirs);
  // Without ATOMIC: the idle thread's pages, less the 16 that refill the
  // reserve first, then NOMEM with nothing left in any cache (or, without
  // reclaim, nothing, and NOMEM counting the idle thread's pages).
  void *pg = nullptr;
  std::size_t taken = 0;
  while (labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &pg) == LABYRINTH_OK) {
    mine.push_back(pg);
    ++taken;
  }
  const std::string plain = last_message();
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_NOMEM);
  labyrinth_stats s = stats(p);
  if (reclaim) {
    EXPECT_EQ(taken, theirs - 16);
    EXPECT_NE(plain.find(": 0 free, 0 in thread caches (0 this thread's), reserve 16/16"), std::string::npos)
        << plain;
    EXPECT_EQ(s.cached_pages, 0u);
    EXPECT_EQ(s.cache_reclaims, 1u);
    EXPECT_EQ(s.reclaimed_pages, theirs);
    while (void *more = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) mine.push_back(more);
    EXPECT_EQ(mine.size(), s.total_pages);
  } else {
    EXPECT_EQ(taken, 0u);
    EXPECT_NE(plain.find(": 0 free, " + std::to_string(theirs) + " in thread caches (0 this thread's)"),
              std::string::npos)
        << plain;
    EXPECT_EQ(s.cached_pages, theirs);
    EXPECT_EQ(s.cache_reclaims, 0u);
  }
  EXPECT_EQ(s.thread_caches_in_use, 2u);  // the idle thread's is still its own
  // Some back; the idle thread wakes and takes what it can: 40 pages freed
  // here if its cache was taken, else 50 from its own cache.
  for (std::size_t i = 0; i < 40; ++i) {
    ASSERT_EQ(labyrinth_free_pages(p, mine.back()), LABYRINTH_OK);
    mine.pop_back();
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    phase = 2;
    cv.notify_all();
    cv.wait(lock, [&] { return phase == 3; });
  }
  idle.join();
  const std::size_t got = reclaim ? 40 : 50;
  EXPECT_EQ(theirs_after.size(), got);
  for (void *t : theirs_after) {
    labyrinth_owner owner = LABYRINTH_OWNER_NONE;
    ASSERT_EQ(labyrinth_page_info(p, t, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, idle_owner);
  }
  EXPECT_EQ(stats(p).orphaned_pages, got);  // its owner has exited
  std::size_t orphans = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &orphans), LABYRINTH_OK);
  EXPECT_EQ(orphans, got);
  for (void *m : mine) ASSERT_EQ(labyrinth_free_pages(p, m), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
  expect_maximal(p, o);
}

INSTANTIATE_TEST_SUITE_P(ThreadCache, IdleCache, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool> &i) { return i.param ? "Reclaim" : "NoReclaim"; });

// A refusal of order >= 1 first gives back the caller's own cache (see
// OwnCache below): its order-0 pages, which cannot make the order-3 block it
// asked for, are then counted as free, none as in its cache.
TEST(ThreadCache, ARefusalCountsThePagesTheCallersOwnCacheGaveBack) {
  labyrinth_pool_options o = options(16u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_min_pages = o.watermark_low_pages = o.watermark_high_pages = 0;  // no pressure
  PoolGuard p(o);
  std::vector<void *> mine;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) mine.push_back(pg);
  ASSERT_EQ(mine.size(), stats(p).total_pages);
  for (int i = 0; i < 100; ++i) {  // every other page: no two make a block
    ASSERT_EQ(labyrinth_free_pages(p, mine[2 * i]), LABYRINTH_OK);
    mine[2 * i] = nullptr;
  }
  ASSERT_EQ(stats(p).cached_pages, 100u);
  void *block = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_EXCLUSIVE, 0, &block), LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(block, nullptr);
  const std::string plain = last_message();
  EXPECT_NE(plain.find("no free block of order 3 (without waiting): 100 free, 0 in thread caches (0 this "
                       "thread's)"),
            std::string::npos)
      << plain;
  for (void *m : mine) {
    if (!m) continue;
    ASSERT_EQ(labyrinth_free_pages(p, m), LABYRINTH_OK);
  }
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// The high mark (thread_cache.hpp): bursts larger than the cache raise it,
// up to the capacity, until a burst costs no refill and no drain.
namespace {
struct BurstCounts {
  std::uint64_t refills, drains, most_cached;
};
// Allocate `n` pages, then free them all; what that cost.
BurstCounts burst(labyrinth_pool *p, std::size_t n) {
  const labyrinth_stats before = stats(p);
  std::vector<void *> pages;
  for (std::size_t i = 0; i < n; ++i) {
    pages.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
    EXPECT_NE(pages.back(), nullptr) << last_message();
  }
  std::uint64_t most = 0;
  for (void *pg : pages) {
    EXPECT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK) << last_message();
    most = std::max(most, stats(p).cached_pages);
  }
  const labyrinth_stats after = stats(p);
  expect_accounting(after);
  return {after.refills - before.refills, after.drains - before.drains, most};
}
}  // namespace

TEST(ThreadCache, HighMarkRisesToTheThreadsBursts) {
  labyrinth_pool_options o = options(64u << 20);
  o.thread_cache_pages = 1024;  // high mark starts at 512
  o.thread_cache_batch = 64;
  PoolGuard p(o);
  BurstCounts first = burst(p, 800);
  EXPECT_GT(first.drains, 0u) << "800 pages do not fit under a high mark of 512";
  EXPECT_LE(first.most_cached, 512u);
  burst(p, 800);  // the refills after those drains raise the mark
  for (int round = 0; round < 3; ++round) {
    BurstCounts c = burst(p, 800);
    EXPECT_EQ(c.refills, 0u) << "round " << round << ": the burst should fit now";
    EXPECT_EQ(c.drains, 0u) << "round " << round;
    EXPECT_GE(c.most_cached, 800u);
    EXPECT_LE(c.most_cached, 1024u);
  }
  // Not past the capacity: bursts larger than it keep refilling and draining.
  for (int round = 0; round < 3; ++round) {
    BurstCounts c = burst(p, 1500);
    EXPECT_GT(c.refills, 0u) << round;
    EXPECT_GT(c.drains, 0u) << round;
    EXPECT_LE(c.most_cached, 1024u) << round;
  }
  // Trim puts the mark back to its start: 800 overflow it again.
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  BurstCounts after_trim = burst(p, 800);
  EXPECT_GT(after_trim.drains, 0u);
  EXPECT_LE(after_trim.most_cached, 512u);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Bursts of `n` pages keep refilling and draining: the mark stays at `mark`.
void expect_fixed_mark(const labyrinth_pool_options &o, std::size_t n, std::uint64_t mark) {
  PoolGuard p(o);
  for (int round = 0; round < 4; ++round) {
    BurstCounts c = burst(p, n);
    EXPECT_GT(c.refills, 0u) << round;
    EXPECT_GT(c.drains, 0u) << round;
    EXPECT_LE(c.most_cached, mark) << round;
  }
}

// A capacity at or below the start (512) is a fixed high mark, as before.
TEST(ThreadCache, SmallCapacityIsAFixedHighMark) {
  labyrinth_pool_options o = options(16u << 20);
  o.thread_cache_pages = 128;
  o.thread_cache_batch = 32;
  expect_fixed_mark(o, 300, 128);
}

// A mark rises to 1/16 of the pool at most.
TEST(ThreadCache, HighMarkStopsAtASixteenthOfThePool) {
  labyrinth_pool_options o = options(16u << 20);  // 4096 pages: 1/16 is 256, below the start
  o.thread_cache_pages = 2048;
  o.thread_cache_batch = 64;
  expect_fixed_mark(o, 800, 512);
}

// Memory pressure puts every raised mark back to its start.
TEST(ThreadCache, PressureLowersTheHighMark) {
  labyrinth_pool_options o = options(64u << 20);  // 16384 pages: the mark may rise to 1024
  o.thread_cache_pages = 2048;
  o.thread_cache_batch = 64;
  o.watermark_low_pages = 1024;
  o.watermark_high_pages = 2048;
  PoolGuard p(o);
  burst(p, 900);
  burst(p, 900);
  ASSERT_EQ(burst(p, 900).drains, 0u) << "setup: the mark should have risen past 900";
  // Another thread takes the pool below its low mark, then gives
  // everything back and exits, while this thread's cache sits idle.
  std::thread([&] {
    std::vector<void *> pages;
    while (stats(p).pressure_events == 0) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      pages.push_back(pg);
    }
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
  ASSERT_GE(stats(p).free_pages, o.watermark_high_pages) << "setup: pressure should have ended";
  BurstCounts c = burst(p, 900);
  EXPECT_GT(c.drains, 0u) << "the mark should be back at 512";
  EXPECT_LE(c.most_cached, 512u);
}

// Under pressure, the first free a thread makes gives its whole cache back
// (to the reserve first, then the depot), so the pages it had cached
// reach the threads that lack them; without pressure a free keeps them.
TEST(ThreadCache, AFreeUnderPressureGivesTheWholeCacheBack) {
  labyrinth_pool_options o = options(4u << 20);  // 1024 pages
  o.thread_cache_pages = 512;
  o.thread_cache_batch = 64;
  o.watermark_low_pages = 300;
  o.watermark_high_pages = 400;
  PoolGuard p(o);
  // This thread caches 400 pages: allocated, then freed into its cache.
  std::vector<void *> mine;
  for (int i = 0; i < 401; ++i) mine.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  void *kept = mine.back();
  mine.pop_back();
  for (void *pg : mine) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_GE(stats(p).cached_pages, 400u) << "setup";
  // Another thread takes the pool below its low mark and holds the pages.
  std::vector<void *> theirs;
  const labyrinth_owner me = labyrinth_owner_self();
  std::thread([&] {
    while (stats(p).pressure_events == 0) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      theirs.push_back(pg);
    }
    for (void *pg : theirs) ASSERT_EQ(labyrinth_page_transfer(p, pg, me), LABYRINTH_OK);  // ours to free
  }).join();
  labyrinth_stats before = stats(p);
  ASSERT_GE(before.cached_pages, 400u) << "setup: an idle cache keeps its pages through pressure";
  ASSERT_EQ(labyrinth_free_pages(p, kept), LABYRINTH_OK);
  labyrinth_stats after = stats(p);
  EXPECT_LT(after.cached_pages, 64u) << "the cache should have been given back";
  EXPECT_GE(after.shared_free_pages + after.reserve_pages, before.shared_free_pages + before.reserve_pages + 400u);
  expect_accounting(after);
  for (void *pg : theirs) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST(ThreadCache, RemoteFreeGoesBackWithoutLoss) {
  // One thread allocates and transfers, another frees: pages flow back to the
  // allocator through the lock-free depot.
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

namespace {
// One thread allocates `n` pages, touches them, and frees them in a shuffled
// order, then exits: its caches drain scattered chains to the depot
// (with magazines, in pools that allow them).
std::vector<void *> free_scattered_on_another_thread(labyrinth_pool *p, std::size_t n) {
  std::vector<void *> pages;
  std::thread([&] {
    for (std::size_t i = 0; i < n; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      std::memset(pg, 0x5C, 4096);
      pages.push_back(pg);
    }
    std::mt19937 rng(42);
    std::shuffle(pages.begin(), pages.end(), rng);
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK) << last_message();
  }).join();
  return pages;
}
}  // namespace

// Pages freed in a scattered order reach another thread through the shared
// list, each exactly once, even when every free page was written over (a
// write after free) with a list of pages that are still allocated, laid out
// as the magazine the depot keeps in a chain's first page (all but its
// checksum, which a stray write does not know).
// Pinned pools only get magazines: small enough for any RLIMIT_MEMLOCK of
// at least 4 MiB (the machine's non-root default is 8 MiB).
labyrinth_pool_options pinned_options() {
  labyrinth_pool_options o = options(4u << 20);
  o.flags = (o.flags & ~LABYRINTH_POOL_PIN_MASK) | LABYRINTH_POOL_PIN;
  o.thread_cache_pages = 128;
  o.thread_cache_batch = 32;
  return o;
}
// Where RLIMIT_MEMLOCK refuses even that, the test skips and says why.
#define SKIP_UNLESS_PINNABLE(o)                                                       \
  do {                                                                               \
    labyrinth_pool *probe_ = nullptr;                                                \
    if (labyrinth_pool_create(&(o), &probe_) != LABYRINTH_OK)                        \
      GTEST_SKIP() << "a pinned 4 MiB pool was refused here: " << last_message();  \
    labyrinth_pool_destroy(probe_);                                                  \
  } while (0)

TEST(ThreadCache, ScatteredFreesComeBackExactlyOnceDespiteWritesAfterFree) {
  labyrinth_pool_options o = pinned_options();
  SKIP_UNLESS_PINNABLE(o);
  PoolGuard p(o);
  void *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(p, &base, nullptr), LABYRINTH_OK);
  auto index = [&](void *pg) {
    return static_cast<std::uint32_t>((static_cast<char *>(pg) - static_cast<char *>(base)) / 4096);
  };
  std::vector<void *> held;
  for (int i = 0; i < 64; ++i) held.push_back(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  const std::set<void *> held_set(held.begin(), held.end());
  const std::vector<void *> freed = free_scattered_on_another_thread(p, 768);
  EXPECT_GT(stats(p).shared_free_pages, 400u);
  for (void *pg : freed) {
    auto *m = static_cast<std::uint32_t *>(pg);
    m[0] = index(pg);  // names its page
    m[1] = 32;         // a batch
    m[2] = 0x5EA1;     // a checksum
    m[3] = index(pg);
    for (int k = 1; k < 32; ++k) m[3 + k] = index(held[static_cast<std::size_t>(k)]);
  }
  std::thread([&] {
    std::set<void *> got;
    for (int i = 0; i < 768; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      ASSERT_TRUE(got.insert(pg).second) << pg << " handed out twice";
      ASSERT_EQ(held_set.count(pg), 0u) << pg << " is allocated to the main thread";
      labyrinth_owner who = 0;
      ASSERT_EQ(labyrinth_page_info(p, pg, &who, nullptr), LABYRINTH_OK);
      ASSERT_EQ(who, labyrinth_owner_self());
    }
    EXPECT_EQ(stats(p).allocated_pages, 768u + 64u);
    for (void *pg : got) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
  for (void *pg : held) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  expect_accounting(stats(p));
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Free pages must stay zero in a SCRUB pool: nothing (no magazine) is
// written into them on the way through the depot.
TEST(ThreadCache, ScrubPoolsKeepFreePagesZeroThroughTheDepot) {
  labyrinth_pool_options o = pinned_options();
  o.flags |= LABYRINTH_POOL_SCRUB;
  SKIP_UNLESS_PINNABLE(o);
  PoolGuard p(o);
  free_scattered_on_another_thread(p, 768);
  EXPECT_GT(stats(p).shared_free_pages, 400u);
  std::thread([&] {
    std::vector<void *> got;
    for (int i = 0; i < 768; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      const auto *b = static_cast<const unsigned char *>(pg);
      ASSERT_TRUE(std::all_of(b, b + 4096, [](unsigned char c) { return c == 0; })) << pg;
      got.push_back(pg);
    }
    for (void *pg : got) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
}

// Unpinned pools get no magazines either (writing a page the user never
// touched would fault it in on the free path): free pages come back with
// exactly the bytes their last owner left.
TEST(ThreadCache, UnpinnedPoolsWriteNothingIntoFreePages) {
  labyrinth_pool_options o = pinned_options();
  o.flags &= ~LABYRINTH_POOL_PIN_MASK;
  PoolGuard p(o);
  const std::vector<void *> v = free_scattered_on_another_thread(p, 768);  // filled with 0x5C
  const std::set<void *> freed(v.begin(), v.end());
  EXPECT_GT(stats(p).shared_free_pages, 400u);
  std::thread([&] {
    std::vector<void *> got;
    std::size_t checked = 0;
    for (int i = 0; i < 768; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << last_message();
      got.push_back(pg);
      if (!freed.count(pg)) continue;  // a fresh page from the buddy allocator
      const auto *b = static_cast<const unsigned char *>(pg);
      ASSERT_TRUE(std::all_of(b, b + 4096, [](unsigned char c) { return c == 0x5C; })) << pg;
      ++checked;
    }
    EXPECT_GT(checked, 400u);
    for (void *pg : got) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }).join();
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

// With every page free, a block of any order can be had: an allocation of
// order >= 1 that finds no block gives back the caller's own cache (its
// pages and its order cache's blocks) and flushes the depot under the zones'
// try-locks before it fails, ATOMIC included. A 4 MiB pool, exhausted page by
// page and freed on the same thread, then asked for an order-8 block.
class OwnCache : public ::testing::TestWithParam<bool> {
 protected:
  labyrinth_pool_options o = options(4u << 20);
  PoolGuard p{o};
  std::vector<void *> pages;  // every page of the pool, allocated by this thread
  labyrinth_gfp gfp = LABYRINTH_GFP_EXCLUSIVE | (GetParam() ? LABYRINTH_GFP_ATOMIC : 0);

  void SetUp() override {
    while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) pages.push_back(pg);
    ASSERT_EQ(pages.size(), 1024u);
  }
};

TEST_P(OwnCache, AnAllocationThatWouldFailGivesItBack) {
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_GT(stats(p).cached_pages, 0u);  // the case at hand: pages wait in this thread's cache
  void *block = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 8, gfp, 0, &block), LABYRINTH_OK) << last_message();
  ASSERT_NE(block, nullptr);
  std::memset(block, 0x5A, 256 * 4096);
  ASSERT_EQ(labyrinth_free_pages(p, block), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// What stays as it was when even that does not help: every block, its owner
// and its contents, and the number of pages not allocated (the give-back
// only moves free pages between the caller's cache, the depot and the buddy
// allocator).
TEST_P(OwnCache, AFailureAfterTheGiveBackChangesNoBlock) {
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (i % 2 == 0) ASSERT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
    else std::memset(pages[i], static_cast<int>(i & 0xFF), 4096);
  }
  const labyrinth_stats before = stats(p);
  ASSERT_GT(before.cached_pages, 0u);
  void *block = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(p, 1, gfp, 0, &block), LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(block, nullptr);
  const labyrinth_stats after = stats(p);
  expect_accounting(after);
  EXPECT_EQ(after.allocated_pages, before.allocated_pages);
  EXPECT_EQ(after.free_pages + after.cached_pages + after.reserve_pages,
            before.free_pages + before.cached_pages + before.reserve_pages);
  if (!GetParam()) {
    EXPECT_NE(last_message().find("(0 this thread's)"), std::string::npos) << last_message();
  }
  for (std::size_t i = 1; i < pages.size(); i += 2) {
    labyrinth_owner owner = 0;
    unsigned order = 99;
    ASSERT_EQ(labyrinth_page_info(p, pages[i], &owner, &order), LABYRINTH_OK) << last_message();
    EXPECT_EQ(order, 0u);
    EXPECT_EQ(owner, labyrinth_owner_self());
    const auto *b = static_cast<const unsigned char *>(pages[i]);
    EXPECT_TRUE(b[0] == (i & 0xFF) && b[4095] == (i & 0xFF)) << i;
    ASSERT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
  }
}

INSTANTIATE_TEST_SUITE_P(ThreadCache, OwnCache, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool> &i) { return i.param ? "Atomic" : "NotAtomic"; });

// The give-back never waits for a zone's mutex when the caller is ATOMIC:
// with another thread holding every zone's mutex, an ATOMIC order-8 call
// whose own cache holds pages and an order-1 block fails at once (NOMEM,
// the busy mutex named), and succeeds once the mutexes are free.
TEST(ThreadCache, AtomicGiveBackNeverWaitsForAZone) {
  labyrinth_pool_options o = options(4u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_min_pages = o.watermark_low_pages = o.watermark_high_pages = 0;  // no pressure
  PoolGuard p(o);
  void *pair = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &pair), LABYRINTH_OK);
  std::vector<void *> pages;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) pages.push_back(pg);
  ASSERT_EQ(labyrinth_free_pages(p, pair), LABYRINTH_OK);  // into this thread's order cache
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_GE(stats(p).cached_pages, 2u);
  const labyrinth_gfp ae = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
  std::mutex mu;
  std::condition_variable cv;
  int step = 0;  // 1: the mutexes are held; 2: the ATOMIC call is done
  std::thread holder([&] {
    labtest::ZonesLock hold(lab::from_handle(p));
    std::unique_lock<std::mutex> lock(mu);
    step = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return step == 2; });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return step == 1; });
  }
  void *block = nullptr;
  const labyrinth_status st = labyrinth_alloc_pages(p, 8, ae, 0, &block);
  const std::string refusal = last_message();
  {
    std::lock_guard<std::mutex> lock(mu);
    step = 2;
  }
  cv.notify_all();
  holder.join();
  EXPECT_EQ(st, LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(block, nullptr);
  EXPECT_NE(refusal.find("was busy (ATOMIC never waits for it)"), std::string::npos) << refusal;
  const labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
  ASSERT_EQ(labyrinth_alloc_pages(p, 8, ae, 0, &block), LABYRINTH_OK) << last_message();
  ASSERT_EQ(labyrinth_free_pages(p, block), LABYRINTH_OK);
}
