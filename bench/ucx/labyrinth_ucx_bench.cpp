// labyrinth_ucx_bench - lending pages through UCX, measured in one run
// against raw UCX on the same endpoint, rkey and page.
//
//   put     a peer process times, on one lent page, in alternating rounds
//           (best of 5 each): raw ucp_put_nbx +
//           ucp_ep_flush_nbx (the peer's own endpoint and rkey, white-box),
//           then labyrinth_ucx_peer_put (put + flush with its checks), then
//           the whole ownership cycle per record (next lend, put + flush,
//           return) with the node keeping `window` pages lent.
//   death   `peers` peer processes one after another, each served
//           `lends` lends; every 100th kills itself mid-lend (SIGKILL) with
//           its window of pages still lent. Counts lends, returns, returns by
//           peer death and pages leaked.
// Usage: labyrinth_ucx_bench [--iters N] [--window W] [--peers P] [--lends L]
//                            [--anon-arena] [--pool-mib M]
// UCX_TLS picks the transports (sm,tcp: shared memory for the puts).
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "labyrinth/labyrinth_ucx.h"
#include "ucx/ucx_internal.hpp"

extern char **environ;

namespace {

struct Opts {
  long iters = 20000, window = 32, peers = 100, lends = 1000, pool_mib = 64;
  bool anon_arena = false;
};

double now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

int die(const char *what) {
  std::fprintf(stderr, "labyrinth_ucx_bench: %s: %s\n", what, labyrinth_last_error_message());
  return 1;
}

// ---- peer side -------------------------------------------------------------

// Plain UCX: the request's completion by progress, yielding the CPU when
// idle as the library's own wait does (on a busy machine a wait that never
// yields starves the node, which must progress emulated puts).
ucs_status_t raw_wait(ucp_worker_h worker, void *req) {
  if (req == nullptr) return UCS_OK;
  if (UCS_PTR_IS_ERR(req)) return UCS_PTR_STATUS(req);
  ucs_status_t s;
  while ((s = ucp_request_check_status(req)) == UCS_INPROGRESS)
    if (ucp_worker_progress(worker) == 0) sched_yield();
  ucp_request_free(req);
  return s;
}

ucs_status_t raw_put_flush(labyrinth_ucx_peer *p, const void *src, size_t len, uint64_t addr) {
  ucp_request_param_t rp{};
  ucs_status_t s = raw_wait(p->worker, ucp_put_nbx(p->rma_ep, src, len, addr, p->rkey, &rp));
  return s != UCS_OK ? s : raw_wait(p->worker, ucp_ep_flush_nbx(p->rma_ep, &rp));
}

// argv: --peer-of HEX ACTION N ; ACTION: put (the put phase) | serve (lends
// until the node hangs up) | die (serve N then SIGKILL itself)
int run_peer(const char *hex, const std::string &action, long n) {
  std::vector<char> addr;
  for (const char *s = hex; s[0] && s[1]; s += 2) {
    unsigned v;
    std::sscanf(s, "%2x", &v);
    addr.push_back(static_cast<char>(v));
  }
  labyrinth_ucx_peer *p;
  if (labyrinth_ucx_peer_connect_address(addr.data(), addr.size(), 30000, &p)) return die("connect");
  static char rec[LABYRINTH_PAGE_SIZE];
  std::memset(rec, 0x42, sizeof rec);
  labyrinth_ucx_lent l;
  if (action == "put") {
    if (labyrinth_ucx_peer_next(p, 30000, &l)) return die("next");
    // Alternating rounds, best of each (the machine is shared): the first
    // warms up and is not counted.
    double raw = 1e30, lent = 1e30;
    for (int round = 0; round < 6; ++round) {
      double r = 0, m = 0;
      for (int side = 0; side < 2; ++side) {  // raw first in even rounds, lent first in odd
        const bool raw_now = (side == 0) == (round % 2 == 0);
        const double t0 = now_us();
        for (long i = 0; i < n; ++i)
          if (raw_now ? raw_put_flush(p, rec, sizeof rec, l.remote_addr) != UCS_OK
                      : labyrinth_ucx_peer_put(p, l.id, 0, rec, sizeof rec) != LABYRINTH_OK)
            return die("put");
        (raw_now ? r : m) = (now_us() - t0) / static_cast<double>(n);
      }
      if (round > 0) raw = std::min(raw, r), lent = std::min(lent, m);
    }
    std::printf("put   4 KiB put+flush, best of 5 rounds of %ld: raw UCX %.3f us, into a lent page "
                "%.3f us (ratio %.2f)\n",
                n, raw, lent, lent / raw);
    if (labyrinth_ucx_peer_return(p, l.id, 0)) return die("return");
  }
  for (long i = 0; action != "put" && (action == "serve" || i < n); ++i) {
    if (labyrinth_ucx_peer_next(p, 30000, &l)) break;  // the node hung up
    if (labyrinth_ucx_peer_put(p, l.id, 0, rec, sizeof rec)) return die("put");
    if (labyrinth_ucx_peer_return(p, l.id, 0)) return die("return");
  }
  if (action == "die") {
    labyrinth_ucx_peer_next(p, 30000, &l);  // one more lend, never returned
    raise(SIGKILL);
  }
  labyrinth_ucx_peer_destroy(p);
  return 0;
}

// ---- node side -------------------------------------------------------------

struct Node {
  labyrinth_ucx_node *node = nullptr;
  labyrinth_pool *pool = nullptr;
  std::string hex;
};

pid_t spawn_peer(const Node &nd, const char *action, long n) {
  std::string count = std::to_string(n);
  const char *argv[] = {"/proc/self/exe", "--peer-of", nd.hex.c_str(), action, count.c_str(), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char **>(argv), environ) != 0) return -1;
  return pid;
}

