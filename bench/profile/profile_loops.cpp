// profile_loops.cpp - small loops over Labyrinth's hot paths, one per
// function named loop_*, for instruction counting under
//   valgrind --tool=callgrind --toggle-collect='loop_*'
// and for reading the generated code with objdump (bench/profile/profile.sh
// does both). Not a timing benchmark: the driver does not run it.
//
// Usage: labyrinth_bench_profile MODE N
//   inline_pair | exported_pair | bare_pair       N pairs (alloc, touch, free)
//   inline_burst | exported_burst | call_burst     N bursts of 256 (call_burst:
//                                                  the exported calls out of line)
//   slow                                           N x (trim; 64 allocations)
//   order2 | order10                               N alloc+free of a block
//                                                  (labyrinth_free_pages_order)
// Environment: LABYRINTH_PROFILE_POOL_MIB, the pool's size (default 128).
//   cross                                          N rounds: 4096 allocations,
//                                                  transfers, then frees on
//                                                  another thread
#include <labyrinth/labyrinth.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "profile_loops.hpp"

using profile::touch;

NOINLINE long loop_inline_pair(labyrinth_pool *pool, long n) {
  long bad = 0;
  for (long i = 0; i < n; ++i) {
    void *p = labyrinth_alloc_page_inline(pool);
    if (!p) return -1;
    touch(p, std::uint64_t(i));
    bad += labyrinth_free_page_inline(pool, p) != LABYRINTH_OK;
  }
  return bad;
}

NOINLINE long loop_exported_pair(labyrinth_pool *pool, long n) {
  long bad = 0;
  for (long i = 0; i < n; ++i) {
    void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    if (!p) return -1;
    touch(p, std::uint64_t(i));
    bad += labyrinth_free_pages(pool, p) != LABYRINTH_OK;
  }
  return bad;
}

struct Bare {
  void *slots[4096];
  unsigned n = 0;
};

NOINLINE long loop_bare_pair(Bare *s, long n) {
  for (long i = 0; i < n; ++i) {
    if (s->n == 0) return -1;
    void *p = s->slots[--s->n];
    touch(p, std::uint64_t(i));
    if (s->n == 4096) return -1;
    s->slots[s->n++] = p;
  }
  return 0;
}

NOINLINE long loop_inline_burst(labyrinth_pool *pool, long n) {
  void *v[256];
  long bad = 0;
  for (long r = 0; r < n; ++r) {
    for (int j = 0; j < 256; ++j) {
      v[j] = labyrinth_alloc_page_inline(pool);
      if (!v[j]) return -1;
      touch(v[j], std::uint64_t(r * 256 + j));
    }
    for (int j = 0; j < 256; ++j) bad += labyrinth_free_page_inline(pool, v[j]) != LABYRINTH_OK;
  }
  return bad;
}

NOINLINE long loop_exported_burst(labyrinth_pool *pool, long n) {
  void *v[256];
  long bad = 0;
  for (long r = 0; r < n; ++r) {
    for (int j = 0; j < 256; ++j) {
      v[j] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      if (!v[j]) return -1;
      touch(v[j], std::uint64_t(r * 256 + j));
    }
    for (int j = 0; j < 256; ++j) bad += labyrinth_free_pages(pool, v[j]) != LABYRINTH_OK;
  }
  return bad;
}

// The exported calls out of line, as dlsym, Python and Rust reach them.
struct Calls {
  void *(*alloc)(labyrinth_pool *);
  labyrinth_status (*free)(labyrinth_pool *, void *);
};

NOINLINE long loop_call_burst(labyrinth_pool *pool, long n, const Calls *calls) {
  void *v[256];
  long bad = 0;
  for (long r = 0; r < n; ++r) {
    for (int j = 0; j < 256; ++j) {
      v[j] = calls->alloc(pool);
      if (!v[j]) return -1;
      touch(v[j], std::uint64_t(r * 256 + j));
    }
    for (int j = 0; j < 256; ++j) bad += calls->free(pool, v[j]) != LABYRINTH_OK;
  }
  return bad;
}

NOINLINE long loop_refill64(labyrinth_pool *pool, void **v) {
  for (int j = 0; j < 64; ++j) {
    v[j] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    if (!v[j]) return -1;
    touch(v[j], std::uint64_t(j));
  }
  return 0;
}

NOINLINE long loop_order(labyrinth_pool *pool, unsigned order, long n) {
  for (long i = 0; i < n; ++i) {
    void *p = nullptr;
    if (labyrinth_alloc_pages(pool, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &p) !=
        LABYRINTH_OK)
      return -1;
    touch(p, std::uint64_t(i));
    if (labyrinth_free_pages_order(pool, p, order) != LABYRINTH_OK) return -1;
  }
  return 0;
}

