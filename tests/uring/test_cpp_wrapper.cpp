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

// Bundles through the C++ layer: recv_bundle throws on misuse, and a
// refused send_bundle returns its status.
TEST(UringCpp, BundleCalls) {
  labyrinth::Pool pool(labyrinth::PoolOptions{}.size(4u << 20));
  std::unique_ptr<labyrinth::Ring> ring;
  try {
    ring = std::make_unique<labyrinth::Ring>(pool.get(), labyrinth::RingOptions{}.pbuf_entries(8));
    UdpPair udp;
    ring->recv_bundle(udp.rx, 0, 0, 4);
    EXPECT_THROW(ring->recv_bundle(udp.rx, 0, 1u << 9, 5), labyrinth::Error);
    const char msg[] = "bundled";
    ASSERT_EQ(send(udp.tx, msg, sizeof(msg), 0), static_cast<ssize_t>(sizeof(msg)));
    labyrinth_completion c[4];
    ASSERT_EQ(ring->complete(c, 4, 1, 5000), 1u);
    labyrinth::Page page(pool.get(), c[0].page);
    EXPECT_EQ(c[0].op, static_cast<uint32_t>(LABYRINTH_OP_RECV_BUNDLE));
    EXPECT_TRUE(c[0].flags & LABYRINTH_COMPLETION_BUNDLE_END);
  } catch (const labyrinth::Error &e) {
    if (e.status() == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << e.what();
    throw;
  }
  EXPECT_EQ(ring->send_bundle(0, nullptr, nullptr, 0, 0, 1), LABYRINTH_ERR_INVALID);
}
