// Incremental consumption made safe: a slice has a generation, so that a
// stale or second release is refused even after its block came back from
// the pool at the same address; datagrams cut at a block's end are flagged
// (or, with max_datagram, never cut); MSG_TRUNC, which would desynchronise
// the slice bookkeeping, is refused; labyrinth::Ring keeps (and says so) a
// ring its destructor cannot destroy because slices are alive. Skips where
// the kernel lacks the feature under test.
#include <sys/socket.h>

#include <map>
#include <string>

#include "labyrinth/labyrinth_uring.hpp"
#include "slice_test_util.hpp"

using namespace uring_test;
using namespace slice_test;

namespace {

constexpr std::uint32_t kPerPage = kPage / kSmall;

class SliceSafety : public UringIncremental {};

// One block in the buffer ring: a block whose slices were all released goes
// back to the pool, and the pool hands it out again as a later block, so a
// new slice starts at the address of an old, released one.
TEST_F(SliceSafety, StaleReleaseAfterBlockReuseIsRefusedAndChangesNothing) {
  start(1);
  std::map<std::uintptr_t, std::uint32_t> released;  // address -> generation
  std::uint32_t last_gen = 0;
  bool reused = false;
  for (std::uint32_t round = 0; round < 16 && !reused; ++round) {
    send_small(udp.tx, round * kPerPage, (round + 1) * kPerPage);
    std::vector<labyrinth_completion> got;
    take_slices(ring, kPerPage, &got);
    for (const labyrinth_completion &c : got) {
      ASSERT_NE(c.slice_gen, 0u);
      ASSERT_NE(c.slice_gen, last_gen) << "generations repeat";
      last_gen = c.slice_gen;
    }
    for (const labyrinth_completion &c : got) {
      auto old = released.find(reinterpret_cast<std::uintptr_t>(c.page));
      if (old == released.end() || reused) continue;
      reused = true;
      const std::uint64_t live = ring_stats(ring).slices_live;
      EXPECT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, old->second),
                LABYRINTH_ERR_DOUBLE_FREE);
      EXPECT_NE(std::string(labyrinth_last_error_message()).find("already released"),
                std::string::npos)
          << last_error();
      EXPECT_EQ(labyrinth_ring_slice_transfer_gen(ring, c.page, old->second, 12345),
                LABYRINTH_ERR_DOUBLE_FREE);
      EXPECT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, c.slice_gen + 1000),
                LABYRINTH_ERR_INVALID);
      EXPECT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, 0), LABYRINTH_ERR_INVALID);
      EXPECT_EQ(ring_stats(ring).slices_live, live) << "a refused release changed something";
    }
    for (const labyrinth_completion &c : got) {
      ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, c.slice_gen), LABYRINTH_OK)
          << last_error();
      released[reinterpret_cast<std::uintptr_t>(c.page)] = c.slice_gen;
    }
    // The block is back in the pool: nothing is known at that address.
    EXPECT_EQ(labyrinth_ring_slice_release_gen(ring, got[0].page, got[0].slice_gen),
              LABYRINTH_ERR_INVALID);
  }
  ASSERT_TRUE(reused) << "the pool never handed a released block out again";
  EXPECT_EQ(ring_stats(ring).slices_live, 0u);
}

// Without max_datagram the kernel cuts a datagram at the block's end.
TEST_F(SliceSafety, DatagramCutAtBlockEndIsFlaggedAndCounted) {
  start(4);
  constexpr std::uint32_t kLen = 1000;  // the fifth finds 96 bytes of room
  for (std::uint32_t s = 0; s < 5; ++s) {
    auto d = make_datagram(s, kLen);
    ASSERT_EQ(send(udp.tx, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  }
  std::vector<labyrinth_completion> got;
  take_slices(ring, 5, &got);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].result, static_cast<int32_t>(kLen));
    EXPECT_FALSE(got[i].flags & LABYRINTH_COMPLETION_MAYBE_TRUNC) << i;
  }
  EXPECT_EQ(got[4].result, static_cast<int32_t>(kPage - 4 * kLen));
  EXPECT_TRUE(got[4].flags & LABYRINTH_COMPLETION_MAYBE_TRUNC) << "a cut datagram went unsaid";
  EXPECT_EQ(ring_stats(ring).recv_maybe_trunc, 1u);
  for (const labyrinth_completion &c : got)
    ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, c.slice_gen), LABYRINTH_OK);
}

