// xdp_internal.hpp - AF_XDP over a pool (labyrinth_xdp.h): the UMEM and
// socket objects shared by umem.cpp (registration, error messages),
// socket.cpp (bind, teardown) and datapath.cpp (receive, transmit).
//
// Invariants:
//  - frame_owner[i] says who holds frame i (the page at base + i * 4096) in
//    the kernel: 0 nobody (the page is the pool's or a thread's), a socket's
//    slot (1..kMaxSockets) for a page on its FILL ring or received but not
//    yet taken, slot | kTxBit for a page queued on its TX ring, kParkedRx /
//    kParkedTx for such pages of a destroyed socket that was bound on the
//    UMEM's own fd (libxdp keeps that fd, so the kernel may still hold
//    them until the fd closes, with the last socket). A frame is nonzero
//    exactly while the pool marks its page in flight
//    (page_begin_io .. page_end_io / page_release_from_io).
//  - Entry i is written only by the thread using the socket that holds
//    frame i (or, for 0 -> slot, by the one giving it to the kernel);
//    teardown scans every entry while other sockets' threads write theirs,
//    so entries are relaxed atomics (the page's hand-over is ordered by the
//    pool's own state and the rings' barriers). Socket create/destroy take
//    Umem::mutex.
#pragma once

#include <xdp/xsk.h>

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "labyrinth/labyrinth_xdp.h"

namespace lab {
namespace xdp {

constexpr unsigned kMaxSockets = 64;
constexpr std::uint8_t kTxBit = 0x80;
constexpr std::uint8_t kParkedRx = 0x7E;
constexpr std::uint8_t kParkedTx = 0x7F;
// FILL and COMPLETION ring entries of the UMEM's own fd, which serve its
// first socket (the largest ring_size a socket may ask for).
constexpr std::uint32_t kUmemRingSize = 32768;

// frame_owner: one relaxed-atomic byte per frame of the arena.
class FrameMarks {
 public:
  void reset(std::size_t n) {
    marks_.reset(new std::atomic<std::uint8_t>[n]());
    n_ = n;
  }
  std::size_t size() const { return n_; }
  std::uint8_t get(std::size_t i) const { return marks_[i].load(std::memory_order_relaxed); }
  void set(std::size_t i, std::uint8_t v) { marks_[i].store(v, std::memory_order_relaxed); }

 private:
  std::unique_ptr<std::atomic<std::uint8_t>[]> marks_;
  std::size_t n_ = 0;
};

}  // namespace xdp
}  // namespace lab

struct labyrinth_xdp_umem {
  labyrinth_pool *pool = nullptr;
  std::uintptr_t base = 0;
  std::size_t size = 0;
  xsk_umem *umem = nullptr;  // null between a last socket and the next
  xsk_ring_prod fill_save{};  // libxdp's rings of the UMEM's own fd; libxdp
  xsk_ring_cons comp_save{};  // keeps pointers to these two until the end
  bool own_fd_bound = false;  // a socket was bound on the UMEM's own fd
  lab::xdp::FrameMarks frame_owner;  // see the invariants above
  labyrinth_xdp_socket *slots[lab::xdp::kMaxSockets] = {};
  std::mutex mutex;  // slots, socket create/destroy
};

struct labyrinth_xdp_socket {
  labyrinth_xdp_umem *umem = nullptr;
  std::uint8_t slot = 0;  // 1..kMaxSockets
  int ifindex = 0;
  std::uint32_t queue = 0;
  std::uint32_t fill_target = 0;
  bool on_umem_fd = false;  // bound on the UMEM's own fd (its first socket)
  xsk_socket *xsk = nullptr;
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  int fd = -1;
  labyrinth_xdp_socket_info info{};  // counters; struct_size = sizeof
};

namespace lab {
namespace xdp {

// Why creating an AF_XDP object failed (err: a positive errno), as a
// status and message for this thread: UNSUPPORTED for a kernel without
// AF_XDP or a caller without the capabilities, NOMEM for RLIMIT_MEMLOCK,
// SYSTEM otherwise. Not async-signal-safe (reads the limit).
labyrinth_status explain_failure(int err, const char *what, const char *step, std::size_t bytes);

// Frame index of the page holding UMEM address `addr`.
inline std::size_t frame_of(std::uint64_t addr) {
  return static_cast<std::size_t>(addr / LABYRINTH_XDP_FRAME_BYTES);
}

// Register the arena with the kernel (xsk_umem__create): OK, or the
// failure explained for `what`. May block.
labyrinth_status register_arena(labyrinth_xdp_umem *u, const char *what);

// Give every frame the socket holds back: FILL/RX pages to the pool, TX
// pages to their owners; with `park`, mark them parked instead (see the
// invariants). Only after the socket is closed. May block.
void return_frames(labyrinth_xdp_socket *s, bool park);

// Close the UMEM's registration (its own fd; no socket may remain) and give
// back the parked frames. u->umem becomes null. May block.
void close_registration(labyrinth_xdp_umem *u);

}  // namespace xdp
}  // namespace lab
