// Every misuse returns its status and a message naming the address, and
// changes nothing: the pool's counts are the same and the pages are intact.
#include <cstdio>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace labtest;

namespace {

// Snapshot of what a misuse must not change.
struct Snapshot {
  labyrinth_stats s;
  explicit Snapshot(labyrinth_pool *p) : s(stats(p)) {}
  void expect_same(labyrinth_pool *p) const {
    labyrinth_stats now = stats(p);
    EXPECT_EQ(now.allocated_pages, s.allocated_pages);
    EXPECT_EQ(now.free_pages, s.free_pages);
    EXPECT_EQ(now.cached_pages, s.cached_pages);
    EXPECT_EQ(now.reserve_pages, s.reserve_pages);
    for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k) EXPECT_EQ(now.free_blocks[k], s.free_blocks[k]);
  }
};

std::string hex(const void *p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

class Misuse : public ::testing::Test {
 protected:
  PoolGuard pool{labtest::options(1u << 20)};
  void *page = nullptr;
  void *block = nullptr;  // order 2
  void SetUp() override {
    page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    ASSERT_NE(page, nullptr);
    std::memset(page, 0x77, 4096);
    ASSERT_EQ(labyrinth_alloc_pages(pool, 2, LABYRINTH_GFP_EXCLUSIVE, 0, &block), LABYRINTH_OK);
  }
  void TearDown() override {
    EXPECT_EQ(static_cast<unsigned char *>(page)[100], 0x77) << "a misuse touched the page";
    EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
    EXPECT_EQ(labyrinth_free_pages(pool, block), LABYRINTH_OK);
  }
};

}  // namespace

TEST_F(Misuse, DoubleFree) {
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  Snapshot snap(pool);
  EXPECT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find(hex(pg)), std::string::npos) << last_message();
  EXPECT_NE(last_message().find("already free"), std::string::npos);
  snap.expect_same(pool);
  EXPECT_EQ(stats(pool).failures[LABYRINTH_ERR_DOUBLE_FREE], snap.s.failures[LABYRINTH_ERR_DOUBLE_FREE] + 1);
}

TEST_F(Misuse, DoubleFreeOfALargeBlock) {
  void *b = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(pool, 4, 0, 0, &b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(pool, b), LABYRINTH_OK);
  Snapshot snap(pool);
  EXPECT_EQ(labyrinth_free_pages(pool, b), LABYRINTH_ERR_DOUBLE_FREE);
  snap.expect_same(pool);
}

