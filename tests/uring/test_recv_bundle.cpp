// Receive bundles (labyrinth_ring_recv_bundle, IORING_RECVSEND_BUNDLE, Linux
// 6.10): one kernel completion fills several provided pages; each page comes
// out as its own completion, in byte order, owned by the thread that took
// it. TCP byte for byte, with starvation, UDP (one page per datagram),
// one-shot, misuse, teardown with bundle pages not yet taken. Every test
// skips, saying why, on a kernel without bundles.
#include "net_test_util.hpp"

using namespace uring_test;

namespace {

// What a receive loop collects: the stream, the pages, how completions ended.
struct Received {
  std::vector<unsigned char> bytes;
  std::vector<void *> pages;
  bool ended = false;       // a completion without MORE
  bool pages_full = true;   // every page but a bundle's last is full
  bool owned = true;        // every page is the taker's
  std::size_t bundle_ends = 0;
};

// Take up to `max` completions (waiting 1 ms) into rx. False on error.
bool take(labyrinth_pool *pool, labyrinth_ring *ring, Received &rx, std::size_t max = 8) {
  labyrinth_completion c[16];
  std::size_t n = 0;
  if (labyrinth_ring_complete(ring, c, max, 1, 1, &n) != LABYRINTH_OK) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (c[i].result < 0) return false;
    if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) rx.ended = true;
    if (!c[i].page) continue;
    EXPECT_EQ(c[i].op, static_cast<uint32_t>(LABYRINTH_OP_RECV_BUNDLE));
    EXPECT_TRUE(c[i].flags & LABYRINTH_COMPLETION_BUNDLE);
    if (c[i].flags & LABYRINTH_COMPLETION_BUNDLE_END)
      ++rx.bundle_ends;
    else if (c[i].result != static_cast<int32_t>(kPage))
      rx.pages_full = false;
    labyrinth_owner owner = LABYRINTH_OWNER_NONE;
    labyrinth_page_info(pool, c[i].page, &owner, nullptr);
    rx.owned = rx.owned && owner == labyrinth_owner_self();
    auto *p = static_cast<unsigned char *>(c[i].page);
    rx.bytes.insert(rx.bytes.end(), p, p + c[i].result);
    rx.pages.push_back(c[i].page);
  }
  return true;
}

// Create a ring with a provided-buffer ring of `entries` pages and arm a
// bundle receive on fd; skip the test where the kernel lacks bundles.
#define BUNDLE_RING_OR_SKIP(pool, ring, entries, fd, flags)                \
  labyrinth_pool *pool = make_pool(4u << 20);                              \
  ASSERT_NE(pool, nullptr);                                                \
  labyrinth_ring *ring = nullptr;                                          \
  labyrinth_ring_options o_ = pbuf_options(entries);                       \
  URING_CREATE_OR_SKIP(pool, &o_, ring);                                   \
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_bundle(ring, fd, 0, flags, 5))

// `bytes` of a pattern sent on tcp.a and left for loopback to deliver to
// tcp.b, so that a receive armed afterwards finds them all; empty on error.
std::vector<unsigned char> queue_stream(TcpPair &tcp, std::size_t bytes, std::uint64_t seed) {
  std::vector<unsigned char> src(bytes);
  fill_pattern(src.data(), bytes, seed);
  if (send(tcp.a, src.data(), bytes, 0) != static_cast<ssize_t>(bytes)) return {};
  usleep(10000);
  return src;
}

// tcp, src (npages pages already in the socket), pool, ring with a bundle
// receive (flags) on it, and an empty Received rx.
#define QUEUED_STREAM_OR_SKIP(npages, seed, flags)                             \
  TcpPair tcp;                                                                 \
  std::vector<unsigned char> src = queue_stream(tcp, (npages) * kPage, seed);  \
  ASSERT_FALSE(src.empty());                                                   \
  BUNDLE_RING_OR_SKIP(pool, ring, 8, tcp.b, flags);                            \
  Received rx

