// ucx_internal.hpp - the objects behind labyrinth_ucx.h and the wire format
// between a node and its peers.
//
// Wire format: four active messages, each a fixed header (below) and, for
// HELLO and LEND, data. All fields are in the sender's byte order: node and
// peer run the same release on little-endian hosts.
//   HELLO   peer -> node  a peer that connected by worker address; data: the
//                         peer's worker address, so that the node makes its
//                         own endpoint to it (with an error handler); the
//                         header names the peer's host
//   WELCOME node -> peer  the connection's id; data: the node's worker
//                         address, for the peer's RMA endpoint
//   LEND    node -> peer  a lend; data: the arena's packed rkey when the
//                         peer's copy is of another generation, else none
//   RETURN  peer -> node  a lend given back, with the peer's word
//
// Endpoints: the node's endpoint to a peer, and the peer's control
// endpoint to the node, carry the active messages with
// UCP_ERR_HANDLING_MODE_PEER: their error handler is how either side learns
// that the other died. UCX 1.13 does not offer that mode over shared memory
// (posix, sysv, cma: "Destination is unreachable"), so such endpoints ride
// on tcp (or RDMA). A peer on the node's host, where UCX may use shared
// memory, puts, gets and returns over a second endpoint, its RMA endpoint,
// made without error handling so that UCX picks shared memory, and the node
// sends it lends the same way (Conn::am_ep, for peers that connected by
// address); a death on either side is still noticed on the control
// endpoints. Elsewhere (another host, or
// shared memory not among UCX_TLS) the control endpoint carries the puts
// and gets too: a second tcp endpoint between the same workers, without
// error handling, makes UCX 1.13 fail an assertion when the peer dies.
//
// Locking: Node::mutex guards the node's worker and every field below it;
// UCX callbacks run inside ucp_worker_progress, called with the mutex held,
// so they never lock it. A peer is used by one thread at a time.
#pragma once

#include <ucp/api/ucp.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "labyrinth/labyrinth_ucx.h"

namespace lab {
namespace ucx {

constexpr std::uint32_t kMagic = 0x4c55u;  // "UL"
enum AmId : unsigned { kAmHello = 0x4c01, kAmWelcome, kAmLend, kAmReturn };

struct HelloMsg {
  std::uint32_t magic;
  std::uint32_t reserved;
  char boot_id[40];  // the peer's host (boot_id)
};
struct WelcomeMsg {
  std::uint32_t magic;
  std::uint32_t reserved;
  std::uint64_t conn;
  char boot_id[40];  // the node's host (boot_id), to tell a peer on the same host
};
struct LendMsg {
  std::uint32_t magic;
  std::uint32_t mode;
  std::uint64_t conn;
  std::uint64_t id;
  std::uint64_t addr;
  std::uint64_t length;
  std::uint64_t rkey_gen;  // the generation of the rkey (data, when sent)
};
struct ReturnMsg {
  std::uint32_t magic;
  std::uint32_t reserved;
  std::uint64_t conn;
  std::uint64_t id;
  std::uint64_t value;
};

// The thread's status and message (the core's set_error format subset).
labyrinth_status fail(labyrinth_status status, const char *fmt, ...);
// SYSTEM naming `what`, the UCX step and UCX's own message.
labyrinth_status fail_ucx(const char *what, const char *step, ucs_status_t s);

// A UCP context with active messages and RMA, and one worker on it.
ucs_status_t open_worker(ucp_context_h *ctx, ucp_worker_h *worker);
// Waiting: spin kSpins progress calls, then sleep on the worker's event fd
// (UCP_FEATURE_WAKEUP), so that a waiting side gives its CPU to the side it
// waits for. progress_or_arm: the events progressed, or 0 with the worker
// armed (sleep_on may then sleep until an event or timeout_ms).
// progress_or_sleep: both, without a lock in between (the peer's side).
constexpr int kSpins = 64;
unsigned progress_or_arm(ucp_worker_h worker);
void sleep_on(ucp_worker_h worker, int timeout_ms);
unsigned progress_or_sleep(ucp_worker_h worker, int timeout_ms);
// Wait for a UCX request (NULL: done at once), progressing `worker`
// (spinning, yielding the CPU).
ucs_status_t wait_request(ucp_worker_h worker, void *request);
// Send one active message and wait until UCX has taken it.
ucs_status_t send_am(ucp_worker_h worker, ucp_ep_h ep, unsigned id, const void *header,
                     std::size_t header_len, const void *data, std::size_t data_len);
// Close an endpoint (forcibly for a failed one) and wait for it.
void close_ep(ucp_worker_h worker, ucp_ep_h ep, bool force);
// Register a handler for active message `id` on `worker`.
ucs_status_t set_am_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb, void *arg);
std::uint64_t now_ns();
// This host's boot_id (/proc/sys/kernel/random/boot_id), NUL-padded.
bool boot_id(char (&out)[40]);
// Whether UCX_TLS lets UCX use shared memory (posix, sysv, cma, or all).
bool shared_memory_enabled();

}  // namespace ucx
}  // namespace lab

