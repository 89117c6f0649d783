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
#pragma once

#include <cstddef>
#include <cstdint>
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
  ~Ring() { labyrinth_ring_destroy(ring_); }
  Ring(Ring &&o) noexcept : ring_(std::exchange(o.ring_, nullptr)) {}
  Ring &operator=(Ring &&o) noexcept {
    if (this != &o) {
      labyrinth_ring_destroy(ring_);
      ring_ = std::exchange(o.ring_, nullptr);
    }
    return *this;
  }
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
  /// Release a slice this thread owns (incremental consumption).
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
  labyrinth_ring *ring_ = nullptr;
};

}  // namespace labyrinth
