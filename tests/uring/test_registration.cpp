// Registration of a pool's arena with any io_uring: the page -> fixed buffer
// map, real fixed I/O on every page of a pool larger than one buffer, the
// misuse table, RLIMIT_MEMLOCK and unavailable-io_uring messages.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>

#include <cstddef>
#include <iostream>

#include "uring_test_util.hpp"

using namespace uring_test;

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;

// Every page maps to a buffer; indices are contiguous and non-decreasing;
// no buffer exceeds 1 GiB; no 4 MiB block straddles two buffers; the number
// of buffers is the minimum or one more. No registration (the arena is never
// touched), so the pool can be large.
TEST(UringBufIndex, MapsEveryPageOfALargePool) {
  const std::size_t size = 5 * kGiB + 6 * (1u << 20);
  labyrinth_pool *pool = make_pool(size, 0 /* no PIN: nothing touched */);
  ASSERT_NE(pool, nullptr);
  void *base_v = nullptr;
  std::size_t arena = 0;
  ASSERT_EQ(labyrinth_pool_arena(pool, &base_v, &arena), LABYRINTH_OK);
  auto *base = static_cast<char *>(base_v);
  uint32_t count = 0;
  ASSERT_EQ(labyrinth_pool_io_uring_buffers(pool, &count), LABYRINTH_OK);
  EXPECT_GE(count, (arena + kGiB - 1) / kGiB);
  EXPECT_LE(count, (arena + kGiB - 1) / kGiB + 1);
  std::vector<std::size_t> first(count, SIZE_MAX), last(count, 0);
  uint16_t prev = 0;
  for (std::size_t off = 0; off < arena; off += kPage) {
    uint16_t idx = 0xffff;
    ASSERT_EQ(labyrinth_page_buf_index(pool, base + off, &idx), LABYRINTH_OK);
    ASSERT_LT(idx, count);
    ASSERT_TRUE(idx == prev || idx == prev + 1) << "offset " << off;
    prev = idx;
    if (first[idx] == SIZE_MAX) first[idx] = off;
    last[idx] = off;
  }
  EXPECT_EQ(prev, count - 1);
  const std::uintptr_t kBlock = std::uintptr_t{kPage} << LABYRINTH_MAX_ORDER;
  for (uint32_t i = 0; i < count; ++i) {
    EXPECT_LE(last[i] + kPage - first[i], kGiB) << "buffer " << i;
    if (i > 0) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(base + first[i]) % kBlock, 0u)
          << "buffer " << i << " starts inside a 4 MiB block";
    }
  }
  // Misuse: outside the arena, NULLs.
  uint16_t idx = 77;
  EXPECT_EQ(labyrinth_page_buf_index(pool, base + arena, &idx), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_page_buf_index(pool, base - kPage, &idx), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(idx, 77);
  EXPECT_EQ(labyrinth_page_buf_index(nullptr, base, &idx), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_page_buf_index(pool, base, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// A pool of just over 1 GiB (two fixed buffers) registered with the test's
// own liburing ring: a fixed read into every one of its pages, with the
// index labyrinth_page_buf_index() gives, must land the file's bytes there.
// A wrong index would make the kernel refuse the read (EFAULT).
TEST(UringRegister, EveryPageReachableByFixedRead) {
  const std::size_t size = kGiB + 8 * (1u << 20);
  labyrinth_pool *pool = make_pool(size, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  int ret = io_uring_queue_init(256, &ring, 0);
  if (ret < 0) {
    labyrinth_pool_destroy(pool);
    GTEST_SKIP() << "io_uring_queue_init: " << strerror(-ret);
  }
  labyrinth_status st = labyrinth_pool_register_io_uring(pool, ring.ring_fd);
  if (st == LABYRINTH_ERR_UNSUPPORTED) {
    io_uring_queue_exit(&ring);
    labyrinth_pool_destroy(pool);
    GTEST_SKIP() << last_error();
  }
  ASSERT_EQ(st, LABYRINTH_OK) << last_error();
  uint32_t count = 0;
  ASSERT_EQ(labyrinth_pool_io_uring_buffers(pool, &count), LABYRINTH_OK);
  EXPECT_GE(count, 2u);

  // Own the whole arena as 4 MiB blocks.
  std::vector<char *> blocks;
  for (;;) {
    void *b = nullptr;
    if (labyrinth_alloc_pages(pool, LABYRINTH_MAX_ORDER, 0, 0, &b) != LABYRINTH_OK) break;
    blocks.push_back(static_cast<char *>(b));
  }
  ASSERT_GE(blocks.size() * (kPage << LABYRINTH_MAX_ORDER), kGiB);

  TempFile file;
  ASSERT_GE(file.fd, 0);
  std::vector<unsigned char> src(kPage);
  fill_pattern(src.data(), kPage, 42);
  ASSERT_EQ(pwrite(file.fd, src.data(), kPage, 0), static_cast<ssize_t>(kPage));
  const std::uint64_t want = checksum(src.data(), kPage);

  std::vector<char *> pages;
  for (char *b : blocks)
    for (std::size_t i = 0; i < (std::size_t{1} << LABYRINTH_MAX_ORDER); ++i) pages.push_back(b + i * kPage);
  std::size_t next = 0, done = 0, bad = 0;
  std::vector<bool> seen_index(count, false);
  while (done < pages.size()) {
    unsigned queued = 0;
    while (next < pages.size() && queued < 128) {
      io_uring_sqe *sqe = io_uring_get_sqe(&ring);
      if (!sqe) break;
      uint16_t idx = 0;
      ASSERT_EQ(labyrinth_page_buf_index(pool, pages[next], &idx), LABYRINTH_OK);
      seen_index[idx] = true;
      io_uring_prep_read_fixed(sqe, file.fd, pages[next], kPage, 0, idx);
      io_uring_sqe_set_data64(sqe, next);
      ++next;
      ++queued;
    }
    ASSERT_GE(io_uring_submit_and_wait(&ring, queued), 0);
    for (unsigned i = 0; i < queued; ++i) {
      io_uring_cqe *cqe = nullptr;
      ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
      std::size_t at = io_uring_cqe_get_data64(cqe);
      if (cqe->res != static_cast<int>(kPage) || checksum(pages[at], kPage) != want) {
        if (bad++ < 5) ADD_FAILURE() << "page " << at << " res " << cqe->res;
      }
      io_uring_cqe_seen(&ring, cqe);
      ++done;
    }
  }
  EXPECT_EQ(bad, 0u);
  for (uint32_t i = 0; i < count; ++i) EXPECT_TRUE(seen_index[i]) << "buffer " << i << " unused";

  for (char *b : blocks) ASSERT_EQ(labyrinth_free_pages(pool, b), LABYRINTH_OK);
  // Registered: the pool may not be destroyed.
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("io_uring"), std::string::npos);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_OK) << last_error();
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

TEST(UringRegister, Misuse) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  int ret = io_uring_queue_init(8, &ring, 0);
  if (ret < 0) {
    labyrinth_pool_destroy(pool);
    GTEST_SKIP() << "io_uring_queue_init: " << strerror(-ret);
  }
  EXPECT_EQ(labyrinth_pool_register_io_uring(nullptr, ring.ring_fd), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, -1), LABYRINTH_ERR_INVALID);
  int notring = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, notring), LABYRINTH_ERR_INVALID);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("not an io_uring"), std::string::npos)
      << labyrinth_last_error_message();
  close(notring);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_INVALID);

  ASSERT_EQ(labyrinth_pool_register_io_uring(pool, ring.ring_fd), LABYRINTH_OK) << last_error();
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_BUSY);
  labyrinth_pool *other = make_pool(4u << 20);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(labyrinth_pool_register_io_uring(other, ring.ring_fd), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_INVALID);

  // A ring that already holds fixed buffers (the application's own).
  static char own[4096] __attribute__((aligned(4096)));
  iovec iov{own, sizeof(own)};
  ASSERT_EQ(io_uring_register_buffers(&ring, &iov, 1), 0);
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_BUSY);
  EXPECT_NE(std::string(labyrinth_last_error_message()).find("already has fixed buffers"),
            std::string::npos)
      << labyrinth_last_error_message();
  io_uring_unregister_buffers(&ring);

  // Registered, then the ring is closed first: unregister still releases the hold.
  ASSERT_EQ(labyrinth_pool_register_io_uring(other, ring.ring_fd), LABYRINTH_OK);
  int fd = ring.ring_fd;
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(other), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_pool_unregister_io_uring(other, fd), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(other), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// An unprivileged user (uid nobody, so no CAP_IPC_LOCK) with a 64 KiB
// RLIMIT_MEMLOCK registers an 8 MiB pool: refused, and the message gives the
// limit, the size asked and how to raise it. Exit 77 = cannot run here.
TEST(UringRegister, MemlockMessageForUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  std::string msg;
  int rc = in_child(
      [](int out) {
        struct rlimit rl {65536, 65536};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 77;
        if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0) {
          write_str(out, "cannot become nobody");
          return 77;
        }
        labyrinth_pool_options o;
        labyrinth_pool_options_init(&o);
        o.size_bytes = 8u << 20;
        o.flags = 0;  // no mlock: the pool itself must not hit the limit
        labyrinth_pool *pool = nullptr;
        if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) {
          write_str(out, std::string("pool: ") + labyrinth_last_error_message());
          return 3;
        }
        io_uring ring;
        int ret = io_uring_queue_init(8, &ring, 0);
        if (ret < 0) {
          write_str(out, std::string("io_uring_queue_init as nobody: ") + strerror(-ret));
          return 77;
        }
        labyrinth_status st = labyrinth_pool_register_io_uring(pool, ring.ring_fd);
        write_str(out, std::string(labyrinth_status_name(st)) + "|" + labyrinth_last_error_message());
        return st == LABYRINTH_ERR_NOMEM ? 0 : 4;
      },
      &msg);
  if (rc == 77) GTEST_SKIP() << "cannot run the unprivileged child: " << msg;
  ASSERT_EQ(rc, 0) << msg;
  EXPECT_NE(msg.find("RLIMIT_MEMLOCK"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65536"), std::string::npos) << msg;                       // the limit
  EXPECT_NE(msg.find(std::to_string(8u << 20)), std::string::npos) << msg;     // the size asked
  EXPECT_NE(msg.find("ulimit -l"), std::string::npos) << msg;                  // how to raise it
  EXPECT_NE(msg.find("CAP_IPC_LOCK"), std::string::npos) << msg;
}

// The same check for a process started unprivileged with a small limit
// (scripts/test.d/30-uring.sh runs it via prlimit --memlock + setpriv
// --reuid=nobody). Skips when the limit does not apply to this process.
TEST(UringMemlockAsInvoked, MessageGivesLimitSizeAndRemedy) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  const std::size_t size = 8u << 20;
  if (geteuid() == 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= size)
    GTEST_SKIP() << "run unprivileged with RLIMIT_MEMLOCK below 8 MiB (e.g. prlimit "
                    "--memlock=65536 setpriv --reuid=nobody ...)";
  labyrinth_pool *pool = make_pool(size, 0);
  ASSERT_NE(pool, nullptr);
  io_uring ring;
  int ret = io_uring_queue_init(8, &ring, 0);
  if (ret < 0) {
    labyrinth_pool_destroy(pool);
    GTEST_SKIP() << "io_uring_queue_init: " << strerror(-ret);
  }
  EXPECT_EQ(labyrinth_pool_register_io_uring(pool, ring.ring_fd), LABYRINTH_ERR_NOMEM);
  std::string msg = labyrinth_last_error_message();
  std::cout << "message: " << msg << "\n";
  EXPECT_NE(msg.find("RLIMIT_MEMLOCK"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(rl.rlim_cur)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(size)), std::string::npos) << msg;
  EXPECT_NE(msg.find("ulimit -l"), std::string::npos) << msg;
  io_uring_queue_exit(&ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
}

// A seccomp filter making io_uring_setup fail with `err`, as container
// runtimes do; the library must say UNSUPPORTED and why.
int deny_io_uring(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<unsigned>(err)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

void expect_unsupported_with(int err, const char *needle) {
  std::string msg;
  int rc = in_child(
      [err](int out) {
        labyrinth_pool_options o;
        labyrinth_pool_options_init(&o);
        o.size_bytes = 1u << 20;
        o.flags = 0;
        labyrinth_pool *pool = nullptr;
        if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) return 3;
        if (deny_io_uring(err) != 0) {
          write_str(out, "seccomp unavailable");
          return 77;
        }
        labyrinth_ring *ring = nullptr;
        labyrinth_status st = labyrinth_ring_create(pool, nullptr, &ring);
        write_str(out, std::string(labyrinth_status_name(st)) + "|" + labyrinth_last_error_message());
        // The allocator works on.
        void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
        if (!page || labyrinth_free_pages(pool, page) != LABYRINTH_OK) return 5;
        if (ring) return 6;
        return st == LABYRINTH_ERR_UNSUPPORTED ? 0 : 4;
      },
      &msg);
  if (rc == 77) GTEST_SKIP() << msg;
  EXPECT_EQ(rc, 0) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << msg;
}

TEST(UringUnavailable, SeccompEpermSaysSeccomp) { expect_unsupported_with(EPERM, "seccomp"); }
TEST(UringUnavailable, EnosysSaysNotAvailable) { expect_unsupported_with(ENOSYS, "ENOSYS"); }

}  // namespace
