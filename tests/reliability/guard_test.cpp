// Guard modes: GUARD (freed blocks PROT_NONE: a use after free faults at the
// access), POISON (freed blocks filled with 0x6B, checked at the next
// hand-out: a write after free is reported with page, last owner and first
// bad offset, then abort), PKEYS (probed at run time: UNSUPPORTED says
// whether the CPU or the kernel lacks protection keys). SCRUB's promise is
// checked for reclaimed orphans too.
//
// Death tests run the whole scenario in the forked child (a pool's arena is
// MADV_DONTFORK: the child cannot use the parent's pools). The child keeps
// the parent thread's owner id, so the expected "last owner" is known here.
#include <signal.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "fault_scenarios.hpp"
#include "pkeys.hpp"
#include "pool.hpp"
#include "test_util.hpp"

using namespace labtest;

namespace {

labyrinth_pool *make(std::uint32_t extra_flags, std::size_t bytes = 1u << 20) {
  labyrinth_pool_options o = options(bytes);
  o.flags |= extra_flags;
  labyrinth_pool *p = nullptr;
  if (labyrinth_pool_create(&o, &p) != LABYRINTH_OK) {
    std::fprintf(stderr, "create: %s\n", labyrinth_last_error_message());
    std::abort();
  }
  return p;
}

// Spin allocations until `want` is handed out again (LIFO caches make it the
// first one in practice); frees the others.
void realloc_until(labyrinth_pool *p, void *want, unsigned order = 0) {
  std::vector<void *> others;
  for (int i = 0; i < 4096; ++i) {
    void *pg = nullptr;
    if (labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &pg) != LABYRINTH_OK) break;
    if (pg == want) return;
    others.push_back(pg);
  }
  std::fprintf(stderr, "the page never came back\n");
  std::exit(3);
}

}  // namespace

// ---------------------------------------------------------------------------
// GUARD
// ---------------------------------------------------------------------------

TEST(GuardDeathTest, WriteAfterFreeFaultsAtTheAccess) {
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_GUARD);
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        pg[0] = 1;  // fine while owned
        if (labyrinth_free_pages(p, pg) != LABYRINTH_OK) std::exit(2);
        pg[100] = 1;  // faults here
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(GuardDeathTest, ReadAfterFreeOfALargeBlockFaults) {
  EXPECT_EXIT(
      {
        read_last_byte_after_free(make(LABYRINTH_POOL_GUARD), 3);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(GuardDeathTest, NeverAllocatedPagesAreProtectedToo) {
  EXPECT_EXIT(
      {
        write_never_allocated_page(make(LABYRINTH_POOL_GUARD));
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(GuardDeathTest, SharedBlockFreedByAnotherThreadFaults) {
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_GUARD);
        void *pg = nullptr;
        if (labyrinth_alloc_pages(p, 0, 0, 0, &pg) != LABYRINTH_OK) std::exit(2);
        std::thread([&] {
          if (labyrinth_free_pages(p, pg) != LABYRINTH_OK) std::exit(2);
        }).join();
        static_cast<volatile char *>(pg)[0] = 1;
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

// Bug 4 (GUARD part): reclaimed orphans went back to the buddy allocator
// still readable and writable, so a stale pointer of the dead thread did not fault.
TEST(GuardDeathTest, ReclaimedOrphanIsProtected) {
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_GUARD);
        void *pg = nullptr;
        std::thread([&] { pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p); }).join();
        std::size_t n = 0;
        if (!pg || labyrinth_pool_reclaim_orphans(p, &n) != LABYRINTH_OK || n != 1) std::exit(2);
        static_cast<volatile char *>(pg)[0] = 1;
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(Guard, OwnedPagesWorkAndNothingIsLost) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_GUARD;
  PoolGuard p(o);
  std::vector<std::pair<char *, unsigned>> held;
  for (int round = 0; round < 3; ++round) {
    for (unsigned order = 0; order <= 4; ++order) {
      void *b = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE | LABYRINTH_GFP_ZERO, 0, &b),
                LABYRINTH_OK);
      char *c = static_cast<char *>(b);
      for (std::size_t k = 0; k < (4096u << order); k += 512) {
        ASSERT_EQ(c[k], 0);
        c[k] = 1;
      }
      held.emplace_back(c, order);
    }
    for (auto &[c, order] : held) ASSERT_EQ(labyrinth_free_pages(p, c), LABYRINTH_OK);
    held.clear();
  }
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.cached_pages, 0u);  // no caches in GUARD mode
  EXPECT_EQ(s.allocated_pages, 0u);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// ---------------------------------------------------------------------------
// POISON
// ---------------------------------------------------------------------------

TEST(PoisonDeathTest, WriteAfterFreeIsReportedWithPageOwnerAndOffset) {
  const std::string me = std::to_string(labyrinth_owner_self());
  // The page the child will get: the same steps on a twin pool here.
  std::string index;
  {
    labyrinth_pool *twin = make(LABYRINTH_POOL_POISON);
    void *base = nullptr;
    labyrinth_pool_arena(twin, &base, nullptr);
    char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(twin));
    index = std::to_string((pg - static_cast<char *>(base)) / 4096);
    ASSERT_EQ(labyrinth_free_pages(twin, pg), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_pool_destroy(twin), LABYRINTH_OK);
  }
  EXPECT_DEATH(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_POISON);
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        if (labyrinth_free_pages(p, pg) != LABYRINTH_OK) std::exit(2);
        pg[100] = 0x5a;  // the stale write
        realloc_until(p, pg);
      },
      "labyrinth: POISON: write after free in pool 0x[0-9a-f]+: page 0x[0-9a-f]+ \\(page " + index +
          " of the arena\\) was written while it was free: first bad byte at offset 100 is 0x5a "
          "\\(expected 0x6b\\); its last owner was " + me + "; aborting");
}

