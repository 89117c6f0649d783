// net_test_util.hpp - helpers for the socket tests of the managed ring:
// numbered datagrams that check their own content, ring options with a
// provided-buffer ring, and a skip for kernels without multishot receive.
#pragma once

#include <algorithm>
#include <thread>

#include "uring_test_util.hpp"

namespace uring_test {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;

struct Datagram {
  std::uint32_t seq;
  std::uint32_t len;
};

// Datagram `seq` of length len: header then a pattern.
inline std::vector<unsigned char> make_datagram(std::uint32_t seq, std::uint32_t len) {
  std::vector<unsigned char> d(len);
  fill_pattern(d.data(), len & ~7u, seq + 1000);
  Datagram h{seq, len};
  std::memcpy(d.data(), &h, sizeof(h));
  return d;
}

inline bool check_datagram(const void *page, int32_t res) {
  if (res < static_cast<int32_t>(sizeof(Datagram))) return false;
  Datagram h;
  std::memcpy(&h, page, sizeof(h));
  if (h.len != static_cast<std::uint32_t>(res)) return false;
  auto want = make_datagram(h.seq, h.len);
  return std::memcmp(page, want.data(), h.len) == 0;
}

inline std::uint32_t seq_of(const void *page) {
  Datagram h;
  std::memcpy(&h, page, sizeof(h));
  return h.seq;
}

inline void send_datagrams(int fd, std::uint32_t from, std::uint32_t to) {
  for (std::uint32_t s = from; s < to; ++s) {
    std::uint32_t len = 64 + (s * 997) % (kPage - 64);
    auto d = make_datagram(s, len);
    ASSERT_EQ(send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size())) << strerror(errno);
  }
}

// A thread that sends all of src on TCP socket fd, then shuts it down for
// writing (the receiver sees EOF). If the test ends early (a failed
// assertion) the destructor unblocks and joins it.
class TcpSender {
 public:
  TcpSender(int fd, const std::vector<unsigned char> &src)
      : fd_(fd), thread_([fd, &src] {
          std::size_t off = 0;
          while (off < src.size()) {
            ssize_t n = send(fd, src.data() + off, std::min<std::size_t>(65536, src.size() - off),
                             MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
          }
          shutdown(fd, SHUT_WR);
        }) {}
  ~TcpSender() {
    if (!thread_.joinable()) return;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
  }
  void join() { thread_.join(); }

 private:
  int fd_;
  std::thread thread_;
};

inline labyrinth_ring_options pbuf_options(uint32_t entries, uint32_t flags = 0) {
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = 32;
  o.pbuf_entries = entries;
  o.flags = flags;
  return o;
}

// Every free page of the pool, so that only the pages the test gives back
// can refill the provided-buffer ring.
inline std::vector<void *> drain_pool(labyrinth_pool *pool) {
  std::vector<void *> held;
  while (void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool)) held.push_back(p);
  return held;
}

inline void free_all(labyrinth_pool *pool, std::vector<void *> &pages) {
  for (void *p : pages) EXPECT_EQ(labyrinth_free_pages(pool, p), LABYRINTH_OK) << last_error();
  pages.clear();
}

// Run a call that may be UNSUPPORTED on this kernel; if so, tear down
// `ring` and `pool` and skip the test saying why.
#define SKIP_IF_UNSUPPORTED(call)                                                   \
  do {                                                                              \
    labyrinth_status s_ = (call);                                                   \
    if (s_ == LABYRINTH_ERR_UNSUPPORTED) {                                          \
      std::string why_ = last_error();                                              \
      labyrinth_ring_destroy(ring);                                                 \
      labyrinth_pool_destroy(pool);                                                 \
      GTEST_SKIP() << why_;                                                         \
    }                                                                               \
    ASSERT_EQ(s_, LABYRINTH_OK) << last_error();                                    \
  } while (0)

}  // namespace uring_test
