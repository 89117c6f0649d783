// RLIMIT_MEMLOCK as an unprivileged user (no CAP_IPC_LOCK) with
// an 8 MiB limit and a 6 MiB pool: one fresh registration fits, a second is
// refused before any pinning with a message naming the limit and the
// remedies; a managed ring falls back to unregistered fixed I/O, says so
// and counts it; a clone is not charged again.
#include <grp.h>
#include <liburing.h>
#include <sys/resource.h>

#include <cstring>
#include <iostream>

#include "uring_test_util.hpp"

using namespace uring_test;

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;
constexpr rlim_t kLimit = 8u << 20;

// In the child: the limit, then an unprivileged uid of its own (the kernel
// charges registrations per user: another process of a shared uid such as
// nobody would count too). False (exit 77) if not possible.
bool become_limited_user(int out) {
  struct rlimit rl {kLimit, kLimit};
  const uid_t id = 40000 + static_cast<uid_t>(getpid() % 20000);
  if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || setgroups(0, nullptr) != 0 ||
      setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0) {
    write_str(out, "cannot become an unprivileged uid with an 8 MiB RLIMIT_MEMLOCK");
    return false;
  }
  return true;
}

// The child's checks; returns a line saying what failed, empty if none.
std::string limited_child(int out) {
  labyrinth_pool *pool = nullptr;
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 6u << 20;
  o.flags = 0;  // the pool's own mlock is a separate charge: keep it out
  if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) return std::string("pool: ") + last_error();
  labyrinth_ring *a = nullptr, *c = nullptr;
  labyrinth_ring_stats s{};
  s.struct_size = sizeof s;
  if (labyrinth_ring_create(pool, nullptr, &a) != LABYRINTH_OK) return "ring: " + last_error();
  labyrinth_ring_get_stats(a, &s);
  if (s.registered != 1) return "one 6 MiB registration under 8 MiB: not registered";
  // The strict call: refused before pinning, message with limit and remedies.
  io_uring app;
  if (io_uring_queue_init(8, &app, 0) < 0) return "io_uring_queue_init";
  labyrinth_status st = labyrinth_pool_register_io_uring(pool, app.ring_fd);
  std::string msg = labyrinth_last_error_message();
  write_str(out, "strict: " + msg + "\n");
  if (st != LABYRINTH_ERR_NOMEM) return std::string("strict: ") + labyrinth_status_name(st);
  for (const char *want : {"RLIMIT_MEMLOCK", "8388608", "6291456", "ulimit -l", "clone"})
    if (msg.find(want) == std::string::npos) return std::string("strict message lacks ") + want;
  // The managed ring falls back and its fixed I/O still moves the bytes.
  if (labyrinth_ring_create(pool, nullptr, &c) != LABYRINTH_OK) return "fallback ring: " + last_error();
  labyrinth_ring_get_stats(c, &s);
  if (s.register_fallback != 1 || s.registered != 0) return "stats do not say fallback";
  TempFile f;
  void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  fill_pattern(p, kPage, 9);
  std::uint64_t want = checksum(p, kPage);
  labyrinth_completion cq{};
  if (labyrinth_ring_write_fixed(c, f.fd, p, kPage, 0, 1) != LABYRINTH_OK || !complete_one(c, &cq) ||
      cq.result != static_cast<int>(kPage))
    return "fallback write: " + last_error();
  std::memset(p, 0, kPage);
  if (labyrinth_ring_read_fixed(c, f.fd, p, kPage, 0, 2) != LABYRINTH_OK || !complete_one(c, &cq) ||
      checksum(p, kPage) != want)
    return "fallback read: " + last_error();
  labyrinth_ring_get_stats(c, &s);
  if (s.fallback_ops != 2) return "fallback_ops " + std::to_string(s.fallback_ops);
  labyrinth_free_pages(pool, p);
  // A clone is not charged: it fits where a fresh registration did not.
  st = labyrinth_pool_clone_io_uring(pool, labyrinth_ring_fd(a), app.ring_fd);
  if (st != LABYRINTH_OK && st != LABYRINTH_ERR_UNSUPPORTED) return "clone: " + last_error();
  if (st == LABYRINTH_OK) labyrinth_pool_unregister_io_uring(pool, app.ring_fd);
  // Once the registration is gone, a fresh one fits again.
  labyrinth_ring_destroy(a);
  if (labyrinth_pool_register_io_uring(pool, app.ring_fd) != LABYRINTH_OK)
    return "after a ring let go: " + last_error();
  labyrinth_pool_unregister_io_uring(pool, app.ring_fd);
  io_uring_queue_exit(&app);
  labyrinth_ring_destroy(c);
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) return "pool destroy: " + last_error();
  return "";
}

TEST(UringMemlock, FallbackAndPrecheckAsUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  std::string out;
  int rc = in_child(
      [](int fd) {
        if (!become_limited_user(fd)) return 77;
        std::string failed = limited_child(fd);
        write_str(fd, failed);
        return failed.empty() ? 0 : 1;
      },
      &out);
  if (rc == 77) GTEST_SKIP() << out;
  EXPECT_EQ(rc, 0) << out;
  std::cout << out << "\n";
}

// The same checks in a process started unprivileged with an 8 MiB limit
// (scripts/test.d/30-uring.sh: prlimit --memlock + setpriv --reuid=nobody).
TEST(UringMemlockAsInvoked8MiB, FallbackAndPrecheck) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (geteuid() == 0 || rl.rlim_cur != kLimit)
    GTEST_SKIP() << "run unprivileged with RLIMIT_MEMLOCK 8 MiB (prlimit --memlock=8388608 "
                    "setpriv --reuid=nobody ...)";
  std::string failed = limited_child(STDOUT_FILENO);
  EXPECT_TRUE(failed.empty()) << failed;
}

}  // namespace
