// ucx_test_util.hpp - what the UCX tests and their peer helper share: the
// record a peer writes, a checksum, hex for the worker address, and
// starting the helper as a process of its own (posix_spawn: the pool's
// arena is MADV_DONTFORK, and UCX is not fork-safe).
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "labyrinth/labyrinth_ucx.h"

extern char **environ;

namespace ucx_test {

// Every 8-byte word of the block: id * 0x9E3779B97F4A7C15 + word index.
inline void fill_record(void *block, std::size_t len, std::uint64_t id) {
  auto *w = static_cast<std::uint64_t *>(block);
  for (std::size_t i = 0; i < len / 8; ++i) w[i] = id * 0x9E3779B97F4A7C15ull + i;
}
inline bool is_record(const void *block, std::size_t len, std::uint64_t id) {
  std::vector<char> want(len);
  fill_record(want.data(), len, id);
  return std::memcmp(want.data(), block, len) == 0;
}
inline std::uint64_t checksum(const void *block, std::size_t len) {
  const auto *b = static_cast<const unsigned char *>(block);
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < len; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

inline std::string to_hex(const void *data, std::size_t len) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < len; ++i) {
    const unsigned char c = static_cast<const unsigned char *>(data)[i];
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}
inline std::vector<char> from_hex(const char *s) {
  std::vector<char> out;
  auto val = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (; s[0] && s[1]; s += 2) out.push_back(static_cast<char>(val(s[0]) * 16 + val(s[1])));
  return out;
}

// Up to n blocks that came back to `node`, waiting up to 20 s for them.
inline std::vector<labyrinth_ucx_returned_page> wait_returned(labyrinth_ucx_node *node, size_t n) {
  std::vector<labyrinth_ucx_returned_page> got(n);
  size_t have = 0;
  for (int ms = 0; have < n && ms < 20000; ++ms) {
    size_t k = 0;
    if (labyrinth_ucx_returned(node, got.data() + have, n - have, &k) != LABYRINTH_OK) break;
    have += k;
    if (have < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  got.resize(have);
  return got;
}

// A peer in this process connected to `node` by its worker address, and
// its connection id on the node (which must progress on its own thread).
inline labyrinth_status connect_here(labyrinth_ucx_node *node, labyrinth_ucx_peer **peer,
                                     labyrinth_ucx_conn *conn) {
  char addr[4096];
  size_t len = 0;
  labyrinth_status st = labyrinth_ucx_node_address(node, addr, sizeof addr, &len);
  if (st == LABYRINTH_OK) st = labyrinth_ucx_peer_connect_address(addr, len, 10000, peer);
  if (st == LABYRINTH_OK) st = labyrinth_ucx_accept(node, 10000, conn);
  return st;
}

// A helper process; its stdout is readable at `out`.
struct Child {
  pid_t pid = -1;
  FILE *out = nullptr;
  // Wait for it; its exit status, or 128 + signal.
  int wait() {
    int ws = 0;
    if (pid > 0) waitpid(pid, &ws, 0);
    pid = -1;
    if (out) fclose(out);
    out = nullptr;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  }
  void kill_now() {
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  ~Child() {
    kill_now();
    wait();
  }
};

inline bool spawn(const std::vector<std::string> &args, Child *c) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<char *> argv;
  for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  int rc = posix_spawn(&c->pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    c->pid = -1;
    return false;
  }
  c->out = fdopen(fds[0], "r");
  return true;
}

}  // namespace ucx_test
