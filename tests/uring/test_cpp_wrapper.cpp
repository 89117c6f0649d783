// The C++ layer (labyrinth_uring.hpp): RAII ring, exceptions on setup
// errors, pages handed back into labyrinth::Page.
#include "labyrinth/labyrinth_uring.hpp"

#include "uring_test_util.hpp"

using namespace uring_test;

TEST(UringCpp, RingRoundTrip) {
  labyrinth::Pool pool(labyrinth::PoolOptions{}.size(4u << 20));
  std::unique_ptr<labyrinth::Ring> ring;
  try {
    ring = std::make_unique<labyrinth::Ring>(pool.get(), labyrinth::RingOptions{}.pbuf_entries(8));
  } catch (const labyrinth::Error &e) {
    if (e.status() == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << e.what();
    throw;
  }
  UdpPair udp;
  try {
    ring->recv_multishot(udp.rx, 0, 9);
  } catch (const labyrinth::Error &e) {
    if (e.status() == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << e.what();
    throw;
  }
  const char msg[] = "hello, labyrinth";
  ASSERT_EQ(send(udp.tx, msg, sizeof(msg), 0), static_cast<ssize_t>(sizeof(msg)));
  labyrinth_completion c[4];
  std::size_t n = ring->complete(c, 4, 1, 5000);
  ASSERT_EQ(n, 1u);
  labyrinth::Page page(pool.get(), c[0].page);  // freed at scope end
  EXPECT_EQ(c[0].result, static_cast<int32_t>(sizeof(msg)));
  EXPECT_STREQ(static_cast<const char *>(c[0].page), msg);
  EXPECT_EQ(labyrinth::buf_index(pool.get(), c[0].page), 0);
  EXPECT_THROW(labyrinth::register_io_uring(pool.get(), ring->fd()), labyrinth::Error);  // already
  EXPECT_EQ(ring->stats().pbuf_entries, 8u);
  labyrinth::Ring moved = std::move(*ring);
  EXPECT_EQ(ring->get(), nullptr);
  EXPECT_GE(moved.fd(), 0);
}
