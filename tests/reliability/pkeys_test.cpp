// PKEYS: hardware-enforced exclusivity with memory protection keys. An
// exclusive block is readable and writable by its owner thread only; free
// and never-allocated pages by nobody; a transfer moves the access; shared
// blocks are open to all; keys run out clearly and come back.
//
// Every test skips, saying why, where the CPU or kernel has no keys (and
// under valgrind, whose CPU hides them). Death tests run the scenario in the
// forked child; "faults" means SIGSEGV (si_code SEGV_PKUERR on x86).
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fault_scenarios.hpp"
#include "internal_api.hpp"
#include "pkeys.hpp"
#include "pool.hpp"
#include "test_util.hpp"

using namespace labtest;

namespace {

std::string no_keys_reason() {
  const lab::PkeysProbe r = lab::pkeys_probe();
  if (r.usable()) return "";
  char why[200];
  lab::pkeys_explain(r, why, sizeof why);
  return why;
}

#define SKIP_WITHOUT_KEYS()                                                          \
  do {                                                                               \
    const std::string why_ = no_keys_reason();                                       \
    if (!why_.empty()) GTEST_SKIP() << "PKEYS needs protection keys: " << why_;      \
  } while (0)

labyrinth_pool_options pkeys_options(std::uint32_t extra = 0) {
  labyrinth_pool_options o = options(1u << 20);
  o.flags |= LABYRINTH_POOL_PKEYS | extra;
  return o;
}

labyrinth_pool *make_pkeys(std::uint32_t extra = 0) {
  labyrinth_pool_options o = pkeys_options(extra);
  labyrinth_pool *p = nullptr;
  if (labyrinth_pool_create(&o, &p) != LABYRINTH_OK) {
    std::fprintf(stderr, "create: %s\n", labyrinth_last_error_message());
    std::exit(2);
  }
  return p;
}

// A thread that runs what it is given, one job at a time, on demand.
class Worker {
 public:
  Worker() : t_([this] { loop(); }) {}
  ~Worker() {
    run([this] { quit_ = true; });
    t_.join();
  }
  // The worker thread's owner id (asking for it gives the thread a key
  // while a PKEYS pool exists).
  labyrinth_owner owner() {
    labyrinth_owner id = 0;
    run([&] { id = labyrinth_owner_self(); });
    return id;
  }
  template <class F>
  void run(F f) {
    std::unique_lock<std::mutex> lock(mu_);
    job_ = f;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !job_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      cv_.wait(lock, [this] { return static_cast<bool>(job_); });
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool quit_ = false;
  std::thread t_;
};

}  // namespace

TEST(PkeysDeathTest, AnotherThreadFaultsOnAnExclusivePage) {
  SKIP_WITHOUT_KEYS();
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make_pkeys();
        Worker other;  // started before the owner has a key
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        if (!pg) std::exit(2);
        pg[0] = 1;  // the owner may
        other.run([&] { static_cast<volatile char *>(pg)[1] = 1; });  // faults here
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

// A thread created by the owner inherits its rights; its first call into
// Labyrinth takes them away.
TEST(PkeysDeathTest, AThreadStartedByTheOwnerLosesAccessAtItsFirstCall) {
  SKIP_WITHOUT_KEYS();
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make_pkeys();
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        if (!pg) std::exit(2);
        std::thread([&] {
          (void)labyrinth_owner_self();
          static_cast<volatile char *>(pg)[0] = 1;  // faults here
        }).join();
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(PkeysDeathTest, UseAfterFreeFaults) {
  SKIP_WITHOUT_KEYS();
  EXPECT_EXIT(
      {
        read_last_byte_after_free(make_pkeys(), 2);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(PkeysDeathTest, NeverAllocatedPagesFault) {
  SKIP_WITHOUT_KEYS();
  EXPECT_EXIT(
      {
        write_never_allocated_page(make_pkeys());
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(PkeysDeathTest, TheOldOwnerFaultsAfterATransfer) {
  SKIP_WITHOUT_KEYS();
  EXPECT_EXIT(
      {
        labyrinth_pool *p = make_pkeys();
        Worker b;
        const labyrinth_owner b_id = b.owner();
        char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
        if (!pg) std::exit(2);
        pg[0] = 1;
        if (labyrinth_page_transfer(p, pg, b_id) != LABYRINTH_OK) std::exit(3);
        b.run([&] { static_cast<volatile char *>(pg)[0] = 2; });  // the new owner may
        static_cast<volatile char *>(pg)[0] = 3;                   // faults here
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(Pkeys, TransferMovesAccessAndFreeByTheNewOwnerReturnsEverything) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options();
  PoolGuard p(o);
  Worker b;
  const labyrinth_owner b_id = b.owner();
  void *blk = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 3, LABYRINTH_GFP_EXCLUSIVE | LABYRINTH_GFP_ZERO, 0, &blk),
            LABYRINTH_OK);
  static_cast<char *>(blk)[8 * 4096 - 1] = 42;
  ASSERT_EQ(labyrinth_page_transfer(p, blk, b_id), LABYRINTH_OK) << last_message();
  labyrinth_status freed = LABYRINTH_ERR_INVALID;
  char seen = 0;
  b.run([&] {
    seen = static_cast<char *>(blk)[8 * 4096 - 1];
    static_cast<char *>(blk)[0] = 7;
    freed = labyrinth_free_pages(p, blk);
  });
  EXPECT_EQ(seen, 42);
  EXPECT_EQ(freed, LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// A transfer to an owner without a key (its thread has not called Labyrinth
// since the PKEYS pool exists) is refused and changes nothing.
TEST(Pkeys, TransferToAnOwnerWithoutAKeyIsRefusedAndChangesNothing) {
  SKIP_WITHOUT_KEYS();
  Worker b;
  const labyrinth_owner b_id = b.owner();  // before the pool: no key
  labyrinth_pool_options o = pkeys_options();
  PoolGuard p(o);
  char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  ASSERT_NE(pg, nullptr) << last_message();
  pg[0] = 5;
  ASSERT_EQ(labyrinth_page_transfer(p, pg, b_id), LABYRINTH_ERR_UNSUPPORTED);
  const std::string msg = last_message();
  EXPECT_NE(msg.find("has no protection key"), std::string::npos) << msg;
  labyrinth_owner own = 0;
  ASSERT_EQ(labyrinth_page_info(p, pg, &own, nullptr), LABYRINTH_OK);
  EXPECT_EQ(own, labyrinth_owner_self());
  pg[1] = 6;  // still ours, still writable
  EXPECT_EQ(pg[0], 5);
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  // Once the thread has called in, it has a key and the transfer works.
  b.run([&] { (void)labyrinth_owner_self(); });
  pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  ASSERT_NE(pg, nullptr);
  ASSERT_EQ(labyrinth_page_transfer(p, pg, b_id), LABYRINTH_OK) << last_message();
  labyrinth_status freed = LABYRINTH_ERR_INVALID;
  b.run([&] { freed = labyrinth_free_pages(p, pg); });
  EXPECT_EQ(freed, LABYRINTH_OK);
}

TEST(Pkeys, SharedBlocksAreOpenToEveryThread) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options();
  PoolGuard p(o);
  void *pg = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, 0, 0, &pg), LABYRINTH_OK);
  static_cast<char *>(pg)[0] = 1;
  labyrinth_status freed = LABYRINTH_ERR_INVALID;
  std::thread([&] {
    (void)labyrinth_owner_self();
    static_cast<char *>(pg)[2 * 4096 - 1] = 2;  // no fault: shared
    freed = labyrinth_free_pages(p, pg);
  }).join();
  EXPECT_EQ(freed, LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// Owners take keys until the hardware has none left; the next owner's
// exclusive allocation is UNSUPPORTED with a message and changes nothing;
// keys come back when owners' threads exit with nothing that carries them.
TEST(Pkeys, KeysRunOutClearlyAndComeBackWhenTheirThreadsExit) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options();
  PoolGuard p(o);
  const int before = lab::pkeys::owner_keys_in_use();  // this thread may hold one from earlier tests
  std::vector<std::unique_ptr<Worker>> owners;
  std::vector<void *> pages;
  labyrinth_status last = LABYRINTH_OK;
  std::string msg;
  for (int i = 0; i < 20 && last == LABYRINTH_OK; ++i) {
    owners.push_back(std::make_unique<Worker>());
    owners.back()->run([&] {
      void *pg = nullptr;
      last = labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &pg);
      if (last == LABYRINTH_OK) pages.push_back(pg);
      else msg = last_message();
    });
  }
  std::printf("[info] %zu owners got a key; then: %s\n", pages.size(), msg.c_str());
  ASSERT_EQ(last, LABYRINTH_ERR_UNSUPPORTED) << "20 owners all got a key";
  EXPECT_GE(pages.size(), 1u);
  EXPECT_LE(pages.size(), 15u);
  EXPECT_NE(msg.find("no protection key left for owner"), std::string::npos) << msg;
  EXPECT_EQ(stats(p).allocated_pages, pages.size());  // the refusal took nothing
  // The owners free their pages and exit: their keys come back.
  for (std::size_t i = 0; i < pages.size(); ++i)
    owners[i]->run([&, i] { EXPECT_EQ(labyrinth_free_pages(p, pages[i]), LABYRINTH_OK); });
  owners.clear();
  EXPECT_EQ(lab::pkeys::owner_keys_in_use(), before);
  labyrinth_status again = LABYRINTH_ERR_INVALID;
  std::thread([&] {
    void *pg = nullptr;
    again = labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &pg);
    if (again == LABYRINTH_OK) again = labyrinth_free_pages(p, pg);
  }).join();
  EXPECT_EQ(again, LABYRINTH_OK) << last_message();
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// An exited owner's block: it still carries the dead thread's key (nobody
// can touch it) until reclaimed; reclaim by another thread re-keys it first,
// so scrubbing it works, and gives the key back.
TEST(Pkeys, ReclaimedOrphansAreScrubbedAndGiveTheirKeyBack) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options(LABYRINTH_POOL_SCRUB);
  PoolGuard p(o);
  const int before = lab::pkeys::owner_keys_in_use();
  void *pg = nullptr;
  std::thread([&] {
    pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
    if (pg) std::memset(pg, 0xAB, 4096);
  }).join();
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(lab::pkeys::owner_keys_in_use(), before + 1);  // the dead owner's block still carries it
  std::size_t n = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(p, &n), LABYRINTH_OK);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(lab::pkeys::owner_keys_in_use(), before);
  // Scrubbed: handed out again (to us), it reads zero.
  void *again = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_EXCLUSIVE, 0, &again), LABYRINTH_OK);
  EXPECT_EQ(static_cast<unsigned char *>(again)[100], 0);
  ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

TEST(Pkeys, OwnedBlocksOfEveryOrderWorkAndNothingIsLost) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options(LABYRINTH_POOL_POISON);
  PoolGuard p(o);
  for (int round = 0; round < 3; ++round) {
    std::vector<char *> held;
    for (unsigned order = 0; order <= 4; ++order) {
      void *b = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE | LABYRINTH_GFP_ZERO, 0, &b),
                LABYRINTH_OK);
      char *c = static_cast<char *>(b);
      for (std::size_t k = 0; k < (4096u << order); k += 512) {
        ASSERT_EQ(c[k], 0);
        c[k] = 1;
      }
      held.push_back(c);
    }
    for (char *c : held) ASSERT_EQ(labyrinth_free_pages(p, c), LABYRINTH_OK);
  }
  EXPECT_EQ(stats(p).cached_pages, 0u);  // no caches in PKEYS mode
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}

// An io completion that hands a block to another owner (the managed ring's
// receive path) moves the key too: the new owner writes and frees it
// (without the re-key it would fault here and crash the test).
TEST(Pkeys, AnIoCompletionToAnotherOwnerMovesTheKey) {
  SKIP_WITHOUT_KEYS();
  labyrinth_pool_options o = pkeys_options();
  PoolGuard p(o);
  Worker b;
  const labyrinth_owner b_id = b.owner();
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(pg, nullptr);
  ASSERT_EQ(lab::page_begin_io(p, pg, labyrinth_owner_self()), LABYRINTH_OK) << last_message();
  ASSERT_EQ(lab::page_end_io(p, pg, b_id), LABYRINTH_OK) << last_message();
  labyrinth_status freed = LABYRINTH_ERR_INVALID;
  b.run([&] {
    static_cast<volatile char *>(pg)[4095] = 9;
    freed = labyrinth_free_pages(p, pg);
  });
  EXPECT_EQ(freed, LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_maximal(p, o);
}
