// Pool creation: options, defaults, validation, pinning, versions.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.hpp"

using namespace labtest;

TEST(Options, InitSetsDefaults) {
  labyrinth_pool_options o;
  std::memset(&o, 0xAB, sizeof o);
  labyrinth_pool_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof o);
  EXPECT_EQ(o.size_bytes, 0u);
  EXPECT_EQ(o.atomic_reserve_pages, LABYRINTH_AUTO);
  EXPECT_EQ(o.flags, LABYRINTH_POOL_DEFAULT_FLAGS);
  EXPECT_EQ(o.numa_node, -1);
  labyrinth_pool_options_init(nullptr);  // ignored, no crash
}

TEST(Options, DefaultReserveAndWatermarks) {
  PoolGuard p(16u << 20);  // 4096 pages
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.total_pages, 4096u);
  EXPECT_EQ(s.reserve_target, 64u);  // 1/64 of the pool, at most 256
  EXPECT_EQ(s.reserve_pages, 64u);
  EXPECT_EQ(s.watermark_low, 4096u / 16);
  EXPECT_EQ(s.watermark_high, 4096u / 8);
  EXPECT_EQ(s.metadata_bytes, 4096u * 8);  // 8 bytes per page
  expect_accounting(s);
}

TEST(Options, RejectsBadArgumentsWithMessages) {
  labyrinth_pool *pool = nullptr;
  EXPECT_EQ(labyrinth_pool_create(nullptr, &pool), LABYRINTH_ERR_INVALID);
  labyrinth_pool_options o = options(1 << 20);
  EXPECT_EQ(labyrinth_pool_create(&o, nullptr), LABYRINTH_ERR_INVALID);

  o.struct_size = 3;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("struct_size"), std::string::npos) << last_message();

  o = options(0);
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  o = options(4096 * 3 + 1);
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("multiple"), std::string::npos) << last_message();

  o = options(1 << 20);
  o.flags |= 1u << 30;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);

  o = options(1 << 20);
  o.atomic_reserve_pages = 257;  // pool has 256 pages
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);

  o = options(1 << 20);
  o.watermark_min_pages = 100;
  o.watermark_low_pages = 50;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("watermarks"), std::string::npos);

  o = options(1 << 20);
  o.thread_cache_batch = o.thread_cache_pages + 1;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(pool, nullptr);  // never written on failure
}

// PKEYS needs protection keys: created where pkey_alloc works, else
// UNSUPPORTED naming the flag (tests/reliability/pkeys_test.cpp tests the mode).
TEST(Options, PkeysIsCreatedWhereKeysExistElseUnsupported) {
  labyrinth_pool *pool = nullptr;
  labyrinth_pool_options o = options(1 << 20);
  o.flags |= LABYRINTH_POOL_PKEYS;
  long key = syscall(SYS_pkey_alloc, 0ul, 0ul);
  if (key >= 0) {
    syscall(SYS_pkey_free, key);
    ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_message();
    labyrinth_pool_destroy(pool);
    return;
  }
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_UNSUPPORTED);
  EXPECT_NE(last_message().find("PKEYS"), std::string::npos);
  EXPECT_EQ(pool, nullptr);
}

// An options struct from an older, shorter header still works: fields it does
// not cover take their defaults.
TEST(Options, ShorterStructFromOlderCallerIsAccepted) {
  labyrinth_pool_options o = options(1 << 20);
  o.struct_size = offsetof(labyrinth_pool_options, numa_node) + sizeof(int);
  o.watermark_low_pages = 12345678;  // beyond struct_size: must be ignored
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_message();
  EXPECT_EQ(stats(pool).watermark_low, 256u / 16);
  labyrinth_pool_destroy(pool);
}

