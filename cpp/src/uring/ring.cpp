// ring.cpp - labyrinth_ring: an io_uring driven by Labyrinth. Creation and
// teardown; submission is in submit.cpp, completions in complete.cpp, the
// provided-buffer ring in pbuf_ring.cpp, starved multishot receives in
// recv_multishot.cpp.
//
// Teardown: cancel every operation, wait for every CQE (so nothing the
// kernel may still write is reused), give app pages back to their owners,
// provided-buffer pages back to the pool.
//
// One thread at a time uses a ring; counters read by other threads
// (labyrinth_ring_get_stats, the registry's in-flight check) are atomics that
// only the ring's thread writes.
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "boundary.hpp"
#include "uring/ring_internal.hpp"

using namespace lab;
using uring::encode;
using uring::kKindCancel;
using uring::kKindOp;
using uring::kKindTag;

namespace lab {
namespace uring {
std::uint64_t ring_pages_inflight(const labyrinth_ring *r) { return r->pages_inflight.get(); }
void ring_set_registered(labyrinth_ring *r, bool on) { r->registered.store(on ? 1u : 0u); }
void ring_add_pinned(labyrinth_ring *r, std::uint32_t n) { r->buffers_pinned.fetch_add(n); }
std::uint64_t ring_buffer_tag(std::uint32_t i) { return encode(kKindTag, i); }

bool buffer_released(labyrinth_ring *r) {
  std::uint64_t v = r->buffers_pinned.load();
  while (v && !r->buffers_pinned.compare_exchange_weak(v, v - 1)) {
  }
  return false;
}

void prep_fixed(labyrinth_ring *r, io_uring_sqe *sqe, unsigned op, int fd, void *page,
                std::uint32_t len, std::uint64_t offset, std::uint16_t buf_index) {
  const bool read = op == LABYRINTH_OP_READ_FIXED;
  if (r->registered.load()) {
    if (read)
      io_uring_prep_read_fixed(sqe, fd, page, len, offset, buf_index);
    else
      io_uring_prep_write_fixed(sqe, fd, page, len, offset, buf_index);
    return;
  }
  if (read)
    io_uring_prep_read(sqe, fd, page, len, offset);
  else
    io_uring_prep_write(sqe, fd, page, len, offset);
  r->fallback_ops.add();
}

void buffer_stats(const labyrinth_ring *r, labyrinth_ring_stats *s) {
  s->register_fallback = r->register_fallback.load();
  s->buffers_pinned = static_cast<std::uint32_t>(r->buffers_pinned.load());
  s->fallback_ops = r->fallback_ops.get();
}

// A ring is usable while its pool is: not the parent's ring and pool in a
// forked child.
labyrinth_status enter_ring(const labyrinth_ring *r, const char *what) {
  if (!r) return set_error(LABYRINTH_ERR_INVALID, "%s: ring is NULL", what);
  return pool_usable(r->pool, what);
}
}  // namespace uring
}  // namespace lab

namespace {

std::uint32_t round_pow2(std::uint32_t v) {
  std::uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Cancel every live operation and wait for all of them; pages go back.
void teardown(labyrinth_ring *r) {
  if (!r->ring_ok) return;
  uring::recv_drop_parked(r);
  if (r->ops_inflight.get()) {
    for (std::uint32_t i = 0; i < r->ops.size(); ++i) {
      if (!r->ops[i].live) continue;
      io_uring_sqe *sqe = uring::get_sqe(&r->ring);
      if (!sqe) break;  // the kernel is saturated; the wait below still ends it
      io_uring_prep_cancel64(sqe, encode(kKindOp, i), 0);
      io_uring_sqe_set_data64(sqe, encode(kKindCancel, 0));
    }
    io_uring_submit(&r->ring);
  }
  io_uring_cqe *cqe = nullptr;
  while (r->ops_inflight.get()) {
    int ret = io_uring_wait_cqe(&r->ring, &cqe);
    if (ret == -EINTR) continue;
    if (ret < 0) {
      // Cannot wait (should not happen): resubmit the cancels and retry,
      // without spinning.
      io_uring_submit(&r->ring);
      usleep(1000);
      continue;
    }
    labyrinth_completion ignored;
    uring::handle_cqe(r, cqe, &ignored, true);
    io_uring_cqe_seen(&r->ring, cqe);
  }
  while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
    labyrinth_completion ignored;
    uring::handle_cqe(r, cqe, &ignored, true);
    io_uring_cqe_seen(&r->ring, cqe);
  }
  uring::pbuf_release_all(r);
  uring::bundle_release_all(r);
}

// After the arena's table is dropped with nothing in flight, the kernel
// releases every tagged buffer at once: take those tag CQEs, so that the
// pinning has ended (and RLIMIT_MEMLOCK's charge is returned) when destroy
// returns. Bounded, in case a kernel posts them late.
void await_buffer_tags(labyrinth_ring *r) {
  for (int tries = 0; r->ring_ok && r->buffers_pinned.load() && tries < 100; ++tries) {
    io_uring_cqe *cqe = nullptr;
    __kernel_timespec ts{0, 10 * 1000 * 1000};
    if (io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts) != 0) continue;
    labyrinth_completion ignored;
    uring::handle_cqe(r, cqe, &ignored, true);
    io_uring_cqe_seen(&r->ring, cqe);
  }
}

