// The C++17 layer: RAII pages and pools, errors as exceptions.
#include "labyrinth/labyrinth.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

TEST(CppWrapper, PagesFreeThemselves) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
  {
    labyrinth::Page page = pool.alloc_page();
    ASSERT_TRUE(page);
    std::memset(page.data(), 1, LABYRINTH_PAGE_SIZE);
    EXPECT_EQ(pool.stats().allocated_pages, 1u);
    labyrinth::Page moved = std::move(page);
    EXPECT_FALSE(page);
    EXPECT_TRUE(moved);
  }
  EXPECT_EQ(pool.stats().allocated_pages, 0u);
  pool.destroy();
}

TEST(CppWrapper, ErrorsCarryStatusAndMessage) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
  try {
    pool.alloc(11, 0);
    FAIL() << "order 11 should throw";
  } catch (const labyrinth::Error &e) {
    EXPECT_EQ(e.status(), LABYRINTH_ERR_INVALID);
    EXPECT_NE(std::string(e.what()).find("order 11"), std::string::npos) << e.what();
  }
  EXPECT_THROW(labyrinth::Pool(labyrinth::PoolOptions().size(123)), labyrinth::Error);
  labyrinth::Page keep = pool.alloc(1, LABYRINTH_GFP_EXCLUSIVE);
  EXPECT_THROW(pool.destroy(), labyrinth::Error);  // BUSY: a live block
  keep.free();
  pool.destroy();
}

// A Page knows the order it was allocated with and frees with it; a block
// adopted with a wrong order is refused (the block stays allocated).
TEST(CppWrapper, PagesRememberTheirOrder) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(4u << 20).pin(false));
  {
    labyrinth::Page block = pool.alloc(3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE);
    EXPECT_EQ(block.order(), 3u);
    EXPECT_EQ(pool.alloc_page().order(), 0u);
    labyrinth::Page moved = std::move(block);
    EXPECT_EQ(moved.order(), 3u);
    EXPECT_EQ(pool.stats().allocated_pages, 8u);
  }
  EXPECT_EQ(pool.stats().allocated_pages, 0u);
  void *raw = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(pool.get(), 2, LABYRINTH_GFP_EXCLUSIVE, 0, &raw), LABYRINTH_OK);
  labyrinth::Page wrong(pool.get(), raw, 1);
  try {
    wrong.free();
    FAIL() << "a wrong order should throw";
  } catch (const labyrinth::Error &e) {
    EXPECT_EQ(e.status(), LABYRINTH_ERR_INVALID);
    EXPECT_NE(std::string(e.what()).find("not order 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.stats().allocated_pages, 4u);
  labyrinth::Page unknown(pool.get(), wrong.release());
  EXPECT_EQ(unknown.order(), labyrinth::Page::kUnknownOrder);
  unknown.free();
  EXPECT_EQ(pool.stats().allocated_pages, 0u);
  pool.destroy();
}

TEST(CppWrapper, TransferHandsThePageToAnotherThread) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
  labyrinth::Page page = pool.alloc_page();
  void *raw = page.data();
  labyrinth_owner other = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> lock(mu);
    other = labyrinth::owner_self();
    cv.notify_all();
    cv.wait(lock, [&] { return ready; });
    labyrinth::Page mine(pool.get(), raw);  // adopt
    mine.free();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return other != 0; });
  }
  page.transfer(other);
  EXPECT_FALSE(page);
  {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
  }
  cv.notify_all();
  t.join();
  EXPECT_EQ(pool.stats().allocated_pages, 0u);
}

// The builder's flag setters reach the pool: reclaim(false) is
// LABYRINTH_POOL_NO_RECLAIM, reclaim(true) clears it again.
TEST(CppWrapper, ReclaimFlag) {
  labyrinth::Pool off(labyrinth::PoolOptions().size(1u << 20).pin(false).reclaim(false));
  EXPECT_TRUE(off.stats().flags & LABYRINTH_POOL_NO_RECLAIM);
  labyrinth::Pool on(labyrinth::PoolOptions().size(1u << 20).pin(false).reclaim(false).reclaim(true));
  EXPECT_FALSE(on.stats().flags & LABYRINTH_POOL_NO_RECLAIM);
}

// An empty Page says why: status() and labyrinth::last_error().
TEST(CppWrapper, EmptyPageSaysWhy) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
  std::vector<labyrinth::Page> pages;
  for (;;) {
    labyrinth::Page page = pool.alloc_page();
    if (!page) {
      EXPECT_EQ(page.status(), LABYRINTH_ERR_NOMEM);
      const labyrinth::Error e = labyrinth::last_error();
      EXPECT_EQ(e.status(), LABYRINTH_ERR_NOMEM);
      EXPECT_NE(std::string(e.what()).find("LABYRINTH_ERR_NOMEM"), std::string::npos) << e.what();
      break;
    }
    EXPECT_EQ(page.status(), LABYRINTH_OK);
    pages.push_back(std::move(page));
    ASSERT_LE(pages.size(), 256u);
  }
}

// A Page that outlives its Pool: ~Pool says so on stderr and keeps the pool,
// so the page stays valid and frees normally.
TEST(CppWrapper, PageOutlivingItsPoolKeepsThePoolAndSaysSo) {
  labyrinth::Page page;
  testing::internal::CaptureStderr();
  {
    labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
    page = pool.alloc_page();
    ASSERT_TRUE(page);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_NE(err.find("destroyed while in use"), std::string::npos) << err;
  EXPECT_NE(err.find("still allocated"), std::string::npos) << err;
  std::memset(page.data(), 1, LABYRINTH_PAGE_SIZE);  // still the pool's memory
  EXPECT_NO_THROW(page.free());
}

// destroy_force() with a live Page: the Page dangles, and its free is
// refused (INVALID, "not a live pool"), never a success into freed memory.
TEST(CppWrapper, PageOfAForcedDestroyIsRefused) {
  labyrinth::Pool pool(labyrinth::PoolOptions().size(1u << 20).pin(false));
  labyrinth::Page page = pool.alloc_page();
  ASSERT_TRUE(page);
  EXPECT_THROW(pool.destroy(), labyrinth::Error);  // BUSY: the page is live
  pool.destroy_force();
  try {
    page.free();
    FAIL() << "freeing into a destroyed pool succeeded";
  } catch (const labyrinth::Error &e) {
    EXPECT_EQ(e.status(), LABYRINTH_ERR_INVALID);
    EXPECT_NE(std::string(e.what()).find("not a live pool"), std::string::npos) << e.what();
  }
  page.release();
}
