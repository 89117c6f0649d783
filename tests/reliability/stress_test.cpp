// Stress: twice as many threads as cores hammer one pool that is kept near
// exhaustion, for LABYRINTH_STRESS_SECONDS (default 3 under ctest; the CI
// stage scripts/test.d/85-stress.sh runs 60).
//
// Every thread mixes, at random: ATOMIC allocations (flagship, inline fast
// path, every order), WAIT allocations with timeouts, plain and EXCLUSIVE
// allocations, frees of its own blocks, frees of other threads' shared
// blocks (remote frees), transfers of exclusive blocks to other threads
// (which adopt and free them), trims; at the end each thread exits holding
// a few exclusive blocks (orphans) and whatever its cache holds.
//
// Checked: no page is ever handed out twice (a global page map, exchanged
// atomically), every block's data is intact until its free, every call
// returns what its flags allow; WAIT timeouts are honoured: a TIMEOUT comes
// no earlier than the timeout and no later than timeout + slack (1000 ms by
// default, LABYRINTH_STRESS_WAIT_SLACK_MS; loose on purpose: a shared
// 2-core machine, sanitizers, valgrind); afterwards every page is back
// (orphans reclaimed), and after a trim the pool equals a fresh pool (free
// blocks per order). Printed: operations, ATOMIC latency (max and 99.9th
// percentile, successes and failures under exhaustion), WAIT figures.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "test_util.hpp"

using namespace labtest;

namespace {

double env_double(const char *name, double dflt) {
  const char *v = std::getenv(name);
  return v && *v ? std::atof(v) : dflt;
}

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Latency histogram: buckets of 2^k ns up to ~1 s.
struct Histogram {
  std::atomic<std::uint64_t> b[32] = {};
  std::atomic<std::int64_t> max{0};
  std::atomic<std::uint64_t> n{0};
  void add(std::int64_t ns) {
    unsigned k = 0;
    while (k < 31 && (std::int64_t{1} << (k + 1)) <= ns) ++k;
    b[k].fetch_add(1, std::memory_order_relaxed);
    n.fetch_add(1, std::memory_order_relaxed);
    std::int64_t m = max.load(std::memory_order_relaxed);
    while (ns > m && !max.compare_exchange_weak(m, ns)) {
    }
  }
  // Upper bound of the bucket holding the q-quantile.
  std::int64_t quantile(double q) const {
    std::uint64_t total = n.load(), seen = 0;
    for (unsigned k = 0; k < 32; ++k) {
      seen += b[k].load();
      if (total && seen >= q * total) return std::int64_t{1} << (k + 1);
    }
    return -1;
  }
};

struct Blk {
  char *p;
  unsigned order;
  bool excl;
  std::uint64_t tag;
};

struct Shared {
  labyrinth_pool *pool;
  char *base;
  std::size_t npages;
  std::vector<std::atomic<std::uint8_t>> held;
  std::atomic<bool> stop{false};
  std::atomic<long> doubles{0}, corrupt{0}, bad_status{0};
  // Remote frees: shared blocks anyone may free.
  std::mutex remote_mu;
  std::deque<Blk> remote;
  // Mailboxes for transfers, one per thread.
  struct Box {
    std::mutex mu;
    std::vector<Blk> blocks;
    std::atomic<labyrinth_owner> id{0};
    bool closed = false;
  };
  std::vector<Box> boxes;
  Histogram atomic_ok, atomic_nomem, overshoot;
  std::atomic<std::uint64_t> ops{0}, allocs{0}, frees{0}, remote_frees{0}, transfers{0}, waits{0},
      wait_timeouts{0}, wait_ok{0}, trims{0}, nomem{0};
  std::atomic<std::int64_t> worst_overshoot_ns{0}, worst_early_ns{0};
  std::atomic<std::uint64_t> late_timeouts{0}, early_timeouts{0};
  std::atomic<std::uint64_t> allocs_by_order[LABYRINTH_MAX_ORDER + 1] = {};
  std::atomic<std::uint64_t> left_blocks{0};
  std::int64_t slack_ns;