TEST(PoisonDeathTest, LastByteOfAnInnerPageOfALargeBlock) {
  const std::string me = std::to_string(labyrinth_owner_self());
  EXPECT_DEATH(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_POISON);
        void *b = nullptr;
        if (labyrinth_alloc_pages(p, 2, LABYRINTH_GFP_EXCLUSIVE, 0, &b) != LABYRINTH_OK) std::exit(2);
        if (labyrinth_free_pages(p, b) != LABYRINTH_OK) std::exit(2);
        static_cast<char *>(b)[2 * 4096 + 4095] = 1;  // third page, last byte
        realloc_until(p, b, 2);
      },
      "offset 4095 is 0x1 \\(expected 0x6b\\); its last owner was " + me);
}

TEST(PoisonDeathTest, LastOwnerIsTheThreadTheBlockWasTransferredTo) {
  labyrinth_owner_self();
  // Owner ids are issued in sequence, and the child starts from our count:
  // its new thread gets the next one.
  const std::string other = std::to_string(lab::owners_issued() + 1);
  EXPECT_DEATH(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_POISON);
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        labyrinth_owner other = 0;
        std::atomic<bool> ready{false};
        std::atomic<bool> done{false};
        std::thread t([&] {
          other = labyrinth_owner_self();
          ready = true;
          while (!done) std::this_thread::yield();
          if (labyrinth_free_pages(p, pg) != LABYRINTH_OK) std::exit(2);
        });
        while (!ready) std::this_thread::yield();
        if (labyrinth_page_transfer(p, pg, other) != LABYRINTH_OK) std::exit(2);
        done = true;
        t.join();
        std::fprintf(stderr, "receiver %llu\n", static_cast<unsigned long long>(other));
        pg[0] = 1;
        // Freed by the other thread into the depot or its cache (given
        // back at its exit): take everything until the page shows up.
        std::vector<void *> got;
        labyrinth_pool_trim(p);
        while (void *q = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) got.push_back(q);
        std::exit(4);
      },
      "receiver " + other + "\n.*offset 0 is 0x1 \\(expected 0x6b\\); its last owner was " + other + ";");
}

