// xdp_test_util.hpp - the AF_XDP tests' world: the test process moves into
// a private network namespace of its own (unshare) holding one veth pair
// xa <-> xb with fixed MAC addresses; xa has 10.77.0.1/24 and a permanent
// neighbour entry for 10.77.0.2 at xb's MAC, so a UDP datagram sent to
// 10.77.0.2 leaves through xa and arrives on xb, where no address is
// assigned (the kernel stack there never answers). Everything vanishes
// with the process. Tests skip, saying why, without root or AF_XDP.
#pragma once

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "labyrinth/labyrinth.h"
#include "labyrinth/labyrinth_xdp.h"

namespace xdp_test {

constexpr std::uint16_t kPort = 9977;
constexpr std::uint16_t kEtherTest = 0x88b5;  // IEEE local experimental
const unsigned char kMacA[6] = {0x02, 0, 0, 0, 0, 0x0a};
const unsigned char kMacB[6] = {0x02, 0, 0, 0, 0, 0x0b};

inline std::string last_error() {
  return std::string(labyrinth_status_name(labyrinth_last_status())) + ": " +
         labyrinth_last_error_message();
}

// Empty when the namespace and veth pair are ready, else why they cannot be.
inline std::string world_unavailable() {
  static std::string why = [] () -> std::string {
    if (geteuid() != 0) return "needs root (CAP_NET_ADMIN for a network namespace and AF_XDP)";
    int fd = socket(AF_XDP, SOCK_RAW, 0);
    if (fd < 0) return std::string("AF_XDP unavailable: socket(AF_XDP) failed: ") + strerror(errno);
    close(fd);
    if (unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET) failed: ") + strerror(errno);
    const char *cmd =
        "ip link set lo up && "
        "ip link add xa address 02:00:00:00:00:0a numtxqueues 1 numrxqueues 1 type veth peer name xb address 02:00:00:00:00:0b numtxqueues 1 numrxqueues 1 && "
        "ip addr add 10.77.0.1/24 dev xa && ip link set xa up && ip link set xb up && "
        "ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:0b dev xa nud permanent";
    if (std::system(cmd) != 0) return "could not create the veth pair with ip(8) (iproute2 installed?)";
    return "";
  }();
  return why;
}

#define XDP_REQUIRE_WORLD()                                              \
  do {                                                                   \
    std::string why_ = xdp_test::world_unavailable();                    \
    if (!why_.empty()) GTEST_SKIP() << why_;                             \
  } while (0)

inline labyrinth_pool *make_pool(std::size_t bytes) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  labyrinth_pool *p = nullptr;
  EXPECT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_error();
  return p;
}

inline labyrinth_stats stats(labyrinth_pool *p) {
  labyrinth_stats s{};
  s.struct_size = sizeof s;
  EXPECT_EQ(labyrinth_pool_stats(p, &s), LABYRINTH_OK);
  return s;
}

inline labyrinth_xdp_socket_info info(const labyrinth_xdp_socket *s) {
  labyrinth_xdp_socket_info i{};
  i.struct_size = sizeof i;
  EXPECT_EQ(labyrinth_xdp_socket_info_get(s, &i), LABYRINTH_OK);
  return i;
}

inline labyrinth_xdp_socket *open_socket(labyrinth_xdp_umem *u, const char *ifname,
                                         std::uint32_t ring = 512, std::uint32_t fill = 256,
                                         std::uint32_t flags = 0) {
  labyrinth_xdp_socket_options o;
  labyrinth_xdp_socket_options_init(&o);
  o.ifname = ifname;
  o.ring_size = ring;
  o.fill_target = fill;
  o.flags = flags;
  labyrinth_xdp_socket *s = nullptr;
  EXPECT_EQ(labyrinth_xdp_socket_create(u, &o, &s), LABYRINTH_OK) << last_error();
  return s;
}

// n UDP datagrams of `len` bytes (first 4: the sequence number) from xa to
// 10.77.0.2:kPort.
inline void send_udp(std::uint32_t n, std::uint32_t len) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kPort);
  inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
  std::vector<unsigned char> d(len, 0x5a);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::memcpy(d.data(), &i, sizeof i);
    ASSERT_EQ(sendto(fd, d.data(), len, 0, reinterpret_cast<sockaddr *>(&to), sizeof to),
              static_cast<ssize_t>(len)) << strerror(errno);
  }
  close(fd);
}

// Is this frame one of send_udp's datagrams (IPv4, UDP, port kPort)?
inline bool is_test_udp(const labyrinth_xdp_frame &f) {
  const unsigned char *b = static_cast<const unsigned char *>(f.page) + f.offset;
  if (f.len < 42 || b[12] != 0x08 || b[13] != 0x00 || b[23] != 17) return false;
  const unsigned ihl = (b[14] & 0xf) * 4u;
  return f.len >= 14 + ihl + 8 && ((b[14 + ihl + 2] << 8) | b[14 + ihl + 3]) == kPort;
}

// Receive until `want` frames matching `keep` arrived or timeout_ms passed;
// the others are freed at once. Returns the kept ones (the caller owns them).
template <typename Keep>
std::vector<labyrinth_xdp_frame> receive(labyrinth_pool *pool, labyrinth_xdp_socket *s,
                                         std::size_t want, int timeout_ms, Keep keep) {
  std::vector<labyrinth_xdp_frame> out;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  labyrinth_xdp_frame batch[64];
  while (out.size() < want && std::chrono::steady_clock::now() < end) {
    std::size_t n = 0;
    EXPECT_EQ(labyrinth_xdp_receive(s, batch, 64, &n), LABYRINTH_OK) << last_error();
    for (std::size_t i = 0; i < n; ++i) {
      if (keep(batch[i]))
        out.push_back(batch[i]);
      else
        EXPECT_EQ(labyrinth_free_pages(pool, batch[i].page), LABYRINTH_OK) << last_error();
    }
    if (n == 0) {
      pollfd p{labyrinth_xdp_socket_fd(s), POLLIN, 0};
      poll(&p, 1, 10);
    }
  }
  return out;
}

inline void free_all(labyrinth_pool *pool, const std::vector<labyrinth_xdp_frame> &frames) {
  for (const auto &f : frames) EXPECT_EQ(labyrinth_free_pages(pool, f.page), LABYRINTH_OK) << last_error();
}

// Write a raw Ethernet frame (dst, src, kEtherTest, seq) of len bytes at page.
inline void write_frame(void *page, const unsigned char *dst, const unsigned char *src,
                        std::uint32_t seq, std::uint32_t len) {
  auto *b = static_cast<unsigned char *>(page);
  std::memset(b, 0, len);
  std::memcpy(b, dst, 6);
  std::memcpy(b + 6, src, 6);
  b[12] = kEtherTest >> 8;
  b[13] = kEtherTest & 0xff;
  std::memcpy(b + 14, &seq, sizeof seq);
}

inline bool is_test_frame(const labyrinth_xdp_frame &f) {
  const unsigned char *b = static_cast<const unsigned char *>(f.page) + f.offset;
  return f.len >= 18 && b[12] == (kEtherTest >> 8) && b[13] == (kEtherTest & 0xff);
}

}  // namespace xdp_test
