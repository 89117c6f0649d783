// Receive through AF_XDP into the pool's pages: delivery and ownership, the
// FILL ring starved and recovered, teardown with frames in the kernel.
#include "xdp/xdp_internal.hpp"
#include "xdp_test_util.hpp"

using namespace xdp_test;

namespace {

// A pool, its UMEM and one socket on xb; TearDown destroys what is left.
class XdpReceive : public ::testing::Test {
 protected:
  void SetUp() override { XDP_REQUIRE_WORLD(); }
  bool open(std::size_t pool_bytes, std::uint32_t ring, std::uint32_t fill) {
    pool = make_pool(pool_bytes);
    EXPECT_EQ(labyrinth_xdp_umem_create(pool, &umem), LABYRINTH_OK) << last_error();
    sock = open_socket(umem, "xb", ring, fill);
    return sock != nullptr;
  }
  void TearDown() override {
    if (!pool) return;
    EXPECT_EQ(labyrinth_xdp_socket_destroy(sock), LABYRINTH_OK) << last_error();
    EXPECT_EQ(labyrinth_xdp_umem_destroy(umem), LABYRINTH_OK) << last_error();
    EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
  }
  labyrinth_pool *pool = nullptr;
  labyrinth_xdp_umem *umem = nullptr;
  labyrinth_xdp_socket *sock = nullptr;
};

}  // namespace

TEST_F(XdpReceive, DatagramsArriveInOwnedPages) {
  ASSERT_TRUE(open(16u << 20, 512, 256));
  labyrinth_xdp_socket_info i = info(sock);
  EXPECT_EQ(i.mode, LABYRINTH_XDP_MODE_COPY) << "veth has no zero-copy";
  EXPECT_EQ(i.generic, 0u) << "veth runs XDP programs natively";
  EXPECT_EQ(i.fill_frames, 256u);
  EXPECT_EQ(stats(pool).inflight_pages, 256u);

  send_udp(100, 200);
  auto got = receive(pool, sock, 100, 3000, is_test_udp);
  ASSERT_EQ(got.size(), 100u);
  std::vector<bool> seen(100);
  for (const auto &f : got) {
    EXPECT_EQ(f.len, 14u + 20u + 8u + 200u);
    labyrinth_owner owner = 0;
    ASSERT_EQ(labyrinth_page_info(pool, f.page, &owner, nullptr), LABYRINTH_OK) << last_error();
    EXPECT_EQ(owner, labyrinth_owner_self()) << "a received page belongs to its taker";
    std::uint32_t seq;
    std::memcpy(&seq, static_cast<char *>(f.page) + f.offset + 42, sizeof seq);
    ASSERT_LT(seq, 100u);
    seen[seq] = true;
  }
  for (bool s : seen) EXPECT_TRUE(s);
  EXPECT_EQ(info(sock).fill_frames, 256u) << "receive refills the FILL ring";
  free_all(pool, got);
}

TEST_F(XdpReceive, FillRingStarvedThenRecovered) {
  // 256 pages: the FILL ring asks for 128, the test holds every other page.
  ASSERT_TRUE(open(1u << 20, 256, 128));
  const std::uint64_t fill = info(sock).fill_frames;
  ASSERT_EQ(fill, 128u);
  std::vector<void *> held;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool)) held.push_back(pg);

  // Every FILL frame used up and kept: the ring starves, packets drop.
  send_udp(static_cast<std::uint32_t>(fill) + 40, 64);
  auto got = receive(pool, sock, fill, 3000, is_test_udp);
  EXPECT_GE(got.size(), fill - 8) << "nearly every FILL frame carries a datagram";
  std::size_t n = 0;
  labyrinth_xdp_frame extra[8];
  EXPECT_EQ(labyrinth_xdp_receive(sock, extra, 8, &n), LABYRINTH_OK);
  free_all(pool, std::vector<labyrinth_xdp_frame>(extra, extra + n));
  // Frees above went to the pool; take them again so the ring stays empty.
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool)) held.push_back(pg);
  EXPECT_EQ(labyrinth_xdp_refill(sock, nullptr), LABYRINTH_OK);
  labyrinth_xdp_socket_info i = info(sock);
  EXPECT_EQ(i.fill_frames, 0u);
  EXPECT_GT(i.fill_starved, 0u);
  send_udp(10, 64);
  EXPECT_TRUE(receive(pool, sock, 1, 300, is_test_udp).empty()) << "starved: nothing lands";
  EXPECT_GT(info(sock).rx_dropped, 0u);

  // Pages back: the next refill feeds the ring and receive works again.
  free_all(pool, got);
  for (void *pg : held) EXPECT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  size_t added = 0;
  EXPECT_EQ(labyrinth_xdp_refill(sock, &added), LABYRINTH_OK);
  EXPECT_EQ(added, 128u);
  send_udp(20, 64);
  auto again = receive(pool, sock, 20, 3000, is_test_udp);
  EXPECT_EQ(again.size(), 20u);
  free_all(pool, again);
}

TEST_F(XdpReceive, TeardownReturnsFramesTheKernelHeld) {
  ASSERT_TRUE(open(16u << 20, 512, 300));
  // Frames in every kernel state: on the FILL ring, received but not taken.
  send_udp(50, 100);
  usleep(100 * 1000);
  EXPECT_EQ(stats(pool).inflight_pages, 300u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY) << "the UMEM holds the pool";
  EXPECT_EQ(labyrinth_xdp_umem_destroy(umem), LABYRINTH_ERR_BUSY) << "a socket uses it";
  EXPECT_EQ(labyrinth_xdp_socket_destroy(sock), LABYRINTH_OK) << last_error();
  sock = nullptr;
  labyrinth_stats s = stats(pool);
  EXPECT_EQ(s.inflight_pages, 0u);
  EXPECT_EQ(s.allocated_pages, 0u) << "every frame the kernel held is back in the pool";
}

TEST_F(XdpReceive, ANewSocketAfterTheFirstIsDestroyed) {
  ASSERT_TRUE(open(16u << 20, 512, 128));
  ASSERT_EQ(labyrinth_xdp_socket_destroy(sock), LABYRINTH_OK);
  sock = open_socket(umem, "xb", 512, 128);
  ASSERT_NE(sock, nullptr);
  send_udp(10, 100);
  auto got = receive(pool, sock, 10, 3000, is_test_udp);
  EXPECT_EQ(got.size(), 10u);
  free_all(pool, got);
}

TEST_F(XdpReceive, PagesOnTheFillRingAreBusy) {
  ASSERT_TRUE(open(16u << 20, 512, 64));
  // White-box: a page this socket gave to the FILL ring.
  void *page = nullptr;
  for (std::size_t i = 0; i < umem->frame_owner.size() && !page; ++i)
    if (umem->frame_owner.get(i) == sock->slot)
      page = reinterpret_cast<void *>(umem->base + i * LABYRINTH_XDP_FRAME_BYTES);
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_page_transfer(pool, page, LABYRINTH_OWNER_MAX), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_xdp_transmit(sock, page, 0, 60), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(info(sock).fill_frames, 64u) << "nothing changed";
  EXPECT_EQ(info(sock).tx_in_flight, 0u);
  send_udp(5, 100);
  auto got = receive(pool, sock, 5, 3000, is_test_udp);
  EXPECT_EQ(got.size(), 5u) << "the ring still works";
  free_all(pool, got);
}
