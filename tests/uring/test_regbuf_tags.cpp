// Tagged registration: the kernel's tag completion is what lets a pool go.
// An application's ring with a fixed read in flight keeps the buffer, and
// so the pool, until the tag came back; a managed ring counts its tagged
// buffers and sees them released.
#include <liburing.h>

#include <cstring>

#include "uring_test_util.hpp"

using namespace uring_test;

namespace {

constexpr std::uint64_t kTagBase = 1u << 20;

// An application ring; skip (the pool destroyed) if io_uring is missing.
#define APP_RING_OR_SKIP(pool, ring)                                              \
  do {                                                                            \
    int ret_ = io_uring_queue_init(16, &(ring), 0);                               \
    if (ret_ < 0) {                                                               \
      labyrinth_pool_destroy(pool);                                               \
      GTEST_SKIP() << "io_uring_queue_init: " << strerror(-ret_);                 \
    }                                                                             \
  } while (0)

// The same, registered with tags; skip if the kernel cannot tag.
#define TAGGED_OR_SKIP(pool, ring)                                                        \
  do {                                                                                    \
    APP_RING_OR_SKIP(pool, ring);                                                         \
    labyrinth_status st_ = labyrinth_pool_register_io_uring_tagged((pool), (ring).ring_fd, \
                                                                   kTagBase);             \
    if (st_ == LABYRINTH_ERR_UNSUPPORTED) {                                               \
      io_uring_queue_exit(&(ring));                                                       \
      labyrinth_pool_destroy(pool);                                                       \
      GTEST_SKIP() << last_error();                                                       \
    }                                                                                     \
    ASSERT_EQ(st_, LABYRINTH_OK) << last_error();                                         \
  } while (0)

// Every CQE now in the ring: user_data -> res.
std::vector<std::pair<std::uint64_t, int>> drain(io_uring *ring) {
  std::vector<std::pair<std::uint64_t, int>> got;
  io_uring_cqe *cqe = nullptr;
  while (io_uring_peek_cqe(ring, &cqe) == 0) {
    got.emplace_back(cqe->user_data, cqe->res);
    io_uring_cqe_seen(ring, cqe);
  }
  return got;
}

// Unregister a tagged registration of a one-buffer pool with nothing in
// flight: the kernel posts its tag at once. Returns the tag (0 if none came).
std::uint64_t unregister_take_tag(labyrinth_pool *pool, io_uring *ring) {
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring->ring_fd), LABYRINTH_OK);
  auto got = drain(ring);
  EXPECT_EQ(got.size(), 1u);
  return got.size() == 1 ? got[0].first : 0;
}