// Lend up to `window` pages at a time to `conn` until `total` came back or
// the connection died; frees what comes back. Returns the pages that came
// back.
long lend_cycle(Node &nd, labyrinth_ucx_conn conn, long total, long window, long *lost) {
  long sent = 0, back = 0, lent = 0;
  bool dead = false;
  labyrinth_ucx_returned_page r[64];
  while (back < total && !(dead && lent == 0)) {
    while (!dead && lent < window && sent < total) {
      void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(nd.pool);
      if (labyrinth_ucx_lend(nd.node, conn, page, LABYRINTH_UCX_LEND_WRITE) != LABYRINTH_OK) {
        labyrinth_free_pages(nd.pool, page);
        dead = true;  // connection lost
        break;
      }
      ++sent, ++lent;
    }
    labyrinth_ucx_progress(nd.node, 10, nullptr);
    size_t n = 0;
    labyrinth_ucx_returned(nd.node, r, 64, &n);
    for (size_t i = 0; i < n; ++i) {
      labyrinth_free_pages(nd.pool, r[i].page);
      --lent, ++back;
      if (r[i].how == LABYRINTH_UCX_RETURNED_PEER_LOST) ++*lost, dead = true;
    }
  }
  return back;
}

void wait_child(Node &nd, pid_t pid) {
  int ws;
  while (waitpid(pid, &ws, WNOHANG) == 0) labyrinth_ucx_progress(nd.node, 10, nullptr);
}

int put_phase(Node &nd, const Opts &o) {
  pid_t pid = spawn_peer(nd, "put", o.iters);
  labyrinth_ucx_conn conn;
  if (labyrinth_ucx_accept(nd.node, 30000, &conn)) return die("accept");
  long lost = 0;
  lend_cycle(nd, conn, 1, 1, &lost);  // the peer times its puts on this one
  wait_child(nd, pid);
  pid = spawn_peer(nd, "serve", 0);
  if (labyrinth_ucx_accept(nd.node, 30000, &conn)) return die("accept");
  lend_cycle(nd, conn, o.iters / 10, o.window, &lost);  // warm-up
  const double t0 = now_us();
  const long back = lend_cycle(nd, conn, o.iters, o.window, &lost);
  const double per = (now_us() - t0) / static_cast<double>(back);
  std::printf("cycle lend + put+flush + return, window %ld: %.2f us per record (%.0f records/s)\n",
              o.window, per, 1e6 / per);
  kill(pid, SIGTERM);
  wait_child(nd, pid);
  return 0;
}