// A block back in the buddy allocator (freed, then trimmed out of the
// caches): a second free says where it sits.
TEST_F(Misuse, DoubleFreeSaysWhereInTheBuddy) {
  void *b = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(pool, 2, 0, 0, &b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(pool, b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(pool), LABYRINTH_OK);
  Snapshot snap(pool);
  EXPECT_EQ(labyrinth_free_pages(pool, b), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find(hex(b)), std::string::npos) << last_message();
  EXPECT_NE(last_message().find("free order-"), std::string::npos) << last_message();
  EXPECT_NE(last_message().find("in the buddy allocator"), std::string::npos) << last_message();
  void *inner = static_cast<char *>(b) + 4096;  // never a block head of order >= 1
  EXPECT_EQ(labyrinth_free_pages(pool, inner), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find("of the free order-"), std::string::npos) << last_message();
  EXPECT_NE(last_message().find("in the buddy allocator"), std::string::npos) << last_message();
  snap.expect_same(pool);
}

// A page in the depot (its thread's cache went there when the thread
// exited): a second free says so, by the depot's name.
TEST_F(Misuse, DoubleFreeSaysWhenThePageIsInTheDepot) {
  void *pg = nullptr;
  std::thread([&] {
    pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    ASSERT_NE(pg, nullptr);
    ASSERT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  }).join();
  Snapshot snap(pool);
  EXPECT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(last_message().find(hex(pg)), std::string::npos) << last_message();
  EXPECT_NE(last_message().find("in the depot"), std::string::npos) << last_message();
  snap.expect_same(pool);
}

// Refusals by destroy_ex (unknown flags), page_info and stats count in
// failures[] like every other call's.
TEST_F(Misuse, EveryRefusalIsCounted) {
  const labyrinth_stats before = stats(pool);
  EXPECT_EQ(labyrinth_pool_destroy_ex(pool, 0x80), LABYRINTH_ERR_INVALID);
  int on_stack = 0;
  EXPECT_EQ(labyrinth_page_info(pool, &on_stack, nullptr, nullptr), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_page_info(pool, static_cast<char *>(page) + 1, nullptr, nullptr),
            LABYRINTH_ERR_INVALID);
  labyrinth_stats bad;
  bad.struct_size = 2;
  EXPECT_EQ(labyrinth_pool_stats(pool, &bad), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_stats(pool, nullptr), LABYRINTH_ERR_INVALID);
  const labyrinth_stats after = stats(pool);
  EXPECT_EQ(after.failures[LABYRINTH_ERR_INVALID], before.failures[LABYRINTH_ERR_INVALID] + 4);
  EXPECT_EQ(after.failures[LABYRINTH_ERR_FOREIGN], before.failures[LABYRINTH_ERR_FOREIGN] + 1);
  EXPECT_EQ(after.failures[LABYRINTH_OK], 0u);
}

// A failed allocation leaves every block, its owner and order, every page's
// contents and the number of free pages as they were (labyrinth.h, Errors);
// it may only move free pages to where they coalesce.
TEST_F(Misuse, FailedAllocationKeepsBlocksOwnersContentsAndTheFreeCount) {
  std::vector<unsigned char *> held;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool))
    held.push_back(static_cast<unsigned char *>(pg));
  std::vector<unsigned char *> kept;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i % 2) {
      ASSERT_EQ(labyrinth_free_pages(pool, held[i]), LABYRINTH_OK);
    } else {
      std::memset(held[i], static_cast<int>(i & 0xFF), 4096);
      kept.push_back(held[i]);
    }
  }
  const labyrinth_stats before = stats(pool);
  const auto free_count = [](const labyrinth_stats &s) {
    return s.free_pages + s.cached_pages + s.reserve_pages;
  };
  void *out = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(pool, 6, 0, 0, &out), LABYRINTH_ERR_NOMEM) << last_message();
  EXPECT_EQ(labyrinth_alloc_pages(pool, 6, LABYRINTH_GFP_ATOMIC, 0, &out), LABYRINTH_ERR_NOMEM);
  EXPECT_EQ(out, nullptr);
  const labyrinth_stats after = stats(pool);
  EXPECT_EQ(after.allocated_pages, before.allocated_pages);
  EXPECT_EQ(free_count(after), free_count(before));
  for (std::size_t k = 0; k < kept.size(); ++k) {
    labyrinth_owner owner = 0;
    unsigned order = 9;
    ASSERT_EQ(labyrinth_page_info(pool, kept[k], &owner, &order), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
    EXPECT_EQ(order, 0u);
    EXPECT_EQ(kept[k][k % 4096], static_cast<unsigned char>((2 * k) & 0xFF)) << "page " << k;
    ASSERT_EQ(labyrinth_free_pages(pool, kept[k]), LABYRINTH_OK);
  }
}

TEST_F(Misuse, ForeignPointers) {
  Snapshot snap(pool);
  int on_stack = 0;
  EXPECT_EQ(labyrinth_free_pages(pool, &on_stack), LABYRINTH_ERR_FOREIGN);
  EXPECT_NE(last_message().find("not from this pool"), std::string::npos) << last_message();
  PoolGuard other(labtest::options(1u << 20));
  void *theirs = labyrinth_void_alloc_page_gfp_atomic_exclusive(other);
  EXPECT_EQ(labyrinth_free_pages(pool, theirs), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_page_transfer(pool, theirs, 1), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_page_info(pool, theirs, nullptr, nullptr), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_free_pages(other, theirs), LABYRINTH_OK);
  snap.expect_same(pool);
}

TEST_F(Misuse, InteriorAndTailPointers) {
  Snapshot snap(pool);
  void *inside = static_cast<char *>(page) + 100;
  EXPECT_EQ(labyrinth_free_pages(pool, inside), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("100 bytes into the page at " + hex(page)), std::string::npos) << last_message();
  void *tail = static_cast<char *>(block) + 2 * 4096;
  EXPECT_EQ(labyrinth_free_pages(pool, tail), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("page 2 of the order-2 block at " + hex(block)), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_page_transfer(pool, tail, labyrinth_owner_self()), LABYRINTH_ERR_INVALID);
  snap.expect_same(pool);
}