TEST(PoisonDeathTest, ReclaimedOrphanIsPoisonedInTheNameOfTheDeadThread) {
  labyrinth_owner_self();
  const std::string dead = std::to_string(lab::owners_issued() + 1);
  EXPECT_DEATH(
      {
        labyrinth_pool *p = make(LABYRINTH_POOL_POISON);
        void *pg = nullptr;
        labyrinth_owner dead = 0;
        std::thread([&] {
          dead = labyrinth_owner_self();
          pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
        }).join();
        std::size_t n = 0;
        if (!pg || labyrinth_pool_reclaim_orphans(p, &n) != LABYRINTH_OK || n != 1) std::exit(2);
        std::fprintf(stderr, "dead %llu\n", static_cast<unsigned long long>(dead));
        static_cast<char *>(pg)[8] = 2;
        std::vector<void *> got;
        while (void *q = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) got.push_back(q);
        std::exit(4);
      },
      "dead " + dead + "\n.*offset 8 is 0x2 \\(expected 0x6b\\); its last owner was " + dead + ";");
}

TEST(Poison, FreedBlocksHoldThePatternAndZeroIsHonoured) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_POISON;
  PoolGuard p(o);
  EXPECT_TRUE(stats(p).flags & LABYRINTH_POOL_POISON);
  void *b = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
  std::memset(b, 0xAB, 2 * 4096);
  ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
  // The freed block holds the pattern, not the old data (read while free:
  // allowed here only because the test knows POISON does not protect pages).
  for (std::size_t k = 0; k < 2 * 4096; ++k) ASSERT_EQ(static_cast<unsigned char *>(b)[k], 0x6B) << k;
  void *again = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &again), LABYRINTH_OK);
  ASSERT_EQ(again, b);  // the same block back (buddy: lowest free block)
  EXPECT_EQ(static_cast<unsigned char *>(again)[0], 0x6B);  // unspecified contents: the pattern
  ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE | LABYRINTH_GFP_ZERO, 0, &again),
            LABYRINTH_OK);
  for (std::size_t k = 0; k < 2 * 4096; ++k) ASSERT_EQ(static_cast<unsigned char *>(again)[k], 0) << k;
  ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
}

TEST(Poison, WithScrubBlocksComeZeroed) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_POISON | LABYRINTH_POOL_SCRUB;
  PoolGuard p(o);
  for (int i = 0; i < 3; ++i) {
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr);
    for (std::size_t k = 0; k < 4096; ++k) ASSERT_EQ(static_cast<unsigned char *>(pg)[k], 0) << k;
    std::memset(pg, 0xCD, 4096);
    ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  }
}

// No false report: many threads, every path a page can take (caches, the
// depot, the reserve, the buddy, every order, remote frees, transfers,
// thread exit, orphans), all in a POISON pool.
TEST(Poison, ChurnOnEveryPathGivesNoFalseReport) {
  labyrinth_pool_options o = options(2u << 20);  // 512 pages
  o.flags |= LABYRINTH_POOL_POISON;
  o.thread_cache_pages = 16;
  o.thread_cache_batch = 4;
  o.max_thread_caches = 2;  // a third thread uses the shared path
  PoolGuard p(o);
  std::atomic<void *> box{nullptr};
  std::atomic<labyrinth_owner> receiver{0};
  std::atomic<long> allocs{0}, frees{0}, transfers{0};
  std::atomic<int> senders_done{0};
  auto worker = [&](int seed, bool receive) {
    if (receive) receiver = labyrinth_owner_self();
    while (!receiver.load()) std::this_thread::yield();  // senders start with the receiver
    std::uint64_t r = seed;
    std::vector<std::pair<char *, unsigned>> mine;
    for (int i = 0; receive ? senders_done.load() < 2 || i < 20000 : i < 20000; ++i) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      unsigned pick = static_cast<unsigned>(r >> 33);
      if (receive)
        if (void *got = box.exchange(nullptr)) mine.emplace_back(static_cast<char *>(got), 0);
      if (mine.size() < 40 && pick % 3) {
        unsigned order = pick % 7 == 0 ? pick % 4 : 0;
        void *b = nullptr;
        labyrinth_gfp gfp = LABYRINTH_GFP_EXCLUSIVE | ((pick & 8) ? LABYRINTH_GFP_ATOMIC : 0) |
                            ((pick & 16) ? LABYRINTH_GFP_ZERO : 0);
        if (labyrinth_alloc_pages(p, order, gfp, 0, &b) != LABYRINTH_OK) continue;
        std::memset(b, static_cast<int>(pick), 4096u << order);
        mine.emplace_back(static_cast<char *>(b), order);
        ++allocs;
      } else if (!mine.empty()) {
        auto [b, order] = mine.back();
        mine.pop_back();
        labyrinth_owner to = receiver.load();
        if (!receive && order == 0 && (pick & 32)) {
          ASSERT_EQ(labyrinth_page_transfer(p, b, to), LABYRINTH_OK) << last_message();
          // The receiver drains the mailbox until both senders are done.
          void *expected = nullptr;
          while (!box.compare_exchange_weak(expected, b)) {
            expected = nullptr;
            std::this_thread::yield();
          }
          ++transfers;
          continue;
        }
        ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK) << last_message();
        ++frees;
      }
    }
    if (receive) {
      for (auto &[b, order] : mine) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    } else {
      ++senders_done;
    }
    // Senders exit with their blocks: orphans, reclaimed below.
  };
  std::thread a(worker, 1, false), b(worker, 2, false);
  std::thread c(worker, 3, true);
  a.join();
  b.join();
  c.join();
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  std::printf("[info] %ld allocations, %ld frees, %ld transfers, %zu orphans reclaimed\n",
              allocs.load(), frees.load(), transfers.load(), n);
  EXPECT_GT(allocs.load(), 20000);
  EXPECT_GT(transfers.load(), 1000);
  EXPECT_GT(n, 0u);
  labyrinth_stats s = stats(p);
  EXPECT_EQ(s.allocated_pages, 0u);
  EXPECT_EQ(s.orphaned_pages, 0u);
  expect_accounting(s);
  // Every page handed out once more: each one is checked against the pattern.
  std::vector<void *> all;
  while (void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) all.push_back(pg);
  EXPECT_EQ(all.size(), 512u);
  for (void *pg : all) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// ---------------------------------------------------------------------------
