// Order caches: blocks of order 1..10 freed by a thread are kept for its next
// allocation of that order. What they promise: the same block comes back
// (one side-table store, no mutex), every misuse of a cached block is still
// refused, the pages are counted as cached, the cache is bounded
// (LABYRINTH_ORDER_CACHE_SLOTS blocks per order, 1/32 of the pool or one
// largest block, nothing while under pressure), and it gives
// its blocks back on trim and on thread exit, and carves its own thread's
// allocations out of them when nothing else is left (never changing the pool
// for an allocation that fails anyway).
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "test_util.hpp"

namespace {
constexpr unsigned kSlots = LABYRINTH_ORDER_CACHE_SLOTS;

bool membarrier_available() {
  const long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0U, 0);
  return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}
}

using namespace labtest;

namespace {

constexpr labyrinth_gfp kAE = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;

void *alloc(labyrinth_pool *p, unsigned order, labyrinth_gfp gfp = kAE) {
  void *b = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(p, order, gfp, 0, &b), LABYRINTH_OK) << last_message();
  return b;
}

}  // namespace

// Fast pools (the inline record names them) and a SCRUB pool (general path).
class OrderCache : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  labyrinth_pool_options opts(std::size_t bytes) {
    labyrinth_pool_options o = options(bytes);
    o.flags |= GetParam();
    return o;
  }
};

TEST_P(OrderCache, FreedBlockComesBackToItsThread) {
  // 256 MiB: 2048 pages may be cached, one block of every order (2046 pages).
  labyrinth_pool_options o = opts(256u << 20);
  PoolGuard p(o);
  for (unsigned order = 1; order <= LABYRINTH_MAX_ORDER; ++order) {
    void *b = alloc(p, order);
    ASSERT_NE(b, nullptr);
    std::memset(b, 0x5A, std::size_t{4096} << order);
    labyrinth_stats before = stats(p);
    ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    labyrinth_stats s = stats(p);
    EXPECT_EQ(s.cached_pages, before.cached_pages + (1u << order)) << "order " << order;
    EXPECT_EQ(s.allocated_pages, before.allocated_pages - (1u << order));
    expect_accounting(s);
    void *again = alloc(p, order);
    EXPECT_EQ(again, b) << "order " << order;
    labyrinth_owner who = 0;
    unsigned got_order = 99;
    ASSERT_EQ(labyrinth_page_info(p, again, &who, &got_order), LABYRINTH_OK);
    EXPECT_EQ(who, labyrinth_owner_self());
    EXPECT_EQ(got_order, order);
    expect_accounting(stats(p));
    ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
  }
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 0u);
  expect_maximal(p, o);
}

TEST_P(OrderCache, ZeroFlagStillZeroesACachedBlock) {
  PoolGuard p(opts(16u << 20));
  void *b = alloc(p, 2);
  std::memset(b, 0xEE, 4 * 4096);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  void *z = alloc(p, 2, kAE | LABYRINTH_GFP_ZERO);
  ASSERT_EQ(z, b);
  for (std::size_t i = 0; i < 4 * 4096; ++i) ASSERT_EQ(static_cast<unsigned char *>(z)[i], 0) << i;
  ASSERT_EQ(labyrinth_free_pages(p, z), LABYRINTH_OK);
}

