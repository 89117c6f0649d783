// Transmit through AF_XDP from the pool's pages: in flight until the
// COMPLETION ring gives the page back; two sockets on one UMEM; every
// misuse refused with the library's status, changing nothing.
#include <memory>
#include <thread>

#include "xdp_test_util.hpp"

using namespace xdp_test;

namespace {

struct World {
  labyrinth_pool *pool = nullptr;
  labyrinth_xdp_umem *umem = nullptr;
  World() {
    pool = make_pool(16u << 20);
    EXPECT_EQ(labyrinth_xdp_umem_create(pool, &umem), LABYRINTH_OK) << last_error();
  }
  ~World() {
    EXPECT_EQ(labyrinth_xdp_umem_destroy(umem), LABYRINTH_OK) << last_error();
    EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
  }
};

// Read completions until n pages came back or timeout_ms passed.
std::size_t complete(labyrinth_xdp_socket *s, std::size_t n, int timeout_ms) {
  std::size_t total = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (total < n && std::chrono::steady_clock::now() < end) {
    std::size_t k = 0;
    EXPECT_EQ(labyrinth_xdp_complete(s, &k), LABYRINTH_OK);
    total += k;
    if (k == 0) usleep(1000);
  }
  return total;
}

// A pool, its UMEM and one socket on xb for each test.
class XdpTx : public ::testing::Test {
 protected:
  void SetUp() override {
    XDP_REQUIRE_WORLD();
    world_ = std::make_unique<World>();
    s = open_socket(w().umem, "xb");
    ASSERT_NE(s, nullptr);
  }
  World &w() { return *world_; }
  std::unique_ptr<World> world_;
  labyrinth_xdp_socket *s = nullptr;
};

}  // namespace