TEST_F(Misuse, NullArguments) {
  Snapshot snap(pool);
  void *out = reinterpret_cast<void *>(0x1234);
  EXPECT_EQ(labyrinth_void_alloc_page_gfp_atomic_exclusive(nullptr), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("pool is NULL"), std::string::npos);
  EXPECT_EQ(labyrinth_alloc_pages(nullptr, 0, 0, 0, &out), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(out, reinterpret_cast<void *>(0x1234));  // outputs untouched on failure
  EXPECT_EQ(labyrinth_alloc_pages(pool, 0, 0, 0, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_pages(nullptr, page), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_pages(pool, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_page_transfer(nullptr, page, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_page_info(nullptr, page, nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_stats(nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_stats(pool, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_trim(nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_reclaim_orphans(nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_arena(nullptr, nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_destroy(nullptr), LABYRINTH_OK);  // like free(NULL)
  snap.expect_same(pool);
}

TEST_F(Misuse, BadFlagsAndOrders) {
  Snapshot snap(pool);
  void *out = nullptr;
  EXPECT_EQ(labyrinth_alloc_pages(pool, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_WAIT, 10, &out),
            LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("exclude each other"), std::string::npos);
  EXPECT_EQ(labyrinth_alloc_pages(pool, 0, 1u << 20, 0, &out), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("unknown gfp"), std::string::npos);
  EXPECT_EQ(labyrinth_alloc_pages(pool, LABYRINTH_MAX_ORDER + 1, 0, 0, &out), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(labyrinth_pool_destroy_ex(pool, 0x80), LABYRINTH_ERR_INVALID);
  snap.expect_same(pool);
}

TEST_F(Misuse, StatsStructSize) {
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = 2;
  EXPECT_EQ(labyrinth_pool_stats(pool, &s), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("struct_size"), std::string::npos);
  // A caller with an older, shorter struct gets only the fields it knows.
  std::memset(&s, 0xAB, sizeof s);
  s.struct_size = offsetof(labyrinth_stats, reserve_pages);
  ASSERT_EQ(labyrinth_pool_stats(pool, &s), LABYRINTH_OK);
  EXPECT_EQ(s.total_pages, 256u);
  EXPECT_EQ(s.struct_size, offsetof(labyrinth_stats, reserve_pages));
  const unsigned char *tail = reinterpret_cast<const unsigned char *>(&s.reserve_pages);
  for (std::size_t i = 0; i < sizeof s - offsetof(labyrinth_stats, reserve_pages); ++i)
    ASSERT_EQ(tail[i], 0xAB) << "wrote past struct_size at byte " << i;
}

TEST_F(Misuse, DestroyWithLivePagesIsRefusedThenForced) {
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_NE(last_message().find("still allocated"), std::string::npos) << last_message();
  // The pool still works.
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(pg, nullptr);
  ASSERT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  // Forced destroy of a separate pool with a live page.
  labyrinth_pool_options o = labtest::options(1u << 20);
  labyrinth_pool *doomed = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &doomed), LABYRINTH_OK);
  ASSERT_NE(labyrinth_void_alloc_page_gfp_atomic_exclusive(doomed), nullptr);
  EXPECT_EQ(labyrinth_pool_destroy(doomed), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_destroy_ex(doomed, LABYRINTH_DESTROY_FORCE), LABYRINTH_OK);
}

TEST_F(Misuse, ErrorStateIsPerThreadAndClearable) {
  EXPECT_EQ(labyrinth_free_pages(pool, nullptr), LABYRINTH_ERR_INVALID);
  std::thread([] {
    EXPECT_EQ(labyrinth_last_status(), LABYRINTH_OK);
    EXPECT_STREQ(labyrinth_last_error_message(), "");
  }).join();
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  // Success does not clear it (like errno); clearing does.
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
  labyrinth_clear_last_error();
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_OK);
  EXPECT_STREQ(labyrinth_last_error_message(), "");
}
