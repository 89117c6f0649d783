// White-box: the status and message for each reason AF_XDP can be
// unavailable, including those this machine cannot produce (a kernel
// without AF_XDP). Runs without privileges.
#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "xdp/xdp_internal.hpp"

namespace {

std::string message() { return labyrinth_last_error_message(); }

}  // namespace

TEST(XdpMessages, KernelWithoutAfXdpIsUnsupported) {
  EXPECT_EQ(lab::xdp::explain_failure(EAFNOSUPPORT, "call", "step", 4096), LABYRINTH_ERR_UNSUPPORTED);
  EXPECT_NE(message().find("CONFIG_XDP_SOCKETS"), std::string::npos) << message();
}

TEST(XdpMessages, MissingCapabilitiesAreUnsupported) {
  for (int err : {EPERM, EACCES}) {
    EXPECT_EQ(lab::xdp::explain_failure(err, "call", "step", 4096), LABYRINTH_ERR_UNSUPPORTED);
    EXPECT_NE(message().find("CAP_NET_ADMIN"), std::string::npos) << message();
    EXPECT_NE(message().find("setcap"), std::string::npos) << message();
  }
}

TEST(XdpMessages, OtherErrorsAreSystemWithErrno) {
  EXPECT_EQ(lab::xdp::explain_failure(EINVAL, "call", "step", 4096), LABYRINTH_ERR_SYSTEM);
  EXPECT_NE(message().find("errno 22"), std::string::npos) << message();
}
