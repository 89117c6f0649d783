// The inline fast path (labyrinth_alloc_page_inline / labyrinth_free_page_inline):
// same results as the library calls, the same refusals, and no stale state
// when a pool dies and another takes its address.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "test_util.hpp"

using namespace labtest;

// The structs the inline code reads are compiled into callers (ABI 1.x,
// docs/abi.md): their fields keep these offsets for all of major version 1.
// A change here is an incompatible change, not a test to update.
static_assert(sizeof(labyrinth_fast_record) == 64 && offsetof(labyrinth_fast_record, pool) == 0 &&
                  offsetof(labyrinth_fast_record, cache) == 8 && offsetof(labyrinth_fast_record, side_table) == 16 &&
                  offsetof(labyrinth_fast_record, arena) == 24 && offsetof(labyrinth_fast_record, arena_pages) == 32 &&
                  offsetof(labyrinth_fast_record, alloc_word) == 40 && offsetof(labyrinth_fast_record, reserved) == 48,
              "labyrinth_fast_record (ABI 1.x)");
static_assert(sizeof(labyrinth_order_slots) == 64 && offsetof(labyrinth_order_slots, count) == 0 &&
                  offsetof(labyrinth_order_slots, limit) == 4 && offsetof(labyrinth_order_slots, blocks) == 8 &&
                  LABYRINTH_ORDER_CACHE_SLOTS == 7,
              "labyrinth_order_slots (ABI 1.x)");
// The page slots follow labyrinth_thread_cache, at 704 bytes.
static_assert(offsetof(labyrinth_thread_cache, count) == 0 && offsetof(labyrinth_thread_cache, limit) == 4 &&
                  offsetof(labyrinth_thread_cache, capacity) == 8 && offsetof(labyrinth_thread_cache, order_hint) == 12 &&
                  offsetof(labyrinth_thread_cache, reserved) == 16 && offsetof(labyrinth_thread_cache, orders) == 64 &&
                  sizeof(labyrinth_thread_cache) == 64 + 64 * LABYRINTH_MAX_ORDER,
              "labyrinth_thread_cache (ABI 1.x)");
static_assert(LABYRINTH_SIDE_CACHED_V1 == 4 && LABYRINTH_SIDE_ALLOC_V1 == 2 && LABYRINTH_SIDE_OWNER_SHIFT_V1 == 16,
              "side-table words the inline code reads (ABI 1.x)");

// What the record shows a thread that used a pool: its cache, with the
// order cache's limits raised by the library as frees need them.
TEST(Inline, TheRecordDescribesTheThreadsCache) {
  PoolGuard p(options(16u << 20));
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(page, nullptr);
  const labyrinth_fast_record &r = labyrinth_thread_fast;
  ASSERT_EQ(r.pool, static_cast<const labyrinth_pool *>(p));
  ASSERT_NE(r.cache, nullptr);
  EXPECT_EQ(r.arena_pages, (16u << 20) / 4096);
  EXPECT_LE(r.arena, reinterpret_cast<std::uintptr_t>(page));
  EXPECT_EQ(r.side_table[(reinterpret_cast<std::uintptr_t>(page) - r.arena) >> 12], r.alloc_word);
  const std::uint32_t n = r.cache->count;
  ASSERT_EQ(labyrinth_free_pages(p, page), LABYRINTH_OK);
  EXPECT_EQ(r.cache->count, n + 1);
  EXPECT_EQ(labyrinth_cache_pages_v1_(r.cache)[n], page);
  EXPECT_LE(r.cache->count, r.cache->capacity);
  void *b = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages_order(p, b, 3), LABYRINTH_OK);
  const labyrinth_order_slots &o3 = r.cache->orders[3 - 1];
  EXPECT_EQ(o3.count, 1u);
  EXPECT_GE(o3.limit, 1u);
  EXPECT_EQ(o3.blocks[0], b);
  EXPECT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
  EXPECT_EQ(o3.count, 0u);
  EXPECT_EQ(r.cache->order_hint, 3u);
  std::uint64_t promised = 0;
  for (unsigned k = 1; k <= LABYRINTH_MAX_ORDER; ++k) promised += std::uint64_t{r.cache->orders[k - 1].limit} << k;
  EXPECT_LE(promised, (16u << 20) / 4096 / 32);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
}

