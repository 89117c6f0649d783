// Every misuse of labyrinth_ucx.h gets a status and a message and changes
// nothing. The peer here lives in the test's own process (its own UCP
// context and worker), connected over tcp.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "labyrinth/labyrinth_ucx.h"
#include "ucx_test_util.hpp"

namespace {

bool says(const char *what) {
  return std::string(labyrinth_last_error_message()).find(what) != std::string::npos;
}

labyrinth_pool *make_pool() {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 4u << 20;
  o.flags = 0;
  labyrinth_pool *pool = nullptr;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK);
  return pool;
}

TEST(UcxMisuse, NullsAndFlags) {
  labyrinth_ucx_node *node = nullptr;
  EXPECT_EQ(labyrinth_ucx_node_create(0, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_node_create(1u << 7, &node), LABYRINTH_ERR_INVALID);
  EXPECT_TRUE(says("unknown flags"));
  EXPECT_EQ(node, nullptr);
  EXPECT_EQ(labyrinth_ucx_node_destroy(nullptr), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_peer_destroy(nullptr), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_lend(nullptr, 1, nullptr, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_progress(nullptr, 0, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_node_attach(nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_arena_provider(nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_connect_address(nullptr, 0, 10, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_connect_ip("not an ip", 1, 10, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_put(nullptr, 1, 0, "x", 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_return(nullptr, 1, 0), LABYRINTH_ERR_INVALID);
}

TEST(UcxMisuse, NodeRefusals) {
  setenv("UCX_TLS", "tcp", 1);
  labyrinth_pool *pool = make_pool();
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(0, &node), LABYRINTH_OK) << labyrinth_last_error_message();
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  EXPECT_EQ(labyrinth_ucx_lend(node, 1, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_INVALID);
  EXPECT_TRUE(says("not attached"));
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_ERR_INVALID);
  ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK) << labyrinth_last_error_message();
  EXPECT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_ERR_BUSY);
  EXPECT_TRUE(says("attached"));
  EXPECT_EQ(labyrinth_ucx_lend(node, 1, page, 0), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_lend(node, 1, page, 8), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_lend(node, 77, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_INVALID);
  EXPECT_TRUE(says("no connection 77"));
  labyrinth_ucx_conn conn = 0;
  EXPECT_EQ(labyrinth_ucx_accept(node, 0, &conn), LABYRINTH_ERR_TIMEOUT);
  char small[4];
  size_t len = 0;
  EXPECT_EQ(labyrinth_ucx_node_address(node, small, sizeof small, &len), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_node_listen(node, "300.1.1.1", 0, nullptr), LABYRINTH_ERR_INVALID);
  labyrinth_ucx_stats st{};
  EXPECT_EQ(labyrinth_ucx_node_stats(node, &st), LABYRINTH_ERR_INVALID);  // struct_size unset
  st.struct_size = sizeof st;
  EXPECT_EQ(labyrinth_ucx_node_stats(node, &st), LABYRINTH_OK);
  EXPECT_EQ(st.registered_bytes, 4u << 20);
  EXPECT_EQ(st.lent_total, 0u);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  // The pool's destroy with the node attached: the listener lets go.
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << labyrinth_last_error_message();
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_ERR_INVALID);
  // A destroyed pool cannot be attached.
  EXPECT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK);
}

// An in-process peer: lends it refuses to misuse, a foreign page, a
// non-owner's page.
TEST(UcxMisuse, PeerRefusals) {
  setenv("UCX_TLS", "tcp", 1);
  labyrinth_pool *pool = make_pool();
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK);
  labyrinth_ucx_peer *peer = nullptr;
  labyrinth_ucx_conn conn = 0;
  ASSERT_EQ(ucx_test::connect_here(node, &peer, &conn), LABYRINTH_OK)
      << labyrinth_last_error_message();

  char local[64];
  EXPECT_EQ(labyrinth_ucx_lend(node, conn, local, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_FOREIGN);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_page_transfer(pool, page, 4242), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_ERR_NOT_OWNER);
  void *mine = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ucx_lend(node, conn, mine, LABYRINTH_UCX_LEND_READ), LABYRINTH_OK);
  labyrinth_ucx_lent l{};
  ASSERT_EQ(labyrinth_ucx_peer_next(peer, 10000, &l), LABYRINTH_OK) << labyrinth_last_error_message();
  EXPECT_EQ(l.length, (size_t)LABYRINTH_PAGE_SIZE);
  EXPECT_EQ(l.remote_addr, reinterpret_cast<uint64_t>(mine));
  char buf[LABYRINTH_PAGE_SIZE + 1] = {0};
  EXPECT_EQ(labyrinth_ucx_peer_put(peer, l.id, 0, buf, 8), LABYRINTH_ERR_INVALID);
  EXPECT_TRUE(says("not lent for WRITE"));
  EXPECT_EQ(labyrinth_ucx_peer_get(peer, l.id, 1, buf, LABYRINTH_PAGE_SIZE), LABYRINTH_ERR_INVALID);
  EXPECT_TRUE(says("do not fit"));
  EXPECT_EQ(labyrinth_ucx_peer_get(peer, l.id + 1, 0, buf, 8), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_return(peer, l.id + 1, 0), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ucx_peer_next(peer, 0, &l), LABYRINTH_ERR_TIMEOUT);
  EXPECT_EQ(labyrinth_ucx_peer_get(peer, l.id, 0, buf, 8), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_peer_return(peer, l.id, 5), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_peer_return(peer, l.id, 5), LABYRINTH_ERR_INVALID);  // twice
  std::vector<labyrinth_ucx_returned_page> back = ucx_test::wait_returned(node, 1);
  ASSERT_EQ(back.size(), 1u);
  const labyrinth_ucx_returned_page &r = back[0];
  EXPECT_EQ(r.page, mine);
  EXPECT_EQ(r.value, 5u);
  EXPECT_EQ(labyrinth_free_pages(pool, mine), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_peer_destroy(peer), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK);
  // The page transferred to 4242 is still allocated: FORCE.
  EXPECT_EQ(labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE), LABYRINTH_OK);
}

}  // namespace
