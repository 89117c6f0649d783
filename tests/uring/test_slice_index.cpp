// Finding a slice's block from its address (incremental consumption): in
// blocks of several pages a slice that starts in any of them is found, one
// that does not start a slice is refused, and addresses outside the pool's
// arena are refused without touching anything. Skips where the kernel lacks
// incremental consumption.
#include <cstdint>
#include <vector>

#include "slice_test_util.hpp"

using namespace uring_test;
using namespace slice_test;

namespace {

TEST_F(UringIncremental, SlicesAnywhereInAMultiPageBlockAreFound) {
  constexpr std::uint32_t kOrder = 2, kBlock = kPage << kOrder, kPerBlock = kBlock / kSmall;
  start(4, 1u << 20, kOrder);
  send_small(udp.tx, 0, kPerBlock);
  std::vector<labyrinth_completion> got;
  take_slices(ring, kPerBlock, &got);
  const auto base = reinterpret_cast<std::uintptr_t>(got.front().page);
  ASSERT_EQ(base % kBlock, 0u) << "a block starts at a multiple of its size";
  std::vector<int> seen(kPerBlock, 0);
  for (const labyrinth_completion &c : got) {
    ASSERT_TRUE(check_datagram(c.page, c.result));
    ++seen[seq_of(c.page)];
    ASSERT_LT(reinterpret_cast<std::uintptr_t>(c.page) - base, kBlock) << "one block";
  }
  for (std::uint32_t s = 0; s < kPerBlock; ++s) ASSERT_EQ(seen[s], 1) << "datagram " << s;
  EXPECT_EQ(ring_stats(ring).slice_blocks_held, 1u);
  // Released last page first: every lookup lands past the block's first page.
  for (auto it = got.rbegin(); it != got.rend(); ++it) {
    char *p = static_cast<char *>(it->page);
    ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, p + 1, it->slice_gen), LABYRINTH_ERR_INVALID);
    ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, p, it->slice_gen), LABYRINTH_OK)
        << last_error();
    if (it + 1 != got.rend())
      ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, p, it->slice_gen),
                LABYRINTH_ERR_DOUBLE_FREE);
  }
  labyrinth_ring_stats rs = ring_stats(ring);
  EXPECT_EQ(rs.slices_live, 0u);
  EXPECT_EQ(rs.slice_blocks_held, 0u);
  EXPECT_EQ(pool_stat_allocated(pool), rs.pbuf_pages * 4) << "the block went back to the pool";
}

TEST_F(UringIncremental, AddressesOutsideTheArenaAreRefusedAndChangeNothing) {
  start(4);
  send_small(udp.tx, 0, 1);
  std::vector<labyrinth_completion> got;
  take_slices(ring, 1, &got);
  int on_stack = 0;
  std::vector<void *> foreign = {&on_stack, reinterpret_cast<void *>(std::uintptr_t{kPage}),
                                 reinterpret_cast<void *>(~std::uintptr_t{kPage - 1}),
                                 static_cast<char *>(got[0].page) + (64u << 20)};
  for (void *p : foreign) {
    EXPECT_EQ(labyrinth_ring_slice_release(ring, p), LABYRINTH_ERR_INVALID) << p;
    EXPECT_EQ(labyrinth_ring_slice_release_gen(ring, p, got[0].slice_gen), LABYRINTH_ERR_INVALID)
        << p;
    EXPECT_EQ(labyrinth_ring_slice_transfer(ring, p, labyrinth_owner_self()),
              LABYRINTH_ERR_INVALID)
        << p;
  }
  EXPECT_EQ(ring_stats(ring).slices_live, 1u);
  ASSERT_EQ(labyrinth_ring_slice_release_gen(ring, got[0].page, got[0].slice_gen), LABYRINTH_OK)
      << last_error();
}

}  // namespace
