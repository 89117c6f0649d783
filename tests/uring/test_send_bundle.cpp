// Bundled sends (labyrinth_ring_send_bundle, IORING_RECVSEND_BUNDLE, Linux
// 6.10): a queue of the caller's pages in one submission arrives in order;
// every page is BUSY while in flight and comes back to its owner with its
// own completion; misuse changes nothing; a failed send gives every page
// back and leaves the ring usable; teardown with a send in flight. Every
// test skips, saying why, on a kernel without bundles.
#include <thread>

#include "net_test_util.hpp"

using namespace uring_test;

namespace {

// A TCP pair whose buffers are small, so that a send of many pages stays in
// flight until the peer (b) reads.
struct SlowTcp : TcpPair {
  SlowTcp() {
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  }
};

struct Sender {
  labyrinth_pool *pool = make_pool(4u << 20);
  labyrinth_ring *ring = nullptr;
  std::vector<void *> pages;
  std::vector<uint32_t> lens;
  std::vector<unsigned char> bytes;  // what the pages hold, in order

  // n exclusive pages of the calling thread, page i holding a pattern of
  // lens[i] = 4096 - 8 * i bytes.
  void fill(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      ASSERT_NE(p, nullptr);
      const uint32_t len = static_cast<uint32_t>(kPage - 8 * i);
      fill_pattern(p, len, 500 + i);
      auto *c = static_cast<unsigned char *>(p);
      bytes.insert(bytes.end(), c, c + len);
      pages.push_back(p);
      lens.push_back(len);
    }
  }
  labyrinth_status send(int fd, std::uint64_t user_data = 7) {
    return labyrinth_ring_send_bundle(ring, fd, pages.data(), lens.data(), pages.size(), 0,
                                      user_data);
  }
  ~Sender() {
    EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK) << last_error();
    free_all(pool, pages);
    EXPECT_EQ(pool_stat_allocated(pool), 0u);
    EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
  }
};

// A ring for s, and s.fill(n); skips where the kernel lacks bundles (probed
// with a send that the check refuses before anything changes: count 0 is
// INVALID on a kernel with bundles, UNSUPPORTED without).
#define SENDER_OR_SKIP(s, n)                                                           \
  ASSERT_NE(s.pool, nullptr);                                                          \
  URING_CREATE_OR_SKIP(s.pool, nullptr, s.ring);                                       \
  if (labyrinth_ring_send_bundle(s.ring, 0, nullptr, nullptr, 0, 0, 0) ==              \
      LABYRINTH_ERR_UNSUPPORTED)                                                       \
    GTEST_SKIP() << last_error();                                                      \
  s.fill(n);                                                                           \
  if (HasFatalFailure()) return

