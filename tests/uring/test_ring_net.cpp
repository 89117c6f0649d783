// The managed ring with sockets: multishot receive from a provided-buffer
// ring on loopback UDP and TCP (starvation: test_recv_starve.cpp), pages BUSY
// while in flight, SEND_ZC's two completions, cancellation and teardown.
#include <poll.h>

#include <cerrno>
#include <set>
#include <thread>

#include "net_test_util.hpp"

using namespace uring_test;

namespace {

class UringMultishotFlags : public ::testing::TestWithParam<uint32_t> {};

TEST_P(UringMultishotFlags, UdpLoopbackEveryDatagramIntact) {
  labyrinth_pool *pool = make_pool(16u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(64, GetParam());
  URING_CREATE_OR_SKIP(pool, &o, ring);
  UdpPair udp;
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, udp.rx, 0, 42));
  // Fewer datagrams outstanding than the ring has pages (64; the kernel ends
  // the receive with -ENOBUFS as soon as the ring is empty): the refill
  // after each batch must keep up, so no -ENOBUFS may occur.
  const std::uint32_t kTotal = 2000, kBatch = 32;
  std::uint32_t sent = 0, got = 0, next_seq = 0;
  labyrinth_owner self = labyrinth_owner_self();
  while (got < kTotal) {
    if (sent < kTotal && sent - got + kBatch < 64) {
      std::uint32_t to = std::min(kTotal, sent + kBatch);
      send_datagrams(udp.tx, sent, to);
      sent = to;
    }
    labyrinth_completion c[16];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 16, 1, 5000, &n), LABYRINTH_OK) << last_error();
    ASSERT_GT(n, 0u) << "no completion within 5 s; got " << got;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(c[i].user_data, 42u);
      ASSERT_EQ(c[i].op, static_cast<uint32_t>(LABYRINTH_OP_RECV_MULTISHOT));
      ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_MORE) << "multishot ended: " << c[i].result;
      ASSERT_NE(c[i].page, nullptr);
      EXPECT_TRUE(check_datagram(c[i].page, c[i].result)) << "datagram " << got;
      EXPECT_EQ(seq_of(c[i].page), next_seq++);
      labyrinth_owner owner = 0;
      unsigned order = 9;
      ASSERT_EQ(labyrinth_page_info(pool, c[i].page, &owner, &order), LABYRINTH_OK);
      EXPECT_EQ(owner, self);  // atomic exclusive page, now ours
      EXPECT_EQ(order, 0u);
      ASSERT_EQ(labyrinth_free_pages(pool, c[i].page), LABYRINTH_OK) << last_error();
      ++got;
    }
  }
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK);
  EXPECT_EQ(rs.pbuf_enobufs, 0u);
  EXPECT_GE(rs.pbuf_refills, kTotal);
  EXPECT_EQ(rs.ops_inflight, 1u);  // the multishot receive goes on
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

INSTANTIATE_TEST_SUITE_P(Flags, UringMultishotFlags,
                         ::testing::Values(0u, static_cast<uint32_t>(LABYRINTH_RING_SINGLE_THREAD)));

