// The buddy allocator: every order splits and coalesces; blocks are aligned
// to their size; freeing everything restores the maximal blocks.
#include <algorithm>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "buddy.hpp"
#include "test_util.hpp"

using namespace labtest;

namespace {
std::uintptr_t arena_base(labyrinth_pool *p) {
  void *base = nullptr;
  EXPECT_EQ(labyrinth_pool_arena(p, &base, nullptr), LABYRINTH_OK);
  return reinterpret_cast<std::uintptr_t>(base);
}
}  // namespace

TEST(Buddy, FreshPoolIsMaximal) {
  labyrinth_pool_options o = options(16u << 20);
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.free_blocks[LABYRINTH_MAX_ORDER], 4u);  // 16 MiB = 4 x 4 MiB
  for (int k = 0; k < LABYRINTH_MAX_ORDER; ++k) EXPECT_EQ(s.free_blocks[k], 0u);
}

TEST(Buddy, OddSizedArenaIsCarvedIntoAlignedBlocks) {
  labyrinth_pool_options o = options((1024 + 512 + 3) * 4096ul);
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.free_blocks[10], 1u);
  EXPECT_EQ(s.free_blocks[9], 1u);
  EXPECT_EQ(s.free_blocks[1], 1u);
  EXPECT_EQ(s.free_blocks[0], 1u);
  EXPECT_EQ(s.free_pages, 1024u + 512 + 3);
}

TEST(Buddy, EveryOrderSplitsAlignsAndCoalesces) {
  labyrinth_pool_options o = options(16u << 20);  // room for two order-10 blocks next to the reserve
  PoolGuard p(o);
  const std::uintptr_t base = arena_base(p);
  for (unsigned order = 0; order <= LABYRINTH_MAX_ORDER; ++order) {
    SCOPED_TRACE("order " + std::to_string(order));
    void *a = nullptr, *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &a), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_alloc_pages(p, order, 0, 0, &b), LABYRINTH_OK) << last_message();
    const std::uintptr_t bytes = 4096ul << order;
    auto ua = reinterpret_cast<std::uintptr_t>(a), ub = reinterpret_cast<std::uintptr_t>(b);
    EXPECT_EQ((ua - base) % bytes, 0u);
    EXPECT_EQ(ua % bytes, 0u);  // aligned in memory too (the arena is 4 MiB-aligned)
    EXPECT_TRUE(ua + bytes <= ub || ub + bytes <= ua) << "blocks overlap";
    std::memset(a, 0x5A, bytes);  // the whole block is usable
    std::memset(b, 0xA5, bytes);
    unsigned got_order = 99;
    labyrinth_owner owner = 0;
    ASSERT_EQ(labyrinth_page_info(p, a, &owner, &got_order), LABYRINTH_OK);
    EXPECT_EQ(got_order, order);
    EXPECT_EQ(owner, labyrinth_owner_self());
    ASSERT_EQ(labyrinth_page_info(p, b, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, LABYRINTH_OWNER_NONE);  // not exclusive
    ASSERT_EQ(labyrinth_free_pages(p, a), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
    expect_maximal(p, o);
  }
}