// Read `bytes` bytes from fd on a thread.
class Reader {
 public:
  Reader(int fd, std::size_t bytes) : got_(bytes), t_([this, fd] {
    std::size_t off = 0;
    while (off < got_.size()) {
      ssize_t n = recv(fd, got_.data() + off, got_.size() - off, 0);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  }) {}
  ~Reader() { wait(); }
  // What arrived, once the thread is done.
  const std::vector<unsigned char> &wait() {
    if (t_.joinable()) t_.join();
    return got_;
  }

 private:
  std::vector<unsigned char> got_;
  std::thread t_;
};

// Take completions until one without MORE; all of them in order.
std::vector<labyrinth_completion> take_all(labyrinth_ring *ring) {
  std::vector<labyrinth_completion> all;
  auto more = [&] { return all.empty() || (all.back().flags & LABYRINTH_COMPLETION_MORE); };
  for (int idle = 0; idle < 5000 && more();) {
    labyrinth_completion c[8];
    std::size_t n = 0;
    EXPECT_EQ(labyrinth_ring_complete(ring, c, 8, 1, 1, &n), LABYRINTH_OK) << last_error();
    idle = n ? 0 : idle + 1;
    all.insert(all.end(), c, c + n);
  }
  return all;
}

TEST(UringSendBundle, PagesArriveInOrderBusyWhileInFlightThenReturned) {
  SlowTcp tcp;
  Sender s;
  SENDER_OR_SKIP(s, 16);
  ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
  void *last = s.pages.back();
  EXPECT_EQ(labyrinth_free_pages(s.pool, last), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_page_transfer(s.pool, last, labyrinth_owner_self() + 1), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ring_send(s.ring, tcp.a, last, 16, 0, 8), LABYRINTH_ERR_BUSY);
  // A second bundled send waits for the first; its pages stay the caller's.
  void *other = labyrinth_void_alloc_page_gfp_atomic_exclusive(s.pool);
  uint32_t len = 16;
  EXPECT_EQ(labyrinth_ring_send_bundle(s.ring, tcp.a, &other, &len, 1, 0, 9), LABYRINTH_ERR_BUSY);
  EXPECT_NE(last_error().find("already in flight"), std::string::npos) << last_error();
  EXPECT_EQ(labyrinth_free_pages(s.pool, other), LABYRINTH_OK);
  std::vector<labyrinth_completion> all;
  {
    int big = 1 << 20;  // the reader now takes everything at once
    setsockopt(tcp.b, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    Reader r(tcp.b, s.bytes.size());
    all = take_all(s.ring);
  }
  ASSERT_EQ(all.size(), s.pages.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].page, s.pages[i]) << i;
    EXPECT_EQ(all[i].result, static_cast<int32_t>(s.lens[i])) << i;
    EXPECT_EQ(all[i].op, static_cast<uint32_t>(LABYRINTH_OP_SEND_BUNDLE));
    EXPECT_EQ(all[i].user_data, 7u);
    EXPECT_TRUE(all[i].flags & LABYRINTH_COMPLETION_BUNDLE);
    EXPECT_EQ(!!(all[i].flags & LABYRINTH_COMPLETION_MORE), i + 1 < all.size()) << i;
    labyrinth_owner owner = LABYRINTH_OWNER_NONE;
    EXPECT_EQ(labyrinth_page_info(s.pool, s.pages[i], &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
  }
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(s.ring, &rs), LABYRINTH_OK);
  EXPECT_EQ(rs.submitted, 1u);
  EXPECT_EQ(rs.pages_inflight, 0u);
  EXPECT_EQ(rs.send_bundle_pages, s.pages.size());
  EXPECT_GE(rs.send_bundles, 1u);
}

TEST(UringSendBundle, PagesArriveByteForByte) {
  TcpPair tcp;
  Sender s;
  SENDER_OR_SKIP(s, 200);
  Reader r(tcp.b, s.bytes.size());
  ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
  EXPECT_EQ(take_all(s.ring).size(), s.pages.size());
  EXPECT_EQ(r.wait(), s.bytes);
}

// Misuse: nothing is submitted and every page stays the caller's.
TEST(UringSendBundle, MisuseChangesNothing) {
  TcpPair tcp;
  Sender s;
  SENDER_OR_SKIP(s, 3);
  auto call = [&](void *const *pages, const uint32_t *lens, std::size_t n) {
    return labyrinth_ring_send_bundle(s.ring, tcp.a, pages, lens, n, 0, 1);
  };
  EXPECT_EQ(call(s.pages.data(), s.lens.data(), 0), LABYRINTH_ERR_INVALID);  // empty queue
  EXPECT_EQ(call(nullptr, s.lens.data(), 3), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(call(s.pages.data(), nullptr, 3), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(call(s.pages.data(), s.lens.data(), LABYRINTH_SEND_BUNDLE_MAX + 1),
            LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_send_bundle(s.ring, -1, s.pages.data(), s.lens.data(), 3, 0, 1),
            LABYRINTH_ERR_INVALID);
  std::vector<unsigned char> heap(kPage);
  std::vector<void *> q = s.pages;
  std::vector<uint32_t> lens = s.lens;
  q.push_back(heap.data());  // not the pool's
  lens.push_back(16);
  EXPECT_EQ(call(q.data(), lens.data(), 4), LABYRINTH_ERR_FOREIGN);
  q.back() = s.pages[0];  // listed twice
  EXPECT_EQ(call(q.data(), lens.data(), 4), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_error().find("twice"), std::string::npos) << last_error();
  void *theirs = nullptr;  // an exclusive page of another thread, last in the queue
  std::thread([&] { theirs = labyrinth_void_alloc_page_gfp_atomic_exclusive(s.pool); }).join();
  ASSERT_NE(theirs, nullptr);
  q.back() = theirs;
  EXPECT_EQ(call(q.data(), lens.data(), 4), LABYRINTH_ERR_NOT_OWNER);
  void *freed = labyrinth_void_alloc_page_gfp_atomic_exclusive(s.pool);
  ASSERT_EQ(labyrinth_free_pages(s.pool, freed), LABYRINTH_OK);
  q.back() = freed;
  EXPECT_EQ(call(q.data(), lens.data(), 4), LABYRINTH_ERR_DOUBLE_FREE);
  lens[1] = 0;
  EXPECT_EQ(call(q.data(), lens.data(), 3), LABYRINTH_ERR_INVALID);
  lens[1] = kPage + 1;
  EXPECT_EQ(call(q.data(), lens.data(), 3), LABYRINTH_ERR_INVALID);
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(s.ring, &rs), LABYRINTH_OK);
  EXPECT_EQ(rs.submitted, 0u);
  EXPECT_EQ(rs.pages_inflight, 0u);
  EXPECT_EQ(pool_stat_inflight(s.pool), 0u);
  for (void *p : s.pages) {
    labyrinth_owner owner = LABYRINTH_OWNER_NONE;
    EXPECT_EQ(labyrinth_page_info(s.pool, p, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
  }
  // The other thread's page is still its (an orphan now: its thread ended).
  EXPECT_EQ(labyrinth_page_transfer(s.pool, theirs, labyrinth_owner_self()),
            LABYRINTH_ERR_NOT_OWNER);
  std::size_t reclaimed = 0;
  EXPECT_EQ(labyrinth_pool_reclaim_orphans(s.pool, &reclaimed), LABYRINTH_OK) << last_error();
  EXPECT_EQ(reclaimed, 1u);
  // And the queue itself still sends.
  Reader r(tcp.b, s.bytes.size());
  ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
  EXPECT_EQ(take_all(s.ring).size(), 3u);
  EXPECT_EQ(r.wait(), s.bytes);
}

// The peer goes away mid-send: every page comes back (the unsent ones with
// an error), and the next bundled send on the ring sends only its own pages.
TEST(UringSendBundle, FailedSendGivesEveryPageBackRingStaysUsable) {
  Sender s;
  SENDER_OR_SKIP(s, 64);
  {
    SlowTcp tcp;
    ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
    usleep(10000);
    struct linger l{1, 0};  // close with a reset
    setsockopt(tcp.b, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(tcp.b);
    tcp.b = -1;
    std::vector<labyrinth_completion> all = take_all(s.ring);
    ASSERT_EQ(all.size(), s.pages.size());
    EXPECT_LT(all.back().result, 0) << "the last page was sent";
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].page, s.pages[i]);
  }
  TcpPair tcp;
  Reader r(tcp.b, s.bytes.size());
  ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
  EXPECT_EQ(take_all(s.ring).size(), s.pages.size());
  EXPECT_EQ(r.wait(), s.bytes);
}

// Destroying the ring with a bundled send in flight cancels it and gives
// every page back to its owner.
TEST(UringSendBundle, TeardownWithSendInFlight) {
  SlowTcp tcp;
  Sender s;
  SENDER_OR_SKIP(s, 64);
  ASSERT_EQ(s.send(tcp.a), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_free_pages(s.pool, s.pages[63]), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ring_destroy(s.ring), LABYRINTH_OK) << last_error();
  s.ring = nullptr;
  EXPECT_EQ(pool_stat_inflight(s.pool), 0u);
  // ~Sender frees every page: they are the caller's again.
}

}  // namespace