TEST_F(XdpTx, InFlightUntilCompletionGivesPageBack) {
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(w().pool);
  ASSERT_NE(page, nullptr);
  write_frame(static_cast<char *>(page) + 128, kMacA, kMacB, 7, 60);
  const std::uint64_t inflight = stats(w().pool).inflight_pages;
  ASSERT_EQ(labyrinth_xdp_transmit(s, page, 128, 60), LABYRINTH_OK) << last_error();
  EXPECT_EQ(stats(w().pool).inflight_pages, inflight + 1);
  // BUSY to free, transfer and transmit while the kernel holds it.
  EXPECT_EQ(labyrinth_free_pages(w().pool, page), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_page_transfer(w().pool, page, LABYRINTH_OWNER_MAX), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_xdp_transmit(s, page, 0, 60), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(info(s).tx_in_flight, 1u);

  ASSERT_EQ(complete(s, 1, 2000), 1u);
  EXPECT_EQ(info(s).tx_in_flight, 0u);
  EXPECT_EQ(info(s).completed, 1u);
  labyrinth_owner owner = 0;
  EXPECT_EQ(labyrinth_page_info(w().pool, page, &owner, nullptr), LABYRINTH_OK);
  EXPECT_EQ(owner, labyrinth_owner_self()) << "the completion gives the page back to its owner";
  EXPECT_EQ(labyrinth_free_pages(w().pool, page), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_xdp_socket_destroy(s), LABYRINTH_OK);
  EXPECT_EQ(stats(w().pool).allocated_pages, 0u);
}

TEST_F(XdpTx, TeardownGivesQueuedPagesBackToTheirOwner) {
  std::vector<void *> pages;
  for (int i = 0; i < 8; ++i) {
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(w().pool);
    write_frame(pg, kMacA, kMacB, i, 60);
    ASSERT_EQ(labyrinth_xdp_transmit(s, pg, 0, 60), LABYRINTH_OK) << last_error();
    pages.push_back(pg);
  }
  // No labyrinth_xdp_complete: whatever the kernel sent stays unreaped.
  EXPECT_EQ(labyrinth_xdp_socket_destroy(s), LABYRINTH_OK);
  EXPECT_EQ(stats(w().pool).inflight_pages, 0u);
  for (void *pg : pages) EXPECT_EQ(labyrinth_free_pages(w().pool, pg), LABYRINTH_OK) << last_error();
  EXPECT_EQ(stats(w().pool).allocated_pages, 0u);
}

TEST(XdpShared, TwoSocketsOnOneUmem) {
  XDP_REQUIRE_WORLD();
  World w;
  labyrinth_xdp_socket *sb = open_socket(w.umem, "xb", 512, 128, LABYRINTH_XDP_GENERIC);
  labyrinth_xdp_socket *sa = open_socket(w.umem, "xa", 512, 128, LABYRINTH_XDP_GENERIC);
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(info(sb).generic, 1u);
  EXPECT_EQ(stats(w.pool).inflight_pages, 256u) << "each socket feeds its own FILL ring";
  // xa's stack -> xb's socket; xb's socket transmits -> xa's socket.
  send_udp(10, 300);
  auto at_b = receive(w.pool, sb, 10, 3000, is_test_udp);
  EXPECT_EQ(at_b.size(), 10u);
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(w.pool);
  write_frame(pg, kMacA, kMacB, 42, 64);
  ASSERT_EQ(labyrinth_xdp_transmit(sb, pg, 0, 64), LABYRINTH_OK) << last_error();
  auto at_a = receive(w.pool, sa, 1, 3000, is_test_frame);
  ASSERT_EQ(at_a.size(), 1u);
  std::uint32_t seq = 0;
  std::memcpy(&seq, static_cast<char *>(at_a[0].page) + at_a[0].offset + 14, sizeof seq);
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(complete(sb, 1, 2000), 1u);
  EXPECT_EQ(labyrinth_free_pages(w.pool, pg), LABYRINTH_OK);
  free_all(w.pool, at_a);
  free_all(w.pool, at_b);
  // A second socket on a queue the UMEM already serves is refused.
  labyrinth_xdp_socket_options o;
  labyrinth_xdp_socket_options_init(&o);
  o.ifname = "xa";
  labyrinth_xdp_socket *dup = nullptr;
  EXPECT_EQ(labyrinth_xdp_socket_create(w.umem, &o, &dup), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(dup, nullptr);
  // sb, the first, sits on the UMEM's own fd, which stays open while sa
  // lives: its FILL pages stay in flight until the last socket goes.
  EXPECT_EQ(labyrinth_xdp_socket_destroy(sb), LABYRINTH_OK);
  EXPECT_EQ(stats(w.pool).inflight_pages, 256u);
  EXPECT_EQ(labyrinth_xdp_socket_destroy(sa), LABYRINTH_OK);
  EXPECT_EQ(stats(w.pool).allocated_pages, 0u);
}

TEST_F(XdpTx, MisuseRefusedAndChangesNothing) {
  const labyrinth_stats before = stats(w().pool);
  alignas(4096) static unsigned char foreign[4096];
  EXPECT_EQ(labyrinth_xdp_transmit(s, foreign, 0, 60), LABYRINTH_ERR_FOREIGN);
  labyrinth_pool *other = make_pool(1u << 20);
  void *theirs = labyrinth_void_alloc_page_gfp_atomic_exclusive(other);
  EXPECT_EQ(labyrinth_xdp_transmit(s, theirs, 0, 60), LABYRINTH_ERR_FOREIGN) << "another pool's page";
  void *mine = labyrinth_void_alloc_page_gfp_atomic_exclusive(w().pool);
  EXPECT_EQ(labyrinth_xdp_transmit(s, static_cast<char *>(mine) + 64, 0, 60), LABYRINTH_ERR_INVALID)
      << "interior pointer";
  EXPECT_EQ(labyrinth_xdp_transmit(s, mine, 4000, 200), LABYRINTH_ERR_INVALID) << "beyond the page";
  EXPECT_EQ(labyrinth_xdp_transmit(s, mine, 0, 0), LABYRINTH_ERR_INVALID) << "empty";
  EXPECT_EQ(labyrinth_xdp_transmit(nullptr, mine, 0, 60), LABYRINTH_ERR_INVALID);
  labyrinth_owner other_thread = 0;
  std::thread([&] { other_thread = labyrinth_owner_self(); }).join();
  void *given = labyrinth_void_alloc_page_gfp_atomic_exclusive(w().pool);
  ASSERT_EQ(labyrinth_page_transfer(w().pool, given, other_thread), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_xdp_transmit(s, given, 0, 60), LABYRINTH_ERR_NOT_OWNER);
  void *freed = labyrinth_void_alloc_page_gfp_atomic_exclusive(w().pool);
  ASSERT_EQ(labyrinth_free_pages(w().pool, freed), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_xdp_transmit(s, freed, 0, 60), LABYRINTH_ERR_DOUBLE_FREE);
  // Nothing changed: no page in flight, none queued, pages still ours.
  EXPECT_EQ(stats(w().pool).inflight_pages, before.inflight_pages);
  EXPECT_EQ(info(s).tx_in_flight, 0u);
  EXPECT_EQ(labyrinth_free_pages(w().pool, mine), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_free_pages(other, theirs), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(other), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_xdp_socket_destroy(s), LABYRINTH_OK);
  EXPECT_EQ(stats(w().pool).allocated_pages, 1u) << "only the page given to another owner";
  EXPECT_EQ(labyrinth_pool_reclaim_orphans(w().pool, nullptr), LABYRINTH_OK);
}

TEST(XdpMisuse, SocketCreateRefusals) {
  XDP_REQUIRE_WORLD();
  World w;
  labyrinth_xdp_socket_options o;
  labyrinth_xdp_socket_options_init(&o);
  labyrinth_xdp_socket *s = nullptr;
  o.ifname = "nosuchif0";
  EXPECT_EQ(labyrinth_xdp_socket_create(w.umem, &o, &s), LABYRINTH_ERR_INVALID);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("no interface named"), std::string::npos)
      << last_error();
  o.ifname = "xb";
  o.ring_size = 1000;
  EXPECT_EQ(labyrinth_xdp_socket_create(w.umem, &o, &s), LABYRINTH_ERR_INVALID);
  o.ring_size = 512;
  o.flags = 1u << 20;
  EXPECT_EQ(labyrinth_xdp_socket_create(w.umem, &o, &s), LABYRINTH_ERR_INVALID);
  o.flags = 0;
  o.struct_size = 3;
  EXPECT_EQ(labyrinth_xdp_socket_create(w.umem, &o, &s), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_xdp_socket_create(nullptr, &o, &s), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(stats(w.pool).allocated_pages, 0u) << "nothing left behind by a refusal";
  labyrinth_xdp_umem *none = nullptr;
  EXPECT_EQ(labyrinth_xdp_umem_create(nullptr, &none), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(none, nullptr);
}

TEST(XdpMisuse, GuardPoolRefusedAsUmem) {
  XDP_REQUIRE_WORLD();
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 1u << 20;
  o.flags |= LABYRINTH_POOL_GUARD;
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_error();
  labyrinth_xdp_umem *u = nullptr;
  EXPECT_EQ(labyrinth_xdp_umem_create(pool, &u), LABYRINTH_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("GUARD"), std::string::npos) << last_error();
  EXPECT_EQ(u, nullptr);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << "no hold left behind";
}

TEST(XdpMisuse, PoolDestroyRefusedWhileAUmemHoldsIt) {
  XDP_REQUIRE_WORLD();
  World w;
  EXPECT_EQ(labyrinth_pool_destroy(w.pool), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("AF_XDP UMEM"), std::string::npos)
      << "the message names the holder: " << last_error();
  EXPECT_EQ(stats(w.pool).allocated_pages, 0u) << "the pool is intact";
}