// With max_datagram the kernel retires a block with less room than that.
TEST_F(SliceSafety, MaxDatagramKeepsEveryDatagramWhole) {
  constexpr std::uint32_t kLen = 1000, kTotal = 24;
  start(4, 1u << 20, 0, 0, -1, kLen);
  for (std::uint32_t s = 0; s < kTotal; ++s) {
    auto d = make_datagram(s, kLen);
    ASSERT_EQ(send(udp.tx, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  }
  std::vector<labyrinth_completion> got;
  take_slices(ring, kTotal, &got);
  std::vector<int> seen(kTotal, 0);
  for (const labyrinth_completion &c : got) {
    ASSERT_EQ(c.result, static_cast<int32_t>(kLen)) << "cut although max_datagram is set";
    ASSERT_TRUE(check_datagram(c.page, c.result));
    EXPECT_FALSE(c.flags & LABYRINTH_COMPLETION_MAYBE_TRUNC);
    ++seen[seq_of(c.page)];
    ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, c.page, c.slice_gen), LABYRINTH_OK);
  }
  for (std::uint32_t s = 0; s < kTotal; ++s) EXPECT_EQ(seen[s], 1) << "datagram " << s;
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.pbuf_min_left, kLen);
  EXPECT_EQ(rs.recv_maybe_trunc, 0u);
}

TEST_F(SliceSafety, MsgTruncAndBadMaxDatagramAreRefused) {
  pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring_options o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL);
  o.max_datagram = kPage + 1;  // more than a block
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  o = pbuf_options(4);
  o.max_datagram = 512;  // without incremental consumption
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(ring, nullptr);
  o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL);
  labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
  if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();
  ASSERT_EQ(st, LABYRINTH_OK) << last_error();
  st = labyrinth_ring_recv_multishot(ring, udp.rx, MSG_TRUNC, 7);
  if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();
  EXPECT_EQ(st, LABYRINTH_ERR_INVALID);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("MSG_TRUNC"), std::string::npos);
  EXPECT_EQ(ring_stats(ring).submitted, 0u);
}

// ~Ring with a slice alive: the ring is kept (stderr says so) and the
// slice stays valid; the ring is destroyed once it is released.
TEST(SliceSafetyCpp, RingDestructorKeepsARingWithLiveSlices) {
  UdpPair udp;
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *raw = nullptr;
  labyrinth_completion c{};
  std::string err;
  try {
    labyrinth::Ring ring(pool, labyrinth::RingOptions{}.pbuf_entries(4).flags(
                                   LABYRINTH_RING_PBUF_INCREMENTAL));
    ring.recv_multishot(udp.rx, 0, 7);
    send_small(udp.tx, 0, 1);
    ASSERT_EQ(ring.complete(&c, 1, 1, 5000), 1u);
    ASSERT_TRUE(c.flags & LABYRINTH_COMPLETION_SLICE);
    try {
      ring.destroy();
      ADD_FAILURE() << "destroy() with a live slice did not throw";
    } catch (const labyrinth::Error &e) {
      EXPECT_EQ(e.status(), LABYRINTH_ERR_BUSY);
    }
    ASSERT_NE(ring.get(), nullptr) << "destroy() refused but dropped the ring";
    raw = ring.get();
    testing::internal::CaptureStderr();
  } catch (const labyrinth::Error &e) {
    labyrinth_pool_destroy(pool);
    if (e.status() == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << e.what();
    FAIL() << e.what();
  }
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("labyrinth::Ring"), std::string::npos) << err;
  EXPECT_NE(err.find("slices"), std::string::npos) << err;
  EXPECT_EQ(labyrinth_ring_slice_release_gen(raw, c.page, c.slice_gen), LABYRINTH_OK)
      << last_error();
  EXPECT_EQ(labyrinth_ring_destroy(raw), LABYRINTH_OK) << last_error();
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// The C++ overloads name a slice by its completion (address and generation).
TEST(SliceSafetyCpp, RingReleasesByCompletion) {
  UdpPair udp;
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  try {
    labyrinth::Ring ring(pool, labyrinth::RingOptions{}.pbuf_entries(4).flags(
                                   LABYRINTH_RING_PBUF_INCREMENTAL));
    ring.recv_multishot(udp.rx, 0, 7);
    send_small(udp.tx, 0, 2);
    labyrinth_completion c[2];
    std::size_t n = ring.complete(c, 2, 2, 5000);
    ASSERT_EQ(n, 2u);
    EXPECT_EQ(ring.slice_transfer(c[0], labyrinth_owner_self()), LABYRINTH_OK);
    EXPECT_EQ(ring.slice_release(c[0]), LABYRINTH_OK);
    EXPECT_EQ(ring.slice_release(c[0]), LABYRINTH_ERR_DOUBLE_FREE);
    EXPECT_EQ(ring.slice_release(c[1]), LABYRINTH_OK);
    EXPECT_EQ(ring.stats().slices_live, 0u);
  } catch (const labyrinth::Error &e) {
    labyrinth_pool_destroy(pool);
    if (e.status() == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << e.what();
    FAIL() << e.what();
  }
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

}  // namespace