// A SINGLE_THREAD ring used from another thread: the kernel refuses the
// submission (io_uring_enter: EEXIST); the page comes straight back to the
// submitter and the ring keeps working for its own thread.
TEST(UringOwnership, FailedSubmissionGivesThePageBack) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.flags = LABYRINTH_RING_SINGLE_THREAD;
  URING_CREATE_OR_SKIP(pool, &o, ring);
  UdpPair udp;
  labyrinth_status st = LABYRINTH_OK;
  std::string msg;
  labyrinth_status freed = LABYRINTH_ERR_INVALID;
  std::thread other([&] {
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    st = labyrinth_ring_recv(ring, udp.rx, page, kPage, 0, 5);
    msg = labyrinth_last_error_message();
    freed = labyrinth_free_pages(pool, page);  // ours again at once
  });
  other.join();
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK);
  if (st == LABYRINTH_OK) {
    // The kernel lacks SINGLE_ISSUER (the flag is then ignored): nothing to test.
    labyrinth_ring_destroy(ring);
    GTEST_SKIP() << "SINGLE_ISSUER not enforced by this kernel";
  }
  EXPECT_EQ(st, LABYRINTH_ERR_SYSTEM) << msg;
  EXPECT_NE(msg.find("EEXIST"), std::string::npos) << msg;
  EXPECT_EQ(freed, LABYRINTH_OK);
  EXPECT_EQ(rs.submit_failures, 1u);
  EXPECT_EQ(rs.ops_inflight, 0u);
  EXPECT_EQ(pool_stat_inflight(pool), 0u);
  // Nor may another thread destroy it: it could not wait for the kernel.
  labyrinth_status dst = LABYRINTH_OK;
  std::thread([&] { dst = labyrinth_ring_destroy(ring); }).join();
  EXPECT_EQ(dst, LABYRINTH_ERR_INVALID);
  // The owning thread still uses the ring normally.
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ring_recv(ring, udp.rx, page, kPage, 0, 6), LABYRINTH_OK) << last_error();
  send_datagrams(udp.tx, 0, 1);
  labyrinth_completion c{};
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.user_data, 6u);
  EXPECT_EQ(c.page, page);
  EXPECT_TRUE(check_datagram(page, c.result));
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

