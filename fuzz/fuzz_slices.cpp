// fuzz_slices.cpp - libFuzzer target for incremental consumption
// (LABYRINTH_RING_PBUF_INCREMENTAL): slices, their generations, ownership,
// cut datagrams and teardown.
//
// The first bytes choose a pool (small, so that the provided-buffer ring
// starves), a ring (blocks of 1, 2 or 4 pages, 1..8 of them, a small or
// large completion queue, REPORT_STARVED, a max_datagram or none) and a
// socket pair (AF_UNIX datagrams or a stream). The rest is a program: send
// datagrams of random sizes (some longer than a block) or stream bytes;
// take completions; release slices in any order, by generation or by
// address; transfer them to a helper thread and back; release stale slices
// (already released, their address possibly taken by a newer slice), with
// wrong generations, interior or NULL pointers; free a slice's block;
// destroy the ring with slices alive (BUSY) and without (a new ring
// follows).
//
// Checked after every step against a model:
//  - each slice holds the next datagram (or the next stream bytes) exactly;
//    a datagram shorter than sent is flagged MAYBE_TRUNC and ends its
//    block; with max_datagram in effect a datagram up to it is never cut;
//    a stream is never flagged; generations are never 0 nor repeated;
//  - every refused call returns the predicted status and changes nothing;
//    a stale release by generation is never OK, and is DOUBLE_FREE when a
//    newer slice took the address;
//  - slices_live == the model's; the pool's allocated pages == the blocks
//    in the buffer ring plus the blocks held by slices; recv_maybe_trunc ==
//    the flags seen; at the end the pool is empty.
#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth_uring.h>

#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "fuzz_check.hpp"

