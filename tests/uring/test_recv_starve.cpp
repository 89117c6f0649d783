// A multishot receive whose provided-buffer ring runs dry: the ring re-arms
// it by itself once pages are back (a free into the pool seen by
// labyrinth_ring_complete, or labyrinth_ring_provide), for UDP and TCP.
// Every datagram the socket accepted is delivered once and in order, the
// application submits the receive once, no page leaks; cancel and teardown
// while starved.
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "net_test_util.hpp"

using namespace uring_test;

namespace {

// The stats of a ring whose one multishot receive is not starved: in the
// kernel (`armed`) or ended; every starvation was re-armed. Returns re-arms.
std::uint64_t expect_receiving(labyrinth_ring *ring, bool armed) {
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.recv_starved_now, 0u);
  EXPECT_EQ(rs.ops_inflight, armed ? 1u : 0u);
  EXPECT_EQ(rs.submitted, 1u);  // the application submitted it once
  if (armed) {
    EXPECT_EQ(rs.recv_rearms, rs.recv_starvations);
  }
  return rs.recv_rearms;
}

// Datagrams the kernel dropped on UDP socket fd (its receive buffer
// overflowed): the "drops" column of /proc/net/udp for its inode.
std::uint64_t udp_drops(int fd) {
  struct stat st{};
  if (fstat(fd, &st) != 0) return ~0ull;
  std::ifstream in("/proc/net/udp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string col[13];
    for (auto &c : col) f >> c;
    if (std::strtoull(col[9].c_str(), nullptr, 10) == st.st_ino)
      return std::strtoull(col[12].c_str(), nullptr, 10);
  }
  return ~0ull;
}

// The target of issue 24: 1,000 starvations over UDP. Each round sends six
// datagrams to a four-page buffer ring and gives the received pages back
// only when told that the receive starved.
class UringRecvStarveFlags : public ::testing::TestWithParam<uint32_t> {};

TEST_P(UringRecvStarveFlags, UdpThousandStarvationsEveryDatagramOnce) {
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(4, LABYRINTH_RING_REPORT_STARVED | GetParam());
  URING_CREATE_OR_SKIP(pool, &o, ring);
  std::vector<void *> held = drain_pool(pool);
  UdpPair udp;
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, udp.rx, 0, 7));
  const std::uint32_t kRound = 6, kStarvations = 1000;
  std::vector<void *> received;
  std::vector<std::uint32_t> times_delivered;
  std::uint32_t sent = 0, next_seq = 0, starved = 0;
  while (starved < kStarvations) {
    send_datagrams(udp.tx, sent, sent + kRound);
    sent += kRound;
    times_delivered.resize(sent, 0);
    while (next_seq < sent) {
      labyrinth_completion c[8];
      std::size_t n = 0;
      ASSERT_EQ(labyrinth_ring_complete(ring, c, 8, 1, 5000, &n), LABYRINTH_OK) << last_error();
      ASSERT_GT(n, 0u) << "the receive stopped at datagram " << next_seq << " after " << starved
                       << " starvations";
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(c[i].user_data, 7u);
        ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_MORE) << "ended: " << c[i].result;
        if (c[i].flags & LABYRINTH_COMPLETION_STARVED) {
          ASSERT_EQ(c[i].result, -ENOBUFS);
          ASSERT_EQ(c[i].page, nullptr);
          ++starved;
          free_all(pool, received);  // pages back: the ring re-arms by itself
          continue;
        }
        ASSERT_NE(c[i].page, nullptr);
        ASSERT_TRUE(check_datagram(c[i].page, c[i].result)) << "datagram " << next_seq;
        std::uint32_t seq = seq_of(c[i].page);
        ASSERT_LT(seq, sent);
        ++times_delivered[seq];
        EXPECT_EQ(seq, next_seq) << "out of order";
        next_seq = seq + 1;
        received.push_back(c[i].page);
      }
    }
  }
  const std::uint64_t drops = udp_drops(udp.rx);
  ASSERT_NE(drops, ~0ull) << "socket not found in /proc/net/udp";
  std::uint32_t once = 0;
  for (std::uint32_t t : times_delivered) {
    EXPECT_LE(t, 1u);
    once += t == 1;
  }
  EXPECT_EQ(once, sent - drops);  // every datagram the socket accepted
  EXPECT_EQ(drops, 0u);           // six in flight never fill its buffer
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.submitted, 1u);  // the application's one submission
  EXPECT_GE(rs.recv_starvations, kStarvations);
  EXPECT_EQ(rs.recv_starvations, starved);
  EXPECT_EQ(rs.recv_rearms + rs.recv_starved_now, rs.recv_starvations);
  EXPECT_GT(rs.recv_starved_ns, 0u);
  std::printf("[ figures  ] UDP: %u datagrams sent, %u delivered once, %llu dropped; "
              "%llu starvations, %llu re-arms, %.3f ms starved in all (%.1f us each)\n",
              sent, once, static_cast<unsigned long long>(drops),
              static_cast<unsigned long long>(rs.recv_starvations),
              static_cast<unsigned long long>(rs.recv_rearms), rs.recv_starved_ns / 1e6,
              rs.recv_starved_ns / 1e3 / (rs.recv_rearms ? rs.recv_rearms : 1));
  free_all(pool, received);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  free_all(pool, held);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);  // no page leaked
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

