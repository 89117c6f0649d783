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

// A pool of `size` bytes whose arena the node's provider allocates.
labyrinth_status ucx_pool(labyrinth_ucx_node *node, size_t size, labyrinth_pool **pool) {
  labyrinth_arena_provider prov;
  labyrinth_status st = labyrinth_ucx_arena_provider(node, &prov);
  if (st) return st;
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = size;
  o.flags = 0;
  o.arena_provider = &prov;
  return labyrinth_pool_create(&o, pool);
}

TEST(UcxArena, OwnershipAndLend) {
  setenv("UCX_TLS", "sm,tcp", 1);
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node), LABYRINTH_OK);
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(ucx_pool(node, 8u << 20, &pool), LABYRINTH_OK) << labyrinth_last_error_message();
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

// Over shared memory a put into a UCX-allocated arena needs no progress on
// the node's side: the record lands while the node calls nothing.
TEST(UcxArena, PutIsOneSidedOverSharedMemory) {
  setenv("UCX_TLS", "sm,tcp", 1);
  labyrinth_ucx_node *node = nullptr;
  ASSERT_EQ(labyrinth_ucx_node_create(0, &node), LABYRINTH_OK);
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(ucx_pool(node, 4u << 20, &pool), LABYRINTH_OK) << labyrinth_last_error_message();
  ASSERT_EQ(labyrinth_ucx_node_attach(node, pool), LABYRINTH_OK);
  char addr[4096];
  size_t len = 0;
  ASSERT_EQ(labyrinth_ucx_node_address(node, addr, sizeof addr, &len), LABYRINTH_OK);
  ucx_test::Child peer;
  ASSERT_TRUE(ucx_test::spawn({UCX_PEER_HELPER, "addr", ucx_test::to_hex(addr, len), "put", "1"}, &peer));
  labyrinth_ucx_conn conn = 0;
  ASSERT_EQ(labyrinth_ucx_accept(node, 15000, &conn), LABYRINTH_OK) << labyrinth_last_error_message();
  auto *page = static_cast<volatile uint64_t *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(pool));
  page[LABYRINTH_PAGE_SIZE / 8 - 1] = 0;
  ASSERT_EQ(labyrinth_ucx_lend(node, conn, const_cast<uint64_t *>(page), LABYRINTH_UCX_LEND_WRITE),
            LABYRINTH_OK);
  // The helper writes record(id): its last word is never 0.
  bool landed = false;
  for (int ms = 0; ms < 10000 && !landed; ++ms) {
    landed = page[LABYRINTH_PAGE_SIZE / 8 - 1] != 0;
    if (!landed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(landed) << "the put did not land without the node's progress";
  labyrinth_ucx_stats s{};
  s.struct_size = sizeof s;
  for (int i = 0; i < 1000 && labyrinth_ucx_node_stats(node, &s) == LABYRINTH_OK && s.lent_now; ++i)
    labyrinth_ucx_progress(node, 10, nullptr);  // now the node takes the return
  EXPECT_EQ(ucx_test::wait_returned(node, 1).size(), 1u);
  EXPECT_EQ(peer.wait(), 0);
  EXPECT_EQ(labyrinth_free_pages(pool, const_cast<uint64_t *>(page)), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_node_detach(node), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ucx_node_destroy(node), LABYRINTH_OK);
}

}  // namespace