struct labyrinth_ucx_node;

namespace lab {
namespace ucx {

struct Conn {
  labyrinth_ucx_conn id = 0;
  ucp_ep_h ep = nullptr;     // control: error handling (tcp, RDMA)
  ucp_ep_h am_ep = nullptr;  // lends, to a peer on this host: shared memory
  bool alive = true;
  std::uint64_t rkey_gen_sent = 0;  // the rkey generation this peer holds
  labyrinth_ucx_node *node = nullptr;
};

struct Lend {
  void *page;
  labyrinth_ucx_conn conn;
};

// Work that UCX callbacks leave for the node's progress (they may not make
// or close endpoints themselves).
struct Pending {
  std::vector<ucp_conn_request_h> requests;
  struct Hello {
    std::vector<char> address;  // the peer's worker address
    bool same_host;
  };
  std::vector<Hello> hellos;
  std::vector<Conn *> lost;
};

// Node calls that need the node's mutex held (node.cpp, lend.cpp).
void node_progress_locked(labyrinth_ucx_node *n, unsigned *events);
// Progress the node (locks it); with nothing to do, sleep up to timeout_ms
// on the worker's event fd (unlocked). Returns the events progressed.
unsigned node_wait(labyrinth_ucx_node *n, int timeout_ms);
void conn_lost_locked(labyrinth_ucx_node *n, Conn *c);
ucs_status_t node_register_handlers(labyrinth_ucx_node *n);
ucs_status_t lend_register_handlers(labyrinth_ucx_node *n);

}  // namespace ucx
}  // namespace lab

struct labyrinth_ucx_node {
  std::mutex mutex;
  ucp_context_h ctx = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_listener_h listener = nullptr;
  std::vector<char> address;  // the worker's address
  std::thread progress_thread;
  std::atomic<bool> stopping{false};

  // Pool attachment (arena.cpp).
  labyrinth_pool *pool = nullptr;
  labyrinth_listener *subscription = nullptr;
  ucp_mem_h memh = nullptr;          // the attached arena's registration
  bool memh_owned = false;           // made at attach (not the provider's)
  void *rkey_buf = nullptr;          // packed rkey of memh
  std::size_t rkey_len = 0;
  std::uint64_t rkey_gen = 0;
  // The arena this node's provider allocated (one at a time).
  ucp_mem_h provided_memh = nullptr;
  void *provided_base = nullptr;
  std::size_t provided_size = 0;

  // Connections and lends (node.cpp, lend.cpp).
  std::map<labyrinth_ucx_conn, lab::ucx::Conn *> conns;
  std::deque<labyrinth_ucx_conn> accepted;  // not yet handed to accept()
  labyrinth_ucx_conn next_conn = 1;
  std::unordered_map<std::uint64_t, lab::ucx::Lend> lends;
  std::uint64_t next_lend = 1;
  std::deque<labyrinth_ucx_returned_page> returned;
  lab::ucx::Pending pending;
  labyrinth_ucx_stats stats{};
};

struct labyrinth_ucx_peer {
  ucp_context_h ctx = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_ep_h ep = nullptr;      // control: HELLO, RETURN; error handling
  ucp_ep_h rma_ep = nullptr;  // puts and gets; no error handling
  bool alive = true;
  labyrinth_ucx_conn conn = 0;  // 0 until WELCOME
  std::vector<char> node_address;  // from WELCOME
  bool same_host = false;          // from WELCOME
  ucp_rkey_h rkey = nullptr;
  std::uint64_t rkey_gen = 0;
  std::vector<char> rkey_pending;  // packed rkey received, not yet unpacked
  std::uint64_t rkey_pending_gen = 0;
  std::deque<labyrinth_ucx_lent> incoming;  // not yet handed to next()
  std::unordered_map<std::uint64_t, labyrinth_ucx_lent> held;
};
