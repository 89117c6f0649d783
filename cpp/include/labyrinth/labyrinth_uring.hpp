// labyrinth_uring.hpp - a thin C++17 layer over labyrinth_uring.h.
//
//   labyrinth::Pool pool(labyrinth::PoolOptions{}.size(64 << 20));
//   labyrinth::Ring ring(pool.get(), labyrinth::RingOptions{}.pbuf_entries(256));
//   ring.recv_multishot(fd, 0, /*user_data=*/1);            // throws on error
//   labyrinth_completion c[32];
//   for (std::size_t i = 0, n = ring.complete(c, 32, 1); i < n; ++i) {
//     labyrinth::Page page(pool.get(), c[i].page);          // ours now: freed at scope end
//   }
//
// Ownership is that of the C API: a page passed to a submission is the
// kernel's until a completion hands it back (see labyrinth_uring.h). Calls
// that set things up throw labyrinth::Error; submissions return the status
// (they are on the hot path) and never throw.
//
// Lifetimes: like ~Pool, ~Ring (and a move-assignment over a Ring) destroys
// the ring only when it can; while slices are alive (incremental
// consumption) it writes a line to stderr naming the ring and keeps it, so
// that every slice stays valid and can still be released through the
// handle (from get() or release()); labyrinth_ring_destroy() on it then
// finishes the job. Ring::destroy() refuses instead (throws BUSY) and keeps
// the ring usable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "labyrinth/labyrinth.hpp"
#include "labyrinth/labyrinth_uring.h"

namespace labyrinth {

/// Register a pool's arena with an application's io_uring (throws Error).
inline void register_io_uring(labyrinth_pool *pool, int ring_fd) {
  check(labyrinth_pool_register_io_uring(pool, ring_fd));
}
/// Undo register_io_uring (throws Error, e.g. BUSY while pages are in flight).
inline void unregister_io_uring(labyrinth_pool *pool, int ring_fd) {
  check(labyrinth_pool_unregister_io_uring(pool, ring_fd));
}
/// The fixed-buffer index of a page of the pool (throws Error if foreign).
inline std::uint16_t buf_index(const labyrinth_pool *pool, const void *page) {
  std::uint16_t idx = 0;
  check(labyrinth_page_buf_index(pool, page, &idx));
  return idx;
}

/// Builder over labyrinth_ring_options, defaults from labyrinth_ring_options_init.
class RingOptions {
 public:
  RingOptions() noexcept { labyrinth_ring_options_init(&opts_); }
  RingOptions &sq_entries(std::uint32_t n) noexcept { opts_.sq_entries = n; return *this; }
  RingOptions &max_inflight(std::uint32_t n) noexcept { opts_.max_inflight = n; return *this; }
  RingOptions &pbuf_entries(std::uint32_t n) noexcept { opts_.pbuf_entries = n; return *this; }
  RingOptions &pbuf_group(std::uint16_t g) noexcept { opts_.pbuf_group = g; return *this; }
  RingOptions &flags(std::uint32_t f) noexcept { opts_.flags = f; return *this; }
  RingOptions &pbuf_order(std::uint32_t o) noexcept { opts_.pbuf_order = o; return *this; }
  const labyrinth_ring_options &c() const noexcept { return opts_; }

 private:
  labyrinth_ring_options opts_;
};

/// A managed ring, destroyed (cancel, wait, return pages) with the object.
/// Move-only; one thread at a time, like the C handle.
class Ring {
 public:
  Ring(labyrinth_pool *pool, const RingOptions &opts = RingOptions{}) {
    check(labyrinth_ring_create(pool, &opts.c(), &ring_));
  }
  /// Destroys the ring; with slices still alive, says so on stderr and keeps it.
  ~Ring() { destroy_or_keep(ring_); }
  Ring(Ring &&o) noexcept : ring_(std::exchange(o.ring_, nullptr)) {}
  Ring &operator=(Ring &&o) noexcept {
    if (this != &o) {
      destroy_or_keep(ring_);
      ring_ = std::exchange(o.ring_, nullptr);
    }
    return *this;
  }
  /// Destroy now (throws Error: BUSY while slices are alive; the ring is
  /// then kept and stays usable). Afterwards this object is empty.
  void destroy() {
    check(labyrinth_ring_destroy(ring_));
    ring_ = nullptr;
  }
  /// Give up ownership: the caller destroys the handle with labyrinth_ring_destroy().
  labyrinth_ring *release() noexcept { return std::exchange(ring_, nullptr); }
  Ring(const Ring &) = delete;
  Ring &operator=(const Ring &) = delete;