TEST_P(OrderCache, MisuseOfACachedBlockIsRefusedAndChangesNothing) {
  PoolGuard p(opts(16u << 20));
  void *b = alloc(p, 3);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(labyrinth_free_pages(p, b), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find("already free"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_free_pages(p, static_cast<char *>(b) + 4096), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find("of the free order-3 block"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_page_transfer(p, b, labyrinth_owner_self()), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_EQ(labyrinth_page_info(p, b, nullptr, nullptr), LABYRINTH_ERR_DOUBLE_FREE);
  labyrinth_stats t = stats(p);
  EXPECT_EQ(t.cached_pages, s.cached_pages);
  EXPECT_EQ(t.allocated_pages, s.allocated_pages);
  // Still handed out exactly once.
  void *x = alloc(p, 3);
  EXPECT_EQ(x, b);
  void *y = alloc(p, 3);
  EXPECT_NE(y, b);
  ASSERT_EQ(labyrinth_free_pages(p, x), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, y), LABYRINTH_OK);
}

TEST_P(OrderCache, AnotherThreadCannotFreeOrTakeIt) {
  PoolGuard p(opts(16u << 20));
  void *b = alloc(p, 4);
  labyrinth_status st = LABYRINTH_OK;
  std::thread([&] { st = labyrinth_free_pages(p, b); }).join();
  EXPECT_EQ(st, LABYRINTH_ERR_NOT_OWNER);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  // Cached for this thread only: another thread's order-4 block is another one.
  void *other = nullptr;
  std::thread([&] {
    other = alloc(p, 4);
    EXPECT_EQ(labyrinth_free_pages(p, other), LABYRINTH_OK);
  }).join();
  EXPECT_NE(other, b);
  // The other thread exited: its cache went back to the buddy allocator.
  EXPECT_EQ(stats(p).cached_pages, 16u);
  EXPECT_EQ(alloc(p, 4), b);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
}

TEST_P(OrderCache, IsBounded) {
  // 16 MiB = 4096 pages: at most 128 pages cached, kSlots blocks per order.
  // (expect_maximal below compares with a default pool: flags do not change the blocks.)
  PoolGuard p(opts(16u << 20));
  std::vector<void *> v;
  for (unsigned i = 0; i < kSlots + 1; ++i) v.push_back(alloc(p, 1));
  for (void *b : v) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, kSlots * 2);
  v.clear();
  for (int i = 0; i < 3; ++i) v.push_back(alloc(p, 6));  // 64 pages each
  for (void *b : v) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  // The second order-6 block pushed the order-1 blocks out (the newest
  // free wins); the third found nothing of another order left to push out.
  EXPECT_EQ(stats(p).cached_pages, 128u);
  void *big = alloc(p, 8);  // 256 pages: never cached in this pool
  ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 128u);
  expect_accounting(s);
  void *x = alloc(p, 6), *y = alloc(p, 6);
  EXPECT_TRUE((x == v[0] || x == v[1]) && (y == v[0] || y == v[1]) && x != y);
  EXPECT_EQ(stats(p).cached_pages, 0u);
  ASSERT_EQ(labyrinth_free_pages(p, x), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, y), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, options(16u << 20));
}

TEST_P(OrderCache, GivesWayWhenItsThreadRunsOut) {
  // 8 MiB: 2048 pages, 64 of them may sit in the order cache.
  labyrinth_pool_options o = opts(8u << 20);
  o.watermark_low_pages = 0;
  o.watermark_high_pages = 0;
  PoolGuard p(o);
  void *b = alloc(p, 6);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  ASSERT_EQ(stats(p).cached_pages, 64u);
  // Every page can still be had, one at a time, ATOMIC.
  std::vector<void *> v;
  for (;;) {
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    if (!pg) break;
    v.push_back(pg);
  }
  EXPECT_EQ(v.size(), 2048u);
  for (void *pg : v) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  // And the largest block, with small blocks cached first.
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  void *s1 = alloc(p, 1);
  ASSERT_EQ(labyrinth_free_pages(p, s1), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST_P(OrderCache, CarvesFromALargerBlockAndAFailureChangesNothing) {
  labyrinth_pool_options o = opts(16u << 20);  // 4096 pages, 128 may be in the order cache
  o.watermark_low_pages = 0;
  o.watermark_high_pages = 0;
  o.atomic_reserve_pages = 0;
  o.thread_cache_pages = 1;  // keep order-0 caching out of the counts
  o.thread_cache_batch = 1;
  PoolGuard p(o);
  const labyrinth_gfp ae = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
  void *big = alloc(p, 6), *small = alloc(p, 1);
  ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, small), LABYRINTH_OK);
  ASSERT_EQ(stats(p).cached_pages, 66u);
  // Empty the buddy allocator.
  std::vector<void *> v;
  while (stats(p).free_pages > 0) {
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr) << last_message();
    v.push_back(pg);
  }
  // Order 3: nothing free but the cache, whose smallest block larger than
  // order 3 is the order-6 one.
  void *b3 = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 3, ae, 0, &b3), LABYRINTH_OK) << last_message();
  const auto lo = reinterpret_cast<std::uintptr_t>(big), at = reinterpret_cast<std::uintptr_t>(b3);
  EXPECT_TRUE(at >= lo && at < lo + 64 * 4096) << "order 3 was not carved from the cached order-6 block";
  labyrinth_stats s = stats(p);
  EXPECT_LE(s.cached_pages, 2u + 1u);  // the order-1 block (and at most one order-0 page)
  EXPECT_EQ(s.free_pages, 64u - 8u);   // the rest of the order-6 block, in the buddy
  expect_accounting(s);
  // Order 6: neither the buddy (largest order 5 now) nor the cache (only a
  // smaller block) can give it. The failure changes nothing.
  labyrinth_stats before = stats(p);
  void *none = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(p, 6, ae, 0, &none), LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(labyrinth_alloc_pages(p, 6, LABYRINTH_GFP_EXCLUSIVE, 0, &none), LABYRINTH_ERR_NOMEM);
  labyrinth_stats after = stats(p);
  EXPECT_EQ(after.free_pages, before.free_pages);
  EXPECT_EQ(after.cached_pages, before.cached_pages);
  EXPECT_EQ(after.allocated_pages, before.allocated_pages);
  for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k) EXPECT_EQ(after.free_blocks[k], before.free_blocks[k]);
  ASSERT_EQ(labyrinth_free_pages(p, b3), LABYRINTH_OK);
  for (void *pg : v) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST_P(OrderCache, NothingIsCachedUnderPressure) {
  labyrinth_pool_options o = opts(16u << 20);
  o.watermark_low_pages = 4096;  // always below the low mark: always under pressure
  o.watermark_high_pages = 4096;
  PoolGuard p(o);
  void *b = alloc(p, 2);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 0u);
}