void finish(labyrinth_pool *pool, labyrinth_ring *ring, Received &rx,
            std::vector<void *> *held = nullptr) {
  free_all(pool, rx.pages);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK) << last_error();
  if (held) free_all(pool, *held);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// 64 KiB wait in the socket before the receive is armed, so its first
// completion spans several pages; then a 4 MiB stream. Every byte once and
// in order; pages are full except a bundle's last.
TEST(UringRecvBundle, TcpStreamByteForByte) {
  TcpPair tcp;
  const std::size_t kHead = 64u << 10, kBytes = 4u << 20;
  std::vector<unsigned char> src = queue_stream(tcp, kHead, 77);
  ASSERT_FALSE(src.empty());
  src.resize(kBytes);
  fill_pattern(src.data() + kHead, kBytes - kHead, 78);
  BUNDLE_RING_OR_SKIP(pool, ring, 64, tcp.b, 0);
  std::vector<unsigned char> rest(src.begin() + kHead, src.end());
  TcpSender sender(tcp.a, rest);
  Received rx;
  for (int idle = 0; !rx.ended && idle < 5000;) {
    std::size_t before = rx.bytes.size();
    ASSERT_TRUE(take(pool, ring, rx)) << last_error();
    idle = rx.bytes.size() == before ? idle + 1 : 0;
    free_all(pool, rx.pages);
  }
  sender.join();
  ASSERT_EQ(rx.bytes.size(), kBytes);
  EXPECT_EQ(std::memcmp(rx.bytes.data(), src.data(), kBytes), 0);
  EXPECT_TRUE(rx.pages_full);
  EXPECT_TRUE(rx.owned);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.submitted, 1u);
  EXPECT_GT(rs.recv_bundle_pages, rs.recv_bundles) << "no completion carried two pages";
  EXPECT_EQ(rs.recv_bundles, rx.bundle_ends);
  std::printf("[ figures  ] TCP bundles: %llu completions with data carried %llu pages "
              "(%.2f per completion)\n",
              static_cast<unsigned long long>(rs.recv_bundles),
              static_cast<unsigned long long>(rs.recv_bundle_pages),
              static_cast<double>(rs.recv_bundle_pages) / rs.recv_bundles);
  finish(pool, ring, rx);
}

// A four-page buffer ring refilled only when the receive starved (pages
// freed into the pool): the ring re-arms the bundle receive by itself and
// the stream stays intact.
TEST(UringRecvBundle, TcpStreamIntactAcrossStarvations) {
  TcpPair tcp;
  const std::size_t kBytes = 1u << 20;
  std::vector<unsigned char> src(kBytes);
  fill_pattern(src.data(), kBytes, 78);
  BUNDLE_RING_OR_SKIP(pool, ring, 4, tcp.b, 0);
  std::vector<void *> held = drain_pool(pool);
  TcpSender sender(tcp.a, src);
  Received rx;
  for (int idle = 0; !rx.ended && idle < 5000;) {
    std::size_t before = rx.bytes.size();
    ASSERT_TRUE(take(pool, ring, rx)) << last_error();
    idle = rx.bytes.size() == before ? idle + 1 : 0;
    if (ring_stats(ring).recv_starved_now) free_all(pool, rx.pages);
  }
  sender.join();
  ASSERT_EQ(rx.bytes.size(), kBytes);
  EXPECT_EQ(std::memcmp(rx.bytes.data(), src.data(), kBytes), 0);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.submitted, 1u);
  EXPECT_GE(rs.recv_starvations, 10u);
  EXPECT_EQ(rs.recv_rearms, rs.recv_starvations);
  EXPECT_GT(rs.recv_bundle_pages, rs.recv_bundles);
  finish(pool, ring, rx, &held);
}