  labyrinth_ring *get() const noexcept { return ring_; }
  int fd() const noexcept { return labyrinth_ring_fd(ring_); }

  labyrinth_status read_fixed(int fd, void *page, std::uint32_t len, std::uint64_t off,
                              std::uint64_t user_data) noexcept {
    return labyrinth_ring_read_fixed(ring_, fd, page, len, off, user_data);
  }
  labyrinth_status write_fixed(int fd, void *page, std::uint32_t len, std::uint64_t off,
                               std::uint64_t user_data) noexcept {
    return labyrinth_ring_write_fixed(ring_, fd, page, len, off, user_data);
  }
  labyrinth_status send(int fd, void *page, std::uint32_t len, int flags, std::uint64_t ud) noexcept {
    return labyrinth_ring_send(ring_, fd, page, len, flags, ud);
  }
  labyrinth_status recv(int fd, void *page, std::uint32_t len, int flags, std::uint64_t ud) noexcept {
    return labyrinth_ring_recv(ring_, fd, page, len, flags, ud);
  }
  labyrinth_status send_zc(int fd, void *page, std::uint32_t len, int flags, std::uint64_t ud) noexcept {
    return labyrinth_ring_send_zc(ring_, fd, page, len, flags, ud);
  }
  /// Arm a multishot receive (throws Error).
  void recv_multishot(int fd, int flags, std::uint64_t user_data) {
    check(labyrinth_ring_recv_multishot(ring_, fd, flags, user_data));
  }
  // Bundles (labyrinth_uring_bundle.h, Linux 6.10): throw like recv_multishot.
  void recv_bundle(int fd, int flags, std::uint32_t bundle_flags, std::uint64_t user_data) {
    check(labyrinth_ring_recv_bundle(ring_, fd, flags, bundle_flags, user_data));
  }
  labyrinth_status send_bundle(int fd, void *const *pages, const std::uint32_t *lens,
                               std::size_t count, int flags, std::uint64_t ud) noexcept {
    return labyrinth_ring_send_bundle(ring_, fd, pages, lens, count, flags, ud);
  }
  labyrinth_status cancel(std::uint64_t user_data) noexcept {
    return labyrinth_ring_cancel(ring_, user_data);
  }
  labyrinth_status provide(void *page) noexcept { return labyrinth_ring_provide(ring_, page); }
  /// Release the slice of a completion this thread took (incremental
  /// consumption); a stale or second release is refused (DOUBLE_FREE).
  labyrinth_status slice_release(const labyrinth_completion &c) noexcept {
    return labyrinth_ring_slice_release_gen(ring_, c.page, c.slice_gen);
  }
  labyrinth_status slice_transfer(const labyrinth_completion &c, labyrinth_owner to) noexcept {
    return labyrinth_ring_slice_transfer_gen(ring_, c.page, c.slice_gen, to);
  }
  /// By address only: cannot tell a stale pointer from a newer slice there.
  labyrinth_status slice_release(void *slice) noexcept {
    return labyrinth_ring_slice_release(ring_, slice);
  }
  labyrinth_status slice_transfer(void *slice, labyrinth_owner to) noexcept {
    return labyrinth_ring_slice_transfer(ring_, slice, to);
  }
  /// Take up to max completions, waiting for wait_nr of them (throws Error).
  std::size_t complete(labyrinth_completion *out, std::size_t max, std::size_t wait_nr = 0,
                       std::uint32_t timeout_ms = LABYRINTH_TIMEOUT_INFINITE) {
    std::size_t n = 0;
    check(labyrinth_ring_complete(ring_, out, max, wait_nr, timeout_ms, &n));
    return n;
  }
  labyrinth_ring_stats stats() const {
    labyrinth_ring_stats s{};
    s.struct_size = sizeof(s);
    check(labyrinth_ring_get_stats(ring_, &s));
    return s;
  }

 private:
  // Destroy `ring`; if slices keep it (BUSY), tell stderr and keep it. The
  // other refusals (a forked child, another thread for a SINGLE_THREAD
  // ring) keep it as well and say so.
  static void destroy_or_keep(labyrinth_ring *ring) noexcept {
    if (!ring || labyrinth_ring_destroy(ring) == LABYRINTH_OK) return;
    std::fprintf(stderr,
                 "labyrinth::Ring: ring %p not destroyed (%s); it is kept so that its slices "
                 "stay valid: release them, then call labyrinth_ring_destroy(%p)\n",
                 static_cast<void *>(ring), labyrinth_last_error_message(),
                 static_cast<void *>(ring));
  }

  labyrinth_ring *ring_ = nullptr;
};

}  // namespace labyrinth