NOINLINE long loop_alloc_many(labyrinth_pool *pool, void **v, long n) {
  for (long i = 0; i < n; ++i) {
    v[i] = labyrinth_alloc_page_inline(pool);
    if (!v[i]) return -1;
    touch(v[i], std::uint64_t(i));
  }
  return 0;
}

NOINLINE long loop_transfer(labyrinth_pool *pool, void **v, long n, labyrinth_owner to) {
  for (long i = 0; i < n; ++i)
    if (labyrinth_page_transfer(pool, v[i], to) != LABYRINTH_OK) return -1;
  return 0;
}

NOINLINE long loop_free_remote(labyrinth_pool *pool, void **v, long n) {
  long bad = 0;
  for (long i = 0; i < n; ++i) bad += labyrinth_free_page_inline(pool, v[i]) != LABYRINTH_OK;
  return bad;
}

int main(int argc, char **argv) {
  std::string mode;
  long n = 0;
  if (!profile::args(argc, argv, &mode, &n)) return 2;
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  o.size_bytes = std::size_t{128} << 20;
  if (const char *mib = std::getenv("LABYRINTH_PROFILE_POOL_MIB"))  // e.g. 64: order 10 on a small pool
    o.size_bytes = std::size_t(std::strtoul(mib, nullptr, 10)) << 20;
  o.flags &= ~LABYRINTH_POOL_PIN_MASK;  // valgrind: no need to lock 128 MiB
  labyrinth_pool *pool;
  if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) {
    std::fprintf(stderr, "pool: %s\n", labyrinth_last_error_message());
    return 3;
  }
  long rc = 0;
  // Warm up outside the collected functions: the thread's cache exists and
  // holds pages, as in a running program.
  {
    void *v[256];
    for (int j = 0; j < 256; ++j) v[j] = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    for (int j = 0; j < 256; ++j) labyrinth_free_pages(pool, v[j]);
  }
  if (mode == "inline_pair") {
    rc = loop_inline_pair(pool, n);
  } else if (mode == "exported_pair") {
    rc = loop_exported_pair(pool, n);
  } else if (mode == "bare_pair") {
    static Bare s;
    static char pages[64][4096] __attribute__((aligned(4096)));
    for (auto &pg : pages) s.slots[s.n++] = pg;
    rc = loop_bare_pair(&s, n);
  } else if (mode == "inline_burst") {
    rc = loop_inline_burst(pool, n);
  } else if (mode == "call_burst") {
    static volatile Calls calls = {labyrinth_void_alloc_page_gfp_atomic_exclusive, labyrinth_free_pages};
    const Calls c = {calls.alloc, calls.free};  // loaded at run time: never inlined
    rc = loop_call_burst(pool, n, &c);
  } else if (mode == "exported_burst") {
    rc = loop_exported_burst(pool, n);
  } else if (mode == "slow") {
    void *v[64];
    for (long i = 0; i < n && rc == 0; ++i) {
      labyrinth_pool_trim(pool);
      rc = loop_refill64(pool, v);
      for (void *p : v) labyrinth_free_pages(pool, p);
    }
  } else if (mode == "order2" || mode == "order10") {
    rc = loop_order(pool, mode == "order2" ? 2 : 10, n);
  } else if (mode == "cross") {
    // A second thread that frees what it is given, round by round.
    constexpr long kPages = 4096;
    std::vector<void *> v(kPages);
    std::mutex mu;
    std::condition_variable cv;
    labyrinth_owner other = 0;
    long round = 0, done = 0;
    long free_bad = 0;
    std::thread t([&] {
      std::unique_lock<std::mutex> lk(mu);
      other = labyrinth_owner_self();
      cv.notify_all();
      for (long r = 1; r <= n; ++r) {
        cv.wait(lk, [&] { return round >= r; });
        free_bad += loop_free_remote(pool, v.data(), kPages);
        done = r;
        cv.notify_all();
      }
    });
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return other != 0; });
    }
    for (long r = 1; r <= n && rc == 0; ++r) {
      rc = loop_alloc_many(pool, v.data(), kPages);
      if (rc == 0) rc = loop_transfer(pool, v.data(), kPages, other);
      std::unique_lock<std::mutex> lk(mu);
      round = r;
      cv.notify_all();
      cv.wait(lk, [&] { return done >= r; });
    }
    if (rc != 0) {  // let the thread go
      std::unique_lock<std::mutex> lk(mu);
      round = n;
      cv.notify_all();
    }
    t.join();
    rc = rc ? rc : free_bad;
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  if (rc != 0) {
    std::fprintf(stderr, "%s failed (%ld): %s\n", mode.c_str(), rc, labyrinth_last_error_message());
    return 1;
  }
  labyrinth_pool_destroy(pool);
  return 0;
}
