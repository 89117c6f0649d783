// Pools and processes: a forked child never sees the arena (MADV_DONTFORK)
// and is told clearly that the parent's pool is not usable; transparent huge
// pages are requested where the system allows them.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "test_util.hpp"

using namespace labtest;

namespace {
// Run fn in a forked child; returns its wait status.
template <typename F>
int in_child(F fn) {
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}
}  // namespace

TEST(Fork, ChildCannotTouchTheParentsPages) {
  PoolGuard p(1u << 20);
  char *pg = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  ASSERT_NE(pg, nullptr);
  pg[0] = 42;
  int status = in_child([&] {
    volatile char c = pg[0];  // unmapped in the child: SIGSEGV
    (void)c;
    _exit(3);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child could read the parent's page";
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  EXPECT_EQ(pg[0], 42);
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

TEST(Fork, ChildIsRefusedClearly) {
  PoolGuard p(1u << 20);
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);  // warm: the thread has a cache
  int status = in_child([&] {
    if (labyrinth_void_alloc_page_gfp_atomic_exclusive(p) != nullptr) _exit(10);
    if (labyrinth_last_status() != LABYRINTH_ERR_INVALID) _exit(11);
    if (std::string(labyrinth_last_error_message()).find("fork") == std::string::npos) _exit(12);
    void *out = nullptr;
    if (labyrinth_alloc_pages(p, 2, 0, 0, &out) != LABYRINTH_ERR_INVALID) _exit(13);
    if (labyrinth_free_pages(p, pg) != LABYRINTH_ERR_INVALID) _exit(14);
    labyrinth_stats s;
    s.struct_size = sizeof s;
    if (labyrinth_pool_stats(p, &s) != LABYRINTH_ERR_INVALID) _exit(15);
    // A pool created in the child works.
    labyrinth_pool_options o = options(1u << 20);
    labyrinth_pool *mine = nullptr;
    if (labyrinth_pool_create(&o, &mine) != LABYRINTH_OK) _exit(16);
    void *q = labyrinth_void_alloc_page_gfp_atomic_exclusive(mine);
    if (!q || labyrinth_free_pages(mine, q) != LABYRINTH_OK) _exit(17);
    if (labyrinth_pool_destroy(mine) != LABYRINTH_OK) _exit(18);
  });
  ASSERT_TRUE(WIFEXITED(status)) << "child crashed with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "step that failed: exit code";
  // The parent's pool is untouched.
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  expect_accounting(stats(p));
}

TEST(HugePages, RequestedWhereTheSystemAllows) {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(f, mode);
  if (mode.empty()) GTEST_SKIP() << "no transparent huge page support in this kernel";
  PoolGuard p(8u << 20);
  bool allowed = mode.find("[never]") == std::string::npos;
  EXPECT_EQ(stats(p).huge_pages, allowed ? 1u : 0u) << "THP mode: " << mode;
  labyrinth_pool_options o = options(8u << 20);
  o.flags &= ~LABYRINTH_POOL_HUGEPAGES;
  PoolGuard q(o);
  EXPECT_EQ(stats(q).huge_pages, 0u);
}