TEST_P(OrderCache, SharedBlocksToo) {
  PoolGuard p(opts(16u << 20));
  void *b = alloc(p, 2, LABYRINTH_GFP_ATOMIC);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  void *again = alloc(p, 2, LABYRINTH_GFP_ATOMIC);
  EXPECT_EQ(again, b);
  labyrinth_owner who = 99;
  ASSERT_EQ(labyrinth_page_info(p, again, &who, nullptr), LABYRINTH_OK);
  EXPECT_EQ(who, LABYRINTH_OWNER_NONE);
  // A shared block may be freed by any thread; it then goes to that thread's cache.
  labyrinth_status st = LABYRINTH_ERR_SYSTEM;
  std::thread([&] { st = labyrinth_free_pages(p, again); }).join();
  EXPECT_EQ(st, LABYRINTH_OK);
  expect_accounting(stats(p));
}

// Each order has a limit of blocks, and the limits together stay within the
// budget (1/32 of a pool under 64 MiB): an order's limit that its blocks no longer use
// must not keep another order's block out.
TEST_P(OrderCache, UnusedLimitsGiveWayToOtherOrders) {
  PoolGuard p(opts(16u << 20));  // budget: 128 pages
  void *a = alloc(p, 6), *b = alloc(p, 6);
  ASSERT_EQ(labyrinth_free_pages(p, a), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  ASSERT_EQ(stats(p).cached_pages, 128u);  // order 6 now has a limit of two blocks
  a = alloc(p, 6);
  b = alloc(p, 6);
  ASSERT_EQ(stats(p).cached_pages, 0u);
  void *c = alloc(p, 5);
  ASSERT_EQ(labyrinth_free_pages(p, c), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 32u);
  ASSERT_EQ(labyrinth_free_pages(p, a), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 96u);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);  // over budget: the order-5 block goes
  EXPECT_EQ(stats(p).cached_pages, 128u);
  expect_accounting(stats(p));
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, options(16u << 20));
}

namespace {
// Every block of the largest order the pool gives, ATOMIC|EXCLUSIVE (the
// watermarks at 0: nothing is held back).
std::vector<void *> take_every_largest_block(labyrinth_pool *p) {
  std::vector<void *> held;
  for (void *b; labyrinth_alloc_pages(p, LABYRINTH_MAX_ORDER, kAE, 0, &b) == LABYRINTH_OK;) held.push_back(b);
  return held;
}

labyrinth_pool_options no_watermarks(labyrinth_pool_options o) {
  o.watermark_min_pages = o.watermark_low_pages = o.watermark_high_pages = 0;
  return o;
}
}  // namespace