// UDP: the kernel sizes a bundle by the bytes the socket says are queued,
// which a datagram socket does not report: one datagram per completion, in
// one page, flagged BUNDLE and BUNDLE_END.
TEST(UringRecvBundle, UdpOneDatagramPerPage) {
  UdpPair udp;
  BUNDLE_RING_OR_SKIP(pool, ring, 16, udp.rx, 0);
  send_datagrams(udp.tx, 0, 12);
  Received rx;
  for (std::uint32_t seq = 0; seq < 12; ++seq) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(ring, &c)) << "datagram " << seq;
    ASSERT_NE(c.page, nullptr) << c.result;
    rx.pages.push_back(c.page);
    EXPECT_TRUE(check_datagram(c.page, c.result));
    EXPECT_EQ(seq_of(c.page), seq);
    const uint32_t both = LABYRINTH_COMPLETION_BUNDLE | LABYRINTH_COMPLETION_BUNDLE_END;
    EXPECT_EQ(c.flags & both, both);
    EXPECT_TRUE(c.flags & LABYRINTH_COMPLETION_MORE);
  }
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.recv_bundles, 12u);
  EXPECT_EQ(rs.recv_bundle_pages, 12u);
  finish(pool, ring, rx);
}

// ONESHOT: one kernel completion, whatever it spans, then the receive ends.
TEST(UringRecvBundle, OneshotEndsAfterOneCompletion) {
  QUEUED_STREAM_OR_SKIP(3, 79, LABYRINTH_RECV_BUNDLE_ONESHOT);
  while (!rx.ended) ASSERT_TRUE(take(pool, ring, rx)) << last_error();
  EXPECT_EQ(rx.bytes, src);
  EXPECT_EQ(rx.pages.size(), 3u);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.ops_inflight, 0u);
  EXPECT_EQ(rs.recv_bundles, 1u);
  finish(pool, ring, rx);
}

// Misuse: unknown flags, a ring without provided-buffer ring, a ring with
// incremental consumption. INVALID, and nothing was submitted.
TEST(UringRecvBundle, MisuseIsInvalid) {
  UdpPair udp;
  BUNDLE_RING_OR_SKIP(pool, ring, 4, udp.rx, 0);
  EXPECT_EQ(labyrinth_ring_recv_bundle(ring, udp.rx, 0, 1u << 7, 6), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_error().find("unknown flags"), std::string::npos) << last_error();
  EXPECT_EQ(labyrinth_ring_recv_bundle(ring, -1, 0, 0, 6), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_recv_bundle(nullptr, udp.rx, 0, 0, 6), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(ring_stats(ring).submitted, 1u);
  labyrinth_ring *plain = nullptr;
  ASSERT_EQ(labyrinth_ring_create(pool, nullptr, &plain), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_ring_recv_bundle(plain, udp.rx, 0, 0, 6), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_error().find("no provided-buffer ring"), std::string::npos) << last_error();
  EXPECT_EQ(labyrinth_ring_destroy(plain), LABYRINTH_OK);
  labyrinth_ring_options inc = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL);
  labyrinth_ring *sliced = nullptr;
  if (labyrinth_ring_create(pool, &inc, &sliced) == LABYRINTH_OK) {
    EXPECT_EQ(labyrinth_ring_recv_bundle(sliced, udp.rx, 0, 0, 6), LABYRINTH_ERR_INVALID);
    EXPECT_NE(last_error().find("incremental"), std::string::npos) << last_error();
    EXPECT_EQ(ring_stats(sliced).submitted, 0u);
    EXPECT_EQ(labyrinth_ring_destroy(sliced), LABYRINTH_OK);
  }
  Received rx;
  finish(pool, ring, rx);
}

// Teardown with a bundle whose pages were not all taken (max 1 leaves the
// rest queued): destroy gives them back to the pool; nothing leaks.
TEST(UringRecvBundle, TeardownWithBundlePagesNotTaken) {
  QUEUED_STREAM_OR_SKIP(5, 80, 0);
  while (rx.pages.empty()) ASSERT_TRUE(take(pool, ring, rx, 1)) << last_error();
  ASSERT_EQ(rx.pages.size(), 1u);
  EXPECT_EQ(rx.bundle_ends, 0u) << "the bundle had one page only";
  EXPECT_GE(ring_stats(ring).recv_bundle_pages, 2u);
  finish(pool, ring, rx);
}

}  // namespace

