// io_uring benchmarks (Google Benchmark).
//
//  BM_Read4K        4 KiB random reads of a 256 MiB file into pool pages,
//                   fixed buffers (the arena registered once with
//                   labyrinth_pool_register_io_uring) vs the same pages
//                   unregistered; O_DIRECT and page cache; queue depth 1 and
//                   32. A raw liburing ring, so that only the buffer kind
//                   differs. items_per_second = IOPS.
//  BM_ManagedRead4K the same fixed reads through labyrinth_ring (one
//                   submission per call, ownership tracking included).
//  BM_RecvUdp       draining 1024 queued 1472-byte UDP datagrams on loopback:
//                   multishot receive from a provided-buffer ring fed with
//                   atomic exclusive pages vs recvmsg into malloc'd buffers.
//                   The socket is filled with timing paused, so only the
//                   receiver's work is timed. items_per_second = packets/s;
//                   recv_starvations and recv_rearms are the ring's own
//                   counts of receives it found starved and re-armed.
//
// The file lives in $LABYRINTH_BENCH_DIR (default /var/tmp). Run
// bench/uring/fio.sh for fio's figures on the same kind of file.
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "labyrinth/labyrinth.h"
#include "labyrinth/labyrinth_uring.h"

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;
constexpr std::size_t kFileBytes = 256u << 20;

const std::string &bench_file() {
  static std::string path = [] {
    const char *dir = std::getenv("LABYRINTH_BENCH_DIR");
    std::string p = std::string(dir && *dir ? dir : "/var/tmp") + "/labyrinth-bench-uring.dat";
    int fd = open(p.c_str(), O_RDWR | O_CREAT, 0644);
    struct stat st {};
    fstat(fd, &st);
    if (static_cast<std::size_t>(st.st_size) != kFileBytes) {
      std::vector<unsigned char> buf(1u << 20);
      std::mt19937_64 rng(1);
      for (auto &b : buf) b = static_cast<unsigned char>(rng());
      for (std::size_t off = 0; off < kFileBytes; off += buf.size())
        if (pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) < 0) break;
      fsync(fd);
    }
    close(fd);
    return p;
  }();
  return path;
}

labyrinth_pool *make_pool(std::size_t bytes) {
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = bytes;
  labyrinth_pool *p = nullptr;
  if (labyrinth_pool_create(&o, &p) != LABYRINTH_OK) return nullptr;
  return p;
}

// Args: {direct, fixed, queue depth}
void BM_Read4K(benchmark::State &state) {
  const bool direct = state.range(0), fixed = state.range(1);
  const unsigned qd = static_cast<unsigned>(state.range(2));
  int fd = open(bench_file().c_str(), O_RDONLY | (direct ? O_DIRECT : 0));
  if (fd < 0) {
    state.SkipWithError(("open: " + std::string(strerror(errno))).c_str());
    return;
  }
  labyrinth_pool *pool = make_pool(4u << 20);
  io_uring ring;
  if (!pool || io_uring_queue_init(64, &ring, 0) < 0) {
    state.SkipWithError("io_uring or pool unavailable");
    close(fd);
    return;
  }
  if (fixed && labyrinth_pool_register_io_uring(pool, ring.ring_fd) != LABYRINTH_OK) {
    state.SkipWithError(labyrinth_last_error_message());
    io_uring_queue_exit(&ring);
    close(fd);
    return;
  }
  std::vector<void *> pages(qd);
  std::vector<std::uint16_t> idx(qd);
  for (unsigned i = 0; i < qd; ++i) {
    pages[i] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    labyrinth_page_buf_index(pool, pages[i], &idx[i]);
  }
  std::mt19937_64 rng(7);
  const std::uint64_t nblocks = kFileBytes / kPage;
  auto submit = [&](unsigned i) {
    io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    off_t off = static_cast<off_t>((rng() % nblocks) * kPage);
    if (fixed)
      io_uring_prep_read_fixed(sqe, fd, pages[i], kPage, off, idx[i]);
    else
      io_uring_prep_read(sqe, fd, pages[i], kPage, off);
    io_uring_sqe_set_data64(sqe, i);
  };
  for (unsigned i = 0; i < qd; ++i) submit(i);
  io_uring_submit(&ring);
  std::int64_t errors = 0;
  for (auto _ : state) {
    io_uring_cqe *cqe = nullptr;
    io_uring_wait_cqe(&ring, &cqe);
    unsigned i = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
    if (cqe->res != static_cast<int>(kPage)) ++errors;
    io_uring_cqe_seen(&ring, cqe);
    submit(i);
    io_uring_submit(&ring);
  }
  // Drain.
  for (unsigned i = 0; i < qd; ++i) {
    io_uring_cqe *cqe = nullptr;
    io_uring_wait_cqe(&ring, &cqe);
    io_uring_cqe_seen(&ring, cqe);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kPage));
  state.counters["errors"] = static_cast<double>(errors);
  for (void *p : pages) labyrinth_free_pages(pool, p);
  if (fixed) labyrinth_pool_unregister_io_uring(pool, ring.ring_fd);
  io_uring_queue_exit(&ring);
  labyrinth_pool_destroy(pool);
  close(fd);
}
BENCHMARK(BM_Read4K)
    ->ArgNames({"direct", "fixed", "qd"})
    ->ArgsProduct({{1, 0}, {1, 0}, {1, 32}})
    ->UseRealTime()
    ->MinTime(1.0);

