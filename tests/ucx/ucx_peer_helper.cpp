// ucx_peer_helper - the remote side in the UCX tests: a process of its own
// that connects to the node, then serves `count` lends:
//   put   writes record(id) over the whole block, returns it with value = id
//   get   reads the whole block, returns it with value = its checksum
//   hold  keeps every lend, prints "held <count>" and waits to be killed
//   node  (the other way round) a node: prints its address in hex, accepts
//         one peer, lends it COUNT pages for WRITE, prints "lent" and waits
//         to be killed
// Usage: ucx_peer_helper (addr HEX | ip PORT) (put|get|hold) COUNT
//        ucx_peer_helper node - node COUNT
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

int run_node(long count) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 4u << 20;
  o.flags = 0;
  labyrinth_pool *pool = nullptr;
  labyrinth_ucx_node *node = nullptr;
  if (labyrinth_pool_create(&o, &pool)) return failed("pool");
  if (labyrinth_ucx_node_create(LABYRINTH_UCX_NODE_PROGRESS_THREAD, &node)) return failed("node");
  if (labyrinth_ucx_node_attach(node, pool)) return failed("attach");
  char addr[4096];
  size_t len = 0;
  if (labyrinth_ucx_node_address(node, addr, sizeof addr, &len)) return failed("address");
  std::printf("%s\n", ucx_test::to_hex(addr, len).c_str());
  std::fflush(stdout);
  labyrinth_ucx_conn conn;
  if (labyrinth_ucx_accept(node, 15000, &conn)) return failed("accept");
  for (long i = 0; i < count; ++i)
    if (labyrinth_ucx_lend(node, conn, labyrinth_void_alloc_page_gfp_atomic_exclusive(pool),
                           LABYRINTH_UCX_LEND_WRITE))
      return failed("lend");
  std::printf("lent\n");
  std::fflush(stdout);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const std::string how = argv[1], action = argv[3];
  const long count = std::atol(argv[4]);
  if (how == "node") return run_node(count);
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