INSTANTIATE_TEST_SUITE_P(Flags, UringRecvStarveFlags,
                         ::testing::Values(0u, static_cast<uint32_t>(LABYRINTH_RING_SINGLE_THREAD)));

// TCP: a stream through a two-page buffer ring that the receiver refills
// only when the receive starved (seen in the stats: no REPORT_STARVED).
// The socket holds the bytes meanwhile: none lost, none reordered.
TEST(UringRecvStarve, TcpStreamIntactAcrossStarvations) {
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(2);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  std::vector<void *> held = drain_pool(pool);
  TcpPair tcp;
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, tcp.b, 0, 9));
  const std::size_t kBytes = 2u << 20;
  std::vector<unsigned char> src(kBytes);
  fill_pattern(src.data(), kBytes, 91);
  TcpSender sender(tcp.a, src);
  std::vector<unsigned char> dst;
  std::vector<void *> received;
  bool ended = false;
  int idle = 0;
  while (!ended && idle < 5000) {
    labyrinth_completion c[8];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 8, 1, 1, &n), LABYRINTH_OK) << last_error();
    idle = n ? 0 : idle + 1;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_GE(c[i].result, 0) << "the receive ended";
      if (c[i].page) {
        auto *p = static_cast<unsigned char *>(c[i].page);
        dst.insert(dst.end(), p, p + c[i].result);
        received.push_back(c[i].page);
      }
      if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) ended = true;  // EOF
    }
    if (ring_stats(ring).recv_starved_now) free_all(pool, received);
  }
  sender.join();
  EXPECT_TRUE(ended) << "stalled at byte " << dst.size();
  ASSERT_EQ(dst.size(), kBytes);
  EXPECT_EQ(std::memcmp(dst.data(), src.data(), kBytes), 0);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.submitted, 1u);
  EXPECT_GE(rs.recv_starvations, 100u);
  EXPECT_EQ(rs.recv_rearms, rs.recv_starvations);
  std::printf("[ figures  ] TCP: %zu bytes intact; %llu starvations, %llu re-arms, %.3f ms "
              "starved in all\n",
              dst.size(), static_cast<unsigned long long>(rs.recv_starvations),
              static_cast<unsigned long long>(rs.recv_rearms), rs.recv_starved_ns / 1e6);
  free_all(pool, received);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  free_all(pool, held);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// A sender thread outruns a receiver that gives pages back only when the