TEST(Inline, InteroperatesWithTheLibraryCalls) {
  labyrinth_pool_options o = options(1u << 20);
  PoolGuard p(o);
  std::vector<void *> pages;
  for (int i = 0; i < 100; ++i) {
    void *pg = (i % 2) ? labyrinth_alloc_page_inline(p) : labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr);
    labyrinth_owner owner = 0;
    ASSERT_EQ(labyrinth_page_info(p, pg, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
    pages.push_back(pg);
  }
  for (std::size_t i = 0; i < pages.size(); ++i)
    ASSERT_EQ((i % 3) ? labyrinth_free_page_inline(p, pages[i]) : labyrinth_free_pages(p, pages[i]), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_free_page_inline(p, pages[0]), LABYRINTH_ERR_DOUBLE_FREE);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// By name, the flagship calls compile to the inline common case (labyrinth.h,
// LABYRINTH_INLINE_CALLS); their exported symbols stay, reached through
// function pointers and the header's second names for them. All three mix.
TEST(Inline, CallsByNameAndOutOfLineAgree) {
#ifndef LABYRINTH_INLINE_CALLS
  GTEST_SKIP() << "built with LABYRINTH_NO_INLINE_CALLS";
#else
  labyrinth_pool_options o = options(1u << 20);
  PoolGuard p(o);
  void *(*volatile alloc_fp)(labyrinth_pool *) = &labyrinth_void_alloc_page_gfp_atomic_exclusive;
  labyrinth_status (*volatile free_fp)(labyrinth_pool *, void *) = &labyrinth_free_pages;
  std::vector<void *> pages;
  for (int i = 0; i < 90; ++i) {
    void *pg = i % 3 == 0 ? labyrinth_void_alloc_page_gfp_atomic_exclusive(p)
               : i % 3 == 1 ? alloc_fp(p)
                            : labyrinth_call_alloc_page_v1_(p);
    ASSERT_NE(pg, nullptr) << i;
    labyrinth_owner owner = 0;
    ASSERT_EQ(labyrinth_page_info(p, pg, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
    pages.push_back(pg);
  }
  for (std::size_t i = 0; i < pages.size(); ++i) {
    labyrinth_status st = i % 3 == 2 ? labyrinth_free_pages(p, pages[i])
                          : i % 3 == 0 ? free_fp(p, pages[i])
                                       : labyrinth_call_free_pages_v1_(p, pages[i]);
    ASSERT_EQ(st, LABYRINTH_OK) << i;
  }
  EXPECT_EQ(labyrinth_free_pages(p, pages[0]), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_EQ(free_fp(p, pages[1]), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_EQ(labyrinth_void_alloc_page_gfp_atomic_exclusive(nullptr), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(alloc_fp(nullptr), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  expect_accounting(s);
#endif
}

// Blocks of order >= 1: the inline labyrinth_alloc_pages (ATOMIC|EXCLUSIVE)
// and the inline free use the thread's order cache; the library's entry
// points use the same cache. Mixed, a block comes back to the same thread
// whichever way it was freed, and misuse is refused either way.
TEST(Inline, OrderBlocksByNameAndOutOfLineAgree) {
#ifndef LABYRINTH_INLINE_CALLS
  GTEST_SKIP() << "built with LABYRINTH_NO_INLINE_CALLS";
#else
  labyrinth_pool_options o = options(64u << 20);
  PoolGuard p(o);
  const labyrinth_gfp ae = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
  for (unsigned order = 1; order <= 8; ++order) {
    void *b = nullptr, *again = nullptr, *third = nullptr;
    ASSERT_EQ(labyrinth_call_alloc_pages_v1_(p, order, ae, 0, &b), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);  // inline: into the order cache
    ASSERT_EQ(labyrinth_alloc_pages(p, order, ae, 0, &again), LABYRINTH_OK);  // inline pop
    EXPECT_EQ(again, b) << order;
    labyrinth_owner who = 0;
    unsigned got = 0;
    ASSERT_EQ(labyrinth_page_info(p, again, &who, &got), LABYRINTH_OK);
    EXPECT_EQ(who, labyrinth_owner_self());
    EXPECT_EQ(got, order);
    ASSERT_EQ(labyrinth_call_free_pages_v1_(p, again), LABYRINTH_OK);  // library: same cache
    EXPECT_EQ(labyrinth_free_pages(p, again), LABYRINTH_ERR_DOUBLE_FREE);
    EXPECT_EQ(labyrinth_call_free_pages_v1_(p, again), LABYRINTH_ERR_DOUBLE_FREE);
    EXPECT_EQ(labyrinth_free_pages(p, static_cast<char *>(again) + 4096), LABYRINTH_ERR_DOUBLE_FREE);
    ASSERT_EQ(labyrinth_alloc_pages(p, order, ae, 0, &third), LABYRINTH_OK);
    EXPECT_EQ(third, b) << order;
    std::thread([&] { EXPECT_EQ(labyrinth_free_pages(p, third), LABYRINTH_ERR_NOT_OWNER); }).join();
    ASSERT_EQ(labyrinth_free_pages(p, third), LABYRINTH_OK);
    expect_accounting(stats(p));
  }
  // Flags the inline code does not handle go to the library.
  void *z = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 2, ae | LABYRINTH_GFP_ZERO, 0, &z), LABYRINTH_OK);
  EXPECT_EQ(static_cast<unsigned char *>(z)[3 * 4096 + 17], 0);
  ASSERT_EQ(labyrinth_free_pages(p, z), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_alloc_pages(p, LABYRINTH_MAX_ORDER + 1, ae, 0, &z), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_alloc_pages(p, 1, ae, 0, nullptr), LABYRINTH_ERR_INVALID);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
#endif
}

// labyrinth_free_pages_order by name (inline), through a function pointer and
// through its second name (an exported alias) all agree, for pages and
// blocks, and all refuse a wrong order.
TEST(Inline, SizedFreeByNameAndOutOfLineAgree) {
#ifndef LABYRINTH_INLINE_CALLS
  GTEST_SKIP() << "built with LABYRINTH_NO_INLINE_CALLS";
#else
  labyrinth_pool_options o = options(64u << 20);
  PoolGuard p(o);
  const labyrinth_gfp ae = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
  labyrinth_status (*volatile free_fp)(labyrinth_pool *, void *, unsigned) = &labyrinth_free_pages_order;
  for (unsigned order = 0; order <= 8; ++order) {
    for (int way = 0; way < 3; ++way) {
      void *b = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, ae, 0, &b), LABYRINTH_OK);
      auto sized_free = [&](void *x, unsigned ord) {
        return way == 0 ? labyrinth_free_pages_order(p, x, ord)
               : way == 1 ? free_fp(p, x, ord)
                          : labyrinth_call_free_pages_order_v1_(p, x, ord);
      };
      EXPECT_EQ(sized_free(b, order + 1), LABYRINTH_ERR_INVALID) << order << " " << way;
      if (order > 0) {
        EXPECT_EQ(sized_free(b, order - 1), LABYRINTH_ERR_INVALID) << order << " " << way;
      }
      ASSERT_EQ(sized_free(b, order), LABYRINTH_OK) << order << " " << way << ": " << last_message();
      EXPECT_EQ(sized_free(b, order), LABYRINTH_ERR_DOUBLE_FREE) << order << " " << way;
      void *again = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, ae, 0, &again), LABYRINTH_OK);
      EXPECT_EQ(again, b) << order << " " << way;  // it went to this thread's cache
      ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
    }
    expect_accounting(stats(p));
  }
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
#endif
}

// labyrinth_page_transfer by name (inline) and out of line agree: the new
// owner may free, the old one may not, and every refusal is the library's.
TEST(Inline, TransferByNameAndOutOfLineAgree) {
#ifndef LABYRINTH_INLINE_CALLS
  GTEST_SKIP() << "built with LABYRINTH_NO_INLINE_CALLS";
#else
  labyrinth_pool_options o = options(16u << 20);
  PoolGuard p(o);
  const labyrinth_gfp ae = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
  labyrinth_owner other = 0;
  std::thread([&] { other = labyrinth_owner_self(); }).join();  // an id no live thread has
  for (unsigned order : {0u, 3u}) {
    for (int way = 0; way < 2; ++way) {
      auto transfer = [&](void *x, labyrinth_owner to) {
        return way == 0 ? labyrinth_page_transfer(p, x, to) : labyrinth_call_page_transfer_v1_(p, x, to);
      };
      void *b = nullptr, *shared = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, ae, 0, &b), LABYRINTH_OK);
      ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_ATOMIC, 0, &shared), LABYRINTH_OK);
      EXPECT_EQ(transfer(b, LABYRINTH_OWNER_NONE), LABYRINTH_ERR_INVALID);
      EXPECT_EQ(transfer(b, LABYRINTH_OWNER_MAX + 1), LABYRINTH_ERR_INVALID);
      EXPECT_EQ(transfer(shared, other), LABYRINTH_ERR_INVALID);
      EXPECT_EQ(transfer(static_cast<char *>(b) + 64, other), LABYRINTH_ERR_INVALID);
      ASSERT_EQ(transfer(b, other), LABYRINTH_OK) << order << " " << way;
      labyrinth_owner who = 0;
      unsigned got = 99;
      ASSERT_EQ(labyrinth_page_info(p, b, &who, &got), LABYRINTH_OK);
      EXPECT_EQ(who, other);
      EXPECT_EQ(got, order);
      EXPECT_EQ(transfer(b, labyrinth_owner_self()), LABYRINTH_ERR_NOT_OWNER);
      EXPECT_EQ(labyrinth_free_pages(p, b), LABYRINTH_ERR_NOT_OWNER);
      ASSERT_EQ(labyrinth_free_pages(p, shared), LABYRINTH_OK);
      // `other` has exited: its block is an orphan, which reclaim frees.
      std::size_t reclaimed = 0;
      ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &reclaimed), LABYRINTH_OK);
      EXPECT_EQ(reclaimed, 1u);
    }
  }
  expect_accounting(stats(p));
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
#endif
}

