// Registered-buffer benchmarks (Google Benchmark): what it costs to give a
// ring the pool's arena as fixed buffers.
//
//  BM_RegisterFresh  labyrinth_pool_register_io_uring + unregister on an
//                    application's ring: the kernel pins every page of the
//                    arena and builds its table, then drops it.
//  BM_RegisterClone  labyrinth_pool_clone_io_uring from a ring that holds the
//                    registration + unregister: the kernel shares the
//                    source's pinned pages (IORING_REGISTER_CLONE_BUFFERS,
//                    Linux 6.12) and pins nothing.
// Argument: arena MiB. The pool's pages are touched once before timing, so
// neither side pays for first faults. items_per_second = pairs per second.
#include <liburing.h>

#include <benchmark/benchmark.h>

#include <cstring>

#include "labyrinth/labyrinth.h"
#include "labyrinth/labyrinth_uring.h"

namespace {

struct Arena {
  labyrinth_pool *pool = nullptr;
  explicit Arena(std::size_t mib) {
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    o.size_bytes = mib << 20;
    o.flags = 0;
    if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) return;
    void *base = nullptr;
    std::size_t size = 0;
    labyrinth_pool_arena(pool, &base, &size);
    std::memset(base, 0, size);
  }
  ~Arena() {
    if (pool) labyrinth_pool_destroy(pool);
  }
};

void BM_RegisterFresh(benchmark::State &state) {
  Arena a(static_cast<std::size_t>(state.range(0)));
  io_uring ring;
  if (!a.pool || io_uring_queue_init(8, &ring, 0) < 0) {
    state.SkipWithError("no pool or no io_uring");
    return;
  }
  for (auto _ : state) {
    if (labyrinth_pool_register_io_uring(a.pool, ring.ring_fd) != LABYRINTH_OK) {
      state.SkipWithError(labyrinth_last_error_message());
      break;
    }
    labyrinth_pool_unregister_io_uring(a.pool, ring.ring_fd);
  }
  state.SetItemsProcessed(state.iterations());
  io_uring_queue_exit(&ring);
}
BENCHMARK(BM_RegisterFresh)->ArgName("arena_mib")->Arg(16)->Arg(256)->UseRealTime();

void BM_RegisterClone(benchmark::State &state) {
  Arena a(static_cast<std::size_t>(state.range(0)));
  io_uring src, dst;
  if (!a.pool || io_uring_queue_init(8, &src, 0) < 0 || io_uring_queue_init(8, &dst, 0) < 0) {
    state.SkipWithError("no pool or no io_uring");
    return;
  }
  if (labyrinth_pool_register_io_uring(a.pool, src.ring_fd) != LABYRINTH_OK) {
    state.SkipWithError(labyrinth_last_error_message());
    return;
  }
  for (auto _ : state) {
    if (labyrinth_pool_clone_io_uring(a.pool, src.ring_fd, dst.ring_fd) != LABYRINTH_OK) {
      state.SkipWithError(labyrinth_last_error_message());
      break;
    }
    labyrinth_pool_unregister_io_uring(a.pool, dst.ring_fd);
  }
  state.SetItemsProcessed(state.iterations());
  labyrinth_pool_unregister_io_uring(a.pool, src.ring_fd);
  io_uring_queue_exit(&dst);
  io_uring_queue_exit(&src);
}
BENCHMARK(BM_RegisterClone)->ArgName("arena_mib")->Arg(16)->Arg(256)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
