// The messages a caller without the privileges AF_XDP needs gets, as the
// test is invoked: without CAP_NET_RAW (a normal user) UNSUPPORTED naming
// the capabilities; with them but without CAP_IPC_LOCK and a small
// RLIMIT_MEMLOCK, NOMEM naming the limit. Stage 35-xdp runs it both ways
// (setpriv, prlimit); with full privileges it skips.
#include <sys/resource.h>

#include <fstream>

#include "xdp_test_util.hpp"

using namespace xdp_test;

namespace {

// Is capability `cap` in this process's effective set (/proc/self/status)?
bool has_cap(int cap) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> cap) & 1u;
  return false;
}

}  // namespace

TEST(XdpPrivileges, MessageAsInvoked) {
  int fd = socket(AF_XDP, SOCK_RAW, 0);
  if (fd < 0 && errno == EAFNOSUPPORT) GTEST_SKIP() << "no AF_XDP in this kernel";
  if (fd >= 0) close(fd);
  constexpr std::size_t kBytes = 16u << 20;
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  const bool net_raw = has_cap(13), ipc_lock = has_cap(14);
  const bool memlock_short = !ipc_lock && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < kBytes;
  if (net_raw && !memlock_short)
    GTEST_SKIP() << "has CAP_NET_RAW and room to pin: run without them (stage 35-xdp does)";
  labyrinth_pool *pool = make_pool(kBytes);
  ASSERT_NE(pool, nullptr);
  labyrinth_xdp_umem *u = nullptr;
  const labyrinth_status st = labyrinth_xdp_umem_create(pool, &u);
  const std::string msg = labyrinth_last_error_message();
  if (!net_raw) {
    EXPECT_EQ(st, LABYRINTH_ERR_UNSUPPORTED) << msg;
    EXPECT_NE(msg.find("CAP_NET_RAW"), std::string::npos) << msg;
  } else {
    EXPECT_EQ(st, LABYRINTH_ERR_NOMEM) << msg;
    EXPECT_NE(msg.find("RLIMIT_MEMLOCK"), std::string::npos) << msg;
  }
  std::printf("message: %s\n", msg.c_str());
  EXPECT_EQ(u, nullptr);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << "nothing held after the refusal";
}