namespace {

constexpr std::uint32_t kPage = LABYRINTH_PAGE_SIZE;

// A second thread that runs one job at a time for the caller, so that
// slices can belong to another thread.
class Helper {
 public:
  Helper() : t_([this] { loop(); }) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return id_ != LABYRINTH_OWNER_NONE; });
  }
  labyrinth_owner id() const { return id_; }
  void run(std::function<void()> f) {
    std::unique_lock<std::mutex> l(mu_);
    job_ = std::move(f);
    cv_.notify_all();
    cv_.wait(l, [this] { return !job_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    id_ = labyrinth_owner_self();
    cv_.notify_all();
    for (;;) {
      cv_.wait(l, [this] { return static_cast<bool>(job_); });
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  labyrinth_owner id_ = LABYRINTH_OWNER_NONE;
  std::thread t_;
};

Helper *g_helper = nullptr;
bool g_usable = true;
std::uint64_t g_ops = 0, g_slices = 0, g_stale = 0, g_cut = 0, g_inputs = 0;

std::uint8_t pattern(std::uint64_t seq, std::uint64_t i) {
  return static_cast<std::uint8_t>(seq * 31 + i * 7 + (i >> 8));
}

struct Rec {
  void *page;
  std::uint32_t gen, len;
  bool helper;  // owned by the helper thread
};

struct Fuzz {
  const std::uint8_t *d;
  std::size_t n, i = 0;
  std::uint8_t u8() { return i < n ? d[i++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }

  labyrinth_pool *pool = nullptr;
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options ro{};
  int sk[2] = {-1, -1};
  bool stream = false, armed = false;
  std::uint32_t block = kPage, min_left = 0;
  std::vector<Rec> live, stale;
  std::deque<std::pair<std::uint32_t, std::uint32_t>> pending;  // datagrams: seq, length
  std::uint64_t sent = 0, received = 0, flagged = 0;  // stream bytes; MAYBE_TRUNC seen
  std::uint32_t next_seq = 0, last_gen = 0;

  Fuzz(const std::uint8_t *data, std::size_t size) : d(data), n(size) {}

  labyrinth_ring_stats rstats() {
    labyrinth_ring_stats s{};
    s.struct_size = sizeof s;
    CHECK(labyrinth_ring_get_stats(ring, &s) == LABYRINTH_OK);
    return s;
  }
  std::uint64_t allocated() {
    labyrinth_stats s{};
    s.struct_size = sizeof s;
    CHECK(labyrinth_pool_stats(pool, &s) == LABYRINTH_OK);
    return s.allocated_pages;
  }

  // False: this input cannot run (say why once, if io_uring is unusable).
  bool setup() {
    const std::uint8_t a = u8(), b = u8(), c = u8();
    stream = a & 1;
    labyrinth_pool_options po;
    labyrinth_pool_options_init(&po);
    po.size_bytes = static_cast<std::size_t>(16 + b % 48) * kPage;
    po.flags &= ~LABYRINTH_POOL_PIN_MASK;
    CHECK(labyrinth_pool_create(&po, &pool) == LABYRINTH_OK);
    labyrinth_ring_options_init(&ro);
    ro.sq_entries = (a & 0x40) ? 4 : 64;
    ro.pbuf_entries = 1u << ((a >> 3) % 4);
    ro.pbuf_order = (a >> 1) % 3;
    ro.flags = LABYRINTH_RING_PBUF_INCREMENTAL | ((a & 0x20) ? LABYRINTH_RING_REPORT_STARVED : 0);
    block = kPage << ro.pbuf_order;
    if (c & 1) ro.max_datagram = 1 + u16() % block;
    return make_ring();
  }

  // A new ring and, since a destroyed ring drops what the kernel received
  // for it and nobody took, a new socket pair.
  bool make_ring() {
    for (int &fd : sk)
      if (fd >= 0) close(fd);
    CHECK(socketpair(AF_UNIX, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK, 0, sk) == 0);
    pending.clear();
    sent = received = 0;
    next_seq = last_gen = 0;
    labyrinth_status st = labyrinth_ring_create(pool, &ro, &ring);
    if (st == LABYRINTH_ERR_UNSUPPORTED && ro.max_datagram) {
      ro.max_datagram = 0;  // the kernel cannot keep room: fuzz without it
      st = labyrinth_ring_create(pool, &ro, &ring);
    }
    if (st == LABYRINTH_ERR_UNSUPPORTED) {
      std::fprintf(stderr, "fuzz_slices: io_uring is not usable here: %s\n",
                   labyrinth_last_error_message());
      g_usable = false;
      return false;
    }
    if (st == LABYRINTH_ERR_NOMEM) return false;  // the pool cannot fill the ring
    CHECK(st == LABYRINTH_OK, "ring_create: %s", labyrinth_status_name(st));
    min_left = static_cast<std::uint32_t>(rstats().pbuf_min_left);
    CHECK(min_left == ro.max_datagram);
    flagged = 0;
    arm();
    return true;
  }

  void arm() {
    labyrinth_status st = labyrinth_ring_recv_multishot(ring, sk[1], 0, 7);
    if (st == LABYRINTH_ERR_UNSUPPORTED) return;
    CHECK(st == LABYRINTH_OK, "recv_multishot: %s", labyrinth_status_name(st));
    armed = true;
  }

  void check() {
    labyrinth_ring_stats r = rstats();
    CHECK(r.slices_live == live.size(), "slices_live %llu, model %zu",
          (unsigned long long)r.slices_live, live.size());
    CHECK(r.recv_maybe_trunc == flagged);
    const std::uint64_t want = (r.pbuf_pages + r.slice_blocks_held) << ro.pbuf_order;
    CHECK(allocated() == want, "pool allocated %llu pages, ring holds %llu",
          (unsigned long long)allocated(), (unsigned long long)want);
  }

  void op_send() {
    const std::uint32_t len = 1 + u16() % (block + block / 2);
    std::vector<std::uint8_t> buf(len);
    const std::uint64_t seq = stream ? 0 : next_seq;
    for (std::uint32_t k = 0; k < len; ++k) buf[k] = pattern(seq, (stream ? sent : 0) + k);
    ssize_t got = send(sk[0], buf.data(), len, MSG_DONTWAIT);
    if (got < 0) return;  // the socket is full: fine
    if (stream) {
      sent += static_cast<std::uint64_t>(got);
    } else {
      CHECK(static_cast<std::uint32_t>(got) == len);
      pending.emplace_back(next_seq++, len);
    }
  }

  void take_slice(const labyrinth_completion &c) {
    CHECK(c.slice_gen != 0 && c.slice_gen != last_gen && c.result > 0 && c.page);
    last_gen = c.slice_gen;
    const auto *p = static_cast<const std::uint8_t *>(c.page);
    const auto len = static_cast<std::uint32_t>(c.result);
    const bool cut_flag = c.flags & LABYRINTH_COMPLETION_MAYBE_TRUNC;
    if (stream) {
      CHECK(!cut_flag && received + len <= sent);
      for (std::uint32_t k = 0; k < len; ++k)
        CHECK(p[k] == pattern(0, received + k), "stream byte %llu",
              (unsigned long long)(received + k));
      received += len;
    } else {
      CHECK(!pending.empty(), "a datagram nobody sent");
      auto [seq, sent_len] = pending.front();
      pending.pop_front();
      CHECK(len <= sent_len);
      CHECK(len == sent_len || cut_flag, "datagram %u cut to %u of %u bytes, unflagged", seq, len,
            sent_len);
      CHECK(!min_left || sent_len > min_left || len == sent_len,
            "datagram of %u bytes cut although max_datagram is %u", sent_len, min_left);
      if (cut_flag) {
        CHECK((reinterpret_cast<std::uintptr_t>(p) + len) % block == 0, "flag before block end");
        ++g_cut;
      }
      for (std::uint32_t k = 0; k < len; ++k) CHECK(p[k] == pattern(seq, k), "datagram %u", seq);
    }
    if (cut_flag) ++flagged;
    live.push_back(Rec{c.page, c.slice_gen, len, false});
    ++g_slices;
  }

  void op_complete() {
    const bool wait = u8() & 1;
    labyrinth_completion c[16];
    std::size_t got = 0;
    CHECK(labyrinth_ring_complete(ring, c, 16, wait ? 1 : 0, 1, &got) == LABYRINTH_OK);
    for (std::size_t k = 0; k < got; ++k) {
      if (c[k].flags & LABYRINTH_COMPLETION_SLICE) {
        take_slice(c[k]);
        continue;
      }
      CHECK(c[k].page == nullptr && c[k].slice_gen == 0);
      if (!(c[k].flags & LABYRINTH_COMPLETION_MORE)) armed = false;
    }
    if (!armed) arm();
  }

  // Release live[k] (by generation or by address, by its owner); then the
  // same release again is refused.
  void op_release() {
    if (live.empty()) return;
    const std::uint8_t how = u8();
    const std::size_t k = how % live.size();
    Rec r = live[k];
    labyrinth_status st = LABYRINTH_ERR_SYSTEM;
    auto call = [&] {
      st = (how & 0x80) ? labyrinth_ring_slice_release(ring, r.page)
                        : labyrinth_ring_slice_release_gen(ring, r.page, r.gen);
    };
    if (r.helper) {
      CHECK(labyrinth_ring_slice_release_gen(ring, r.page, r.gen) == LABYRINTH_ERR_NOT_OWNER);
      g_helper->run(call);
    } else {
      call();
    }
    CHECK(st == LABYRINTH_OK, "release: %s", labyrinth_status_name(st));
    live[k] = live.back();
    live.pop_back();
    st = labyrinth_ring_slice_release_gen(ring, r.page, r.gen);
    CHECK(st == LABYRINTH_ERR_DOUBLE_FREE || st == LABYRINTH_ERR_INVALID);
    if (stale.size() >= 256) stale.erase(stale.begin());
    stale.push_back(r);
  }

  // A released slice named again: never OK; DOUBLE_FREE when a newer live
  // slice starts at its address.
  void op_stale() {
    if (stale.empty()) return;
    const std::uint8_t how = u8();
    const Rec &s = stale[how % stale.size()];
    bool taken = false;
    for (const Rec &l : live) taken |= l.page == s.page;
    const std::uint64_t before = rstats().slices_live;
    labyrinth_status st =
        (how & 0x80) ? labyrinth_ring_slice_transfer_gen(ring, s.page, s.gen, g_helper->id())
                     : labyrinth_ring_slice_release_gen(ring, s.page, s.gen);
    if (taken) {
      CHECK(st == LABYRINTH_ERR_DOUBLE_FREE, "stale gen %u over a live slice: %s", s.gen,
            labyrinth_status_name(st));
      ++g_stale;
    } else {
      CHECK(st == LABYRINTH_ERR_DOUBLE_FREE || st == LABYRINTH_ERR_INVALID);
      if (how & 0x40) {  // the address alone, where no live slice starts
        st = labyrinth_ring_slice_release(ring, s.page);
        CHECK(st == LABYRINTH_ERR_DOUBLE_FREE || st == LABYRINTH_ERR_INVALID);
      }
    }
    CHECK(rstats().slices_live == before);
  }

  void op_transfer() {
    if (live.empty()) return;
    Rec &r = live[u8() % live.size()];
    labyrinth_status st = LABYRINTH_ERR_SYSTEM;
    if (r.helper) {
      const labyrinth_owner me = labyrinth_owner_self();
      g_helper->run([&] { st = labyrinth_ring_slice_transfer_gen(ring, r.page, r.gen, me); });
    } else {
      st = labyrinth_ring_slice_transfer_gen(ring, r.page, r.gen, g_helper->id());
    }
    CHECK(st == LABYRINTH_OK, "transfer: %s", labyrinth_status_name(st));
    r.helper = !r.helper;
  }

  void op_misuse() {
    const std::uint64_t before = rstats().slices_live;
    CHECK(labyrinth_ring_slice_release(ring, nullptr) == LABYRINTH_ERR_INVALID);
    if (!live.empty()) {
      const Rec &r = live[u8() % live.size()];
      CHECK(labyrinth_ring_slice_release_gen(ring, r.page, 0) == LABYRINTH_ERR_INVALID);
      CHECK(labyrinth_ring_slice_release_gen(ring, r.page, r.gen + 0x40000000u) ==
            LABYRINTH_ERR_INVALID);
      if (r.len > 1)
        CHECK(labyrinth_ring_slice_release_gen(ring, static_cast<char *>(r.page) + 1, r.gen) ==
              LABYRINTH_ERR_INVALID);
      void *base = reinterpret_cast<void *>(reinterpret_cast<std::uintptr_t>(r.page) &
                                            ~std::uintptr_t{block - 1});
      CHECK(labyrinth_free_pages(pool, base) == LABYRINTH_ERR_BUSY);
    }
    CHECK(rstats().slices_live == before);
  }

  void release_all() {
    while (!live.empty()) {
      Rec r = live.back();
      live.pop_back();
      labyrinth_status st = LABYRINTH_ERR_SYSTEM;
      auto call = [&] { st = labyrinth_ring_slice_release_gen(ring, r.page, r.gen); };
      if (r.helper) g_helper->run(call);
      else call();
      CHECK(st == LABYRINTH_OK);
    }
    stale.clear();  // their blocks may leave the ring's knowledge entirely
  }

  // Destroy with slices alive: BUSY, nothing changes. Without: a new ring.
  bool op_destroy() {
    if (!live.empty() && !(u8() & 1)) {
      const std::uint64_t before = rstats().slices_live;
      CHECK(labyrinth_ring_destroy(ring) == LABYRINTH_ERR_BUSY);
      CHECK(rstats().slices_live == before);
      return true;
    }
    release_all();
    CHECK(labyrinth_ring_destroy(ring) == LABYRINTH_OK);
    ring = nullptr;
    CHECK(allocated() == 0, "%llu pages left after the ring", (unsigned long long)allocated());
    return make_ring();
  }

  void run() {
    while (i < n) {
      switch (u8() % 8) {
        case 0: case 1: op_send(); break;
        case 2: op_complete(); break;
        case 3: op_release(); break;
        case 4: op_stale(); break;
        case 5: op_transfer(); break;
        case 6: op_misuse(); break;
        case 7: if (!op_destroy()) return; break;
      }
      if (ring) check();
      ++g_ops;
    }
  }

  ~Fuzz() {
    if (ring) {
      release_all();
      CHECK(labyrinth_ring_destroy(ring) == LABYRINTH_OK);
    }
    if (pool) {
      CHECK(allocated() == 0, "%llu pages leaked", (unsigned long long)allocated());
      CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK);
    }
    for (int fd : sk)
      if (fd >= 0) close(fd);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  g_helper = new Helper();
  std::atexit([] {
    std::fprintf(stderr, "fuzz_slices: %llu operations checked in %llu inputs: %llu slices, %llu "
                 "stale releases over a newer slice refused, %llu cut datagrams flagged\n",
                 (unsigned long long)g_ops, (unsigned long long)g_inputs,
                 (unsigned long long)g_slices, (unsigned long long)g_stale,
                 (unsigned long long)g_cut);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (!g_usable) return 0;
  ++g_inputs;
  Fuzz f(data, size);
  if (f.setup()) f.run();
  return 0;
}