TEST(Inline, RefusesWhatTheLibraryRefuses) {
  PoolGuard p(1u << 20);
  void *pg = labyrinth_alloc_page_inline(p);
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(labyrinth_alloc_page_inline(nullptr), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_page_inline(nullptr, pg), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_page_inline(p, static_cast<char *>(pg) + 8), LABYRINTH_ERR_INVALID);
  int x;
  EXPECT_EQ(labyrinth_free_page_inline(p, &x), LABYRINTH_ERR_FOREIGN);
  std::thread([&] { EXPECT_EQ(labyrinth_free_page_inline(p, pg), LABYRINTH_ERR_NOT_OWNER); }).join();
  void *block = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &block), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_free_page_inline(p, static_cast<char *>(block) + 4096), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_page_inline(p, block), LABYRINTH_OK);  // order 1: the library path
  EXPECT_EQ(labyrinth_free_page_inline(p, pg), LABYRINTH_OK);
}

TEST(Inline, PressureSendsInlineFreesToTheDepot) {
  labyrinth_pool_options o = options(4u << 20);
  o.atomic_reserve_pages = 0;
  o.watermark_low_pages = 1000;
  o.watermark_high_pages = 1024;
  PoolGuard p(o);
  std::vector<void *> pages;
  while (void *pg = labyrinth_alloc_page_inline(p)) pages.push_back(pg);
  ASSERT_EQ(pages.size(), 1024u);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(labyrinth_free_page_inline(p, pages[i]), LABYRINTH_OK);
  EXPECT_EQ(stats(p).cached_pages, 0u);
  EXPECT_EQ(stats(p).free_pages, 10u);
  for (std::size_t i = 10; i < pages.size(); ++i) ASSERT_EQ(labyrinth_free_page_inline(p, pages[i]), LABYRINTH_OK);
  // Pressure is over once enough came back: frees are cached again.
  void *pg = labyrinth_alloc_page_inline(p);
  ASSERT_EQ(labyrinth_free_page_inline(p, pg), LABYRINTH_OK);
  EXPECT_GT(stats(p).cached_pages, 0u);
}

