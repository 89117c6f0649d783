// Lending pages to a peer in another process, over UCX_TLS=tcp and over
// shared memory (UCX_TLS=sm,tcp: puts and gets over shared memory, the
// control messages over tcp, which alone tells a dead peer in UCX 1.13): put and get, the block in flight while lent,
// the peer killed mid-lend. The peer is tests/ucx/ucx_peer_helper.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "labyrinth/labyrinth_ucx.h"
#include "ucx_test_util.hpp"

namespace {

constexpr size_t kPool = 16u << 20;

class UcxLend : public ::testing::TestWithParam<const char *> {
 protected:
  void SetUp() override {
    setenv("UCX_TLS", GetParam(), 1);
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    o.size_bytes = kPool;
    o.flags = 0;
    ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << labyrinth_last_error_message();
    ASSERT_EQ(labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node), LABYRINTH_OK)
        << labyrinth_last_error_message();
    ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK) << labyrinth_last_error_message();
  }
  void TearDown() override {
    if (node) {
      EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_OK) << labyrinth_last_error_message();
      EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK) << labyrinth_last_error_message();
    }
    // OK only if no block is left allocated: nothing leaked to a peer.
    if (pool) {
      EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << labyrinth_last_error_message();
    }
  }
  // Start a helper connected by the node's worker address; accept it.
  labyrinth_ucx_conn start_peer(const char *action, int count, ucx_test::Child *c) {
    char addr[4096];
    size_t len = 0;
    EXPECT_EQ(labyrinth_ucx_node_address(node, addr, sizeof addr, &len), LABYRINTH_OK);
    EXPECT_TRUE(ucx_test::spawn({UCX_PEER_HELPER, "addr", ucx_test::to_hex(addr, len), action,
                                 std::to_string(count)},
                                c));
    labyrinth_ucx_conn conn = 0;
    EXPECT_EQ(labyrinth_ucx_accept(node, 15000, &conn), LABYRINTH_OK) << labyrinth_last_error_message();
    return conn;
  }
  std::vector<void *> alloc(int n) {
    std::vector<void *> pages;
    for (int i = 0; i < n; ++i) {
      void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      EXPECT_NE(p, nullptr);
      pages.push_back(p);
    }
    return pages;
  }
  std::vector<labyrinth_ucx_returned_page> wait_returned(size_t n) {
    return ucx_test::wait_returned(node, n);
  }
  labyrinth_ucx_stats stats() {
    labyrinth_ucx_stats s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(labyrinth_ucx_node_stats(node, &s), LABYRINTH_OK);
    return s;
  }
  labyrinth_pool *pool = nullptr;
  labyrinth_ucx_node *node = nullptr;
};

TEST_P(UcxLend, PutThenReturn) {
  ucx_test::Child peer;
  labyrinth_ucx_conn conn = start_peer("put", 8, &peer);
  std::vector<void *> pages = alloc(8);
  for (void *p : pages) ASSERT_EQ(labyrinth_ucx_lend(node, conn, p, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_OK);
  std::vector<labyrinth_ucx_returned_page> back = wait_returned(8);
  ASSERT_EQ(back.size(), 8u);
  for (const labyrinth_ucx_returned_page &r : back) {
    EXPECT_EQ(r.how, LABYRINTH_UCX_RETURNED);
    EXPECT_EQ(r.conn, conn);
    EXPECT_TRUE(ucx_test::is_record(r.page, LABYRINTH_PAGE_SIZE, r.value)) << "lend " << r.value;
    labyrinth_owner owner = 0;
    EXPECT_EQ(labyrinth_page_info(pool, r.page, &owner, nullptr), LABYRINTH_OK);
    EXPECT_EQ(owner, labyrinth_owner_self());
  }
  labyrinth_ucx_stats s = stats();
  EXPECT_EQ(s.lent_total, 8u);
  EXPECT_EQ(s.returned, 8u);
  EXPECT_EQ(s.lent_now, 0u);
  EXPECT_EQ(s.returned_by_peer_death, 0u);
  for (void *p : pages) EXPECT_EQ(labyrinth_free_pages(pool, p), LABYRINTH_OK);
  EXPECT_EQ(peer.wait(), 0);
}

TEST_P(UcxLend, GetThenReturn) {
  ucx_test::Child peer;
  labyrinth_ucx_conn conn = start_peer("get", 4, &peer);
  std::vector<void *> pages = alloc(4);
  std::map<void *, uint64_t> sums;
  for (size_t i = 0; i < pages.size(); ++i) {
    ucx_test::fill_record(pages[i], LABYRINTH_PAGE_SIZE, 1000 + i);
    sums[pages[i]] = ucx_test::checksum(pages[i], LABYRINTH_PAGE_SIZE);
    ASSERT_EQ(labyrinth_ucx_lend(node, conn, pages[i], LABYRINTH_UCX_LEND_READ), LABYRINTH_OK);
  }
  std::vector<labyrinth_ucx_returned_page> back = wait_returned(4);
  ASSERT_EQ(back.size(), 4u);
  for (const labyrinth_ucx_returned_page &r : back) EXPECT_EQ(r.value, sums[r.page]);
  for (void *p : pages) EXPECT_EQ(labyrinth_free_pages(pool, p), LABYRINTH_OK);
  EXPECT_EQ(peer.wait(), 0);
}

// While lent, the block is in flight: free, transfer, a second lend, the
// pool's destroy and the node's detach are BUSY and change nothing.
TEST_P(UcxLend, BusyWhileLentThenBackWhenPeerDies) {
  ucx_test::Child peer;
  labyrinth_ucx_conn conn = start_peer("hold", 1, &peer);
  void *page = alloc(1)[0];
  ASSERT_EQ(labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_OK);
  char line[64] = {0};
  ASSERT_NE(fgets(line, sizeof line, peer.out), nullptr);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_page_transfer(pool, page, 12345), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_READ), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("already in flight"), std::string::npos);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(stats().lent_now, 1u);
  peer.kill_now();
  std::vector<labyrinth_ucx_returned_page> back = wait_returned(1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].page, page);
  EXPECT_EQ(back[0].how, LABYRINTH_UCX_RETURNED_PEER_LOST);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  // The connection is gone: lending on it is refused.
  void *again = alloc(1)[0];
  EXPECT_EQ(labyrinth_ucx_lend(node, conn, again, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_free_pages(pool, again), LABYRINTH_OK);
}

