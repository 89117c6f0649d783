// ring_internal.hpp - the managed ring's state, shared by ring.cpp (creation,
// teardown), submit.cpp, complete.cpp, pbuf_ring.cpp (the provided-buffer
// ring) and recv_multishot.cpp (re-arming a multishot receive that the
// provided-buffer ring starved). Not installed.
//
// Words used here:
//  - op slot: an entry of labyrinth_ring::ops; its index travels in the
//    SQE's user_data (encode(kKindOp, idx)).
//  - block: what one entry of the provided-buffer ring points at: a page,
//    or with incremental consumption 2^pbuf_order pages.
//  - slice: with incremental consumption, the bytes one receive put into a
//    block, handed to the application (labyrinth_ring_slice_release).
//  - starved receive: a multishot receive the kernel ended with -ENOBUFS
//    because the provided-buffer ring was empty. Its op slot stays live (the
//    application's user_data keeps naming it) but the kernel holds nothing
//    for it; it is re-armed on the same slot once the buffer ring has pages.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "uring/uring_internal.hpp"

namespace lab {
namespace uring {

// Kernel uapi (include/uapi/linux/io_uring.h) newer than liburing 2.3:
// incremental consumption of provided buffers, Linux 6.12.
// io_uring_buf_reg.flags (liburing 2.3 calls the field `pad`):
constexpr std::uint16_t kPbufRingInc = 2;  // IOU_PBUF_RING_INC
// CQE flag: the kernel keeps filling the buffer this CQE names.
constexpr std::uint32_t kCqeBufMore = 1u << 4;  // IORING_CQE_F_BUF_MORE
// io_uring_buf_reg as the uapi has it since min_left (Linux 7.1, also in
// the 6.12 and 6.18 stable series): an incremental buffer with less than
// min_left bytes left is retired, so no receive starts in it. Kernels
// without it refuse a nonzero min_left (it lies in their resv) with EINVAL.
struct BufRegMinLeft {
  std::uint64_t ring_addr;
  std::uint32_t ring_entries;
  std::uint16_t bgid;
  std::uint16_t flags;
  std::uint32_t min_left;
  std::uint32_t resv[5];
};
static_assert(sizeof(BufRegMinLeft) == sizeof(io_uring_buf_reg), "io_uring_buf_reg layout");

constexpr std::uint64_t kKindOp = 1, kKindCancel = 2, kKindNop = 3;
// The kernel's release of a tagged fixed buffer (registry.cpp, rsrc.cpp).
constexpr std::uint64_t kKindTag = 4;
constexpr unsigned kKindShift = 56;

inline std::uint64_t encode(std::uint64_t kind, std::uint32_t idx) {
  return (kind << kKindShift) | idx;
}

struct Op {
  void *page = nullptr;
  std::uint64_t user_data = 0;
  std::int32_t first_res = 0;
  std::uint8_t op = LABYRINTH_OP_NONE;
  bool live = false;
  // Multishot receive only: what re-arming needs, and its starvation state.
  bool starved = false;           // ended by -ENOBUFS, waiting for pages
  bool cancel_requested = false;  // labyrinth_ring_cancel named it: never re-armed
  bool ended = false;             // cancelled while starved: only its completion is left
  bool oneshot = false;           // LABYRINTH_RECV_BUNDLE_ONESHOT: never resubmitted after data
  bool datagram = false;          // fd is message-oriented (SOCK_DGRAM, SOCK_SEQPACKET)
  int fd = -1;
  int msg_flags = 0;
  std::uint64_t starved_since_ns = 0;  // CLOCK_MONOTONIC when it starved
};

// One slice of a block. owner NONE: released. gen: the ring's count of
// slices when it was made (never 0), unique among the slices of the last
// 2^32 - 1: with the address, it names one slice for good.
struct Slice {
  std::uint32_t off = 0, len = 0;
  std::uint32_t gen = 0;
  labyrinth_owner owner = LABYRINTH_OWNER_NONE;
};

// Deleter for memory from calloc.
struct CFree {
  void operator()(void *p) const { std::free(p); }
};

// A block that has handed out slices (incremental consumption). Its fields
// are guarded by the ring's slice_mu. Invariant: the block goes back to the
// pool exactly when !filling and live == 0.
struct SliceBlock {
  std::uintptr_t base = 0;
  std::uint32_t fill = 0;      // bytes the kernel has filled, from the start
  std::uint32_t live = 0;      // slices not yet released
  bool filling = true;         // still in the buffer ring: the kernel may fill more
  std::vector<Slice> slices;   // in offset order
};

// Bundled sends (bundle.cpp): a buffer ring of their own, mapped and
// registered at the first one; at most one in flight (op slot `idx`), its
// pages in order, pages[0..next) already handed back.
struct SendBundle {
  io_uring_buf_ring *br = nullptr;
  bool registered = false;
  std::uint16_t bgid = 0;
  std::uint32_t idx = ~0u;  // ~0u: none in flight
  std::vector<void *> pages;
  std::vector<std::uint32_t> lens;
  std::size_t next = 0;
  std::uint64_t sent = 0, total = 0;  // bytes sent by its CQEs before the final one; queued
};

// Counter written by one thread (the ring's), read by any.
struct Counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// An SQE, submitting what is queued to make room if the SQ is full.
inline io_uring_sqe *get_sqe(io_uring *ring) {
  io_uring_sqe *sqe = io_uring_get_sqe(ring);
  if (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

// Submit what is queued, again if a signal interrupted it. io_uring_enter
// fails only before consuming any SQE: on failure none was submitted.
inline int submit_now(io_uring *ring) {
  int ret;
  do {
    ret = io_uring_submit(ring);
  } while (ret == -EINTR);
  return ret;
}

// Make an SQE the kernel has not read yet harmless.
inline void neutralize(io_uring_sqe *sqe) {
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, encode(kKindNop, 0));
}

}  // namespace uring
}  // namespace lab

struct labyrinth_ring {
  labyrinth_pool *pool = nullptr;
  io_uring ring{};
  bool ring_ok = false;
  std::uint32_t flags = 0;
  std::uint32_t sq_entries = 0, cq_entries = 0;
  std::atomic<std::uint32_t> registered{0};
  // RLIMIT_MEMLOCK refused the registration at creation: fixed operations
  // run as plain read/write (counted in fallback_ops).
  std::atomic<std::uint32_t> register_fallback{0};
  // Tagged fixed buffers of this ring the kernel has not released yet (their
  // tag CQEs not taken). Any thread registering adds; the ring's thread
  // subtracts as it takes the CQEs.
  std::atomic<std::uint64_t> buffers_pinned{0};
  bool has_send_zc = false;
  bool defer_taskrun = false;  // completions appear only when we enter the kernel
  bool single_issuer = false;  // only `creator` may enter the kernel for this ring
  labyrinth_owner creator = LABYRINTH_OWNER_NONE;
  std::vector<lab::uring::Op> ops;
  std::vector<std::uint32_t> free_ops;
  // provided-buffer ring
  io_uring_buf_ring *br = nullptr;
  std::size_t br_bytes = 0;
  bool br_registered = false;
  std::uint32_t pb_entries = 0;
  std::uint16_t bgid = 0;
  std::vector<void *> bid_page;
  std::vector<std::uint16_t> free_bids;
  // incremental consumption (slices.cpp)
  bool incremental = false;
  unsigned pb_order = 0;
  std::uint32_t pb_block_bytes = LABYRINTH_PAGE_SIZE;
  std::vector<lab::uring::SliceBlock *> bid_block;  // ring's thread: per bid, once it gave a slice
  std::uint32_t min_left = 0;  // IOU_PBUF_RING_INC's min_left in effect (0: none)
  std::mutex slice_mu;  // guards every SliceBlock, slice_gen, slice_index and the lists below
  std::uint32_t slice_gen = 0;  // gen of the last slice made
  // Per block of the pool's arena, its SliceBlock or null: the buddy
  // allocator starts a block of 2^pb_order pages at a multiple of its size
  // from the arena's base, so every address inside it finds it in one step
  // (slice_slot). calloc'd: untouched parts cost no memory.
  std::unique_ptr<lab::uring::SliceBlock *[], lab::uring::CFree> slice_index;
  std::uintptr_t slice_arena = 0;     // the arena's base
  std::size_t slice_index_len = 0;    // blocks the arena holds
  std::vector<std::unique_ptr<lab::uring::SliceBlock>> all_blocks;  // owns every SliceBlock
  std::vector<lab::uring::SliceBlock *> spare_blocks;  // of all_blocks, unused
  // written under slice_mu only; read by any thread (stats, destroy)
  std::atomic<std::uint64_t> slices_live{0}, slice_blocks_held{0};
  // bundles (bundle.cpp)
  bool has_bundle = false;                // IORING_FEAT_RECVSEND_BUNDLE
  std::vector<std::uint16_t> bid_pos;     // ring position each bid was put at
  std::deque<labyrinth_completion> bundle_pending;  // pages not yet handed out
  lab::uring::SendBundle send_bundle;
  // Starved multishot receives (op slots), and cancelled ones whose
  // -ECANCELED completion the next labyrinth_ring_complete() hands out.
  std::vector<std::uint32_t> starved, cancelled;
  // statistics
  lab::uring::Counter submitted, submit_failures, completions, ops_inflight, pages_inflight,
      pbuf_pages, pbuf_refills, pbuf_refill_failures, pbuf_enobufs, recv_starvations, recv_rearms,
      recv_starved_ns, recv_starved_now, fallback_ops, recv_bundles, recv_bundle_pages, send_bundles,
      send_bundle_pages, recv_maybe_trunc;
};

namespace lab {
namespace uring {

// recv_multishot.cpp. All run on the ring's thread.
// Prepare a multishot receive of op slot idx (fd, msg_flags from the slot).
void recv_prep(labyrinth_ring *r, io_uring_sqe *sqe, std::uint32_t idx);
// A final -ENOBUFS CQE of slot idx: park the receive as starved unless it
// was cancelled or the ring is being torn down. True if parked.
bool recv_park(labyrinth_ring *r, std::uint32_t idx, bool teardown);
// A final CQE of slot idx that carried data: submit the receive again (or,
// if the submission fails, park it for recv_rearm) unless it was cancelled
// or the ring is being torn down. True if the receive goes on.
bool recv_continue(labyrinth_ring *r, std::uint32_t idx, bool teardown);
// Re-arm every starved receive if the provided-buffer ring has pages.
// Cheap when nothing is starved.
void recv_rearm(labyrinth_ring *r);
// Cancel a starved receive named by labyrinth_ring_cancel: its -ECANCELED
// completion is queued for labyrinth_ring_complete(). True if idx was starved.
bool recv_cancel_starved(labyrinth_ring *r, std::uint32_t idx);
// Hand out queued -ECANCELED completions into out[0..max); returns how many.
std::size_t recv_take_cancelled(labyrinth_ring *r, labyrinth_completion *out, std::size_t max);
// Teardown: forget starved and cancelled receives (the kernel holds nothing).
void recv_drop_parked(labyrinth_ring *r);


// ring.cpp. OK if ring is not NULL and its pool is usable in this process.
labyrinth_status enter_ring(const labyrinth_ring *r, const char *what);
// A tag CQE: the kernel released one of r's tagged fixed buffers. Returns
// false (no completion for the application).
bool buffer_released(labyrinth_ring *r);
// The registration fields of labyrinth_ring_stats.
void buffer_stats(const labyrinth_ring *r, labyrinth_ring_stats *s);
// Prepare a READ_FIXED / WRITE_FIXED op: through fixed buffer buf_index
// when the arena is registered, else (the RLIMIT_MEMLOCK fallback) as a
// plain read / write, counted in fallback_ops.
void prep_fixed(labyrinth_ring *r, io_uring_sqe *sqe, unsigned op, int fd, void *page,
                std::uint32_t len, std::uint64_t offset, std::uint16_t buf_index);

// complete.cpp. Turn one CQE into at most one completion (true if *out was
// written). In teardown nothing is handed to the application: its pages go
// back to their submitters, provided pages to the pool.
bool handle_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, labyrinth_completion *out,
                bool teardown);
// Pages may be back: top the buffer ring up, then re-arm starved receives.
void replenish(labyrinth_ring *r);

// pbuf_ring.cpp. All run on the ring's thread.
// Map, register and fill the provided-buffer ring of o (o.pbuf_entries > 0).
// On error the caller frees the ring.
labyrinth_status pbuf_setup(labyrinth_ring *r, const labyrinth_ring_options &o, const char *what);
// Put an in-flight page (already the kernel's) into the buffer ring slot
// `offset` past the tail; the caller advances the tail.
void pbuf_add(labyrinth_ring *r, void *page, int offset);
// The page of buffer id bid, which a CQE handed back (null if none).
void *pbuf_take(labyrinth_ring *r, std::uint16_t bid);
// Top the buffer ring up with atomic exclusive pages from the pool (unless
// LABYRINTH_RING_MANUAL_REFILL).
void pbuf_refill(labyrinth_ring *r);
// Teardown, once the kernel holds no operation: unregister the buffer ring
// and give its pages back to the pool.
void pbuf_release_all(labyrinth_ring *r);
// labyrinth_ring_provide's work, after enter_ring.
labyrinth_status ring_provide(labyrinth_ring *r, void *page, const char *what);

// slices.cpp: incremental consumption.
// A CQE of a multishot receive that names buffer bid (res bytes; more: the
// kernel keeps filling it): records a slice owned by the calling thread and
// points c at it; when the kernel is done with the block, takes it out of
// the buffer ring and gives it back to the pool once no slice is live. In
// teardown no slice is made. Ring's thread.
void slice_from_cqe(labyrinth_ring *r, std::uint16_t bid, std::int32_t res, bool more,
                    bool datagram, bool teardown, labyrinth_completion *c);
// labyrinth_ring_slice_release / _transfer (gen 0) and their _gen forms
// (gen: the completion's slice_gen) after enter_ring. Any thread.
labyrinth_status slice_release(labyrinth_ring *r, void *slice, std::uint32_t gen,
                               const char *what);
labyrinth_status slice_transfer(labyrinth_ring *r, void *slice, std::uint32_t gen,
                                labyrinth_owner to, const char *what);
// A multishot receive about to be armed on an incremental ring: refuses
// msg_flags the slice bookkeeping cannot follow; *datagram says whether fd
// is message-oriented. Ring's thread.
labyrinth_status slice_check_recv(labyrinth_ring *r, int fd, int msg_flags, const char *what,
                                  bool *datagram);
// Teardown (no slice live): forget the block of bid, still in the buffer ring.
void slice_forget_bid(labyrinth_ring *r, std::uint16_t bid);

// bundle.cpp. Ring's thread.
// Kernel uapi newer than liburing 2.3, Linux 6.10: sqe->ioprio flag of
// send/recv, and the feature bit saying the kernel has it.
constexpr std::uint16_t kRecvsendBundle = 1u << 4;     // IORING_RECVSEND_BUNDLE
constexpr std::uint32_t kFeatRecvsendBundle = 1u << 14;  // IORING_FEAT_RECVSEND_BUNDLE
// A CQE of a bundle receive: take the pages it filled (in ring order from
// its buffer id) and queue one completion per page in bundle_pending, the
// last without MORE if `final`; in teardown they go back to the pool.
// Returns how many pages it took.
std::size_t bundle_recv_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, const Op &o, bool final,
                            bool teardown);
// A CQE of the bundled send in slot idx: queue the pages it hands back (all
// that are left if final); in teardown they go straight back.
void bundle_send_cqe(labyrinth_ring *r, const io_uring_cqe *cqe, const Op &o, bool final,
                     bool teardown);
// Hand out queued bundle pages into out[0..max); returns how many.
std::size_t bundle_take_pending(labyrinth_ring *r, labyrinth_completion *out, std::size_t max);
// Teardown, once the kernel holds nothing: pages never handed out go back
// (received ones to the pool, sent ones to their owners); the send buffer
// ring is unregistered and unmapped.
void bundle_release_all(labyrinth_ring *r);

}  // namespace uring
}  // namespace lab
