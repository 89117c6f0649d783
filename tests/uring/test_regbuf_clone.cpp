// Cloned registrations (IORING_REGISTER_CLONE_BUFFERS, Linux 6.12): per-thread
// rings share one pinning of the arena; the clone does fixed I/O with the
// same indices, outlives its source, holds the pool, and pins nothing more.
#include <liburing.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include "uring_test_util.hpp"

using namespace uring_test;

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;

// The process's pinned memory (VmPin of /proc/self/status), in kB; -1 if unknown.
long vm_pin_kb() {
  FILE *f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmPin: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

labyrinth_ring *unregistered_ring(labyrinth_pool *pool) {
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.flags = LABYRINTH_RING_NO_REGISTER;
  labyrinth_ring *r = nullptr;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &r), LABYRINTH_OK) << last_error();
  return r;
}

// Write a pattern through ring's fixed buffers and read it back into
// another page; true if the bytes survived.
bool fixed_round_trip(labyrinth_ring *ring, labyrinth_pool *pool, int fd, std::uint64_t seed) {
  void *a = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  void *b = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  if (!a || !b) return false;
  fill_pattern(a, kPage, seed);
  std::memset(b, 0, kPage);
  labyrinth_completion c{};
  bool ok = labyrinth_ring_write_fixed(ring, fd, a, kPage, 0, 1) == LABYRINTH_OK &&
            complete_one(ring, &c) && c.result == static_cast<int>(kPage) &&
            labyrinth_ring_read_fixed(ring, fd, b, kPage, 0, 2) == LABYRINTH_OK &&
            complete_one(ring, &c) && c.result == static_cast<int>(kPage) &&
            checksum(a, kPage) == checksum(b, kPage);
  EXPECT_TRUE(ok) << last_error() << " result " << c.result;
  labyrinth_free_pages(pool, a);
  labyrinth_free_pages(pool, b);
  return ok;
}

#define CLONE_OR_SKIP(pool, src, dst)                                              \
  do {                                                                             \
    labyrinth_status st_ = labyrinth_pool_clone_io_uring((pool), (src), (dst));    \
    if (st_ == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();            \
    ASSERT_EQ(st_, LABYRINTH_OK) << last_error();                                  \
  } while (0)

// Per-thread rings cloned from one: each does fixed I/O on its own thread;
// the clones pin nothing beyond the source's pages.
TEST(UringClone, PerThreadRingsShareOnePinning) {
  labyrinth_pool *pool = make_pool(8u << 20, 0);
  ASSERT_NE(pool, nullptr);
  long pin0 = vm_pin_kb();
  labyrinth_ring *src = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, src);
  long pin1 = vm_pin_kb();
  constexpr int kThreads = 3;
  labyrinth_ring *clones[kThreads];
  for (auto &c : clones) {
    c = unregistered_ring(pool);
    ASSERT_NE(c, nullptr);
    CLONE_OR_SKIP(pool, labyrinth_ring_fd(src), labyrinth_ring_fd(c));
    labyrinth_ring_stats s{};
    s.struct_size = sizeof s;
    ASSERT_EQ(labyrinth_ring_get_stats(c, &s), LABYRINTH_OK);
    EXPECT_EQ(s.registered, 1u);
    EXPECT_EQ(s.buffers_pinned, 0u);  // clones carry no tags
  }
  if (pin0 >= 0) {
    EXPECT_GE(pin1 - pin0, 8 << 10) << "the source registration pins the arena";
    EXPECT_EQ(vm_pin_kb(), pin1) << "a clone pinned the arena again";
  }
  // The source goes first: the clones keep working on their threads.
  ASSERT_EQ(labyrinth_ring_destroy(src), LABYRINTH_OK);
  std::vector<TempFile> files(kThreads);
  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 16; ++k) ok[i] += fixed_round_trip(clones[i], pool, files[i].fd, i * 100 + k);
    });
  for (auto &t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(ok[i], 16) << "ring " << i;
  // A clone holds the pool like any registration.
  ASSERT_EQ(labyrinth_pool_unregister_io_uring(pool, labyrinth_ring_fd(clones[0])), LABYRINTH_OK);
  for (auto &c : clones) EXPECT_EQ(labyrinth_ring_destroy(c), LABYRINTH_OK);
  if (pin0 >= 0) {
    EXPECT_EQ(vm_pin_kb(), pin0) << "pages still pinned after every ring let go";
  }
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// An application's ring as the clone: destroy is BUSY until it is unregistered.
TEST(UringClone, ApplicationRingHoldsThePool) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *src = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, src);
  io_uring app;
  ASSERT_EQ(io_uring_queue_init(8, &app, 0), 0);
  CLONE_OR_SKIP(pool, labyrinth_ring_fd(src), app.ring_fd);
  ASSERT_EQ(labyrinth_ring_destroy(src), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  ASSERT_EQ(labyrinth_pool_unregister_io_uring(pool, app.ring_fd), LABYRINTH_OK);
  io_uring_queue_exit(&app);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

TEST(UringClone, Misuse) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  labyrinth_pool *other = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  ASSERT_NE(other, nullptr);
  labyrinth_ring *src = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, src);
  labyrinth_ring *dst = unregistered_ring(pool);
  labyrinth_ring *foreign = unregistered_ring(other);
  ASSERT_NE(dst, nullptr);
  ASSERT_NE(foreign, nullptr);
  const int s = labyrinth_ring_fd(src), d = labyrinth_ring_fd(dst);
  EXPECT_EQ(labyrinth_pool_clone_io_uring(nullptr, s, d), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_clone_io_uring(pool, s, s), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_clone_io_uring(pool, -1, d), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_clone_io_uring(pool, d, s), LABYRINTH_ERR_INVALID);  // d not registered
  EXPECT_EQ(labyrinth_pool_clone_io_uring(other, s, d), LABYRINTH_ERR_INVALID);  // s is pool's
  EXPECT_EQ(labyrinth_pool_clone_io_uring(pool, s, labyrinth_ring_fd(foreign)),
            LABYRINTH_ERR_INVALID);  // another pool's ring
  CLONE_OR_SKIP(pool, s, d);
  EXPECT_EQ(labyrinth_pool_clone_io_uring(pool, s, d), LABYRINTH_ERR_BUSY);  // d has buffers
  EXPECT_EQ(labyrinth_ring_destroy(foreign), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(dst), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(src), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(other), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

}  // namespace