  Shared(labyrinth_pool *p, std::size_t threads, std::int64_t slack)
      : pool(p), held(0), boxes(threads), slack_ns(slack) {
    void *b = nullptr;
    std::size_t bytes = 0;
    labyrinth_pool_arena(p, &b, &bytes);
    base = static_cast<char *>(b);
    npages = bytes / 4096;
    held = std::vector<std::atomic<std::uint8_t>>(npages);
  }

  std::size_t index(const void *pg) const { return (static_cast<const char *>(pg) - base) / 4096; }

  void adopt(Blk &b, std::uint64_t tag) {
    std::size_t i = index(b.p), n = std::size_t{1} << b.order;
    for (std::size_t k = 0; k < n; ++k)
      if (held[i + k].exchange(1)) ++doubles;
    b.tag = tag;
    for (std::size_t k = 0; k < n; ++k) {
      std::uint64_t v = tag ^ (i + k);
      std::memcpy(b.p + k * 4096, &v, 8);
      std::memcpy(b.p + k * 4096 + 4088, &v, 8);
    }
  }
  // Check the data and give the pages up in the page map (before the free:
  // afterwards another thread may be handed them).
  void release(const Blk &b) {
    std::size_t i = index(b.p), n = std::size_t{1} << b.order;
    for (std::size_t k = 0; k < n; ++k) {
      std::uint64_t v1, v2, want = b.tag ^ (i + k);
      std::memcpy(&v1, b.p + k * 4096, 8);
      std::memcpy(&v2, b.p + k * 4096 + 4088, 8);
      if (v1 != want || v2 != want) ++corrupt;
      held[i + k].store(0);
    }
  }
};

void worker(Shared &s, unsigned me, std::uint64_t seed) {
  Shared::Box &mybox = s.boxes[me];
  mybox.id = labyrinth_owner_self();
  std::uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
  auto rnd = [&] {
    r ^= r << 13;
    r ^= r >> 7;
    r ^= r << 17;
    return r;
  };
  std::vector<Blk> mine;
  // How much a thread may hold swings every 200 ms between a quarter of its
  // share and more than its share: the pool cycles between plenty and
  // exhaustion (pressure on and off, waiters, the reserve).
  const std::size_t share = s.npages / s.boxes.size();
  auto cap = [&] { return (now_ns() / 200000000) % 2 ? share / 4 : share + share / 3; };
  std::uint64_t tag = std::uint64_t{me} << 48;
  auto free_one = [&](std::size_t j) {
    Blk b = mine[j];
    mine[j] = mine.back();
    mine.pop_back();
    s.release(b);
    labyrinth_status st = (b.order == 0 && (rnd() & 1)) ? labyrinth_free_page_inline(s.pool, b.p)
                                                        : labyrinth_free_pages(s.pool, b.p);
    if (st != LABYRINTH_OK) ++s.bad_status;
    ++s.frees;
  };
  while (!s.stop.load(std::memory_order_relaxed)) {
    std::uint64_t x = rnd();
    ++s.ops;
    // Take what was transferred to us.
    if ((x & 7) == 0) {
      std::lock_guard<std::mutex> lock(mybox.mu);
      for (Blk &b : mybox.blocks) mine.push_back(b);
      mybox.blocks.clear();
    }
    unsigned what = (x >> 3) % 100;
    const std::size_t limit = cap();
    if (mine.size() > limit) what = 55 + what % 30;  // over the limit: give back
    if (what < 55 && mine.size() < limit) {
      // Allocate: the kind decides the flags.
      const std::uint64_t y = rnd();  // independent draws for kind and order
      unsigned kind = y % 20, order = 0;  // 0-9 ATOMIC, 10-12 WAIT, 13-19 neither
      if ((y >> 8) % 4 == 0) order = 1 + (y >> 12) % 4;          // orders 1..4 often
      if ((y >> 16) % 256 == 0) order = 5 + (y >> 32) % 6;       // up to 10, rarely
      void *pg = nullptr;
      labyrinth_status st = LABYRINTH_OK;
      bool excl = true;
      if (kind < 10) {  // ATOMIC: timed
        std::int64_t t0 = now_ns();
        if (kind < 3) {
          pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(s.pool);
          order = 0;
          st = pg ? LABYRINTH_OK : labyrinth_last_status();
        } else if (kind < 6) {
          pg = labyrinth_alloc_page_inline(s.pool);
          order = 0;
          st = pg ? LABYRINTH_OK : labyrinth_last_status();
        } else {
          excl = kind < 9;
          st = labyrinth_alloc_pages(s.pool, order,
                                     LABYRINTH_GFP_ATOMIC | (excl ? LABYRINTH_GFP_EXCLUSIVE : 0), 0, &pg);
        }
        std::int64_t dt = now_ns() - t0;
        if (st == LABYRINTH_OK) s.atomic_ok.add(dt);
        else if (st == LABYRINTH_ERR_NOMEM) s.atomic_nomem.add(dt);
        else ++s.bad_status;
      } else if (kind < 13) {  // WAIT with a timeout
        std::uint32_t timeout = static_cast<std::uint32_t>((x >> 24) % 11);  // 0..10 ms
        excl = kind != 12;
        labyrinth_gfp gfp = LABYRINTH_GFP_WAIT | (excl ? LABYRINTH_GFP_EXCLUSIVE : 0) |
                            (((x >> 30) & 3) == 0 ? LABYRINTH_GFP_ZERO : 0);
        ++s.waits;
        std::int64_t t0 = now_ns();
        st = labyrinth_alloc_pages(s.pool, order, gfp, timeout, &pg);
        std::int64_t dt = now_ns() - t0, limit = std::int64_t{timeout} * 1000000;
        if (st == LABYRINTH_ERR_TIMEOUT) {
          ++s.wait_timeouts;
          if (dt < limit - 1000000) {  // 1 ms: clock granularity
            ++s.early_timeouts;
            std::int64_t e = limit - dt, m = s.worst_early_ns.load();
            while (e > m && !s.worst_early_ns.compare_exchange_weak(m, e)) {
            }
          }
          std::int64_t over = dt - limit, m = s.worst_overshoot_ns.load();
          s.overshoot.add(over > 0 ? over : 0);
          while (over > m && !s.worst_overshoot_ns.compare_exchange_weak(m, over)) {
          }
          if (over > s.slack_ns) ++s.late_timeouts;
        } else if (st == LABYRINTH_OK) {
          ++s.wait_ok;
          if (dt > limit + s.slack_ns) ++s.late_timeouts;  // served, but far past its timeout
        } else {
          ++s.bad_status;
        }
      } else {  // neither: NOMEM at once when nothing is free
        excl = kind < 17;
        st = labyrinth_alloc_pages(s.pool, order, excl ? LABYRINTH_GFP_EXCLUSIVE : 0, 0, &pg);
        if (st != LABYRINTH_OK && st != LABYRINTH_ERR_NOMEM) ++s.bad_status;
      }
      if (st == LABYRINTH_ERR_NOMEM) ++s.nomem;
      if (st == LABYRINTH_OK) {
        Blk b{static_cast<char *>(pg), order, excl, 0};
        s.adopt(b, ++tag);
        mine.push_back(b);
        ++s.allocs;
        ++s.allocs_by_order[order];
      }
    } else if (what < 85 && !mine.empty()) {
      std::size_t j = (x >> 10) % mine.size();
      Blk b = mine[j];
      unsigned how = (x >> 40) % 4;
      if (!b.excl && how == 0) {  // hand a shared block to whoever frees next
        mine[j] = mine.back();
        mine.pop_back();
        std::lock_guard<std::mutex> lock(s.remote_mu);
        s.remote.push_back(b);
      } else if (b.excl && how == 1) {  // transfer to another thread
        unsigned to = static_cast<unsigned>((x >> 44) % s.boxes.size());
        Shared::Box &box = s.boxes[to];
        labyrinth_owner id = box.id.load();
        if (to == me || !id) continue;
        std::lock_guard<std::mutex> lock(box.mu);
        if (box.closed) continue;  // it has left
        if (labyrinth_page_transfer(s.pool, b.p, id) != LABYRINTH_OK) {
          ++s.bad_status;
          continue;
        }
        mine[j] = mine.back();
        mine.pop_back();
        box.blocks.push_back(b);
        ++s.transfers;
      } else {
        free_one(j);
      }
    } else if (what < 95) {  // free someone else's shared block
      Blk b{};
      {
        std::lock_guard<std::mutex> lock(s.remote_mu);
        if (s.remote.empty()) continue;
        b = s.remote.front();
        s.remote.pop_front();
      }
      s.release(b);
      if (labyrinth_free_pages(s.pool, b.p) != LABYRINTH_OK) ++s.bad_status;
      ++s.remote_frees;
    } else if (what == 99 && (x >> 50) % 16 == 0) {
      if (labyrinth_pool_trim(s.pool) != LABYRINTH_OK) ++s.bad_status;
      ++s.trims;
    }
  }
  // Leave: close the mailbox, free most blocks, exit holding up to three
  // exclusive ones (orphans) and whatever the cache holds.
  {
    std::lock_guard<std::mutex> lock(mybox.mu);
    for (Blk &b : mybox.blocks) mine.push_back(b);
    mybox.blocks.clear();
    mybox.closed = true;
  }
  std::size_t keep = 0;
  for (std::size_t j = mine.size(); j-- > 0;) {
    if (mine[j].excl && keep < 3) {
      s.release(mine[j]);  // not ours to check after we exit
      ++keep;
      continue;
    }
    free_one(j);
  }
  s.left_blocks += keep;
}

void run_stress(std::uint32_t extra_flags, double seconds) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned threads = static_cast<unsigned>(env_double("LABYRINTH_STRESS_THREADS", 2.0 * cores));
  const std::int64_t slack_ns =
      static_cast<std::int64_t>(env_double("LABYRINTH_STRESS_WAIT_SLACK_MS", 1000) * 1e6);
  labyrinth_pool_options o = options(8u << 20);  // 2048 pages
  o.flags |= extra_flags;
  o.thread_cache_pages = 32;
  o.thread_cache_batch = 8;
  o.max_thread_caches = threads > 1 ? threads - 1 : 1;  // one thread takes the shared path
  o.watermark_min_pages = 16;
  PoolGuard guard(o);
  ASSERT_NE(guard.pool, nullptr);
  Shared s(guard.pool, threads, slack_ns);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i) ts.emplace_back(worker, std::ref(s), i, 1000 + i);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
  s.stop = true;
  for (auto &t : ts) t.join();
  // Shared blocks nobody freed: anyone may.
  for (Blk &b : s.remote) {
    s.release(b);
    ASSERT_EQ(labyrinth_free_pages(guard.pool, b.p), LABYRINTH_OK);
  }
  EXPECT_EQ(s.doubles.load(), 0) << "pages handed out twice";
  EXPECT_EQ(s.corrupt.load(), 0) << "blocks whose data changed while owned";
  EXPECT_EQ(s.bad_status.load(), 0) << "calls that returned what their flags do not allow";
  EXPECT_EQ(s.early_timeouts.load(), 0u) << "WAIT timed out early by up to "
                                         << s.worst_early_ns.load() / 1e6 << " ms";
  EXPECT_EQ(s.late_timeouts.load(), 0u) << "WAIT calls returned more than " << slack_ns / 1e6
                                        << " ms after their timeout";
  // The workload did what it claims: exhaustion, sleeping waiters, timeouts, transfers.
  EXPECT_GT(s.nomem.load() + s.atomic_nomem.n.load(), 0u);
  EXPECT_GT(s.wait_timeouts.load(), 0u);
  EXPECT_GT(s.transfers.load(), 0u);
  EXPECT_GT(s.remote_frees.load(), 0u);

  // Every page back: orphans reclaimed, caches returned at thread exit.
  labyrinth_stats st = stats(guard.pool);
  std::size_t reclaimed = 0;
  ASSERT_EQ(labyrinth_pool_reclaim_orphans(guard.pool, &reclaimed), LABYRINTH_OK);
  // Orphans: the blocks threads kept on purpose, plus transfers that reached
  // a mailbox after its owner's last look (counted by the pool).
  EXPECT_GE(reclaimed, s.left_blocks.load());
  // This thread's cache (it freed the leftovers above) goes back with trim;
  // the workers' caches went back when they exited.
  ASSERT_EQ(labyrinth_pool_trim(guard.pool), LABYRINTH_OK);
  labyrinth_stats after = stats(guard.pool);
  EXPECT_EQ(after.allocated_pages, 0u) << "pages lost";
  EXPECT_EQ(after.orphaned_pages, 0u);
  EXPECT_EQ(after.cached_pages, 0u) << "caches of exited threads not returned";
  EXPECT_EQ(after.inflight_pages, 0u);
  expect_accounting(after);
  expect_maximal(guard.pool, o);

  std::printf("[stress] flags 0x%x: %u threads (%u cores) for %.1f s: %llu operations, %llu allocations "
              "(by order 0..10:",
              extra_flags, threads, cores, seconds, (unsigned long long)s.ops.load(),
              (unsigned long long)s.allocs.load());
  for (auto &c : s.allocs_by_order) std::printf(" %llu", (unsigned long long)c.load());
  std::printf("), %llu frees, %llu remote frees, %llu transfers, %llu trims, %zu orphan blocks "
              "reclaimed (%llu pages before reclaim)\n",
              (unsigned long long)s.frees.load(), (unsigned long long)s.remote_frees.load(),
              (unsigned long long)s.transfers.load(), (unsigned long long)s.trims.load(), reclaimed,
              (unsigned long long)st.orphaned_pages);
  std::printf("[stress] ATOMIC: %llu served, latency p99.9 <= %lld ns, max %lld ns; %llu refused "
              "(NOMEM, exhaustion), latency p99.9 <= %lld ns, max %lld ns\n",
              (unsigned long long)s.atomic_ok.n.load(), (long long)s.atomic_ok.quantile(0.999),
              (long long)s.atomic_ok.max.load(), (unsigned long long)s.atomic_nomem.n.load(),
              (long long)s.atomic_nomem.quantile(0.999), (long long)s.atomic_nomem.max.load());
  std::printf("[stress] WAIT: %llu calls, %llu served, %llu timed out (0..10 ms timeouts); "
              "TIMEOUT past the timeout by p99 <= %.2f ms, p99.9 <= %.2f ms, max %.2f ms (bound "
              "%.0f ms); pool: %llu waits slept, %llu NOMEM+TIMEOUT failures, %llu pressure "
              "events, %llu reserve uses, %llu other threads' caches taken back (%llu pages)\n",
              (unsigned long long)s.waits.load(), (unsigned long long)s.wait_ok.load(),
              (unsigned long long)s.wait_timeouts.load(), s.overshoot.quantile(0.99) / 1e6,
              s.overshoot.quantile(0.999) / 1e6, s.worst_overshoot_ns.load() / 1e6, slack_ns / 1e6, (unsigned long long)after.waits,
              (unsigned long long)(after.failures[LABYRINTH_ERR_NOMEM] + after.failures[LABYRINTH_ERR_TIMEOUT]),
              (unsigned long long)after.pressure_events, (unsigned long long)after.reserve_uses,
              (unsigned long long)after.cache_reclaims, (unsigned long long)after.reclaimed_pages);
}

}  // namespace

