// slice_test_util.hpp - helpers of the incremental-consumption tests
// (test_recv_incremental.cpp, test_slice_safety.cpp): small datagrams, taking
// slices, and a fixture with a pool, an incremental ring and a multishot
// receive that checks at the end that the pool got every page back.
#pragma once

#include <algorithm>
#include <vector>

#include "net_test_util.hpp"

namespace slice_test {

using namespace uring_test;

inline constexpr std::uint32_t kSmall = 64;  // datagram size: 64 per page

inline void send_small(int fd, std::uint32_t from, std::uint32_t to) {
  for (std::uint32_t s = from; s < to; ++s) {
    auto d = make_datagram(s, kSmall);
    ASSERT_EQ(send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size())) << strerror(errno);
  }
}

// Take completions until `want` slices were handed out; appends them.
inline void take_slices(labyrinth_ring *ring, std::size_t want,
                        std::vector<labyrinth_completion> *got) {
  while (want) {
    labyrinth_completion c[16];
    std::size_t n = 0;
    ASSERT_EQ(labyrinth_ring_complete(ring, c, std::min<std::size_t>(16, want), 1, 5000, &n),
              LABYRINTH_OK)
        << last_error();
    ASSERT_GT(n, 0u) << "no completion within 5 s, " << want << " slices missing";
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_MORE) << "receive ended: " << c[i].result;
      ASSERT_TRUE(c[i].flags & LABYRINTH_COMPLETION_SLICE);
      ASSERT_NE(c[i].page, nullptr);
      got->push_back(c[i]);
      --want;
    }
  }
}

inline std::uintptr_t page_of(const void *p) {
  return reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kPage - 1};
}

class UringIncremental : public ::testing::Test {
 protected:
  // A pool, an incremental ring of `entries` blocks of 2^order pages, and a
  // multishot receive on udp.rx (or on fd). Skips where unsupported.
  void start(std::uint32_t entries, std::size_t pool_bytes = 1u << 20, std::uint32_t order = 0,
             std::uint32_t extra_flags = 0, int fd = -1, std::uint32_t max_datagram = 0) {
    pool = make_pool(pool_bytes);
    ASSERT_NE(pool, nullptr);
    labyrinth_ring_options o =
        pbuf_options(entries, LABYRINTH_RING_PBUF_INCREMENTAL | extra_flags);
    o.pbuf_order = order;
    o.max_datagram = max_datagram;
    labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
    if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();
    ASSERT_EQ(st, LABYRINTH_OK) << last_error();
    st = labyrinth_ring_recv_multishot(ring, fd >= 0 ? fd : udp.rx, 0, 7);
    if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_error();
    ASSERT_EQ(st, LABYRINTH_OK) << last_error();
  }
  void TearDown() override {
    if (ring) {
      EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK) << last_error();
    }
    if (pool) {
      EXPECT_EQ(pool_stat_allocated(pool), 0u) << "pages leaked";
      labyrinth_pool_destroy(pool);
    }
  }
  UdpPair udp;
  labyrinth_pool *pool = nullptr;
  labyrinth_ring *ring = nullptr;
};

}  // namespace slice_test
