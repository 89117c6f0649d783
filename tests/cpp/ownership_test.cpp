// Exclusive ownership: only the owner frees or transfers; transfers move the
// right; non-exclusive blocks may be freed by anyone; owner ids are unique.
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "test_util.hpp"

using namespace labtest;

namespace {
labyrinth_owner id_of_new_thread() {
  labyrinth_owner id = 0;
  std::thread([&] { id = labyrinth_owner_self(); }).join();
  return id;
}
}  // namespace

TEST(Ownership, OwnerIdsAreUniqueAndStable) {
  labyrinth_owner me = labyrinth_owner_self();
  EXPECT_NE(me, LABYRINTH_OWNER_NONE);
  EXPECT_EQ(labyrinth_owner_self(), me);
  std::set<labyrinth_owner> ids{me};
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(ids.insert(id_of_new_thread()).second) << "id reused";
}

TEST(Ownership, FlagshipPageIsOwnedByTheCaller) {
  PoolGuard p(1u << 20);
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pg) % 4096, 0u);
  labyrinth_owner owner = 0;
  unsigned order = 9;
  ASSERT_EQ(labyrinth_page_info(p, pg, &owner, &order), LABYRINTH_OK);
  EXPECT_EQ(owner, labyrinth_owner_self());
  EXPECT_EQ(order, 0u);
  std::memset(pg, 0x11, 4096);  // all 4096 bytes belong to the owner
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

TEST(Ownership, OthersGetNotOwnerAndNothingChanges) {
  PoolGuard p(1u << 20);
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  std::memset(pg, 0x42, 4096);
  labyrinth_stats before = stats(p);
  std::thread([&] {
    EXPECT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_ERR_NOT_OWNER);
    EXPECT_NE(last_message().find("exclusive to owner"), std::string::npos) << last_message();
    EXPECT_EQ(labyrinth_page_transfer(p, pg, labyrinth_owner_self()), LABYRINTH_ERR_NOT_OWNER);
  }).join();
  labyrinth_owner owner = 0;
  ASSERT_EQ(labyrinth_page_info(p, pg, &owner, nullptr), LABYRINTH_OK);
  EXPECT_EQ(owner, labyrinth_owner_self());
  EXPECT_EQ(static_cast<unsigned char *>(pg)[4095], 0x42);
  labyrinth_stats after = stats(p);
  EXPECT_EQ(after.allocated_pages, before.allocated_pages);
  EXPECT_EQ(after.failures[LABYRINTH_ERR_NOT_OWNER], before.failures[LABYRINTH_ERR_NOT_OWNER] + 2);
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

TEST(Ownership, TransferMovesTheRight) {
  PoolGuard p(1u << 20);
  void *pg = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 2, LABYRINTH_GFP_EXCLUSIVE, 0, &pg), LABYRINTH_OK);
  std::mutex mu;
  std::condition_variable cv;
  labyrinth_owner other = 0;
  bool handed = false, done = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> lock(mu);
    other = labyrinth_owner_self();
    cv.notify_all();
    cv.wait(lock, [&] { return handed; });
    labyrinth_owner owner = 0;
    EXPECT_EQ(labyrinth_page_info(p, pg, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, other);
    EXPECT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK) << last_message();
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return other != 0; });
  }
  ASSERT_EQ(labyrinth_page_transfer(p, pg, other), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_ERR_NOT_OWNER);          // no longer ours
  EXPECT_EQ(labyrinth_page_transfer(p, pg, labyrinth_owner_self()), LABYRINTH_ERR_NOT_OWNER);
  {
    std::unique_lock<std::mutex> lock(mu);
    handed = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done; });
  }
  t.join();
  EXPECT_EQ(stats(p).allocated_pages, 0u);
}

TEST(Ownership, TransferRejectsBadOwnersAndSharedBlocks) {
  PoolGuard p(1u << 20);
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  EXPECT_EQ(labyrinth_page_transfer(p, pg, LABYRINTH_OWNER_NONE), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_page_transfer(p, pg, LABYRINTH_OWNER_MAX + 1), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("not a valid owner"), std::string::npos);
  void *shared = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 0, 0, 0, &shared), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_page_transfer(p, shared, labyrinth_owner_self()), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("EXCLUSIVE"), std::string::npos);
  // A non-exclusive block may be freed by any thread.
  std::thread([&] { EXPECT_EQ(labyrinth_free_pages(p, shared), LABYRINTH_OK); }).join();
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

TEST(Ownership, ExitedOwnersLeaveOrphansThatCanBeReclaimed) {
  labyrinth_pool_options o = options(1u << 20);
  PoolGuard p(o);
  std::thread([&] {
    for (int i = 0; i < 5; ++i) ASSERT_NE(labyrinth_void_alloc_page_gfp_atomic_exclusive(p), nullptr);
    void *big = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK);
  }).join();
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.orphaned_pages, 5u + 8);
  EXPECT_EQ(s.allocated_pages, 13u);
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 6u);  // blocks
  s = stats(p);
  EXPECT_EQ(s.orphaned_pages, 0u);
  EXPECT_EQ(s.allocated_pages, 0u);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}