TEST_P(UcxLend, PeerKilledMidLendReturnsEveryPage) {
  ucx_test::Child peer;
  labyrinth_ucx_conn conn = start_peer("hold", 32, &peer);
  std::vector<void *> pages = alloc(32);
  for (void *p : pages) ASSERT_EQ(labyrinth_ucx_lend(node, conn, p, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_OK);
  char line[64] = {0};
  ASSERT_NE(fgets(line, sizeof line, peer.out), nullptr);
  peer.kill_now();
  std::vector<labyrinth_ucx_returned_page> back = wait_returned(32);
  ASSERT_EQ(back.size(), 32u);
  for (const labyrinth_ucx_returned_page &r : back) EXPECT_EQ(r.how, LABYRINTH_UCX_RETURNED_PEER_LOST);
  labyrinth_ucx_stats s = stats();
  EXPECT_EQ(s.returned_by_peer_death, 32u);
  EXPECT_EQ(s.lent_now, 0u);
  EXPECT_EQ(s.connections_lost, 1u);
  EXPECT_EQ(s.connections_now, 0u);
  for (void *p : pages) EXPECT_EQ(labyrinth_free_pages(pool, p), LABYRINTH_OK);
}

// The other way round: the node dies while the peer holds its lends. The
// peer's calls then fail with SYSTEM and a message; nothing hangs.
TEST_P(UcxLend, NodeKilledPeerCallsFail) {
  ucx_test::Child other;
  ASSERT_TRUE(ucx_test::spawn({UCX_PEER_HELPER, "node", "-", "node", "2"}, &other));
  char line[8192] = {0};
  ASSERT_NE(fgets(line, sizeof line, other.out), nullptr);
  line[strcspn(line, "\n")] = '\0';
  std::vector<char> addr = ucx_test::from_hex(line);
  labyrinth_ucx_peer *peer = nullptr;
  ASSERT_EQ(labyrinth_ucx_peer_connect_address(addr.data(), addr.size(), 15000, &peer), LABYRINTH_OK)
      << labyrinth_last_error_message();
  labyrinth_ucx_lent l[2];
  ASSERT_EQ(labyrinth_ucx_peer_next(peer, 15000, &l[0]), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_ucx_peer_next(peer, 15000, &l[1]), LABYRINTH_OK);
  char rec[64] = {1};
  EXPECT_EQ(labyrinth_ucx_peer_put(peer, l[0].id, 0, rec, sizeof rec), LABYRINTH_OK)
      << labyrinth_last_error_message();
  other.kill_now();
  EXPECT_EQ(other.wait(), 128 + SIGKILL);
  // The control endpoint notices; until then a lend may still look alive.
  labyrinth_ucx_lent more;
  labyrinth_status st = LABYRINTH_OK;
  for (int i = 0; i < 200 && st != LABYRINTH_ERR_SYSTEM; ++i)
    st = labyrinth_ucx_peer_next(peer, 50, &more);
  EXPECT_EQ(st, LABYRINTH_ERR_SYSTEM);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("lost"), std::string::npos);
  EXPECT_EQ(labyrinth_ucx_peer_put(peer, l[1].id, 0, rec, sizeof rec), LABYRINTH_ERR_SYSTEM);
  EXPECT_EQ(labyrinth_ucx_peer_return(peer, l[1].id, 0), LABYRINTH_ERR_SYSTEM);
  EXPECT_EQ(labyrinth_ucx_peer_destroy(peer), LABYRINTH_OK);
}

INSTANTIATE_TEST_SUITE_P(Transports, UcxLend, ::testing::Values("tcp", "sm,tcp"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                           return std::string(i.param[0] == 's' ? "shm" : "tcp");
                         });

// A peer that connects to an ip:port listener (tcp).
TEST(UcxListen, PeerConnectsByIpAndPort) {
  setenv("UCX_TLS", "tcp", 1);
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = kPool;
  o.flags = 0;
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK);
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK);
  uint16_t port = 0;
  ASSERT_EQ(labyrinth_ucx_node_listen(node, "127.0.0.1", 0, &port), LABYRINTH_OK)
      << labyrinth_last_error_message();
  EXPECT_EQ(labyrinth_ucx_node_listen(node, "127.0.0.1", 0, nullptr), LABYRINTH_ERR_BUSY);
  ASSERT_NE(port, 0);
  ucx_test::Child peer;
  ASSERT_TRUE(ucx_test::spawn({UCX_PEER_HELPER, "ip", std::to_string(port), "put", "1"}, &peer));
  labyrinth_ucx_conn conn = 0;
  ASSERT_EQ(labyrinth_ucx_accept(node, 15000, &conn), LABYRINTH_OK) << labyrinth_last_error_message();
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_OK);
  std::vector<labyrinth_ucx_returned_page> back = ucx_test::wait_returned(node, 1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_TRUE(ucx_test::is_record(page, LABYRINTH_PAGE_SIZE, back[0].value));
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(peer.wait(), 0);
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

}  // namespace