TEST(UringMultishot, TcpLoopbackStreamIntact) {
  labyrinth_pool *pool = make_pool(16u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(128);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  TcpPair tcp;
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, tcp.b, 0, 5));
  const std::size_t kBytes = 4u << 20;
  std::vector<unsigned char> src(kBytes);
  fill_pattern(src.data(), kBytes, 77);
  TcpSender sender(tcp.a, src);
  std::vector<unsigned char> dst;
  bool eof = false, ended = false;
  while (!ended) {
    labyrinth_completion c[32];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 32, 1, 5000, &n), LABYRINTH_OK);
    ASSERT_GT(n, 0u) << "stalled at " << dst.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (c[i].result > 0) {
        ASSERT_NE(c[i].page, nullptr);
        dst.insert(dst.end(), static_cast<unsigned char *>(c[i].page),
                   static_cast<unsigned char *>(c[i].page) + c[i].result);
      } else if (c[i].result == 0) {
        eof = true;
      } else {
        // -ENOBUFS (the sender outran the refill) never reaches us: the
        // ring re-arms the receive itself.
        ADD_FAILURE() << "result " << c[i].result;
      }
      if (c[i].page) {
        ASSERT_EQ(labyrinth_free_pages(pool, c[i].page), LABYRINTH_OK);
      }
      if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) ended = true;
    }
  }
  sender.join();
  EXPECT_TRUE(eof);
  ASSERT_EQ(dst.size(), kBytes);
  EXPECT_EQ(checksum(dst.data(), kBytes), checksum(src.data(), kBytes));
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// Manual refill: the application feeds the provided-buffer ring itself.
TEST(UringMultishot, ManualProvide) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(4, LABYRINTH_RING_MANUAL_REFILL);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  void *pages[5];
  for (void *&p : pages) ASSERT_NE(p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool), nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(labyrinth_ring_provide(ring, pages[i]), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_ring_provide(ring, pages[4]), LABYRINTH_ERR_BUSY);  // full
  EXPECT_EQ(labyrinth_ring_provide(ring, pages[0]), LABYRINTH_ERR_BUSY);  // already the kernel's
  EXPECT_EQ(labyrinth_free_pages(pool, pages[0]), LABYRINTH_ERR_BUSY);
  void *big = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(pool, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_provide(ring, big), LABYRINTH_ERR_INVALID);  // not order 0
  EXPECT_EQ(labyrinth_free_pages(pool, big), LABYRINTH_OK);
  UdpPair udp;
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, udp.rx, 0, 3));
  // Three at a time, so that a page stays in the ring.
  send_datagrams(udp.tx, 0, 3);
  std::set<void *> mine(pages, pages + 4);
  std::uint32_t seq = 0;
  for (int i = 0; i < 3; ++i) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(ring, &c));
    ASSERT_NE(c.page, nullptr);
    EXPECT_EQ(mine.count(c.page), 1u);  // one of the pages we provided
    EXPECT_EQ(seq_of(c.page), seq++);
    // Recycle it straight back.
    ASSERT_EQ(labyrinth_ring_provide(ring, c.page), LABYRINTH_OK);
  }
  send_datagrams(udp.tx, 3, 6);
  for (int i = 0; i < 3; ++i) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(ring, &c));
    ASSERT_NE(c.page, nullptr) << c.result;
    EXPECT_EQ(mine.count(c.page), 1u);  // recycled, not from the pool
    EXPECT_EQ(seq_of(c.page), seq++);
    ASSERT_EQ(labyrinth_free_pages(pool, c.page), LABYRINTH_OK);
  }
  EXPECT_EQ(labyrinth_free_pages(pool, pages[4]), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);  // the 4 provided pages go to the pool
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// While a receive holds the page: free, transfer, a second submission,
// pool destroy and unregistering the arena are all refused with BUSY.
TEST(UringOwnership, BusyWhileInFlight) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  UdpPair udp;
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(labyrinth_ring_recv(ring, udp.rx, page, kPage, 0, 11), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_page_transfer(pool, page, labyrinth_owner_self() + 1), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ring_recv(ring, udp.rx, page, kPage, 0, 12), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ring_send(ring, udp.tx, page, 100, 0, 13), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(pool_stat_inflight(pool), 1u);
  EXPECT_EQ(labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, labyrinth_ring_fd(ring)), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("in flight"), std::string::npos);
  // Nothing has completed behind our back.
  labyrinth_completion c{};
  std::size_t n = 1;
  ASSERT_EQ(labyrinth_ring_complete(ring, &c, 1, 0, 0, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 0u);
  // Data arrives: the completion hands the page back, with the datagram.
  send_datagrams(udp.tx, 0, 1);
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.page, page);
  EXPECT_EQ(c.user_data, 11u);
  EXPECT_TRUE(check_datagram(page, c.result));
  EXPECT_EQ(pool_stat_inflight(pool), 0u);
  // Now the arena may be unregistered; fixed I/O is then refused until it
  // is registered again.
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, labyrinth_ring_fd(ring)), LABYRINTH_OK)
      << last_error();
  TempFile file;
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, page, kPage, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, labyrinth_ring_fd(ring)), LABYRINTH_OK)
      << last_error();
  ASSERT_EQ(labyrinth_ring_write_fixed(ring, file.fd, page, kPage, 0, 1), LABYRINTH_OK)
      << last_error();
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.result, static_cast<int32_t>(kPage));
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// SEND_ZC: the first completion (MORE, no page) carries the bytes sent; the
// page is still the kernel's; it comes back with the notification.
TEST(UringSendZc, NotificationOrder) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  TcpPair tcp;
  for (int round = 0; round < 8; ++round) {
    void *page = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(pool, 2, LABYRINTH_GFP_EXCLUSIVE, 0, &page), LABYRINTH_OK);
    const uint32_t len = 4 * kPage;
    fill_pattern(page, len, 500 + round);
    const std::uint64_t sum = checksum(page, len);
    SKIP_IF_UNSUPPORTED(labyrinth_ring_send_zc(ring, tcp.a, page, len, 0, 900 + round));
    labyrinth_completion first{};
    ASSERT_TRUE(complete_one(ring, &first));
    EXPECT_EQ(first.user_data, 900u + round);
    EXPECT_EQ(first.op, static_cast<uint32_t>(LABYRINTH_OP_SEND_ZC));
    EXPECT_EQ(first.result, static_cast<int32_t>(len));
    ASSERT_TRUE(first.flags & LABYRINTH_COMPLETION_MORE);
    EXPECT_FALSE(first.flags & LABYRINTH_COMPLETION_NOTIF);
    EXPECT_EQ(first.page, nullptr);
    // Between the two completions the page is still the kernel's.
    EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_BUSY);
    EXPECT_EQ(pool_stat_inflight(pool), 4u);
    // The peer reads it all.
    std::vector<unsigned char> got(len);
    std::size_t off = 0;
    while (off < len) {
      ssize_t n = recv(tcp.b, got.data() + off, len - off, 0);
      ASSERT_GT(n, 0);
      off += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(checksum(got.data(), len), sum);
    labyrinth_completion notif{};
    ASSERT_TRUE(complete_one(ring, &notif));
    EXPECT_EQ(notif.user_data, 900u + round);
    EXPECT_TRUE(notif.flags & LABYRINTH_COMPLETION_NOTIF);
    EXPECT_FALSE(notif.flags & LABYRINTH_COMPLETION_MORE);
    EXPECT_EQ(notif.page, page);
    EXPECT_EQ(notif.result, static_cast<int32_t>(len));
    EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  }
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// A socket closed by the application while its receive is in flight: the
// kernel still holds the page (io_uring keeps the file); cancelling hands
// it back with -ECANCELED.
TEST(UringOwnership, SocketClosedWhileInFlightThenCancel) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ring_recv(ring, fd, page, kPage, 0, 31), LABYRINTH_OK) << last_error();
  close(fd);
  labyrinth_completion c{};
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_ring_complete(ring, &c, 1, 1, 200, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_BUSY);
  ASSERT_EQ(labyrinth_ring_cancel(ring, 31), LABYRINTH_OK) << last_error();
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.user_data, 31u);
  EXPECT_EQ(c.result, -ECANCELED);
  EXPECT_EQ(c.page, page);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// Destroying a ring with everything in flight: receives waiting for data,
