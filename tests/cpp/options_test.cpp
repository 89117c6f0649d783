// Pool creation: options, defaults, validation, pinning, versions.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

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

// Default options with `pin` (LABYRINTH_POOL_PIN, _PIN_BEST_EFFORT or 0).
labyrinth_pool_options pin_options(std::size_t bytes, std::uint32_t pin) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  o.flags = (o.flags & ~LABYRINTH_POOL_PIN_MASK) | pin;
  return o;
}

TEST(Options, StrictPinIsLockedOrExplainsTheLimit) {
  labyrinth_pool_options o = pin_options(4u << 20, LABYRINTH_POOL_PIN);
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

TEST(Options, DefaultPinsBestEffort) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  EXPECT_EQ(o.flags & LABYRINTH_POOL_PIN_MASK, LABYRINTH_POOL_PIN_BEST_EFFORT);
  o.size_bytes = 1u << 20;
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_message();
  EXPECT_TRUE(stats(pool).flags & LABYRINTH_POOL_PIN_BEST_EFFORT);
  // Pinned exactly when this process may lock that much: PIN in effect says so.
  std::vector<char> probe(o.size_bytes);
  const bool may_lock = mlock(probe.data(), probe.size()) == 0;
  if (may_lock) munlock(probe.data(), probe.size());
  EXPECT_EQ((stats(pool).flags & LABYRINTH_POOL_PIN) != 0, may_lock);
  labyrinth_pool_destroy(pool);
}

TEST(Options, StrictAndBestEffortPinTogetherAreInvalid) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_PIN_MASK;
  labyrinth_pool *pool = nullptr;
  EXPECT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(pool, nullptr);
  EXPECT_NE(last_message().find("exclude each other"), std::string::npos) << last_message();
}

namespace {

// What a pool creation did in a child without CAP_IPC_LOCK and with a 64 KiB
// memlock limit: its status, message, flags in effect and stderr.
struct Unprivileged {
  int exit_code = -1;  // 0: ran; 77: could not drop the privilege
  labyrinth_status status = LABYRINTH_OK;
  std::string message, stderr_text;
  std::uint32_t flags = 0;
};

std::string read_all(int fd) {
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// Child side: drop to an unprivileged user (that drops CAP_IPC_LOCK), lower
// the limit, create an 8 MiB pool with `pin` flags, use it, report on `fd`.
[[noreturn]] void unprivileged_child(std::uint32_t pin, int fd, int err_fd) {
  if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
  struct rlimit small = {64 * 1024, 64 * 1024};
  if (setrlimit(RLIMIT_MEMLOCK, &small) != 0) _exit(78);
  if (dup2(err_fd, 2) < 0) _exit(79);
  labyrinth_pool_options o = pin_options(8u << 20, pin);
  labyrinth_pool *pool = nullptr;
  labyrinth_status st = labyrinth_pool_create(&o, &pool);
  std::string report = std::to_string(st) + "|";
  if (st == LABYRINTH_OK) {
    for (int i = 0; i < 100; ++i) {  // the pool works, and warns no more
      void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      if (!page) _exit(80);
      std::memset(page, 1, 4096);
      if (labyrinth_free_pages(pool, page) != LABYRINTH_OK) _exit(81);
    }
    report += std::to_string(stats(pool).flags);
    labyrinth_pool_destroy(pool);
  } else {
    report += std::string("0|") + labyrinth_last_error_message();
  }
  if (write(fd, report.data(), report.size()) < 0) _exit(82);
  _exit(0);
}

Unprivileged create_unprivileged(std::uint32_t pin) {
  Unprivileged r;
  int fds[2], errs[2];
  if (pipe(fds) != 0 || pipe(errs) != 0) return r;
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    close(errs[0]);
    unprivileged_child(pin, fds[1], errs[1]);
  }
  close(fds[1]);
  close(errs[1]);
  std::string report = read_all(fds[0]);
  r.stderr_text = read_all(errs[0]);
  close(fds[0]);
  close(errs[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status)) return r;
  r.exit_code = WEXITSTATUS(status);
  std::size_t bar = report.find('|'), bar2 = report.find('|', bar + 1);
  if (r.exit_code != 0 || bar == std::string::npos) return r;
  r.status = static_cast<labyrinth_status>(std::stoi(report.substr(0, bar)));
  r.flags = static_cast<std::uint32_t>(std::stoul(report.substr(bar + 1, bar2 - bar - 1)));
  if (bar2 != std::string::npos) r.message = report.substr(bar2 + 1);
  return r;
}

std::size_t count_lines(const std::string &text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST(Options, StrictPinRefusedNamesLimitSizeAndFix) {
  Unprivileged r = create_unprivileged(LABYRINTH_POOL_PIN);
  if (r.exit_code == 77) GTEST_SKIP() << "cannot drop root privileges here";
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.status, LABYRINTH_ERR_NOMEM) << r.message;
  EXPECT_NE(r.message.find("RLIMIT_MEMLOCK is 65536 bytes"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("8388608"), std::string::npos) << r.message;  // the size asked
  EXPECT_NE(r.message.find("LABYRINTH_POOL_PIN_BEST_EFFORT"), std::string::npos) << r.message;
  EXPECT_EQ(r.stderr_text, "");
}

TEST(Options, BestEffortPinRunsUnpinnedWithOneWarning) {
  Unprivileged r = create_unprivileged(LABYRINTH_POOL_PIN_BEST_EFFORT);
  if (r.exit_code == 77) GTEST_SKIP() << "cannot drop root privileges here";
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.status, LABYRINTH_OK) << r.message;
  EXPECT_FALSE(r.flags & LABYRINTH_POOL_PIN);  // the stats say: not pinned
  EXPECT_TRUE(r.flags & LABYRINTH_POOL_PIN_BEST_EFFORT);
  EXPECT_EQ(count_lines(r.stderr_text), 1u) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("runs unpinned"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("RLIMIT_MEMLOCK is 65536 bytes"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("ulimit -l"), std::string::npos) << r.stderr_text;
}

TEST(Options, NoPinFlagNeverPins) {
  Unprivileged r = create_unprivileged(0);
  if (r.exit_code == 77) GTEST_SKIP() << "cannot drop root privileges here";
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.status, LABYRINTH_OK) << r.message;
  EXPECT_EQ(r.flags & LABYRINTH_POOL_PIN_MASK, 0u);
  EXPECT_EQ(r.stderr_text, "");
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
