// common.cpp - what the node and the peer share: messages, the UCP context
// and worker, waiting for requests, sending active messages.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "private_abi.h"
#include "ucx/ucx_internal.hpp"

namespace lab {
namespace ucx {

labyrinth_status fail(labyrinth_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  labyrinth_status st = lab_private_set_error_va(status, fmt, ap);
  va_end(ap);
  return st;
}

labyrinth_status fail_ucx(const char *what, const char *step, ucs_status_t s) {
  return fail(LABYRINTH_ERR_SYSTEM, "%s: %s failed: %s (UCX status %d)", what, step,
              ucs_status_string(s), static_cast<int>(s));
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

bool boot_id(char (&out)[40]) {
  std::memset(out, 0, sizeof out);
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, out, sizeof out - 1);
  close(fd);
  return n > 0;
}

bool shared_memory_enabled() {
  const char *tls = std::getenv("UCX_TLS");
  if (!tls || !*tls) return true;  // UCX's default: all
  const bool negated = tls[0] == '^';
  bool named = false;
  for (const char *t : {"all", "sm", "shm", "posix", "sysv", "cma", "xpmem", "knem"}) {
    const std::size_t len = std::strlen(t);
    for (const char *p = tls + negated; (p = std::strstr(p, t)) != nullptr; p += len)
      if ((p == tls + negated || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
        named = true;
  }
  return negated ? !named : named;
}

ucs_status_t open_worker(ucp_context_h *ctx, ucp_worker_h *worker) {
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP;
  ucs_status_t s = ucp_init(&params, nullptr, ctx);
  if (s != UCS_OK) return s;
  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  s = ucp_worker_create(*ctx, &wp, worker);
  if (s != UCS_OK) {
    ucp_cleanup(*ctx);
    *ctx = nullptr;
  }
  return s;
}

unsigned progress_or_arm(ucp_worker_h worker) {
  unsigned n = 0;
  for (int i = 0; i < kSpins && n == 0; ++i) n = ucp_worker_progress(worker);
  if (n) return n;
  ucs_status_t s = ucp_worker_arm(worker);
  if (s == UCS_ERR_BUSY) return 1;  // events came meanwhile: progress again
  return s == UCS_OK ? 0 : 1;
}

void sleep_on(ucp_worker_h worker, int timeout_ms) {
  int fd = -1;
  if (ucp_worker_get_efd(worker, &fd) != UCS_OK) {
    sched_yield();
    return;
  }
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, timeout_ms);
}

unsigned progress_or_sleep(ucp_worker_h worker, int timeout_ms) {
  unsigned n = progress_or_arm(worker);
  if (n == 0 && timeout_ms != 0) sleep_on(worker, timeout_ms);
  return n;
}

ucs_status_t wait_request(ucp_worker_h worker, void *request) {
  if (request == nullptr) return UCS_OK;
  if (UCS_PTR_IS_ERR(request)) return UCS_PTR_STATUS(request);
  ucs_status_t s;
  // Spins, yielding the CPU: the worker's event fd tells of arrivals, not
  // of a send's completion, so sleeping on it would stall sends.
  while ((s = ucp_request_check_status(request)) == UCS_INPROGRESS)
    if (ucp_worker_progress(worker) == 0) sched_yield();
  ucp_request_free(request);
  return s;
}

ucs_status_t send_am(ucp_worker_h worker, ucp_ep_h ep, unsigned id, const void *header,
                     std::size_t header_len, const void *data, std::size_t data_len) {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  p.flags = UCP_AM_SEND_FLAG_EAGER;
  return wait_request(worker, ucp_am_send_nbx(ep, id, header, header_len, data, data_len, &p));
}

void close_ep(ucp_worker_h worker, ucp_ep_h ep, bool force) {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  p.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
  void *req = ucp_ep_close_nbx(ep, &p);
  if (req == nullptr || UCS_PTR_IS_ERR(req)) return;
  // A graceful close waits for the remote side; one that stopped
  // progressing must not hang us: after 2 s the request is left to UCX
  // (ucp_request_free releases it when it completes or the worker goes).
  const std::uint64_t deadline = now_ns() + 2000000000ull;
  while (ucp_request_check_status(req) == UCS_INPROGRESS && now_ns() < deadline)
    progress_or_sleep(worker, 10);
  ucp_request_free(req);
}

ucs_status_t set_am_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb,
                            void *arg) {
  ucp_am_handler_param_t hp{};
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                  UCP_AM_HANDLER_PARAM_FIELD_ARG;
  hp.id = id;
  hp.cb = cb;
  hp.arg = arg;
  return ucp_worker_set_am_recv_handler(worker, &hp);
}

}  // namespace ucx
}  // namespace lab