// A fixed read from an empty pipe holds its buffer in the kernel. Unregister
// returns at once, but the pool stays held (destroy BUSY) until the kernel
// has let go, which it says with the tag completion, after the read's own
// completion; the application hands the tag back and the pool can go.
TEST(UringTagged, PoolHeldUntilTheKernelReleasesTheBuffer) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  TAGGED_OR_SKIP(pool, ring);
  uint32_t count = 0;
  ASSERT_EQ(labyrinth_pool_io_uring_buffers(pool, &count), LABYRINTH_OK);
  ASSERT_EQ(count, 1u);

  int p[2];
  ASSERT_EQ(pipe(p), 0);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  uint16_t idx = 0;
  ASSERT_EQ(labyrinth_page_buf_index(pool, page, &idx), LABYRINTH_OK);
  io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  io_uring_prep_read_fixed(sqe, p[0], page, 4096, 0, idx);
  io_uring_sqe_set_data64(sqe, 7);
  ASSERT_EQ(io_uring_submit(&ring), 1);

  // Not yet unregistered: a tag is not accepted.
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, kTagBase), LABYRINTH_ERR_INVALID);
  ASSERT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_OK);
  // The library cannot see the read, so the page is the application's to free.
  ASSERT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  usleep(20 * 1000);
  EXPECT_TRUE(drain(&ring).empty()) << "the kernel released a buffer a read still holds";
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  // Unregistering again while the tag is out: INVALID, nothing changes.
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_INVALID);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("tag completion"), std::string::npos)
      << labyrinth_last_error_message();

  ASSERT_EQ(write(p[1], "hello", 5), 5);
  std::vector<std::pair<std::uint64_t, int>> got;
  for (int i = 0; i < 100 && got.size() < 2; ++i) {
    io_uring_cqe *cqe = nullptr;
    __kernel_timespec ts{0, 10 * 1000 * 1000};
    if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
      got.emplace_back(cqe->user_data, cqe->res);
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 7u);
  EXPECT_EQ(got[0].second, 5);
  EXPECT_EQ(got[1].first, kTagBase);  // after the read: the kernel let go
  EXPECT_EQ(got[1].second, 0);

  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, kTagBase + 1),
            LABYRINTH_ERR_INVALID);  // not one of its tags
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  ASSERT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, got[1].first), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, got[1].first),
            LABYRINTH_ERR_INVALID);  // already back (the registration is gone)
  close(p[0]);
  close(p[1]);
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// Nothing in flight: the tags come at once; a ring closed before they were
// handed back lets the pool go at the next unregister.
TEST(UringTagged, ClosedRingLetsGo) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  TAGGED_OR_SKIP(pool, ring);
  EXPECT_EQ(unregister_take_tag(pool, &ring), kTagBase);
  int fd = ring.ring_fd;
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, fd), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// Registered again while the old registration's tag is still out: the tag
// goes to the old one, the new one stays live.
TEST(UringTagged, ReRegisteredRing) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  TAGGED_OR_SKIP(pool, ring);
  const std::uint64_t old_tag = unregister_take_tag(pool, &ring);
  ASSERT_EQ(labyrinth_pool_register_io_uring_tagged(pool, ring.ring_fd, kTagBase), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, old_tag), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, old_tag),
            LABYRINTH_ERR_INVALID);  // the new registration is live
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, unregister_take_tag(pool, &ring)),
            LABYRINTH_OK);
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

TEST(UringTagged, Misuse) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  APP_RING_OR_SKIP(pool, ring);
  EXPECT_EQ(labyrinth_pool_register_io_uring_tagged(pool, ring.ring_fd, 0), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_register_io_uring_tagged(pool, ring.ring_fd, UINT64_MAX - 5),
            LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_register_io_uring_tagged(nullptr, ring.ring_fd, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_register_io_uring_tagged(pool, -1, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_io_uring_released(nullptr, ring.ring_fd, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_io_uring_released(pool, ring.ring_fd, 1), LABYRINTH_ERR_INVALID);
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// A managed ring's own registration is tagged: its buffers count as pinned
// while registered and until the ring took the kernel's release.
TEST(UringTagged, ManagedRingSeesItsBuffersReleased) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  labyrinth_ring_stats s{};
  s.struct_size = sizeof s;
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &s), LABYRINTH_OK);
  ASSERT_EQ(s.registered, 1u);
  EXPECT_EQ(s.register_fallback, 0u);
  EXPECT_EQ(s.buffers_pinned, s.fixed_buffers);
  ASSERT_EQ(labyrinth_pool_unregister_io_uring(pool, labyrinth_ring_fd(ring)), LABYRINTH_OK);
  labyrinth_completion c[4];
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_ring_complete(ring, c, 4, 0, 0, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 0u);  // the release is not the application's completion
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &s), LABYRINTH_OK);
  EXPECT_EQ(s.registered, 0u);
  EXPECT_EQ(s.buffers_pinned, 0u);
  // Registered again (and then destroyed while registered).
  ASSERT_EQ(labyrinth_pool_register_io_uring(pool, labyrinth_ring_fd(ring)), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &s), LABYRINTH_OK);
  EXPECT_EQ(s.buffers_pinned, s.fixed_buffers);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// The registration is one of the pool's registration listeners: destroy
// asks it, and its refusal names the ring; unregistering ends it.
TEST(UringRegistrationListener, DestroyNamesTheRing) {
  labyrinth_pool *pool = make_pool(4u << 20, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  APP_RING_OR_SKIP(pool, ring);
  ASSERT_EQ(labyrinth_pool_register_io_uring(pool, ring.ring_fd), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  std::string msg = labyrinth_last_error_message();
  EXPECT_NE(msg.find("listener 'io_uring fixed buffers on fd " + std::to_string(ring.ring_fd) + "'"),
            std::string::npos)
      << msg;
  ASSERT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_OK);
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

}  // namespace
