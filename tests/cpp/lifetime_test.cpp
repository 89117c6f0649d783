// A pool handle that is no longer usable here: every call that takes it
// returns INVALID with a message and changes nothing, never crashes.
//  - In a forked child, the parent's pool: "belongs to the parent process".
//  - After labyrinth_pool_destroy: "not a live pool (already destroyed?)".
// Each scenario runs in a child process, so that a crash is reported as a
// failure of that scenario instead of ending the test program.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "labyrinth/labyrinth_uring.h"
#include "test_util.hpp"

using namespace labtest;

namespace {

// What a scenario found wrong ("" when nothing).
using Findings = std::string;

// Run fn in a forked child; returns its findings, or how it died.
Findings in_child(const std::function<Findings()> &fn) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const Findings f = fn();
    ssize_t ignored = write(fds[1], f.data(), f.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  Findings out;
  char buf[1024];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) out += "the child died of signal " + std::to_string(WTERMSIG(status));
  return out;
}

// Checks that one call refused the handle: INVALID, and a message that
// names the call and contains `says`.
struct Refusals {
  std::string says;
  Findings found;
  void check(const char *call, labyrinth_status st) {
    const std::string msg = labyrinth_last_error_message();
    if (st != LABYRINTH_ERR_INVALID)
      found += std::string(call) + " returned " + labyrinth_status_name(st) + " (" + msg + "); ";
    else if (msg.find(call) == std::string::npos || msg.find(says) == std::string::npos)
      found += std::string(call) + " said \"" + msg + "\"; ";
    labyrinth_clear_last_error();
  }
  void check_null(const char *call, void *result) {
    if (result) found += std::string(call) + " returned a page; ";
    check(call, result ? LABYRINTH_OK : labyrinth_last_status());
  }
};

// A pool of `bytes` (NULL if it cannot be made: the calls below then fail).
labyrinth_pool *new_pool(std::size_t bytes) {
  labyrinth_pool_options o = options(bytes);
  labyrinth_pool *pool = nullptr;
  return labyrinth_pool_create(&o, &pool) == LABYRINTH_OK ? pool : nullptr;
}

// Every call that takes a pool, on `pool`; `page` was a block of it.
void every_call(labyrinth_pool *pool, void *page, Refusals &r) {
  void *out = nullptr;
  r.check_null("labyrinth_void_alloc_page_gfp_atomic_exclusive",
               labyrinth_void_alloc_page_gfp_atomic_exclusive(pool));
  // The exported function itself (not the header's inline code).
  void *(*flagship)(labyrinth_pool *) = &labyrinth_void_alloc_page_gfp_atomic_exclusive;
  r.check_null("labyrinth_void_alloc_page_gfp_atomic_exclusive", flagship(pool));
  r.check("labyrinth_alloc_pages",
          labyrinth_alloc_pages(pool, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &out));
  r.check("labyrinth_alloc_pages", labyrinth_alloc_pages(pool, 2, 0, 0, &out));
  if (out) r.found += "labyrinth_alloc_pages wrote *out_page; ";
  r.check("labyrinth_free_pages", labyrinth_free_pages(pool, page));
  r.check("labyrinth_free_pages_order", labyrinth_free_pages_order(pool, page, 0));
  r.check("labyrinth_page_transfer", labyrinth_page_transfer(pool, page, 12345));
  labyrinth_owner owner = 7;
  unsigned order = 7;
  r.check("labyrinth_page_info", labyrinth_page_info(pool, page, &owner, &order));
  if (owner != 7 || order != 7) r.found += "labyrinth_page_info wrote its outputs; ";
  size_t reclaimed = 7;
  r.check("labyrinth_pool_reclaim_orphans", labyrinth_pool_reclaim_orphans(pool, &reclaimed));
  labyrinth_stats s;
  s.struct_size = sizeof s;
  r.check("labyrinth_pool_stats", labyrinth_pool_stats(pool, &s));
  r.check("labyrinth_pool_trim", labyrinth_pool_trim(pool));
  void *base = nullptr;
  size_t size = 0;
  r.check("labyrinth_pool_arena", labyrinth_pool_arena(pool, &base, &size));
  if (base || size) r.found += "labyrinth_pool_arena wrote its outputs; ";
  r.check("labyrinth_pool_register_io_uring", labyrinth_pool_register_io_uring(pool, 0));
  r.check("labyrinth_pool_unregister_io_uring", labyrinth_pool_unregister_io_uring(pool, 0));
  uint16_t buf_index = 7;
  r.check("labyrinth_page_buf_index", labyrinth_page_buf_index(pool, page, &buf_index));
  uint32_t buffers = 7;
  r.check("labyrinth_pool_io_uring_buffers", labyrinth_pool_io_uring_buffers(pool, &buffers));
  labyrinth_ring *ring = nullptr;
  r.check("labyrinth_ring_create", labyrinth_ring_create(pool, nullptr, &ring));
  if (ring) r.found += "labyrinth_ring_create made a ring; ";
  r.check("labyrinth_pool_destroy_ex",
          labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE));
  r.check("labyrinth_pool_destroy", labyrinth_pool_destroy(pool));
}

}  // namespace