// The budget is raised to one block of the largest order where that block
// is at most 1/16 of the pool (pools from 64 MiB): a 64 MiB pool keeps a
// freed 4 MiB block, a 32 MiB pool gives it to the buddy allocator.
TEST_P(OrderCache, PoolsFrom64MiBKeepOneLargestBlock) {
  for (const std::size_t mib : {32u, 64u}) {
    SCOPED_TRACE(std::to_string(mib) + " MiB");
    PoolGuard p(no_watermarks(opts(mib << 20)));
    std::vector<void *> held = take_every_largest_block(p);
    ASSERT_GE(held.size(), mib / 4 - 1);
    void *last = held.back();
    held.pop_back();
    ASSERT_EQ(labyrinth_free_pages(p, last), LABYRINTH_OK);
    EXPECT_EQ(stats(p).cached_pages, mib == 64 ? 1u << LABYRINTH_MAX_ORDER : 0u);
    expect_accounting(stats(p));
    EXPECT_EQ(alloc(p, LABYRINTH_MAX_ORDER), last);
    held.push_back(last);
    for (void *b : held) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
    expect_accounting(stats(p));
  }
}

// A kept largest block stays the pool's: with every other largest block
// taken, another thread's allocation that may block takes it back
// (reclaim_caches).
TEST_P(OrderCache, AKeptLargestBlockIsTakenBackForAnotherThread) {
  if (!membarrier_available())
    GTEST_SKIP() << "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available: reclaiming other "
                    "threads' caches is off on this kernel";
  PoolGuard p(no_watermarks(opts(64u << 20)));
  std::vector<void *> held = take_every_largest_block(p);
  ASSERT_FALSE(held.empty());
  void *last = held.back();
  held.pop_back();
  ASSERT_EQ(labyrinth_free_pages(p, last), LABYRINTH_OK);
  ASSERT_EQ(stats(p).cached_pages, 1u << LABYRINTH_MAX_ORDER);
  void *theirs = nullptr;
  labyrinth_status st = LABYRINTH_ERR_INVALID;
  std::thread([&] { st = labyrinth_alloc_pages(p, LABYRINTH_MAX_ORDER, LABYRINTH_GFP_EXCLUSIVE, 0, &theirs); })
      .join();
  EXPECT_EQ(st, LABYRINTH_OK) << last_message();
  EXPECT_EQ(theirs, last);
  EXPECT_EQ(stats(p).cached_pages, 0u);
  std::size_t orphans = 0;  // the block's owner has exited
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &orphans), LABYRINTH_OK);
  EXPECT_EQ(orphans, 1u);
  for (void *b : held) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  expect_accounting(stats(p));
}

// labyrinth_free_pages tries the order of the block last taken from the
// order cache first (the cache's order_hint). Blocks of other orders, and
// a hint that is stale (after a trim, or for an order whose slots are full),
// must take the general route to the same result.
TEST_P(OrderCache, UnsizedFreeOfBlocksOfOtherOrdersThanTheLastTaken) {
  PoolGuard p(opts(256u << 20));
  std::vector<void *> v;
  for (unsigned order = 1; order <= 5; ++order) v.push_back(alloc(p, order));
  for (unsigned order = 1; order <= 5; ++order) {  // the hint is 5: wrong for all but the last
    labyrinth_stats before = stats(p);
    ASSERT_EQ(labyrinth_free_pages(p, v[order - 1]), LABYRINTH_OK) << last_message();
    EXPECT_EQ(stats(p).cached_pages, before.cached_pages + (1u << order)) << order;
  }
  for (unsigned order = 5; order >= 1; --order) EXPECT_EQ(alloc(p, order), v[order - 1]) << order;
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);  // the hint (1) now names an empty order
  for (unsigned order = 1; order <= 5; ++order)
    ASSERT_EQ(labyrinth_free_pages(p, v[order - 1]), LABYRINTH_OK) << order;
  expect_accounting(stats(p));
  // Full slots for the hinted order: the last order-2 block goes to the buddy allocator.
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  v.clear();
  for (unsigned i = 0; i < kSlots + 1; ++i) v.push_back(alloc(p, 2));
  for (void *b : v) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, kSlots * 4);
  expect_accounting(stats(p));
}