TEST(Options, PinnedPoolIsLockedOrExplainsTheLimit) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 4u << 20;
  labyrinth_pool *pool = nullptr;
  labyrinth_status st = labyrinth_pool_create(&o, &pool);
  if (st == LABYRINTH_OK) {
    EXPECT_TRUE(stats(pool).flags & LABYRINTH_POOL_PIN);
    labyrinth_pool_destroy(pool);
  } else {
    // Only acceptable failure: the memlock limit, explained.
    EXPECT_EQ(st, LABYRINTH_ERR_NOMEM);
    EXPECT_NE(last_message().find("RLIMIT_MEMLOCK"), std::string::npos) << last_message();
  }
}

TEST(Options, MemlockFailureNamesLimitAndSize) {
  // In a child: drop to an unprivileged user (no CAP_IPC_LOCK) with a 64 KiB
  // memlock limit, create an 8 MiB pinned pool, and report what happened
  // through a pipe.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
    struct rlimit small = {64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_MEMLOCK, &small) != 0) _exit(78);
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    o.size_bytes = 8u << 20;
    labyrinth_pool *pool = nullptr;
    labyrinth_status st = labyrinth_pool_create(&o, &pool);
    std::string report = std::to_string(st) + "|" + labyrinth_last_error_message();
    if (write(fds[1], report.data(), report.size()) < 0) _exit(79);
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot drop root privileges here";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(report.substr(0, 2), std::to_string(LABYRINTH_ERR_NOMEM) + "|") << report;
  EXPECT_NE(report.find("RLIMIT_MEMLOCK is 65536 bytes"), std::string::npos) << report;
  EXPECT_NE(report.find("8388608"), std::string::npos) << report;  // the size asked
  EXPECT_NE(report.find("without LABYRINTH_POOL_PIN"), std::string::npos) << report;
}

TEST(Options, NumaNodeBinding) {
  labyrinth_pool_options o = options(1u << 20);
  o.numa_node = 0;  // every Linux machine has node 0
  labyrinth_pool *pool = nullptr;
  labyrinth_status st = labyrinth_pool_create(&o, &pool);
  if (st == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << last_message();
  ASSERT_EQ(st, LABYRINTH_OK) << last_message();
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(pg, nullptr);
  std::memset(pg, 1, 4096);
  ASSERT_EQ(labyrinth_free_pages(pool, pg), LABYRINTH_OK);
  labyrinth_pool_destroy(pool);
  o.numa_node = 100000;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
}

TEST(Versions, AbiVersionMatchesHeader) {
  EXPECT_EQ(labyrinth_abi_version(), static_cast<uint32_t>(LABYRINTH_ABI_VERSION));
  EXPECT_EQ(labyrinth_abi_version() >> 16, static_cast<uint32_t>(LABYRINTH_ABI_VERSION_MAJOR));
}

TEST(Versions, EveryStatusHasAName) {
  for (int s = 0; s < LABYRINTH_STATUS_COUNT; ++s)
    EXPECT_EQ(std::string(labyrinth_status_name(static_cast<labyrinth_status>(s))).rfind("LABYRINTH_", 0), 0u);
  EXPECT_STREQ(labyrinth_status_name(static_cast<labyrinth_status>(999)), "LABYRINTH_STATUS_UNKNOWN");
}

TEST(Pools, SeveralPoolsLiveTogether) {
  // More pools than the per-thread slots, used in turn: each page goes back to its own pool.
  std::vector<labyrinth_pool *> pools(7);
  for (auto &p : pools) {
    labyrinth_pool_options o = options(1 << 20);
    ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK);
  }
  for (int round = 0; round < 50; ++round) {
    for (auto *p : pools) {
      void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
      ASSERT_NE(page, nullptr);
      for (auto *other : pools)
        if (other != p) {
          EXPECT_EQ(labyrinth_free_pages(other, page), LABYRINTH_ERR_FOREIGN);
        }
      ASSERT_EQ(labyrinth_free_pages(p, page), LABYRINTH_OK);
    }
  }
  for (auto *p : pools) {
    expect_accounting(stats(p));
    EXPECT_EQ(stats(p).allocated_pages, 0u);
    EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK) << last_message();
  }
}
