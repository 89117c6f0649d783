// ucx_peer_helper - the remote side in the UCX tests: a process of its own
// that connects to the node, then serves `count` lends:
//   put   writes record(id) over the whole block, returns it with value = id
//   get   reads the whole block, returns it with value = its checksum
//   hold  keeps every lend, prints "held <count>" and waits to be killed
// Usage: ucx_peer_helper (addr HEX | ip PORT) (put|get|hold) COUNT
// Exit status: 0 done, 1 a call failed (the message on stderr), 2 usage.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "labyrinth/labyrinth_ucx.h"
#include "ucx_test_util.hpp"

namespace {

int failed(const char *what) {
  std::fprintf(stderr, "ucx_peer_helper: %s: %s\n", what, labyrinth_last_error_message());
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const std::string how = argv[1], action = argv[3];
  const long count = std::atol(argv[4]);
  labyrinth_ucx_peer *peer = nullptr;
  labyrinth_status st;
  if (how == "addr") {
    std::vector<char> addr = ucx_test::from_hex(argv[2]);
    st = labyrinth_ucx_peer_connect_address(addr.data(), addr.size(), 10000, &peer);
  } else if (how == "ip") {
    st = labyrinth_ucx_peer_connect_ip("127.0.0.1", static_cast<uint16_t>(std::atoi(argv[2])), 10000,
                                       &peer);
  } else {
    return 2;
  }
  if (st) return failed("connect");
  std::vector<char> block;
  for (long i = 0; i < count; ++i) {
    labyrinth_ucx_lent l;
    if (labyrinth_ucx_peer_next(peer, 10000, &l)) return failed("next");
    block.resize(l.length);
    if (action == "put") {
      ucx_test::fill_record(block.data(), block.size(), l.id);
      if (labyrinth_ucx_peer_put(peer, l.id, 0, block.data(), block.size())) return failed("put");
      if (labyrinth_ucx_peer_return(peer, l.id, l.id)) return failed("return");
    } else if (action == "get") {
      if (labyrinth_ucx_peer_get(peer, l.id, 0, block.data(), block.size())) return failed("get");
      if (labyrinth_ucx_peer_return(peer, l.id, ucx_test::checksum(block.data(), block.size())))
        return failed("return");
    } else if (action != "hold") {
      return 2;
    }
  }
  if (action == "hold") {
    std::printf("held %ld\n", count);
    std::fflush(stdout);
    for (;;) pause();
  }
  labyrinth_ucx_peer_destroy(peer);
  return 0;
}