// SCRUB and reclaimed orphans
// ---------------------------------------------------------------------------

// Bug 4 (SCRUB part): reclaimed orphans went back to the buddy allocator
// without being zeroed, so the dead thread's data reached the next owner, even
// one asking for GFP_ZERO (SCRUB pools skip that memset: freed pages are
// supposed to be zero already).
TEST(Scrub, ReclaimedOrphansAreZeroedBeforeTheNextOwner) {
  labyrinth_pool_options o = options(256u * 4096);
  o.flags |= LABYRINTH_POOL_SCRUB;
  PoolGuard p(o);
  std::thread([&] {
    void *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
    std::memset(b, 0xAB, 8 * 4096);
    void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    ASSERT_NE(pg, nullptr);
    std::memset(pg, 0xAB, 4096);
  }).join();
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  ASSERT_EQ(n, 2u);
  std::vector<void *> all;
  for (int i = 0; i < 256; ++i) {
    void *pg = nullptr;
    labyrinth_gfp gfp = LABYRINTH_GFP_ATOMIC | (i % 2 ? LABYRINTH_GFP_ZERO : 0);
    ASSERT_EQ(labyrinth_alloc_pages(p, 0, gfp, 0, &pg), LABYRINTH_OK);
    const unsigned char *c = static_cast<const unsigned char *>(pg);
    for (std::size_t k = 0; k < 4096; ++k) ASSERT_EQ(c[k], 0) << "page " << pg << " byte " << k;
    all.push_back(pg);
  }
  for (void *pg : all) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

// ---------------------------------------------------------------------------
// PKEYS: the run-time probe
// ---------------------------------------------------------------------------

namespace {
// Valgrind runs the program on a synthetic CPU: its CPUID hides PKU even where
// /proc/cpuinfo (the kernel's view of the real CPU) lists it, and its memcheck
// does not emulate the PKRU register. Under valgrind the tests below compare
// against what the program itself is shown.
bool under_valgrind() {
#if __has_include(<valgrind/valgrind.h>)
  return RUNNING_ON_VALGRIND != 0;
#else
  const char *pre = std::getenv("LD_PRELOAD");
  return pre && std::strstr(pre, "vgpreload") != nullptr;
#endif
}

// The CPU flags line of /proc/cpuinfo (x86), padded with spaces; under
// valgrind, the flags valgrind's CPU shows the program (pku and ospke as
// its CPUID says).
std::string cpu_flags() {
  if (under_valgrind()) {
    const lab::PkeysProbe r = lab::pkeys_probe();
    std::printf("[info] under valgrind: comparing with valgrind's CPUID (pku %d, ospke %d), not /proc/cpuinfo\n",
                r.cpu, r.os);
    return std::string(" fpu") + (r.cpu == 1 ? " pku" : "") + (r.os == 1 ? " ospke" : "") + " ";
  }
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return " " + line.substr(line.find(':') + 1) + " ";
  return "";
}
}  // namespace

// Where the machine has keys the pool is created; where it has none, the
// refusal says whether the CPU or the kernel lacks them.
TEST(Pkeys, CreatedWhereKeysExistElseUnsupportedSaysWhy) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_PKEYS;
  labyrinth_pool *pool = reinterpret_cast<labyrinth_pool *>(0x1);
  const lab::PkeysProbe r = lab::pkeys_probe();
  if (r.usable()) {
    std::printf("[info] this machine has protection keys (pkey_alloc gave key %d): PKEYS pools work\n", r.key);
    ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_message();
    labyrinth_pool_destroy(pool);
    return;
  }
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_ERR_UNSUPPORTED);
  EXPECT_EQ(pool, reinterpret_cast<labyrinth_pool *>(0x1));
  const std::string msg = last_message();
  EXPECT_NE(msg.find("LABYRINTH_POOL_PKEYS"), std::string::npos) << msg;
  const std::string flags = cpu_flags();
