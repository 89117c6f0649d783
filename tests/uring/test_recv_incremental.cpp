// Incremental consumption (LABYRINTH_RING_PBUF_INCREMENTAL, IOU_PBUF_RING_INC,
// Linux 6.12): one provided block takes several receives and each receive
// is a slice the taking thread owns. Every datagram once, many slices per
// page, slices released out of order, the block back in the pool only after
// the kernel's end of fill and its last slice, BUSY freeing it meanwhile,
// transfer between threads, teardown with slices alive, a TCP stream byte
// for byte across starvations. Skips where the kernel lacks the feature.
#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "slice_test_util.hpp"

using namespace uring_test;
using namespace slice_test;

namespace {

TEST_F(UringIncremental, UdpManySlicesPerPageEveryDatagramOnceReleasedOutOfOrder) {
  start(8);
  const std::uint32_t kTotal = 2048, kBatch = 128;
  std::vector<int> seen(kTotal, 0);
  std::set<std::uintptr_t> pages;
  std::vector<labyrinth_completion> held;
  std::mt19937 rng(24);
  for (std::uint32_t sent = 0; sent < kTotal; sent += kBatch) {
    send_small(udp.tx, sent, sent + kBatch);
    std::vector<labyrinth_completion> got;
    take_slices(ring, kBatch, &got);
    for (const labyrinth_completion &c : got) {
      ASSERT_EQ(c.result, static_cast<int32_t>(kSmall));
      ASSERT_TRUE(check_datagram(c.page, c.result));
      std::uint32_t seq = seq_of(c.page);
      ASSERT_LT(seq, kTotal);
      ++seen[seq];
      pages.insert(page_of(c.page));
      held.push_back(c);
    }
    // Keep a random half alive a while; release the rest in random order.
    std::shuffle(held.begin(), held.end(), rng);
    while (held.size() > kBatch / 2) {
      ASSERT_EQ(labyrinth_ring_slice_release(ring, held.back().page), LABYRINTH_OK) << last_error();
      held.pop_back();
    }
  }
  for (std::uint32_t s = 0; s < kTotal; ++s) ASSERT_EQ(seen[s], 1) << "datagram " << s;
  // 64 datagrams of 64 bytes fill a page: 32 pages, not 2048.
  EXPECT_LE(pages.size(), kTotal * kSmall / kPage + 1);
  EXPECT_EQ(ring_stats(ring).slices_live, held.size());
  for (const labyrinth_completion &c : held)
    ASSERT_EQ(labyrinth_ring_slice_release(ring, c.page), LABYRINTH_OK) << last_error();
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.pbuf_incremental, 1u);
  EXPECT_EQ(rs.slices_live, 0u);
  EXPECT_EQ(rs.slice_blocks_held, 0u);
  EXPECT_EQ(pool_stat_allocated(pool), rs.pbuf_pages);  // only the buffer ring's blocks
}

// One block gives many completions: more than the completion queue holds
// when the application is slow to take them. The kernel then ends the
// multishot receive on a datagram; the ring submits it again by itself.
TEST_F(UringIncremental, CompletionQueueFullReceiveGoesOn) {
  pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring_options o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL);
  o.sq_entries = 8;  // a completion queue of a few dozen entries
  labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
  if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();
  ASSERT_EQ(st, LABYRINTH_OK) << last_error();
  ASSERT_EQ(labyrinth_ring_recv_multishot(ring, udp.rx, 0, 7), LABYRINTH_OK) << last_error();
  const std::uint32_t kCq = ring_stats(ring).cq_entries, kTotal = 3 * kCq;
  for (std::uint32_t sent = 0; sent < kTotal; sent += kCq) {
    send_small(udp.tx, sent, sent + kCq);
    usleep(20000);  // the kernel fills the completion queue meanwhile
  }
  std::vector<labyrinth_completion> got;
  take_slices(ring, kTotal, &got);  // every one with MORE: the receive went on
  std::vector<int> seen(kTotal, 0);
  for (const labyrinth_completion &c : got) {
    ASSERT_TRUE(check_datagram(c.page, c.result));
    ++seen[seq_of(c.page)];
    ASSERT_EQ(labyrinth_ring_slice_release(ring, c.page), LABYRINTH_OK) << last_error();
  }
  for (std::uint32_t s = 0; s < kTotal; ++s) ASSERT_EQ(seen[s], 1) << "datagram " << s;
  EXPECT_EQ(ring_stats(ring).submitted, 1u);  // the application's one submission
}

