// uring_test_util.hpp - helpers shared by the io_uring tests: pools, rings
// that skip (not fail) where io_uring is missing, loopback sockets, temp
// files and checksums.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "labyrinth/labyrinth.h"
#include "labyrinth/labyrinth_uring.h"

namespace uring_test {

inline std::string last_error() {
  return std::string(labyrinth_status_name(labyrinth_last_status())) + ": " +
         labyrinth_last_error_message();
}

inline labyrinth_pool *make_pool(std::size_t bytes, std::uint32_t flags = LABYRINTH_POOL_DEFAULT_FLAGS) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  o.flags = flags;
  labyrinth_pool *p = nullptr;
  labyrinth_status st = labyrinth_pool_create(&o, &p);
  EXPECT_EQ(st, LABYRINTH_OK) << last_error();
  return st == LABYRINTH_OK ? p : nullptr;
}

inline std::uint64_t pool_stat_allocated(labyrinth_pool *p) {
  labyrinth_stats s{};
  s.struct_size = sizeof(s);
  EXPECT_EQ(labyrinth_pool_stats(p, &s), LABYRINTH_OK);
  return s.allocated_pages;
}

inline std::uint64_t pool_stat_inflight(labyrinth_pool *p) {
  labyrinth_stats s{};
  s.struct_size = sizeof(s);
  EXPECT_EQ(labyrinth_pool_stats(p, &s), LABYRINTH_OK);
  return s.inflight_pages;
}

// FNV-1a over a buffer.
// The ring's statistics; a failing call fails the test.
inline labyrinth_ring_stats ring_stats(labyrinth_ring *ring) {
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  EXPECT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK) << last_error();
  return rs;
}

inline std::uint64_t checksum(const void *data, std::size_t n) {
  const auto *b = static_cast<const unsigned char *>(data);
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

inline void fill_pattern(void *data, std::size_t n, std::uint64_t seed) {
  auto *w = static_cast<std::uint64_t *>(data);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n / 8; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
}

// A temporary file in the build tree's temp dir (TMPDIR or /var/tmp, not
// tmpfs so that O_DIRECT works), removed at destruction.
struct TempFile {
  std::string path;
  int fd = -1;
  explicit TempFile(int extra_flags = 0) {
    const char *dir = std::getenv("TMPDIR");
    path = std::string(dir && *dir ? dir : "/var/tmp") + "/labyrinth-uring-XXXXXX";
    std::vector<char> buf(path.begin(), path.end());
    buf.push_back('\0');
    fd = mkostemp(buf.data(), O_CLOEXEC | extra_flags);
    path = buf.data();
  }
  ~TempFile() {
    if (fd >= 0) close(fd);
    if (!path.empty()) unlink(path.c_str());
  }
};

// Create a managed ring, or skip the test if io_uring is unavailable.
#define URING_CREATE_OR_SKIP(pool, opts, ring)                                     \
  do {                                                                             \
    labyrinth_status st_ = labyrinth_ring_create((pool), (opts), &(ring));         \
    if (st_ == LABYRINTH_ERR_UNSUPPORTED) GTEST_SKIP() << uring_test::last_error(); \
    ASSERT_EQ(st_, LABYRINTH_OK) << uring_test::last_error();                      \
  } while (0)

// UDP: a receiver bound to 127.0.0.1:ephemeral and a sender connected to it.
struct UdpPair {
  int rx = -1, tx = -1;
  UdpPair() {
    rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(rx, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(rx, reinterpret_cast<sockaddr *>(&a), &len);
    connect(tx, reinterpret_cast<sockaddr *>(&a), sizeof(a));
  }
  ~UdpPair() {
    if (rx >= 0) close(rx);
    if (tx >= 0) close(tx);
  }
};

// TCP: a connected pair on loopback (a = client, b = accepted server side).
struct TcpPair {
  int a = -1, b = -1;
  TcpPair() {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
    listen(l, 1);
    socklen_t len = sizeof(addr);
    getsockname(l, reinterpret_cast<sockaddr *>(&addr), &len);
    a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connect(a, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
    b = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    close(l);
    int one = 1;
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TcpPair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

// Take exactly one completion, waiting up to timeout_ms. False if none came.
inline bool complete_one(labyrinth_ring *ring, labyrinth_completion *c, uint32_t timeout_ms = 5000) {
  std::size_t n = 0;
  labyrinth_status st = labyrinth_ring_complete(ring, c, 1, 1, timeout_ms, &n);
  EXPECT_EQ(st, LABYRINTH_OK) << last_error();
  return st == LABYRINTH_OK && n == 1;
}

// Run fn in a forked child; returns its exit code and what it wrote to the pipe.
template <class F>
inline int in_child(F fn, std::string *out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int rc = fn(p[1]);
    _exit(rc);
  }
  close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) out->append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline void write_str(int fd, const std::string &s) {
  ssize_t ignored = write(fd, s.data(), s.size());
  (void)ignored;
}

}  // namespace uring_test