int death_phase(Node &nd, const Opts &o) {
  labyrinth_ucx_stats before{};
  before.struct_size = sizeof before;
  labyrinth_ucx_node_stats(nd.node, &before);
  long lost = 0, killed = 0;
  const double t0 = now_us();
  for (long i = 0; i < o.peers; ++i) {
    const bool die_now = i % 100 == 50;
    pid_t pid = spawn_peer(nd, die_now ? "die" : "serve", o.lends / 2);
    labyrinth_ucx_conn conn;
    if (labyrinth_ucx_accept(nd.node, 30000, &conn)) return die("accept");
    lend_cycle(nd, conn, o.lends, o.window, &lost);
    if (die_now) ++killed;
    kill(pid, SIGTERM);
    wait_child(nd, pid);
  }
  labyrinth_ucx_stats s{};
  s.struct_size = sizeof s;
  labyrinth_ucx_node_stats(nd.node, &s);
  labyrinth_stats ps{};
  ps.struct_size = sizeof ps;
  labyrinth_pool_stats(nd.pool, &ps);
  std::printf("death %ld peers (%ld killed mid-lend) in %.1f s: %llu lends, %llu returned, %llu back "
              "by peer death, %llu lent now, %llu connections lost\n",
              o.peers, killed, (now_us() - t0) / 1e6,
              static_cast<unsigned long long>(s.lent_total - before.lent_total),
              static_cast<unsigned long long>(s.returned - before.returned),
              static_cast<unsigned long long>(s.returned_by_peer_death - before.returned_by_peer_death),
              static_cast<unsigned long long>(s.lent_now),
              static_cast<unsigned long long>(s.connections_lost - before.connections_lost));
  return 0;
}

int run_node(const Opts &o) {
  Node nd;
  if (labyrinth_ucx_node_create(0, &nd.node)) return die("node");
  labyrinth_arena_provider prov;
  labyrinth_ucx_arena_provider(nd.node, &prov);
  labyrinth_pool_options po;
  labyrinth_pool_options_init(&po);
  po.size_bytes = static_cast<size_t>(o.pool_mib) << 20;
  po.flags = 0;
  po.arena_provider = o.anon_arena ? nullptr : &prov;
  if (labyrinth_pool_create(&po, &nd.pool)) return die("pool");
  if (labyrinth_ucx_node_attach(nd.node, nd.pool)) return die("attach");
  labyrinth_ucx_stats s{};
  s.struct_size = sizeof s;
  labyrinth_ucx_node_stats(nd.node, &s);
  const char *tls = std::getenv("UCX_TLS");
  std::printf("arena %s, %ld MiB, UCX_TLS=%s; registration at attach %.1f us\n",
              o.anon_arena ? "anonymous (ucp_mem_map of it at attach)" : "UCX-allocated (UCP_MEM_MAP_ALLOCATE)",
              o.pool_mib, tls ? tls : "(default)", static_cast<double>(s.registration_ns) / 1e3);
  char addr[4096];
  size_t len = 0;
  labyrinth_ucx_node_address(nd.node, addr, sizeof addr, &len);
  for (size_t i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(addr[i]));
    nd.hex += b;
  }
  std::fflush(stdout);
  if (put_phase(nd, o) || (o.peers > 0 && death_phase(nd, o))) return 1;
  labyrinth_ucx_node_detach(nd.node);
  const labyrinth_status st = labyrinth_pool_destroy(nd.pool);
  std::printf("leaked: %s\n", st == LABYRINTH_OK ? "0 (the pool's destroy found no page allocated)"
                                                  : labyrinth_last_error_message());
  labyrinth_ucx_node_destroy(nd.node);
  return st != LABYRINTH_OK;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 5 && std::strcmp(argv[1], "--peer-of") == 0)
    return run_peer(argv[2], argv[3], std::atol(argv[4]));
  Opts o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const long v = i + 1 < argc ? std::atol(argv[i + 1]) : 0;
    if (a == "--anon-arena") o.anon_arena = true;
    else if (a == "--iters") o.iters = v, ++i;
    else if (a == "--window") o.window = v, ++i;
    else if (a == "--peers") o.peers = v, ++i;
    else if (a == "--lends") o.lends = v, ++i;
    else if (a == "--pool-mib") o.pool_mib = v, ++i;
    else return std::fprintf(stderr, "labyrinth_ucx_bench: unknown option %s\n", a.c_str()), 2;
  }
  return run_node(o);
}