TEST_F(UringIncremental, BlockBackOnlyAfterEndOfFillAndLastSliceBusyMeanwhile) {
  start(2);
  const std::uint32_t kPerPage = kPage / kSmall;
  const std::uint64_t inflight0 = pool_stat_inflight(pool);
  send_small(udp.tx, 0, kPerPage / 2);
  std::vector<labyrinth_completion> first;
  take_slices(ring, kPerPage / 2, &first);
  void *block = reinterpret_cast<void *>(page_of(first[0].page));
  ASSERT_EQ(first[0].page, block);  // the first receive starts the block
  // All slices released, but the kernel is still filling it: not back.
  for (const labyrinth_completion &c : first)
    ASSERT_EQ(labyrinth_ring_slice_release(ring, c.page), LABYRINTH_OK) << last_error();
  EXPECT_EQ(pool_stat_inflight(pool), inflight0);
  EXPECT_EQ(labyrinth_free_pages(pool, block), LABYRINTH_ERR_BUSY);
  // The second half fills the page: the kernel moves on, slices stay alive.
  send_small(udp.tx, kPerPage / 2, kPerPage);
  std::vector<labyrinth_completion> second;
  take_slices(ring, kPerPage / 2, &second);
  for (const labyrinth_completion &c : second) ASSERT_EQ(page_of(c.page), page_of(block));
  EXPECT_EQ(ring_stats(ring).slice_blocks_held, 1u);
  EXPECT_EQ(labyrinth_free_pages(pool, block), LABYRINTH_ERR_BUSY) << "slices are alive";
  const std::uint64_t inflight1 = pool_stat_inflight(pool);
  for (std::size_t i = 0; i + 1 < second.size(); ++i)
    ASSERT_EQ(labyrinth_ring_slice_release(ring, second[i].page), LABYRINTH_OK) << last_error();
  EXPECT_EQ(pool_stat_inflight(pool), inflight1);
  ASSERT_EQ(labyrinth_ring_slice_release(ring, second.back().page), LABYRINTH_OK) << last_error();
  EXPECT_EQ(pool_stat_inflight(pool), inflight1 - 1) << "the block went back to the pool";
  EXPECT_EQ(ring_stats(ring).slice_blocks_held, 0u);
}