// Args: {direct}
void BM_ManagedRead4K(benchmark::State &state) {
  const bool direct = state.range(0);
  const unsigned qd = 32;
  int fd = open(bench_file().c_str(), O_RDONLY | (direct ? O_DIRECT : 0));
  labyrinth_pool *pool = make_pool(4u << 20);
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = 64;
  o.flags = LABYRINTH_RING_SINGLE_THREAD;
  labyrinth_ring *ring = nullptr;
  if (fd < 0 || !pool || labyrinth_ring_create(pool, &o, &ring) != LABYRINTH_OK) {
    state.SkipWithError(labyrinth_last_error_message());
    return;
  }
  std::mt19937_64 rng(7);
  const std::uint64_t nblocks = kFileBytes / kPage;
  for (unsigned i = 0; i < qd; ++i)
    labyrinth_ring_read_fixed(ring, fd, labyrinth_void_alloc_page_gfp_atomic_exclusive(pool), kPage,
                              (rng() % nblocks) * kPage, i);
  std::int64_t errors = 0;
  labyrinth_completion c[32];
  std::size_t pending = 0, at = 0;
  for (auto _ : state) {
    if (at == pending) {
      labyrinth_ring_complete(ring, c, 32, 1, LABYRINTH_TIMEOUT_INFINITE, &pending);
      at = 0;
    }
    labyrinth_completion &cc = c[at++];
    if (cc.result != static_cast<int>(kPage)) ++errors;
    labyrinth_ring_read_fixed(ring, fd, cc.page, kPage, (rng() % nblocks) * kPage, cc.user_data);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["errors"] = static_cast<double>(errors);
  labyrinth_ring_destroy(ring);  // cancels, waits, gives the pages back
  // Pages handed back by teardown and the ones still in c[at..pending).
  labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE);
  close(fd);
}
BENCHMARK(BM_ManagedRead4K)->ArgNames({"direct"})->Arg(1)->Arg(0)->UseRealTime()->MinTime(1.0);

// ---- UDP receive -----------------------------------------------------------

