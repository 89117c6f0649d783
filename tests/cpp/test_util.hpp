// Shared helpers for the core tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "arena_test_util.hpp"
#include "labyrinth/labyrinth.h"

namespace labtest {

inline labyrinth_pool_options options(std::size_t bytes) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  o.flags &= ~LABYRINTH_POOL_PIN_MASK;  // tests make many pools; pinning is tested on its own
  o.arena_provider = arena_under_test();  // LABYRINTH_TEST_ARENA (arena_test_util.hpp)
  return o;
}

inline labyrinth_stats stats(const labyrinth_pool *p) {
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  EXPECT_EQ(labyrinth_pool_stats(p, &s), LABYRINTH_OK) << labyrinth_last_error_message();
  return s;
}

// A pool destroyed (forcibly) at scope exit.
struct PoolGuard {
  labyrinth_pool *pool = nullptr;
  explicit PoolGuard(const labyrinth_pool_options &o) {
    labyrinth_status st = labyrinth_pool_create(&o, &pool);
    if (st != LABYRINTH_OK) ADD_FAILURE() << labyrinth_last_error_message();
  }
  explicit PoolGuard(std::size_t bytes) : PoolGuard(options(bytes)) {}
  ~PoolGuard() {
    if (pool) labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE);
  }
  operator labyrinth_pool *() const { return pool; }
};

inline std::string last_message() { return labyrinth_last_error_message(); }

// free + reserve + cached + allocated == total, and nothing negative.
inline void expect_accounting(const labyrinth_stats &s) {
  EXPECT_EQ(s.free_pages + s.reserve_pages + s.cached_pages + s.allocated_pages, s.total_pages);
}

// Buddy free blocks equal those of a fresh pool with the same options.
inline void expect_maximal(labyrinth_pool *p, const labyrinth_pool_options &o) {
  labyrinth_pool *fresh = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &fresh), LABYRINTH_OK);
  labyrinth_stats a = stats(p), b = stats(fresh);
  for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k)
    EXPECT_EQ(a.free_blocks[k], b.free_blocks[k]) << "order " << k;
  EXPECT_EQ(a.free_pages, b.free_pages);
  EXPECT_EQ(a.reserve_pages, b.reserve_pages);
  labyrinth_pool_destroy(fresh);
}

}  // namespace labtest