TEST_F(UringIncremental, MisuseIsRefusedAndChangesNothing) {
  start(4);
  send_small(udp.tx, 0, 2);
  std::vector<labyrinth_completion> got;
  take_slices(ring, 2, &got);
  char *s = static_cast<char *>(got[0].page);
  EXPECT_EQ(labyrinth_ring_slice_release(ring, s + 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_slice_release(ring, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_slice_transfer(ring, s, LABYRINTH_OWNER_NONE), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_provide(ring, s), LABYRINTH_ERR_INVALID);
  ASSERT_EQ(labyrinth_ring_slice_release(ring, s), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_ring_slice_release(ring, s), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("already released"),
            std::string::npos)
      << last_error();
  // Teardown with a slice alive: BUSY, nothing changes; then it goes.
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("slice"), std::string::npos);
  EXPECT_EQ(ring_stats(ring).slices_live, 1u);
  ASSERT_EQ(labyrinth_ring_slice_release(ring, got[1].page), LABYRINTH_OK) << last_error();
  // TearDown destroys the ring and checks that the pool got every page back.
}

TEST_F(UringIncremental, TransferToAnotherThreadRefusedToAThird) {
  start(4);
  send_small(udp.tx, 0, 1);
  std::vector<labyrinth_completion> got;
  take_slices(ring, 1, &got);
  void *s = got[0].page;
  labyrinth_owner b_id = LABYRINTH_OWNER_NONE;
  std::thread id_thread([&] { b_id = labyrinth_owner_self(); });
  id_thread.join();
  // An exited thread's id is still a valid target; the new owner below is
  // a live thread with its own id.
  std::atomic<labyrinth_owner> b_self{LABYRINTH_OWNER_NONE};
  std::atomic<bool> go{false};
  labyrinth_status b_result = LABYRINTH_ERR_SYSTEM;
  std::thread b([&] {
    b_self = labyrinth_owner_self();
    while (!go) std::this_thread::yield();
    b_result = labyrinth_ring_slice_release(ring, s);
  });
  while (b_self == LABYRINTH_OWNER_NONE) std::this_thread::yield();
  ASSERT_EQ(labyrinth_ring_slice_transfer(ring, s, b_self), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_ring_slice_release(ring, s), LABYRINTH_ERR_NOT_OWNER);
  EXPECT_EQ(labyrinth_ring_slice_transfer(ring, s, b_id), LABYRINTH_ERR_NOT_OWNER);
  labyrinth_status c_result = LABYRINTH_OK;
  std::thread c([&] { c_result = labyrinth_ring_slice_release(ring, s); });
  c.join();
  EXPECT_EQ(c_result, LABYRINTH_ERR_NOT_OWNER);
  go = true;
  b.join();
  EXPECT_EQ(b_result, LABYRINTH_OK);
  EXPECT_EQ(ring_stats(ring).slices_live, 0u);
}

// A TCP stream through two-page blocks, holding every slice until the
// receive starves (the pool is small), then releasing them all: the ring
// re-arms by itself and the stream arrives byte for byte.
TEST_F(UringIncremental, TcpStreamByteForByteAcrossStarvations) {
  TcpPair tcp;
  start(4, 64u << 10, 1, LABYRINTH_RING_REPORT_STARVED, tcp.b);
  std::vector<unsigned char> src(1u << 20);
  fill_pattern(src.data(), src.size(), 24);
  std::vector<unsigned char> dst;
  dst.reserve(src.size());
  std::vector<void *> held;
  TcpSender sender(tcp.a, src);
  bool eof = false;
  while (!eof) {
    labyrinth_completion c[16];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, 16, 1, 5000, &n), LABYRINTH_OK) << last_error();
    ASSERT_GT(n, 0u) << "stalled at byte " << dst.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (c[i].flags & LABYRINTH_COMPLETION_STARVED) {
        for (void *p : held) ASSERT_EQ(labyrinth_ring_slice_release(ring, p), LABYRINTH_OK);
        held.clear();
        continue;
      }
      if (c[i].result == 0) {
        eof = true;
        continue;
      }
      ASSERT_GT(c[i].result, 0) << "receive failed";
      ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_SLICE);
      auto *p = static_cast<unsigned char *>(c[i].page);
      dst.insert(dst.end(), p, p + c[i].result);
      held.push_back(c[i].page);
    }
  }
  sender.join();
  for (void *p : held) ASSERT_EQ(labyrinth_ring_slice_release(ring, p), LABYRINTH_OK);
  ASSERT_EQ(dst.size(), src.size());
  EXPECT_TRUE(dst == src) << "the stream differs";
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_GT(rs.recv_starvations, 0u) << "the test never starved the ring";
  EXPECT_EQ(rs.recv_rearms, rs.recv_starvations);
  EXPECT_EQ(rs.submitted, 1u);
  EXPECT_EQ(rs.pbuf_block_bytes, 2 * kPage);
  EXPECT_EQ(rs.recv_maybe_trunc, 0u) << "a stream is never cut";
}

TEST(UringIncrementalOptions, Misuse) {
  labyrinth_pool *pool = make_pool(1u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o = pbuf_options(4);
  o.pbuf_order = 1;  // without incremental consumption
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL | LABYRINTH_RING_MANUAL_REFILL);
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  o = pbuf_options(0, LABYRINTH_RING_PBUF_INCREMENTAL);
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL);
  o.pbuf_order = LABYRINTH_MAX_ORDER + 1;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(ring, nullptr);
  // A ring without incremental consumption has no slices.
  o = pbuf_options(4, LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE);
  labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
  if (st == LABYRINTH_OK) {
    labyrinth_ring_stats rs{};
    rs.struct_size = sizeof rs;
    ASSERT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK);
    std::printf("[ figures  ] incremental consumption in effect: %u\n", rs.pbuf_incremental);
    labyrinth_ring_destroy(ring);
  }
  o = pbuf_options(4);
  if (labyrinth_ring_create(pool, &o, &ring) == LABYRINTH_OK) {
    int x = 0;
    EXPECT_EQ(labyrinth_ring_slice_release(ring, &x), LABYRINTH_ERR_INVALID);
    labyrinth_ring_destroy(ring);
  }
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  labyrinth_pool_destroy(pool);
}

}  // namespace