// receive starved (seen in the stats), into a 64 KiB socket buffer that
// overflows meanwhile: the datagrams the socket accepted (sent minus its
// drops) are exactly those delivered, in order, none twice.
TEST(UringRecvStarve, UdpConcurrentSenderDeliversWhatTheSocketAccepted) {
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(4);
  URING_CREATE_OR_SKIP(pool, &o, ring);
  std::vector<void *> held = drain_pool(pool);
  UdpPair udp;
  int small = 64 << 10;
  ASSERT_EQ(setsockopt(udp.rx, SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
  SKIP_IF_UNSUPPORTED(labyrinth_ring_recv_multishot(ring, udp.rx, 0, 11));
  const std::uint32_t kTotal = 20000;
  std::atomic<bool> sent_all{false};
  std::thread sender([&] {
    send_datagrams(udp.tx, 0, kTotal);
    sent_all = true;
  });
  std::vector<void *> received;
  std::uint32_t delivered = 0, next_min = 0;
  int quiet = 0;
  bool in_order = true;
  while (quiet < 50) {  // 50 ms without a completion after the last send
    labyrinth_completion c[16];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 16, 1, 1, &n), LABYRINTH_OK) << last_error();
    quiet = (n || !sent_all) ? 0 : quiet + 1;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_MORE) << "ended: " << c[i].result;
      ASSERT_NE(c[i].page, nullptr);
      ASSERT_TRUE(check_datagram(c[i].page, c[i].result));
      std::uint32_t seq = seq_of(c[i].page);
      in_order = in_order && seq >= next_min;  // drops leave gaps, never repeats
      next_min = seq + 1;
      ++delivered;
      received.push_back(c[i].page);
    }
    if (ring_stats(ring).recv_starved_now) free_all(pool, received);
  }
  sender.join();
  EXPECT_TRUE(in_order);
  const std::uint64_t drops = udp_drops(udp.rx);
  ASSERT_NE(drops, ~0ull) << "socket not found in /proc/net/udp";
  EXPECT_EQ(delivered, kTotal - drops);
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_GE(rs.recv_starvations, 1u);
  EXPECT_EQ(rs.submitted, 1u);
  std::printf("[ figures  ] UDP, concurrent sender: %u sent, %llu dropped by the socket, %u "
              "delivered; %llu starvations, %llu re-arms, %.3f ms starved in all\n",
              kTotal, static_cast<unsigned long long>(drops), delivered,
              static_cast<unsigned long long>(rs.recv_starvations),
              static_cast<unsigned long long>(rs.recv_rearms), rs.recv_starved_ns / 1e6);
  free_all(pool, received);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  free_all(pool, held);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

// A UDP multishot receive (user_data 3) starved on a four-page buffer ring
// with REPORT_STARVED: every page of the pool is in `held` or `received`
// (datagrams 0..3); datagrams 4.. wait in the socket.
struct Starved {
  labyrinth_pool *pool = nullptr;
  labyrinth_ring *ring = nullptr;
  UdpPair udp;
  std::vector<void *> held, received;
};

void starve(Starved &s, std::uint32_t flags, std::uint32_t sent) {
  s.pool = make_pool(1u << 20);
  ASSERT_NE(s.pool, nullptr);
  labyrinth_ring_options o = pbuf_options(4, LABYRINTH_RING_REPORT_STARVED | flags);
  ASSERT_EQ(labyrinth_ring_create(s.pool, &o, &s.ring), LABYRINTH_OK) << last_error();
  if (flags & LABYRINTH_RING_MANUAL_REFILL) {
    for (int i = 0; i < 4; ++i) {
      void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(s.pool);
      ASSERT_EQ(labyrinth_ring_provide(s.ring, p), LABYRINTH_OK) << last_error();
    }
  }
  s.held = drain_pool(s.pool);
  ASSERT_EQ(labyrinth_ring_recv_multishot(s.ring, s.udp.rx, 0, 3), LABYRINTH_OK) << last_error();
  send_datagrams(s.udp.tx, 0, sent);
  for (;;) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(s.ring, &c)) << "received " << s.received.size();
    if (c.flags & LABYRINTH_COMPLETION_STARVED) break;
    ASSERT_NE(c.page, nullptr);
    EXPECT_EQ(seq_of(c.page), s.received.size());
    s.received.push_back(c.page);
  }
  ASSERT_EQ(s.received.size(), 4u);  // exactly the buffer ring's pages
  labyrinth_ring_stats rs = ring_stats(s.ring);
  EXPECT_EQ(rs.recv_starved_now, 1u);
  EXPECT_EQ(rs.ops_inflight, 0u);  // the kernel holds nothing for it
  EXPECT_EQ(rs.pbuf_pages, 0u);
}