void free_ring(labyrinth_ring *r, bool held) {
  teardown(r);
  if (r->registered.load()) uring::unregister_arena(r->pool, r->ring.ring_fd, "labyrinth_ring_destroy", true);
  await_buffer_tags(r);
  uring::managed_ring_remove(r);
  if (r->ring_ok) io_uring_queue_exit(&r->ring);
  if (r->br) munmap(r->br, r->br_bytes);
  if (held) pool_unhold(r->pool);
  delete r;
}

// The options the caller gave (opts may be NULL), checked and defaulted.
labyrinth_status read_options(const labyrinth_ring_options *user_opts, labyrinth_ring_options *o,
                              const char *what) {
  labyrinth_ring_options_init(o);
  if (user_opts) {
    const std::size_t kMin = offsetof(labyrinth_ring_options, sq_entries) + sizeof(std::uint32_t);
    if (labyrinth_status st = check_struct_size(user_opts->struct_size, kMin, what, "opts",
                                                "initialise opts with labyrinth_ring_options_init()");
        st != LABYRINTH_OK)
      return st;
    copy_in(user_opts, o);
  }
  if (o->sq_entries == 0 || o->sq_entries > 32768)
    return set_error(LABYRINTH_ERR_INVALID, "%s: sq_entries %u is not within 1..32768", what,
                     o->sq_entries);
  if (o->pbuf_entries > 32768 || (o->pbuf_entries & (o->pbuf_entries - 1)))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: pbuf_entries %u must be 0 or a power of two up to 32768", what,
                     o->pbuf_entries);
  if (o->flags & ~std::uint32_t{LABYRINTH_RING_ALL_FLAGS})
    return set_error(LABYRINTH_ERR_INVALID, "%s: unknown flags 0x%x", what,
                     o->flags & ~std::uint32_t{LABYRINTH_RING_ALL_FLAGS});
  if (o->reserved0 != 0) return set_error(LABYRINTH_ERR_INVALID, "%s: reserved0 must be 0", what);
  const bool inc = o->flags & (LABYRINTH_RING_PBUF_INCREMENTAL |
                                LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE);
  if (inc && (o->pbuf_entries == 0 || (o->flags & LABYRINTH_RING_MANUAL_REFILL)))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: incremental consumption needs pbuf_entries > 0 and is not possible "
                     "with LABYRINTH_RING_MANUAL_REFILL",
                     what);
  if (o->pbuf_order > LABYRINTH_MAX_ORDER || (o->pbuf_order && !inc))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: pbuf_order %u must be 0, or up to %u with incremental consumption", what,
                     o->pbuf_order, unsigned{LABYRINTH_MAX_ORDER});
  if (o->max_datagram && (!inc || o->max_datagram > (std::uint32_t{LABYRINTH_PAGE_SIZE} << o->pbuf_order)))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: max_datagram %u needs incremental consumption and must not exceed the "
                     "block (%u bytes)",
                     what, o->max_datagram, unsigned{LABYRINTH_PAGE_SIZE} << o->pbuf_order);
  if (o->max_inflight == 0) o->max_inflight = 2 * o->sq_entries;
  if (o->max_inflight > 65536)
    return set_error(LABYRINTH_ERR_INVALID, "%s: max_inflight %u is above 65536", what,
                     o->max_inflight);
  return LABYRINTH_OK;
}

// Create r's io_uring. SUBMIT_ALL (5.18): an SQE failing at submission does
// not leave the ones behind it unsubmitted. COOP_TASKRUN (5.19): no
// interrupt per completion, the work runs when the thread next enters the
// kernel (or SINGLE_ISSUER|DEFER_TASKRUN, 6.1, with
// LABYRINTH_RING_SINGLE_THREAD). Each is dropped in turn if the kernel
// refuses it (EINVAL). Returns 0 or -errno.
int setup_io_uring(labyrinth_ring *r, const labyrinth_ring_options &o) {
  std::uint32_t want_cq = round_pow2(o.max_inflight + o.pbuf_entries);
  if (want_cq < 2 * round_pow2(o.sq_entries)) want_cq = 2 * round_pow2(o.sq_entries);
  const std::uint32_t base_flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  const std::uint32_t tries[] = {
      (o.flags & LABYRINTH_RING_SINGLE_THREAD)
          ? base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                IORING_SETUP_DEFER_TASKRUN
          : base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                IORING_SETUP_TASKRUN_FLAG,
      base_flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      base_flags | IORING_SETUP_SUBMIT_ALL,
      base_flags,
  };
  io_uring_params params{};
  int ret = -EINVAL;
  for (std::uint32_t f : tries) {
    params = io_uring_params{};
    params.flags = f;
    params.cq_entries = want_cq;
    ret = io_uring_queue_init_params(o.sq_entries, &r->ring, &params);
    if (ret != -EINVAL) break;
  }
  if (ret < 0) return ret;
  r->defer_taskrun = params.flags & IORING_SETUP_DEFER_TASKRUN;
  r->single_issuer = params.flags & IORING_SETUP_SINGLE_ISSUER;
  r->ring_ok = true;
  r->sq_entries = params.sq_entries;
  r->cq_entries = params.cq_entries;
  if (io_uring_probe *probe = io_uring_get_probe_ring(&r->ring)) {
    r->has_send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
  }
  r->has_bundle = params.features & uring::kFeatRecvsendBundle;
  return 0;
}

