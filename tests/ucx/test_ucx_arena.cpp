// A pool whose arena UCX allocated (labyrinth_ucx_arena_provider) keeps the
// ownership promises of a normal pool, and lends its pages over shared
// memory with the provider's registration.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <thread>

#include "labyrinth/labyrinth_ucx.h"
#include "ucx_test_util.hpp"

namespace {

TEST(UcxArena, OwnershipAndLend) {
  setenv("UCX_TLS", "sm,tcp", 1);
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node), LABYRINTH_OK);
  labyrinth_arena_provider prov;
  ASSERT_EQ(labyrinth_ucx_arena_provider(node, &prov), LABYRINTH_OK);
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 8u << 20;
  o.flags = 0;
  o.arena_provider = &prov;
  labyrinth_pool *pool = nullptr;
  labyrinth_status st = labyrinth_pool_create(&o, &pool);
  if (st == LABYRINTH_ERR_UNSUPPORTED) {
    labyrinth_ucx_node_destroy(node);
    GTEST_SKIP() << "this core cannot map an arena through a provider yet: "
                 << labyrinth_last_error_message();
  }
  ASSERT_EQ(st, LABYRINTH_OK) << labyrinth_last_error_message();
  void *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(pool, &base, nullptr), LABYRINTH_OK);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % LABYRINTH_ARENA_ALIGN, 0u);
  // The node must outlive the pool its provider serves.
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_ERR_BUSY);

  // Ownership: exclusive to the caller, NOT_OWNER elsewhere, DOUBLE_FREE.
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  labyrinth_owner owner = 0;
  EXPECT_EQ(labyrinth_page_info(pool, page, &owner, nullptr), LABYRINTH_OK);
  EXPECT_EQ(owner, labyrinth_owner_self());
  labyrinth_status other = LABYRINTH_OK;
  std::thread([&] { other = labyrinth_free_pages(pool, page); }).join();
  EXPECT_EQ(other, LABYRINTH_ERR_NOT_OWNER);
  std::memset(page, 0xab, LABYRINTH_PAGE_SIZE);

  // Attaching reuses the provider's registration (no second ucp_mem_map).
  ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK) << labyrinth_last_error_message();
  labyrinth_ucx_stats s{};
  s.struct_size = sizeof s;
  EXPECT_EQ(labyrinth_ucx_node_stats(node, &s), LABYRINTH_OK);
  EXPECT_EQ(s.registration_ns, 0u);
  EXPECT_EQ(s.registered_bytes, 8u << 20);

  labyrinth_ucx_peer *peer = nullptr;
  labyrinth_ucx_conn conn = 0;
  ASSERT_EQ(ucx_test::connect_here(node, &peer, &conn), LABYRINTH_OK)
      << labyrinth_last_error_message();
  ASSERT_EQ(labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_WRITE), LABYRINTH_OK);
  labyrinth_ucx_lent l{};
  ASSERT_EQ(labyrinth_ucx_peer_next(peer, 10000, &l), LABYRINTH_OK);
  char rec[64];
  std::memset(rec, 0x5a, sizeof rec);
  ASSERT_EQ(labyrinth_ucx_peer_put(peer, l.id, 100, rec, sizeof rec), LABYRINTH_OK)
      << labyrinth_last_error_message();
  EXPECT_EQ(std::memcmp(static_cast<char *>(page) + 100, rec, sizeof rec), 0);
  ASSERT_EQ(labyrinth_ucx_peer_return(peer, l.id, 0), LABYRINTH_OK);
  std::vector<labyrinth_ucx_returned_page> back = ucx_test::wait_returned(node, 1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].page, page);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_ERR_DOUBLE_FREE);
  EXPECT_EQ(labyrinth_ucx_peer_destroy(peer), LABYRINTH_OK);
  // The pool's destroy tells the node (region_removed), then the provider
  // takes the arena back: the node may then go.
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << labyrinth_last_error_message();
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK);
}

}  // namespace