TEST(Inline, ADestroyedPoolsAddressReusedByAnotherPoolIsNotMistaken) {
  // A helper thread uses pool A inline (its record names A), A is destroyed
  // and B is created, often at A's address. The helper's next inline call on
  // B must give B's pages, not A's dead cache.
  std::mutex mu;
  std::condition_variable cv;
  int step = 0;
  labyrinth_pool *current = nullptr;
  void *got = nullptr;
  std::thread helper([&] {
    for (int round = 0; round < 20; ++round) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return step == 2 * round + 1; });
      got = labyrinth_alloc_page_inline(current);
      if (got) labyrinth_free_page_inline(current, got);
      ++step;
      cv.notify_all();
    }
    // Stay alive (and keep our caches) until the last round is checked.
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return step == 41; });
  });
  int same_address = 0;
  labyrinth_pool *previous = nullptr;
  for (int round = 0; round < 20; ++round) {
    labyrinth_pool_options o = options(1u << 20);
    labyrinth_pool *pool = nullptr;
    ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK);
    same_address += pool == previous;
    void *base = nullptr;
    std::size_t size = 0;
    ASSERT_EQ(labyrinth_pool_arena(pool, &base, &size), LABYRINTH_OK);
    // Who claims the pool's first cache alternates: in odd rounds we do, so a
    // helper still holding a record for the previous pool (where it had the
    // first cache) would reach into *our* cache at the same address and never
    // claim its own.
    void *mine = nullptr;
    if (round % 2) mine = labyrinth_alloc_page_inline(pool);
    {
      std::unique_lock<std::mutex> lock(mu);
      current = pool;
      ++step;
      cv.notify_all();
      cv.wait(lock, [&] { return step == 2 * round + 2; });
    }
    if (!mine) mine = labyrinth_alloc_page_inline(pool);
    ASSERT_NE(mine, nullptr);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(stats(pool).thread_caches_in_use, 2u) << "the helper used a stale cache in round " << round << (pool == previous ? " (same address)" : "");
    ASSERT_EQ(labyrinth_free_page_inline(pool, mine), LABYRINTH_OK);
    EXPECT_GE(static_cast<char *>(got), static_cast<char *>(base));
    EXPECT_LT(static_cast<char *>(got), static_cast<char *>(base) + size);
    // The helper's cache still holds pages of this pool: destroy needs no force.
    ASSERT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_message();
    previous = pool;
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    step = 41;
  }
  cv.notify_all();
  helper.join();
  std::printf("[info] %d of 20 pools reused the previous pool's address\n", same_address);
}