// The parent's pool, with a live page, its thread cache warm: in the child
// every call refuses it; the parent's pool is untouched.
TEST(Lifetime, ForkedChildIsRefusedByEveryCall) {
  PoolGuard p(8u << 20);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);
  ASSERT_NE(page, nullptr);
  const Findings f = in_child([&] {
    Refusals r{"belongs to the parent process", {}};
    every_call(p, page, r);
    return r.found;
  });
  EXPECT_EQ(f, "");
  ASSERT_EQ(labyrinth_free_pages(p, page), LABYRINTH_OK) << last_message();
  expect_accounting(stats(p));
}

// After destroy, every call refuses the handle (the thread's inline record
// forgot the pool, so the inline code hands each call to the library).
TEST(Lifetime, DestroyedPoolIsRefusedByEveryCall) {
  const Findings f = in_child([] {
    labyrinth_pool *pool = new_pool(8u << 20);
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    void *block = nullptr;
    if (!page || labyrinth_alloc_pages(pool, 3, 0, 0, &block) != LABYRINTH_OK)
      return std::string("alloc failed");
    if (labyrinth_free_pages(pool, page) != LABYRINTH_OK ||
        labyrinth_free_pages_order(pool, block, 3) != LABYRINTH_OK)
      return std::string("free failed");
    if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) return std::string("destroy failed");
    Refusals r{"not a live pool (already destroyed?)", {}};
    every_call(pool, page, r);
    r.check("labyrinth_free_pages", labyrinth_free_pages(pool, block));
    return r.found;
  });
  EXPECT_EQ(f, "");
}

// A forced destroy with blocks still allocated: their frees are refused the
// same way (not FOREIGN with a stale arena range).
TEST(Lifetime, FreeAfterForcedDestroyIsRefused) {
  const Findings f = in_child([] {
    labyrinth_pool *pool = new_pool(1u << 20);
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    if (!page) return std::string("alloc failed");
    if (labyrinth_pool_destroy(pool) != LABYRINTH_ERR_BUSY) return std::string("destroy not BUSY");
    if (labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE) != LABYRINTH_OK)
      return std::string("forced destroy failed");
    Refusals r{"not a live pool (already destroyed?)", {}};
    r.check("labyrinth_free_pages", labyrinth_free_pages(pool, page));
    r.check("labyrinth_free_pages_order", labyrinth_free_pages_order(pool, page, 0));
    return r.found;
  });
  EXPECT_EQ(f, "");
}

// A pool created after another was destroyed never answers for the old handle.
TEST(Lifetime, NewPoolsNeverTakeADestroyedHandle) {
  labyrinth_pool *old = new_pool(1u << 20);
  ASSERT_NE(old, nullptr);
  ASSERT_EQ(labyrinth_pool_destroy(old), LABYRINTH_OK);
  for (int i = 0; i < 8; ++i) {
    PoolGuard fresh(1u << 20);
    EXPECT_NE(fresh.pool, old);
  }
  EXPECT_EQ(labyrinth_void_alloc_page_gfp_atomic_exclusive(old), nullptr);
  EXPECT_EQ(labyrinth_last_status(), LABYRINTH_ERR_INVALID);
}