// a multishot receive whose completions (pages filled by the kernel) were
// never taken, a SEND_ZC. Teardown cancels and waits; the application's
// pages come back to it, the provided pages go back to the pool.
TEST(UringTeardown, CancelsAndReturnsEveryPage) {
  labyrinth_pool *pool = make_pool(8u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(32);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  UdpPair waiting, filled;
  TcpPair tcp;
  std::vector<void *> mine;
  for (int i = 0; i < 3; ++i) {
    void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    ASSERT_EQ(labyrinth_ring_recv(ring, waiting.rx, p, kPage, 0, 60 + i), LABYRINTH_OK);
    mine.push_back(p);
  }
  void *t = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ring_recv(ring, tcp.b, t, kPage, 0, 70), LABYRINTH_OK);
  mine.push_back(t);
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, filled.rx, 0, 80));
  void *z = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  fill_pattern(z, kPage, 3);
  labyrinth_status zst = labyrinth_ring_send_zc(ring, tcp.a, z, kPage, 0, 90);
  ASSERT_TRUE(zst == LABYRINTH_OK || zst == LABYRINTH_ERR_UNSUPPORTED) << last_error();
  if (zst == LABYRINTH_OK) {
    mine.push_back(z);
  } else {
    EXPECT_EQ(labyrinth_free_pages(pool, z), LABYRINTH_OK);
  }
  send_datagrams(filled.tx, 0, 10);
  // Let the kernel fill pages from the provided-buffer ring.
  usleep(200 * 1000);
  labyrinth_stats ps{};
  ps.struct_size = sizeof(ps);
  ASSERT_EQ(labyrinth_pool_stats(pool, &ps), LABYRINTH_OK);
  // Nothing was taken, so all are still the kernel's: ours and the 32
  // provided pages, 10 of them now holding datagrams.
  EXPECT_EQ(ps.inflight_pages, (zst == LABYRINTH_OK ? 5u : 4u) + 32u);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_stats(pool, &ps), LABYRINTH_OK);
  EXPECT_EQ(ps.inflight_pages, 0u);
  EXPECT_EQ(ps.allocated_pages, mine.size());  // only ours are left
  for (void *p : mine) EXPECT_EQ(labyrinth_free_pages(pool, p), LABYRINTH_OK) << last_error();
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

}  // namespace