#if defined(__x86_64__)
  ASSERT_FALSE(flags.empty()) << "no flags line in /proc/cpuinfo";
  const bool pku = flags.find(" pku ") != std::string::npos;
  const bool ospke = flags.find(" ospke ") != std::string::npos;
  std::printf("[info] /proc/cpuinfo: pku %d, ospke %d; message: %s\n", pku, ospke, msg.c_str());
  if (!pku)
    EXPECT_NE(msg.find("this CPU has no memory protection keys"), std::string::npos) << msg;
  else if (!ospke)
    EXPECT_NE(msg.find("the kernel has not enabled them"), std::string::npos) << msg;
  else
    EXPECT_NE(msg.find("pkey_alloc"), std::string::npos) << msg;
#else
  std::printf("[info] message: %s\n", msg.c_str());
#endif
}

TEST(Pkeys, ProbeAgreesWithTheKernelsView) {
  lab::PkeysProbe r = lab::pkeys_probe();
#if defined(__x86_64__)
  const std::string flags = cpu_flags();
  EXPECT_EQ(r.cpu, flags.find(" pku ") != std::string::npos ? 1 : 0);
  EXPECT_EQ(r.os, flags.find(" ospke ") != std::string::npos ? 1 : 0);
#endif
  if (r.cpu == 0) {
    // Without keys in the CPU the kernel cannot give one.
    EXPECT_LT(r.key, 0);
    EXPECT_NE(r.err, 0);
  }
}

TEST(Pkeys, EveryReasonHasItsOwnMessage) {
  auto explain = [](lab::PkeysProbe r) {
    char buf[200];
    lab::pkeys_explain(r, buf, sizeof buf);
    return std::string(buf);
  };
  lab::PkeysProbe no_cpu{0, 0, -1, ENOSPC}, no_os{1, 0, -1, ENOSPC}, no_syscall{-1, -1, -1, ENOSYS},
      none_left{1, 1, -1, ENOSPC}, other{1, 1, -1, EINVAL}, available{1, 1, 3, 0};
  EXPECT_NE(explain(no_cpu).find("this CPU has no memory protection keys"), std::string::npos);
  EXPECT_NE(explain(no_os).find("the kernel has not enabled them"), std::string::npos);
  EXPECT_NE(explain(no_syscall).find("no pkey_alloc system call (ENOSYS)"), std::string::npos);
  EXPECT_NE(explain(none_left).find("no protection key left"), std::string::npos);
  EXPECT_NE(explain(other).find("pkey_alloc failed (errno " + std::to_string(EINVAL) + ")"),
            std::string::npos);
  EXPECT_NE(explain(available).find("pkey_alloc gave key 3"), std::string::npos);
}