struct Udp {
  int rx = -1, tx = -1;
  Udp() {
    rx = socket(AF_INET, SOCK_DGRAM, 0);
    tx = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 32 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(rx, reinterpret_cast<sockaddr *>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(rx, reinterpret_cast<sockaddr *>(&a), &len);
    connect(tx, reinterpret_cast<sockaddr *>(&a), sizeof(a));
  }
  ~Udp() {
    close(rx);
    close(tx);
  }
  void fill(unsigned n, unsigned size) {
    static unsigned char buf[4096];
    mmsghdr msgs[64];
    iovec iov[64];
    for (unsigned i = 0; i < 64; ++i) {
      iov[i] = {buf, size};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (unsigned sent = 0; sent < n;) {
      int k = sendmmsg(tx, msgs, std::min(64u, n - sent), 0);
      if (k <= 0) break;
      sent += static_cast<unsigned>(k);
    }
  }
};

constexpr unsigned kBurst = 1024, kSize = 1472;

std::uint64_t touch(const void *p, std::size_t n) {
  const auto *w = static_cast<const std::uint64_t *>(p);
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < n / 8; ++i) x ^= w[i];
  return x;
}

void BM_RecvUdp_Recvmsg(benchmark::State &state) {
  Udp udp;
  std::uint64_t sink = 0;
  for (auto _ : state) {
    state.PauseTiming();
    udp.fill(kBurst, kSize);
    state.ResumeTiming();
    for (unsigned i = 0; i < kBurst; ++i) {
      void *buf = std::malloc(4096);
      iovec iov{buf, 4096};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      ssize_t n = recvmsg(udp.rx, &mh, MSG_DONTWAIT);
      if (n > 0) sink += touch(buf, static_cast<std::size_t>(n));
      std::free(buf);
    }
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kBurst);
}
BENCHMARK(BM_RecvUdp_Recvmsg)->UseRealTime()->MinTime(1.0);

void BM_RecvUdp_MultishotPbuf(benchmark::State &state) {
  Udp udp;
  labyrinth_pool *pool = make_pool(64u << 20);
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = 64;
  o.pbuf_entries = 4096;
  o.flags = LABYRINTH_RING_SINGLE_THREAD;  // receive work runs when we ask: it is timed
  labyrinth_ring *ring = nullptr;
  if (!pool || labyrinth_ring_create(pool, &o, &ring) != LABYRINTH_OK ||
      labyrinth_ring_recv_multishot(ring, udp.rx, 0, 1) != LABYRINTH_OK) {
    state.SkipWithError(labyrinth_last_error_message());
    return;
  }
  // The ring re-arms a receive the kernel ended for want of pages by itself
  // (labyrinth_uring.h, "Starvation"): a final completion seen here means
  // the receive really ended, and the benchmark stops with its result.
  std::uint64_t sink = 0;
  bool ended = false;
  std::int32_t end_result = 0;
  labyrinth_completion c[256];
  for (auto _ : state) {
    state.PauseTiming();
    udp.fill(kBurst, kSize);
    state.ResumeTiming();
    unsigned got = 0;
    while (got < kBurst && !ended) {
      std::size_t n = 0;
      labyrinth_ring_complete(ring, c, 256, 1, 1000, &n);
      if (n == 0) break;
      for (std::size_t i = 0; i < n; ++i) {
        if (c[i].page) {
          sink += touch(c[i].page, static_cast<std::size_t>(c[i].result));
          labyrinth_free_pages(pool, c[i].page);  // the ring refills from the pool
          ++got;
        }
        if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) {
          ended = true;
          end_result = c[i].result;
        }
      }
    }
    if (ended) break;
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * kBurst);
  labyrinth_ring_stats rs;
  std::memset(&rs, 0, sizeof rs);
  rs.struct_size = sizeof rs;
  if (labyrinth_ring_get_stats(ring, &rs) == LABYRINTH_OK) {
    state.counters["recv_starvations"] = static_cast<double>(rs.recv_starvations);
    state.counters["recv_rearms"] = static_cast<double>(rs.recv_rearms);
  }
  if (ended)
    state.SkipWithError(("the multishot receive ended (result " + std::to_string(end_result) + ")").c_str());
  labyrinth_ring_destroy(ring);
  labyrinth_pool_destroy(pool);
}
BENCHMARK(BM_RecvUdp_MultishotPbuf)->UseRealTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