// Register the arena with a new ring. Where RLIMIT_MEMLOCK refuses it, the
// ring does its fixed I/O unregistered instead: said once per process on
// stderr, and counted in the ring's stats.
labyrinth_status register_or_fall_back(labyrinth_ring *r, const char *what) {
  bool memlock = false;
  uring::RegisterArgs args;
  args.managed = r;
  args.memlock_refused = &memlock;
  labyrinth_status st = uring::register_arena(r->pool, r->ring.ring_fd, args, what);
  if (st == LABYRINTH_OK || !memlock) return st;
  static std::atomic<bool> said{false};
  if (!said.exchange(true))
    std::fprintf(stderr,
                 "labyrinth: %s\nlabyrinth: labyrinth_ring falls back to unregistered fixed I/O "
                 "(labyrinth_ring_stats.register_fallback); said once per process\n",
                 labyrinth_last_error_message());
  r->register_fallback.store(1);
  labyrinth_clear_last_error();
  return LABYRINTH_OK;
}

// Three phases: an empty ring (options, io_uring), then what it holds
// (the arena's registration, the provided-buffer ring); one way out on error.
labyrinth_status ring_create(labyrinth_pool *pool, const labyrinth_ring_options *user_opts,
                             labyrinth_ring **out) {
  const char *what = "labyrinth_ring_create";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!out) return set_error(LABYRINTH_ERR_INVALID, "%s: out is NULL", what);
  labyrinth_ring_options o;
  if (labyrinth_status st = read_options(user_opts, &o, what); st != LABYRINTH_OK) return st;

  auto *r = new labyrinth_ring;
  r->pool = pool;
  r->flags = o.flags;
  r->creator = labyrinth_owner_self();
  r->ops.resize(o.max_inflight);
  r->free_ops.reserve(o.max_inflight);
  for (std::uint32_t i = o.max_inflight; i-- > 0;) r->free_ops.push_back(i);
  if (int ret = setup_io_uring(r, o); ret < 0) {
    delete r;
    return uring::explain_unavailable(-ret, what, "io_uring_setup");
  }
  pool_hold(pool);
  uring::managed_ring_add(r, r->ring.ring_fd, pool);

  labyrinth_status st = LABYRINTH_OK;
  if (!(o.flags & LABYRINTH_RING_NO_REGISTER)) st = register_or_fall_back(r, what);
  if (st == LABYRINTH_OK && o.pbuf_entries) st = uring::pbuf_setup(r, o, what);
  if (st != LABYRINTH_OK) {
    free_ring(r, true);
    return st;
  }
  *out = r;
  return LABYRINTH_OK;
}

}  // namespace

extern "C" {

LABYRINTH_API void labyrinth_ring_options_init(labyrinth_ring_options *opts) {
  if (!opts) return;
  std::memset(opts, 0, sizeof(*opts));
  opts->struct_size = sizeof(*opts);
  opts->sq_entries = 256;
  opts->max_inflight = 0;
  opts->pbuf_entries = 0;
  opts->pbuf_group = 0;
  opts->flags = 0;
}

LABYRINTH_API labyrinth_status labyrinth_ring_create(labyrinth_pool *pool,
                                                     const labyrinth_ring_options *opts,
                                                     labyrinth_ring **out) {
  return guarded("labyrinth_ring_create", [&] { return ring_create(pool, opts, out); });
}

LABYRINTH_API labyrinth_status labyrinth_ring_destroy(labyrinth_ring *ring) {
  const char *what = "labyrinth_ring_destroy";
  if (!ring) return LABYRINTH_OK;
  if (labyrinth_status st = uring::enter_ring(ring, what); st != LABYRINTH_OK) return st;
  if (ring->single_issuer && labyrinth_owner_self() != ring->creator)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the ring was created with LABYRINTH_RING_SINGLE_THREAD by another "
                     "thread; only that thread can wait for its pages (nothing was changed)",
                     what);
  if (std::uint64_t live = ring->slices_live.load())
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: %llu slices are still alive; release them with "
                     "labyrinth_ring_slice_release() first (nothing was changed)",
                     what, static_cast<unsigned long long>(live));
  return guarded(what, [&] {
    free_ring(ring, true);
    return LABYRINTH_OK;
  });
}

LABYRINTH_API int labyrinth_ring_fd(const labyrinth_ring *ring) {
  return ring ? ring->ring.ring_fd : -1;
}
}  // extern "C"