void finish(Starved &s) {
  if (s.ring) {
    EXPECT_EQ(labyrinth_ring_destroy(s.ring), LABYRINTH_OK) << last_error();
  }
  if (!s.pool) return;
  free_all(s.pool, s.received);
  free_all(s.pool, s.held);
  EXPECT_EQ(pool_stat_allocated(s.pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(s.pool), LABYRINTH_OK) << last_error();
}

#define STARVE_OR_SKIP(s, flags, sent)                                                \
  do {                                                                                \
    std::string why_;                                                                 \
    if (!multishot_supported(&why_)) GTEST_SKIP() << why_;                            \
    starve(s, flags, sent);                                                           \
    if (HasFatalFailure()) {                                                          \
      finish(s);                                                                      \
      return;                                                                         \
    }                                                                                 \
  } while (0)

// Whether this kernel has io_uring, provided-buffer rings and multishot
// receive; if not, *why says why.
bool multishot_supported(std::string *why) {
  labyrinth_pool *pool = make_pool(1u << 20);
  if (!pool) {
    *why = "no pool: " + last_error();
    return false;
  }
  labyrinth_ring_options o = pbuf_options(4);
  labyrinth_ring *ring = nullptr;
  labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
  UdpPair udp;
  if (st == LABYRINTH_OK) st = labyrinth_ring_recv_multishot(ring, udp.rx, 0, 1);
  if (st != LABYRINTH_OK) *why = last_error();
  labyrinth_ring_destroy(ring);
  labyrinth_pool_destroy(pool);
  return st == LABYRINTH_OK;
}

// Pages freed into the pool: the next complete() refills and re-arms; the
// datagrams that waited in the socket follow in order. Then 24 more (the
// four-page buffer ring may starve again between two refills).
TEST(UringRecvStarve, FreeIntoPoolRearms) {
  Starved s;
  STARVE_OR_SKIP(s, 0, 6);
  free_all(s.pool, s.received);
  free_all(s.pool, s.held);
  send_datagrams(s.udp.tx, 6, 30);
  for (std::uint32_t seq = 4; seq < 30; ++seq) {
    labyrinth_completion c{};
    do {
      ASSERT_TRUE(complete_one(s.ring, &c)) << "the receive stopped at " << seq;
    } while (c.flags & LABYRINTH_COMPLETION_STARVED);
    ASSERT_NE(c.page, nullptr) << c.result;
    EXPECT_TRUE(check_datagram(c.page, c.result));
    EXPECT_EQ(seq_of(c.page), seq);
    EXPECT_EQ(labyrinth_free_pages(s.pool, c.page), LABYRINTH_OK);
  }
  EXPECT_GE(expect_receiving(s.ring, true), 1u);
  finish(s);
}

// MANUAL_REFILL: labyrinth_ring_provide() re-arms at once, before any
// complete() call.
TEST(UringRecvStarve, ProvideRearmsAtOnce) {
  Starved s;
  STARVE_OR_SKIP(s, LABYRINTH_RING_MANUAL_REFILL, 6);
  void *p = s.received.back();
  s.received.pop_back();
  ASSERT_EQ(labyrinth_ring_provide(s.ring, p), LABYRINTH_OK) << last_error();
  EXPECT_EQ(expect_receiving(s.ring, true), 1u);
  labyrinth_completion c{};
  ASSERT_TRUE(complete_one(s.ring, &c));
  ASSERT_EQ(c.page, p);  // the page just provided, with the next datagram
  EXPECT_EQ(seq_of(c.page), 4u);
  s.received.push_back(c.page);
  ASSERT_TRUE(complete_one(s.ring, &c));  // starved again: datagram 5 waits
  EXPECT_TRUE(c.flags & LABYRINTH_COMPLETION_STARVED);
  finish(s);
}

// Another thread frees pages while the ring's thread waits in complete():
// the wait notices them (it retries while starved) and the receive goes on.
TEST(UringRecvStarve, FreeFromAnotherThreadWhileWaiting) {
  Starved s;
  STARVE_OR_SKIP(s, 0, 5);
  std::vector<void *> give = s.held;
  s.held.clear();
  std::atomic<labyrinth_owner> freer_id{LABYRINTH_OWNER_NONE};
  std::atomic<bool> handed{false};
  std::thread freer([&] {
    freer_id = labyrinth_owner_self();
    while (!handed) usleep(100);
    usleep(20 * 1000);  // the ring's thread is waiting in complete() by now
    for (void *p : give) EXPECT_EQ(labyrinth_free_pages(s.pool, p), LABYRINTH_OK) << last_error();
  });
  while (freer_id == LABYRINTH_OWNER_NONE) usleep(100);
  for (void *p : give)
    EXPECT_EQ(labyrinth_page_transfer(s.pool, p, freer_id), LABYRINTH_OK) << last_error();
  handed = true;
  labyrinth_completion c{};
  bool got = complete_one(s.ring, &c, 5000);
  freer.join();
  ASSERT_TRUE(got);
  ASSERT_NE(c.page, nullptr);
  EXPECT_EQ(seq_of(c.page), 4u);
  s.received.push_back(c.page);
  EXPECT_EQ(ring_stats(s.ring).recv_rearms, 1u);
  finish(s);
}

// Cancel while starved: the final -ECANCELED completion comes from the next
// complete(), and the receive is never re-armed.
TEST(UringRecvStarve, CancelWhileStarved) {
  Starved s;
  STARVE_OR_SKIP(s, 0, 6);
  ASSERT_EQ(labyrinth_ring_cancel(s.ring, 3), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_ring_cancel(s.ring, 3), LABYRINTH_OK);  // its completion is not taken yet
  free_all(s.pool, s.received);
  labyrinth_completion c{};
  ASSERT_TRUE(complete_one(s.ring, &c));
  EXPECT_EQ(c.user_data, 3u);
  EXPECT_EQ(c.result, -ECANCELED);
  EXPECT_EQ(c.page, nullptr);
  EXPECT_FALSE(c.flags & LABYRINTH_COMPLETION_MORE);
  EXPECT_EQ(labyrinth_ring_cancel(s.ring, 3), LABYRINTH_ERR_INVALID);  // nothing left
  std::size_t n = 9;
  ASSERT_EQ(labyrinth_ring_complete(s.ring, &c, 1, 1, 50, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 0u);  // nothing in flight, nothing starved: returns at once
  EXPECT_EQ(expect_receiving(s.ring, false), 0u);
  finish(s);
}

// Destroy while starved: nothing to wait for, every page goes home.
TEST(UringRecvStarve, TeardownWhileStarved) {
  Starved s;
  STARVE_OR_SKIP(s, 0, 8);
  free_all(s.pool, s.held);  // pages back, but no complete() re-arms it
  EXPECT_EQ(ring_stats(s.ring).recv_starved_now, 1u);
  finish(s);
}

}  // namespace