// Fill the pool with a random mix of orders until nothing fits, check no two
// blocks overlap, free in random order, and the pool is maximal again.
TEST(Buddy, RandomFillNeverOverlapsAndFreesBackToMaximal) {
  labyrinth_pool_options o = options(8u << 20);
  PoolGuard p(o);
  std::mt19937 rng(12345);
  for (int round = 0; round < 3; ++round) {
    std::map<std::uintptr_t, std::uintptr_t> blocks;  // start -> end
    std::size_t pages = 0;
    for (int misses = 0; misses < 200;) {
      unsigned order = std::uniform_int_distribution<unsigned>(0, 6)(rng);
      void *b = nullptr;
      labyrinth_gfp gfp = (rng() & 1) ? LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE : LABYRINTH_GFP_EXCLUSIVE;
      if (labyrinth_alloc_pages(p, order, gfp, 0, &b) != LABYRINTH_OK) {
        EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_NOMEM);
        ++misses;
        continue;
      }
      auto s = reinterpret_cast<std::uintptr_t>(b), e = s + (4096ul << order);
      auto next = blocks.lower_bound(s);
      if (next != blocks.end()) {
        ASSERT_LE(e, next->first) << "overlaps the next block";
      }
      if (next != blocks.begin()) {
        ASSERT_LE(std::prev(next)->second, s) << "overlaps the previous block";
      }
      blocks[s] = e;
      pages += std::size_t{1} << order;
      std::memset(b, order, 64);
    }
    labyrinth_stats full = stats(p);
    EXPECT_EQ(full.allocated_pages, pages);
    expect_accounting(full);
    std::vector<std::uintptr_t> order_of_free;
    for (auto &kv : blocks) order_of_free.push_back(kv.first);
    std::shuffle(order_of_free.begin(), order_of_free.end(), rng);
    for (auto s : order_of_free) ASSERT_EQ(labyrinth_free_pages(p, reinterpret_cast<void *>(s)), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
    expect_maximal(p, o);
  }
}

TEST(Buddy, HigherOrderUsesPagesParkedInTheDepot) {
  // Order-0 pages returned by a thread cache sit in the depot, not in
  // the buddy; a large allocation must still find them (the pool merges them
  // on demand). A worker fills and empties the pool, then exits: its cache
  // goes to the depot.
  labyrinth_pool_options o = options(4u << 20);  // exactly one order-10 block
  o.atomic_reserve_pages = 0;
  o.thread_cache_pages = 64;
  o.thread_cache_batch = 16;
  PoolGuard p(o);
  std::thread worker([&] {
    std::vector<void *> pages;
    for (int i = 0; i < 1024; ++i) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(pg, nullptr) << i << ": " << last_message();
      pages.push_back(pg);
    }
    for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  });
  worker.join();
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.shared_free_pages, 1024u);
  EXPECT_EQ(s.cached_pages, 0u);
  EXPECT_EQ(s.free_blocks[10], 0u);
  void *big = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 10, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK) << last_message();
  ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Buddy::alloc_pages (thread-cache refills): whole free blocks, smallest
// first, a larger block split only when nothing smaller fits what is left,
// never more pages than asked, all of them when fewer are free.
TEST(Buddy, AllocPagesTakesWholeBlocksSmallestFirst) {
  constexpr std::size_t kPages = 64;
  std::vector<std::atomic<std::uint64_t>> meta(kPages);
  lab::Buddy b;
  b.init(meta.data(), kPages);  // one block of order 6
  std::size_t zero;
  ASSERT_TRUE(b.alloc(0, &zero));  // page 0; free: 1 (order 0), 2-3, 4-7, 8-15, 16-31, 32-63
  ASSERT_EQ(zero, 0u);
  std::vector<std::pair<std::size_t, std::size_t>> blocks;
  auto emit = [&](std::size_t first, std::size_t pages) { blocks.emplace_back(first, pages); };
  EXPECT_EQ(b.alloc_pages(10, emit), 10u);
  // 1, 2-3 and 4-7 whole; then 8-15 is split for 8-9 and its 10-11 for 10.
  const std::vector<std::pair<std::size_t, std::size_t>> expected = {{1, 1}, {2, 2}, {4, 4}, {8, 2}, {10, 1}};
  EXPECT_EQ(blocks, expected);
  for (auto [first, pages] : blocks) {
    EXPECT_EQ(lab::side::state(meta[first].load()), lab::side::TAKEN) << first;
    for (std::size_t i = 1; i < pages; ++i) EXPECT_EQ(lab::side::state(meta[first + i].load()), lab::side::UNUSED);
  }
  EXPECT_EQ(b.free_pages(), kPages - 11);
  blocks.clear();
  EXPECT_EQ(b.alloc_pages(100, emit), kPages - 11);  // all that is left
  EXPECT_EQ(b.free_pages(), 0u);
  std::size_t total = 0;
  for (auto [first, pages] : blocks) total += pages;
  EXPECT_EQ(total, kPages - 11);
  EXPECT_EQ(b.alloc_pages(1, emit), 0u);
}