// Pinned, so the depot also carries magazines (pinned pools only),
// unless RLIMIT_MEMLOCK refuses the 8 MiB: then unpinned, and it says so.
TEST(Stress, ManyThreadsNearExhaustionLoseNothing) {
  std::uint32_t pin = LABYRINTH_POOL_PIN;
  labyrinth_pool_options o = options(8u << 20);
  o.flags = (o.flags & ~LABYRINTH_POOL_PIN_MASK) | LABYRINTH_POOL_PIN;
  labyrinth_pool *probe = nullptr;
  if (labyrinth_pool_create(&o, &probe) == LABYRINTH_OK) {
    labyrinth_pool_destroy(probe);
  } else {
    std::printf("[stress] an 8 MiB pinned pool was refused (%s): running unpinned, without "
                "magazines\n",
                labyrinth_last_error_message());
    pin = 0;
  }
  run_stress(pin, env_double("LABYRINTH_STRESS_SECONDS", 3));
}

// The same under the debug modes that touch every freed page (a quarter of the time).
TEST(Stress, PoisonAndScrubUnderTheSameLoad) {
  run_stress(LABYRINTH_POOL_POISON | LABYRINTH_POOL_SCRUB,
             std::max(1.0, env_double("LABYRINTH_STRESS_SECONDS", 3) / 4));
}