// labyrinth_free_pages_order: the caller states the order. The right order
// takes the same route as labyrinth_free_pages (order cache, page cache);
// a wrong one is refused and changes nothing, whichever way it is wrong.
TEST_P(OrderCache, SizedFreeTakesTheSameRoute) {
  labyrinth_pool_options o = opts(256u << 20);
  PoolGuard p(o);
  for (unsigned order = 0; order <= LABYRINTH_MAX_ORDER; ++order) {
    void *b = alloc(p, order);
    ASSERT_NE(b, nullptr);
    labyrinth_stats before = stats(p);
    ASSERT_EQ(labyrinth_free_pages_order(p, b, order), LABYRINTH_OK) << last_message();
    labyrinth_stats s = stats(p);
    EXPECT_EQ(s.cached_pages, before.cached_pages + (1u << order)) << "order " << order;
    EXPECT_EQ(s.allocated_pages, before.allocated_pages - (1u << order));
    expect_accounting(s);
    EXPECT_EQ(alloc(p, order), b) << "order " << order;
    ASSERT_EQ(labyrinth_free_pages_order(p, b, order), LABYRINTH_OK);
    EXPECT_EQ(labyrinth_free_pages_order(p, b, order), LABYRINTH_ERR_DOUBLE_FREE);
  }
  // A shared block, freed with its order by another thread.
  void *sh = alloc(p, 2, LABYRINTH_GFP_ATOMIC);
  labyrinth_status st = LABYRINTH_ERR_SYSTEM;
  std::thread([&] { st = labyrinth_free_pages_order(p, sh, 2); }).join();
  EXPECT_EQ(st, LABYRINTH_OK) << last_message();
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST_P(OrderCache, SizedFreeWithTheWrongOrderIsRefusedAndChangesNothing) {
  PoolGuard p(opts(16u << 20));
  void *page = alloc(p, 0);
  void *b = alloc(p, 3);
  labyrinth_stats s = stats(p);
  for (unsigned wrong : {0u, 2u, 4u}) {
    EXPECT_EQ(labyrinth_free_pages_order(p, b, wrong), LABYRINTH_ERR_INVALID) << wrong;
    EXPECT_NE(last_message().find("is an order-3 block, not order " + std::to_string(wrong)),
              std::string::npos)
        << last_message();
  }
  EXPECT_EQ(labyrinth_free_pages_order(p, page, 1), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("is an order-0 block, not order 1"), std::string::npos)
      << last_message();
  EXPECT_EQ(labyrinth_free_pages_order(p, b, LABYRINTH_MAX_ORDER + 1), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("above the maximum"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_free_pages_order(p, static_cast<char *>(b) + 4096, 0), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_pages_order(p, static_cast<char *>(b) + 8, 3), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_pages_order(nullptr, b, 3), LABYRINTH_ERR_INVALID);
  labyrinth_status st = LABYRINTH_OK;
  std::thread([&] { st = labyrinth_free_pages_order(p, b, 3); }).join();
  EXPECT_EQ(st, LABYRINTH_ERR_NOT_OWNER);
  labyrinth_stats t = stats(p);
  EXPECT_EQ(t.allocated_pages, s.allocated_pages);
  EXPECT_EQ(t.cached_pages, s.cached_pages);
  labyrinth_owner who = 0;
  unsigned got = 99;
  ASSERT_EQ(labyrinth_page_info(p, b, &who, &got), LABYRINTH_OK);
  EXPECT_EQ(who, labyrinth_owner_self());
  EXPECT_EQ(got, 3u);
  ASSERT_EQ(labyrinth_free_pages_order(p, b, 3), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages_order(p, page, 0), LABYRINTH_OK);
  expect_accounting(stats(p));
}

INSTANTIATE_TEST_SUITE_P(Modes, OrderCache,
                         ::testing::Values(0u, std::uint32_t{LABYRINTH_POOL_SCRUB}),
                         [](const ::testing::TestParamInfo<std::uint32_t> &i) {
                           return i.param ? std::string("Scrub") : std::string("Default");
                         });