namespace {

// A page of a bundle is the taker's alone: another thread cannot free or
// transfer it; the taker can.
TEST(UringRecvBundle, PagesAreExclusiveToTheTaker) {
  QUEUED_STREAM_OR_SKIP(3, 81, 0);
  while (rx.pages.size() < 3) ASSERT_TRUE(take(pool, ring, rx)) << last_error();
  labyrinth_status other_free = LABYRINTH_OK, other_transfer = LABYRINTH_OK;
  std::thread([&] {
    other_free = labyrinth_free_pages(pool, rx.pages[1]);
    other_transfer = labyrinth_page_transfer(pool, rx.pages[1], labyrinth_owner_self());
  }).join();
  EXPECT_EQ(other_free, LABYRINTH_ERR_NOT_OWNER);
  EXPECT_EQ(other_transfer, LABYRINTH_ERR_NOT_OWNER);
  EXPECT_TRUE(rx.owned);
  finish(pool, ring, rx);
}

// Cancelling a bundle receive ends it with a final completion; the pages
// already handed out stay the taker's.
TEST(UringRecvBundle, CancelEndsTheReceive) {
  QUEUED_STREAM_OR_SKIP(2, 82, 0);
  while (rx.pages.size() < 2) ASSERT_TRUE(take(pool, ring, rx)) << last_error();
  ASSERT_EQ(labyrinth_ring_cancel(ring, 5), LABYRINTH_OK) << last_error();
  labyrinth_completion c{};
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.result, -ECANCELED);
  EXPECT_FALSE(c.flags & LABYRINTH_COMPLETION_MORE);
  EXPECT_EQ(ring_stats(ring).ops_inflight, 0u);
  EXPECT_EQ(rx.bytes, src);
  finish(pool, ring, rx);
}

// The receive loop of labyrinth-rx: a SINGLE_THREAD ring (the kernel runs
// completion work only when asked) with REPORT_STARVED and a two-page
// buffer ring; the stream stays intact through starvation reports.
TEST(UringRecvBundle, SingleThreadRingReportsStarvation) {
  TcpPair tcp;
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o =
      pbuf_options(2, LABYRINTH_RING_SINGLE_THREAD | LABYRINTH_RING_REPORT_STARVED);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  std::vector<void *> held = drain_pool(pool);
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_bundle(ring, tcp.b, 0, 0, 5));
  std::vector<unsigned char> src(256 * kPage);
  fill_pattern(src.data(), src.size(), 83);
  TcpSender sender(tcp.a, src);
  Received rx;
  std::size_t starved = 0;
  for (int idle = 0; !rx.ended && idle < 5000;) {
    labyrinth_completion c[8];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 8, 1, 1, &n), LABYRINTH_OK) << last_error();
    idle = n ? 0 : idle + 1;
    for (std::size_t i = 0; i < n; ++i) {
      if (c[i].flags & LABYRINTH_COMPLETION_STARVED) {
        ++starved;
        free_all(pool, rx.pages);
        continue;
      }
      ASSERT_GE(c[i].result, 0);
      if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) rx.ended = true;
      if (!c[i].page) continue;
      auto *p = static_cast<unsigned char *>(c[i].page);
      rx.bytes.insert(rx.bytes.end(), p, p + c[i].result);
      rx.pages.push_back(c[i].page);
    }
  }
  sender.join();
  ASSERT_EQ(rx.bytes.size(), src.size());
  EXPECT_EQ(rx.bytes, src);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(starved, rs.recv_starvations);
  EXPECT_GE(starved, 10u);
  EXPECT_EQ(rs.submitted, 1u);
  finish(pool, ring, rx, &held);
}

}  // namespace
