// fuzz_pool.cpp - libFuzzer target: the input is a program of C ABI calls on
// a small pool, checked against a shadow model after every call.
//
// The first bytes choose the pool (size, reserve, watermarks, thread caches,
// SCRUB / GUARD / POISON); the rest is a sequence of operations: allocations
// of any order and flags (labyrinth_alloc_pages, the flagship, the inline
// fast path), frees, transfers (to a helper thread that lives as long as the
// process, to threads that exited, to ids no thread ever had), stats, trim,
// reclaim, destroy, pools re-created, and misuse of every kind (double free,
// foreign / interior / tail / NULL pointers, NULL handles, bad struct_size,
// bad flags and orders, bad owners, destroy with live pages, bad options).
//
// Checked after every operation:
//  - no page is ever handed out twice (shadow page map), blocks are aligned
//    to their size and inside the arena, the data written into an owned
//    block is intact until it is freed;
//  - labyrinth_pool_stats: free + reserve + cached + allocated == total,
//    allocated == the model's, orphaned == the model's, buddy blocks +
//    depot == free pages, reserve <= target, nothing in flight;
//  - the predicted status of every call (the model knows who owns what), the
//    thread's last status and message after a failure, outputs untouched on
//    failure, and a failed call changes nothing (stats compared);
//  - NOMEM / TIMEOUT only when the model says nothing could be served (no
//    free page for ATOMIC; at or below the min watermark otherwise);
//  - SCRUB and GFP_ZERO blocks come zeroed;
//  - at the end, with every block freed, orphans reclaimed and caches
//    trimmed, the pool equals a fresh pool with the same options.
// A broken check prints what broke and aborts: libFuzzer saves the input.
#include <labyrinth/labyrinth.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include "fuzz_check.hpp"

// Whether pkey_alloc works here (x86 PKU or arm64 POE, enabled by the
// kernel): PKEYS pools are then created, else refused with UNSUPPORTED.
static bool machine_has_pkeys() {
#ifdef SYS_pkey_alloc
  static const bool has = [] {
    long k = syscall(SYS_pkey_alloc, 0ul, 0ul);
    if (k >= 0) syscall(SYS_pkey_free, k);
    return k >= 0;
  }();
  return has;
#else
  return false;
#endif
}

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;
constexpr std::size_t kNone = SIZE_MAX;

// Operations run over the whole session (printed at exit for the CI report).
std::uint64_t g_total_ops = 0, g_total_inputs = 0;
std::uint64_t g_refused[LABYRINTH_STATUS_COUNT] = {};  // refusals checked, by status
void note_refusal(labyrinth_status st) {
  if (st > 0 && st < LABYRINTH_STATUS_COUNT) ++g_refused[st];
}
void print_totals() {
  std::fprintf(stderr, "fuzz_pool: %llu operations checked in %llu inputs; refusals checked:",
               (unsigned long long)g_total_ops, (unsigned long long)g_total_inputs);
  for (int k = 1; k < LABYRINTH_STATUS_COUNT; ++k)
    if (g_refused[k])
      std::fprintf(stderr, " %s %llu", labyrinth_status_name(static_cast<labyrinth_status>(k)) + 14,
                   (unsigned long long)g_refused[k]);
  std::fprintf(stderr, "\n");
}

// ---- the input ----------------------------------------------------------
struct Input {
  const std::uint8_t *d;
  std::size_t n, i = 0;
  bool more() const { return i < n; }
  std::uint8_t u8() { return i < n ? d[i++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return u16() | (std::uint32_t{u16()} << 16); }
};

// ---- a thread that runs jobs for the main thread, one at a time ----------
class Helper {
 public:
  Helper() : t_([this] { loop(); }) {
    run([this] { id_ = labyrinth_owner_self(); });
  }
  labyrinth_owner id() const { return id_; }
  void run(const std::function<void()> &job) {
    std::unique_lock<std::mutex> lock(mu_);
    job_ = &job;
    cv_.notify_all();
    cv_.wait(lock, [this] { return job_ == nullptr; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return job_ != nullptr; });
      (*job_)();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()> *job_ = nullptr;
  labyrinth_owner id_ = 0;
  std::thread t_;  // never joined: lives as long as the process
};

Helper &helper() {
  static Helper *h = new Helper;
  return *h;
}

// Owner ids of threads that have exited (they were ours); grows across inputs.
std::set<labyrinth_owner> &dead_ids() {
  static auto *s = new std::set<labyrinth_owner>;
  return *s;
}

// Offset of the first non-zero byte, or bytes if none.
__attribute__((noinline)) std::size_t expect_zero(const void *p, std::size_t bytes) {
  const std::uint8_t *c = static_cast<const std::uint8_t *>(p);
  for (std::size_t k = 0; k < bytes; ++k)
    if (c[k]) return k;
  return bytes;
}

labyrinth_stats get_stats(const labyrinth_pool *p) {
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  labyrinth_status st = labyrinth_pool_stats(p, &s);
  CHECK(st == LABYRINTH_OK, "labyrinth_pool_stats: %s", labyrinth_status_name(st));
  return s;
}

// Everything except the failure counters: a refused call changes none of it.
void expect_same(const labyrinth_stats &a, const labyrinth_stats &b, const char *what) {
#define SAME(f) CHECK(a.f == b.f, "%s changed " #f ": %llu -> %llu", what, (unsigned long long)a.f, (unsigned long long)b.f)
  SAME(total_pages); SAME(free_pages); SAME(reserve_pages); SAME(reserve_target);
  SAME(cached_pages); SAME(allocated_pages); SAME(inflight_pages); SAME(orphaned_pages);
  SAME(shared_free_pages); SAME(reserve_uses); SAME(waits); SAME(timeouts); SAME(refills);
  SAME(drains); SAME(pressure_events); SAME(thread_caches_in_use); SAME(flags);
  SAME(cache_reclaims); SAME(reclaimed_pages);
  for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k) SAME(free_blocks[k]);
#undef SAME
}

// ---- the model --------------------------------------------------------
struct Block {
  std::size_t idx;
  unsigned order;
  bool excl;
  labyrinth_owner owner;  // NONE for a non-exclusive block
  std::uint64_t tag;
};

struct Fuzz {
  Input in;
  labyrinth_pool_options opts{};
  labyrinth_pool *pool = nullptr;
  std::uint8_t *base = nullptr;
  std::size_t npages = 0, size = 0;
  std::vector<std::size_t> head_of;    // page -> first page of its live block, kNone if free
  std::map<std::size_t, Block> live;   // by first page
  std::size_t live_pages = 0;
  std::uint64_t next_tag = 1;
  labyrinth_owner me = 0;
  std::uint64_t ops = 0;
  bool trace = false;

  explicit Fuzz(const std::uint8_t *d, std::size_t n) : in{d, n} { me = labyrinth_owner_self(); }

  bool scrub() const { return opts.flags & LABYRINTH_POOL_SCRUB; }

  // -- choosing and creating a pool --
  void choose_options() {
    labyrinth_pool_options_init(&opts);
    std::uint8_t shape = in.u8();
    npages = 1 + in.u16() % 640;
    if (shape & 1) npages = std::size_t{1} << (in.u8() % 11);  // exact powers of two too
    // One in 64 is 32-48 MiB with caches of up to 2048 pages: only there can
    // a cache's high mark rise (past 512 pages, up to 1/16 of the pool), which
    // bursts (exhaust, free all) then exercise.
    const bool big = (shape & 0xFC) == 0xFC;  // rare: each such input takes ~0.3 s
    if (big) npages = 8192 + 256 * (in.u8() % 17);
    opts.size_bytes = npages * kPage;
    opts.flags = 0;
    std::uint8_t f = in.u8();
    if (f & 1) opts.flags |= LABYRINTH_POOL_SCRUB;
    if (f & 2) opts.flags |= LABYRINTH_POOL_GUARD;
    if (f & 4) opts.flags |= LABYRINTH_POOL_POISON;
    if (f & 8) opts.flags |= LABYRINTH_POOL_HUGEPAGES;
    // a quarter pinned: magazines (mlock is slow)
    if ((f & 48) == 48) opts.flags = (opts.flags & ~LABYRINTH_POOL_PIN_MASK) | LABYRINTH_POOL_PIN;
    std::uint8_t r = in.u8();
    opts.atomic_reserve_pages = (r & 0x80) ? LABYRINTH_AUTO : r % (npages + 1);
    std::uint8_t w = in.u8();
    if (w & 1) {
      std::size_t a = in.u16() % (npages + 1), b = in.u16() % (npages + 1), c = in.u16() % (npages + 1);
      std::size_t v[3] = {a, b, c};
      std::sort(v, v + 3);
      opts.watermark_min_pages = (w & 2) ? v[0] : 0;
      opts.watermark_low_pages = v[1];
      opts.watermark_high_pages = v[2];
    }
    std::uint8_t c = in.u8();
    opts.max_thread_caches = c % 5 == 4 ? 64 : c % 5;  // 0..3 or the default
    opts.thread_cache_pages = big ? 1 + in.u16() % 2048 : 1 + in.u8() % 64;
    opts.thread_cache_batch = 1 + in.u8() % opts.thread_cache_pages;
    if (shape & 2)  // an older, shorter options struct: later fields take defaults
      opts.struct_size = offsetof(labyrinth_pool_options, numa_node) + sizeof(int);
  }

  void create() {
    choose_options();
    labyrinth_pool *p = nullptr;
    labyrinth_status st = labyrinth_pool_create(&opts, &p);
    if (st != LABYRINTH_OK && (opts.flags & LABYRINTH_POOL_PIN)) {
      // RLIMIT_MEMLOCK refused the pin (a user without CAP_IPC_LOCK): unpinned then.
      opts.flags &= ~LABYRINTH_POOL_PIN_MASK;
      st = labyrinth_pool_create(&opts, &p);
    }
    CHECK(st == LABYRINTH_OK, "create %zu pages flags 0x%x: %s", npages, opts.flags,
          labyrinth_status_name(st));
    pool = p;
    if (opts.struct_size < sizeof opts) {  // what the library saw: defaults past the struct
      labyrinth_pool_options d;
      labyrinth_pool_options_init(&d);
      std::memcpy(&d, &opts, opts.struct_size);
      d.struct_size = sizeof d;
      opts = d;
    }
    void *b = nullptr;
    CHECK(labyrinth_pool_arena(pool, &b, &size) == LABYRINTH_OK);
    base = static_cast<std::uint8_t *>(b);
    CHECK(size == npages * kPage);
    CHECK(reinterpret_cast<std::uintptr_t>(base) % (kPage << LABYRINTH_MAX_ORDER) == 0,
          "arena %p not aligned to the largest block", b);
    head_of.assign(npages, kNone);
    live.clear();
    live_pages = 0;
    labyrinth_stats s = get_stats(pool);
    CHECK(s.allocated_pages == 0 && s.cached_pages == 0);
    std::size_t target = opts.atomic_reserve_pages == LABYRINTH_AUTO
                             ? std::min<std::size_t>(npages / 64, 256) : opts.atomic_reserve_pages;
    CHECK(s.reserve_target == target && s.reserve_pages == target);
    std::size_t low = opts.watermark_low_pages == LABYRINTH_AUTO ? npages / 16 : opts.watermark_low_pages;
    std::size_t high = opts.watermark_high_pages == LABYRINTH_AUTO ? npages / 8 : opts.watermark_high_pages;
    CHECK(s.watermark_min == opts.watermark_min_pages && s.watermark_low == low && s.watermark_high == high);
    CHECK((s.flags & ~LABYRINTH_POOL_HUGEPAGES) == (opts.flags & ~LABYRINTH_POOL_HUGEPAGES),
          "flags 0x%x asked 0x%x", s.flags, opts.flags);
  }

  // -- the shadow --
  labyrinth_owner owner_kind(std::uint8_t b) {
    switch (b % 4) {
      case 0: return helper().id();
      case 1: return me;
      case 2: return LABYRINTH_OWNER_MAX - (b >> 2) % 8;  // ids no thread ever had
      default: {
        auto &dead = dead_ids();
        if (dead.empty()) return helper().id();
        auto it = dead.begin();
        std::advance(it, (b >> 2) % dead.size());
        return *it;
      }
    }
  }

  void add_block(void *pg, unsigned order, bool excl, labyrinth_owner owner) {
    auto addr = static_cast<std::uint8_t *>(pg);
    CHECK(addr >= base && addr < base + size, "block %p outside the arena", pg);
    std::size_t off = static_cast<std::size_t>(addr - base);
    CHECK(off % kPage == 0, "block %p not page aligned", pg);
    std::size_t idx = off / kPage, pages = std::size_t{1} << order;
    CHECK(idx % pages == 0, "order-%u block at page %zu not aligned to its size", order, idx);
    CHECK(idx + pages <= npages, "order-%u block at page %zu runs past the arena", order, idx);
    for (std::size_t k = 0; k < pages; ++k)
      CHECK(head_of[idx + k] == kNone, "page %zu handed out twice (already in the block at %zu)",
            idx + k, head_of[idx + k]);
    labyrinth_owner o = 0;
    unsigned ord = 99;
    CHECK(labyrinth_page_info(pool, pg, &o, &ord) == LABYRINTH_OK);
    CHECK(ord == order && o == (excl ? owner : LABYRINTH_OWNER_NONE), "page_info %llu/%u",
          (unsigned long long)o, ord);
    Block b{idx, order, excl, excl ? owner : LABYRINTH_OWNER_NONE, next_tag++};
    for (std::size_t k = 0; k < pages; ++k) {
      head_of[idx + k] = idx;
      std::uint64_t v = b.tag ^ (idx + k);
      std::memcpy(addr + k * kPage, &v, 8);                 // first and last words
      std::memcpy(addr + k * kPage + kPage - 8, &v, 8);
    }
    live[idx] = b;
    live_pages += pages;
  }

  __attribute__((noinline)) void check_content(const Block &b) {
    for (std::size_t k = 0; k < (std::size_t{1} << b.order); ++k) {
      const std::uint8_t *pg = base + (b.idx + k) * kPage;
      std::uint64_t v1, v2, want = b.tag ^ (b.idx + k);
      std::memcpy(&v1, pg, 8);
      std::memcpy(&v2, pg + kPage - 8, 8);
      CHECK(v1 == want && v2 == want, "page %zu of a live block was overwritten", b.idx + k);
    }
  }

  void remove_block(std::size_t idx) {
    auto it = live.find(idx);
    CHECK(it != live.end());
    check_content(it->second);
    std::size_t pages = std::size_t{1} << it->second.order;
    for (std::size_t k = 0; k < pages; ++k) head_of[idx + k] = kNone;
    live_pages -= pages;
    live.erase(it);
  }

  std::size_t orphan_pages() const {
    std::size_t n = 0;
    for (auto &[i, b] : live)
      if (b.excl && dead_ids().count(b.owner)) n += std::size_t{1} << b.order;
    return n;
  }

  void check_invariants() {
    labyrinth_stats s = get_stats(pool);
    CHECK(s.total_pages == npages);
    CHECK(s.free_pages + s.reserve_pages + s.cached_pages + s.allocated_pages == s.total_pages,
          "free %llu + reserve %llu + cached %llu + allocated %llu != total %llu",
          (unsigned long long)s.free_pages, (unsigned long long)s.reserve_pages,
          (unsigned long long)s.cached_pages, (unsigned long long)s.allocated_pages,
          (unsigned long long)s.total_pages);
    CHECK(s.allocated_pages == live_pages, "allocated %llu, model %zu",
          (unsigned long long)s.allocated_pages, live_pages);
    CHECK(s.inflight_pages == 0);
    CHECK(s.orphaned_pages == orphan_pages(), "orphaned %llu, model %zu",
          (unsigned long long)s.orphaned_pages, orphan_pages());
    CHECK(s.reserve_pages <= s.reserve_target);
    std::uint64_t buddy = 0;
    for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k) buddy += s.free_blocks[k] << k;
    CHECK(buddy + s.shared_free_pages == s.free_pages, "buddy %llu + shared %llu != free %llu",
          (unsigned long long)buddy, (unsigned long long)s.shared_free_pages,
          (unsigned long long)s.free_pages);
    CHECK(s.thread_caches_in_use <= opts.max_thread_caches);
    CHECK(s.metadata_bytes == npages * 8);
    if (!live.empty()) {  // one block's data, round robin
      auto it = live.lower_bound(ops % npages);
      if (it == live.end()) it = live.begin();
      check_content(it->second);
    }
  }

  // -- predictions --
  // The status labyrinth_free_pages / page_info give for ptr when called by `who`.
  labyrinth_status classify(const void *ptr, std::size_t *head) const {
    auto a = reinterpret_cast<std::uintptr_t>(ptr), b = reinterpret_cast<std::uintptr_t>(base);
    if (!ptr) return LABYRINTH_ERR_INVALID;
    if (a < b || a - b >= size) return LABYRINTH_ERR_FOREIGN;
    if ((a - b) % kPage) return LABYRINTH_ERR_INVALID;
    std::size_t i = (a - b) / kPage;
    if (head_of[i] == kNone) return LABYRINTH_ERR_DOUBLE_FREE;
    if (head_of[i] != i) return LABYRINTH_ERR_INVALID;
    *head = i;
    return LABYRINTH_OK;
  }
  labyrinth_status predict_free(const void *ptr, labyrinth_owner who, std::size_t *head) const {
    labyrinth_status st = classify(ptr, head);
    if (st != LABYRINTH_OK) return st;
    const Block &b = live.at(*head);
    if (b.excl && b.owner != who) return LABYRINTH_ERR_NOT_OWNER;
    return LABYRINTH_OK;
  }
  // labyrinth_free_pages_order: a bad order first, then what classify finds,
  // then a wrong order, then as labyrinth_free_pages.
  labyrinth_status predict_free_order(const void *ptr, labyrinth_owner who, unsigned order,
                                      std::size_t *head) const {
    if (order > LABYRINTH_MAX_ORDER) return LABYRINTH_ERR_INVALID;
    labyrinth_status st = classify(ptr, head);
    if (st != LABYRINTH_OK) return st;
    if (live.at(*head).order != order) return LABYRINTH_ERR_INVALID;
    return predict_free(ptr, who, head);
  }
  labyrinth_status predict_transfer(const void *ptr, labyrinth_owner who, labyrinth_owner to,
                                    std::size_t *head) const {
    if (to == LABYRINTH_OWNER_NONE || to > LABYRINTH_OWNER_MAX) return LABYRINTH_ERR_INVALID;
    labyrinth_status st = classify(ptr, head);
    if (st != LABYRINTH_OK) return st;
    const Block &b = live.at(*head);
    if (!b.excl) return LABYRINTH_ERR_INVALID;
    if (b.owner != who) return LABYRINTH_ERR_NOT_OWNER;
    return LABYRINTH_OK;
  }

  // A pointer for misuse: a live block, any page, any byte, or outside.
  void *pick_pointer() {
    std::uint8_t k = in.u8();
    std::uint32_t r = in.u32();
    switch (k % 8) {
      case 0: case 1: case 2: {
        if (live.empty()) break;
        auto it = live.lower_bound(r % npages);
        if (it == live.end()) it = live.begin();
        return base + it->first * kPage;
      }
      case 3: case 4: return base + (r % npages) * kPage;                 // any page
      case 5: return base + (r % npages) * kPage + 1 + (r >> 20) % (kPage - 1);  // interior
      case 6: {
        static char elsewhere[64];
        switch (r % 5) {
          case 0: return nullptr;
          case 1: return base - kPage;
          case 2: return base + size;
          case 3: return base + size + (r >> 8);
          default: return elsewhere;
        }
      }
      default: break;
    }
    // Some live block's tail page, or a page of a block of the helper's.
    for (auto &[i, b] : live)
      if (b.order > 0 && (r & 1)) return base + (i + 1 + r % ((std::size_t{1} << b.order) - 1)) * kPage;
    return base + (r % npages) * kPage;
  }

  void expect_failure(labyrinth_status got, labyrinth_status want, const char *what) {
    CHECK(got == want, "%s returned %s, expected %s", what, labyrinth_status_name(got),
          labyrinth_status_name(want));
    if (want != LABYRINTH_OK) {
      note_refusal(want);
      CHECK(labyrinth_last_status() == want, "%s: last status %s", what,
            labyrinth_status_name(labyrinth_last_status()));
      CHECK(labyrinth_last_error_message()[0] != '\0', "%s: empty message", what);
    }
  }

  // -- operations --
  void op_alloc(bool on_helper) {
    std::uint8_t a = in.u8(), b = in.u8();
    unsigned order = (a & 0x80) ? (a % 3) : (a % 11);
    if ((b & 0xC0) == 0xC0) order = LABYRINTH_MAX_ORDER + 1 + b % 4;  // bad order
    labyrinth_gfp gfp = b & LABYRINTH_GFP_ALL;
    if ((b & 0x30) == 0x30) gfp |= 1u << (4 + b % 28);                 // unknown bit
    const int via = (a >> 4) & 3;  // 0,1: alloc_pages; 2: flagship; 3: inline
    std::uint32_t timeout = (b & 0x20) ? 1 : 0;
    labyrinth_status want = LABYRINTH_OK;
    bool flagship = via >= 2 && order <= 2;
    if (flagship) {
      order = 0;
      gfp = LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
    } else if ((gfp & ~LABYRINTH_GFP_ALL) ||
               ((gfp & LABYRINTH_GFP_ATOMIC) && (gfp & LABYRINTH_GFP_WAIT)) ||
               order > LABYRINTH_MAX_ORDER) {
      want = LABYRINTH_ERR_INVALID;
    }
    labyrinth_stats before = get_stats(pool);
    labyrinth_status prev = labyrinth_last_status();
    void *pg = reinterpret_cast<void *>(0x5a5a);
    labyrinth_status st;
    auto call = [&] {
      if (flagship) {
        pg = via == 2 ? labyrinth_void_alloc_page_gfp_atomic_exclusive(pool)
                      : labyrinth_alloc_page_inline(pool);
        st = pg ? LABYRINTH_OK : labyrinth_last_status();
        if (!pg) pg = reinterpret_cast<void *>(0x5a5a);
      } else {
        st = labyrinth_alloc_pages(pool, order, gfp, timeout, &pg);
      }
      if (st == LABYRINTH_OK) CHECK(labyrinth_last_status() == prev, "a successful call changed the last status");
    };
    if (on_helper) {
      helper().run([&] { prev = labyrinth_last_status(); call(); });
    } else {
      call();
    }
    if (want == LABYRINTH_ERR_INVALID) {
      note_refusal(want);
      CHECK(st == LABYRINTH_ERR_INVALID, "bad arguments (order %u gfp 0x%x) gave %s", order, gfp,
            labyrinth_status_name(st));
      CHECK(pg == reinterpret_cast<void *>(0x5a5a), "output written on failure");
      expect_same(before, get_stats(pool), "an invalid allocation");
      return;
    }
    if (st == LABYRINTH_OK) {
      const bool excl = gfp & LABYRINTH_GFP_EXCLUSIVE;
      std::size_t bytes = kPage << order;
      if ((gfp & LABYRINTH_GFP_ZERO) || scrub()) {
        std::size_t bad = expect_zero(pg, bytes);
        CHECK(bad == bytes, "%s block not zero at byte %zu", scrub() ? "SCRUB" : "ZERO", bad);
      }
      add_block(pg, order, excl, on_helper ? helper().id() : me);
      return;
    }
    note_refusal(st);
    const bool atomic = gfp & LABYRINTH_GFP_ATOMIC, wait = gfp & LABYRINTH_GFP_WAIT;
    CHECK(st == (wait ? LABYRINTH_ERR_TIMEOUT : LABYRINTH_ERR_NOMEM), "allocation failed with %s",
          labyrinth_status_name(st));
    CHECK(pg == reinterpret_cast<void *>(0x5a5a), "output written on failure");
    labyrinth_stats s = get_stats(pool);
    // A refusal allocates nothing. Without ATOMIC it may first have taken
    // back the other thread's cache (reclaim_caches); for order >= 1 it may
    // have given back the caller's own cache (cache_give_back_own). Either
    // moves free pages out of caches and nowhere else; an order-0 refusal
    // with nothing reclaimed moved nothing at all.
    const std::uint64_t reclaimed = s.reclaimed_pages - before.reclaimed_pages;
    CHECK(!atomic || s.cache_reclaims == before.cache_reclaims, "an ATOMIC allocation took back a cache");
    CHECK(s.allocated_pages == before.allocated_pages && s.cached_pages + reclaimed <= before.cached_pages &&
              s.free_pages + s.reserve_pages + s.cached_pages ==
                  before.free_pages + before.reserve_pages + before.cached_pages &&
              (reclaimed != 0 || order != 0 ||
               (s.free_pages == before.free_pages && s.reserve_pages == before.reserve_pages)),
          "a failed allocation changed the pool (%llu pages reclaimed from other threads' caches)",
          (unsigned long long)reclaimed);
    const std::size_t pages = std::size_t{1} << order;
    bool block_free = false;
    for (unsigned k = order; k <= LABYRINTH_MAX_ORDER; ++k) block_free |= s.free_blocks[k] != 0;
    if (atomic && order == 0) {
      CHECK(s.free_pages == 0 && s.reserve_pages == 0,
            "ATOMIC page refused with %llu free pages and %llu in the reserve",
            (unsigned long long)s.free_pages, (unsigned long long)s.reserve_pages);
    } else if (atomic) {
      CHECK(!block_free && s.shared_free_pages == 0,
            "ATOMIC order-%u block refused although one is free", order);
    } else if (order == 0 && !wait) {
      CHECK(s.free_pages <= opts.watermark_min_pages,
            "order-0 allocation refused with %llu free pages above the min watermark %zu "
            "(%llu of them in the depot)",
            (unsigned long long)s.free_pages, opts.watermark_min_pages,
            (unsigned long long)s.shared_free_pages);
    } else {
      CHECK(s.free_pages < opts.watermark_min_pages + pages || (!block_free && s.shared_free_pages == 0),
            "order-%u allocation refused with %llu free pages (min %zu) and a free block",
            order, (unsigned long long)s.free_pages, opts.watermark_min_pages);
    }
  }

  void op_free(bool on_helper) {
    std::uint8_t a = in.u8();
    void *ptr = pick_pointer();
    labyrinth_owner who = on_helper ? helper().id() : me;
    std::size_t head = kNone;
    // a & 6 == 6: labyrinth_free_pages_order with the block's own order, or
    // (a & 8) the order in the top bits, right or wrong (up to 15).
    const bool sized = (a & 6) == 6;
    unsigned order = a >> 4;
    if (sized && !(a & 8) && classify(ptr, &head) == LABYRINTH_OK) order = live.at(head).order;
    labyrinth_status want =
        sized ? predict_free_order(ptr, who, order, &head) : predict_free(ptr, who, &head);
    labyrinth_stats before = get_stats(pool);
    labyrinth_status st;
    auto call = [&] {
      st = sized     ? labyrinth_free_pages_order(pool, ptr, order)
           : (a & 1) ? labyrinth_free_page_inline(pool, ptr)
                     : labyrinth_free_pages(pool, ptr);
    };
    if (want == LABYRINTH_OK) check_content(live.at(head));
    if (on_helper) helper().run(call);
    else call();
    if (on_helper && want != LABYRINTH_OK) {
      note_refusal(want);
      CHECK(st == want, "helper free of %p: %s, expected %s", ptr, labyrinth_status_name(st),
            labyrinth_status_name(want));
    } else {
      expect_failure(st, want, "labyrinth_free_pages");
    }
    if (want == LABYRINTH_OK) {
      auto it = live.find(head);
      std::size_t pages = std::size_t{1} << it->second.order;
      for (std::size_t k = 0; k < pages; ++k) head_of[head + k] = kNone;
      live_pages -= pages;
      live.erase(it);
    } else {
      labyrinth_stats after = get_stats(pool);
      expect_same(before, after, "a refused free");
      CHECK(after.failures[want] == before.failures[want] + 1, "failure not counted");
    }
  }

  void op_transfer(bool on_helper) {
    void *ptr = pick_pointer();
    std::uint8_t b = in.u8();
    labyrinth_owner to = owner_kind(b);
    if ((b & 0xE0) == 0xE0) to = (b & 0x10) ? LABYRINTH_OWNER_NONE : LABYRINTH_OWNER_MAX + 1 + b % 7;
    labyrinth_owner who = on_helper ? helper().id() : me;
    std::size_t head = kNone;
    labyrinth_status want = predict_transfer(ptr, who, to, &head);
    labyrinth_stats before = get_stats(pool);
    labyrinth_status st;
    auto call = [&] { st = labyrinth_page_transfer(pool, ptr, to); };
    if (on_helper) helper().run(call);
    else call();
    CHECK(st == want, "transfer of %p to %llu: %s, expected %s", ptr, (unsigned long long)to,
          labyrinth_status_name(st), labyrinth_status_name(want));
    note_refusal(want);
    if (want == LABYRINTH_OK) {
      live.at(head).owner = to;
      labyrinth_owner o = 0;
      CHECK(labyrinth_page_info(pool, ptr, &o, nullptr) == LABYRINTH_OK && o == to);
    } else {
      labyrinth_stats after = get_stats(pool);
      expect_same(before, after, "a refused transfer");
      CHECK(after.failures[want] == before.failures[want] + 1, "failure not counted");
    }
  }

  void op_info() {
    void *ptr = pick_pointer();
    std::size_t head = kNone;
    labyrinth_status want = classify(ptr, &head);
    labyrinth_owner o = 12345;
    unsigned ord = 77;
    labyrinth_stats before = get_stats(pool);
    labyrinth_status st = labyrinth_page_info(pool, ptr, &o, &ord);
    expect_failure(st, want, "labyrinth_page_info");
    if (st == LABYRINTH_OK) {
      const Block &b = live.at(head);
      CHECK(o == b.owner && ord == b.order, "page_info says owner %llu order %u",
            (unsigned long long)o, ord);
    } else {
      CHECK(o == 12345 && ord == 77, "outputs written on failure");
      expect_same(before, get_stats(pool), "a refused page_info");
    }
  }

  void op_stats_sizes() {
    // Shorter structs get only what they cover; bad sizes are refused.
    std::uint8_t b = in.u8();
    alignas(8) unsigned char buf[sizeof(labyrinth_stats) + 64];
    std::memset(buf, 0xEE, sizeof buf);
    labyrinth_stats *s = reinterpret_cast<labyrinth_stats *>(buf);
    const std::size_t kMin = offsetof(labyrinth_stats, total_pages) + 8;
    std::size_t sz;
    switch (b % 4) {
      case 0: sz = b % kMin; break;                                    // too small
      case 1: sz = (1u << 16) + 1 + b; break;                          // absurd
      default: sz = kMin + b % (sizeof(labyrinth_stats) - kMin + 1); break;
    }
    s->struct_size = sz;
    labyrinth_status st = labyrinth_pool_stats(pool, s);
    bool ok = sz >= kMin && sz <= (1u << 16);
    expect_failure(st, ok ? LABYRINTH_OK : LABYRINTH_ERR_INVALID, "labyrinth_pool_stats");
    CHECK(s->struct_size == sz, "struct_size overwritten");
    std::size_t from = ok ? sz : sizeof(std::size_t);
    for (std::size_t k = from; k < sizeof buf; ++k)
      CHECK(buf[k] == 0xEE, "stats wrote byte %zu past struct_size %zu", k, sz);
    if (ok) CHECK(s->total_pages == npages);
  }

  void op_trim(bool on_helper) {
    labyrinth_status st;
    if (on_helper) helper().run([&] { st = labyrinth_pool_trim(pool); });
    else st = labyrinth_pool_trim(pool);
    CHECK(st == LABYRINTH_OK);
    labyrinth_stats s = get_stats(pool);
    CHECK(s.shared_free_pages == 0, "trim left %llu pages in the depot",
          (unsigned long long)s.shared_free_pages);
    CHECK(s.reserve_pages == s.reserve_target || s.free_pages == 0,
          "trim left the reserve at %llu/%llu with %llu free pages",
          (unsigned long long)s.reserve_pages, (unsigned long long)s.reserve_target,
          (unsigned long long)s.free_pages);
  }

  void op_reclaim() {
    std::vector<std::size_t> orphans;
    for (auto &[i, b] : live)
      if (b.excl && dead_ids().count(b.owner)) orphans.push_back(i);
    // Their data is intact up to the reclaim (which may scrub, poison or protect them).
    for (std::size_t i : orphans) check_content(live.at(i));
    std::size_t n = 999999;
    CHECK(labyrinth_pool_reclaim_orphans(pool, &n) == LABYRINTH_OK);
    CHECK(n == orphans.size(), "reclaimed %zu blocks, model says %zu", n, orphans.size());
    for (std::size_t i : orphans) remove_block_unchecked(i);
    CHECK(get_stats(pool).orphaned_pages == 0);
  }

  // A thread that allocates a few exclusive blocks, maybe hands some to us,
  // and exits: what it still owns becomes orphaned.
  void op_dying_thread() {
    std::uint8_t b = in.u8();
    int count = b % 5;
    bool give = b & 0x20;
    struct Got { void *pg; unsigned order; bool given; };
    std::vector<Got> got;
    labyrinth_owner tid = 0;
    std::thread t([&] {
      tid = labyrinth_owner_self();
      for (int k = 0; k < count; ++k) {
        unsigned order = (b >> 6) & (k & 1);
        void *pg = nullptr;
        if (order == 0 && (k & 2)) pg = labyrinth_alloc_page_inline(pool);
        else if (labyrinth_alloc_pages(pool, order, LABYRINTH_GFP_EXCLUSIVE | LABYRINTH_GFP_ATOMIC, 0, &pg) != LABYRINTH_OK)
          pg = nullptr;
        if (!pg) continue;
        bool given = give && k == 0 && labyrinth_page_transfer(pool, pg, me) == LABYRINTH_OK;
        got.push_back({pg, order, given});
      }
    });
    t.join();
    dead_ids().insert(tid);
    for (auto &g : got) add_block(g.pg, g.order, true, g.given ? me : tid);
  }

  void op_destroy() {
    std::uint8_t b = in.u8();
    labyrinth_stats before = get_stats(pool);
    if (b & 1) {
      labyrinth_status st = labyrinth_pool_destroy_ex(pool, 2u << (b % 8));
      expect_failure(st, LABYRINTH_ERR_INVALID, "destroy_ex with unknown flags");
      expect_same(before, get_stats(pool), "a refused destroy");
      return;
    }
    labyrinth_status st = labyrinth_pool_destroy(pool);
    if (!live.empty()) {
      expect_failure(st, LABYRINTH_ERR_BUSY, "destroy with live blocks");
      expect_same(before, get_stats(pool), "a refused destroy");
      return;
    }
    CHECK(st == LABYRINTH_OK, "destroy of an empty pool: %s", labyrinth_status_name(st));
    pool = nullptr;
    create();
  }

  void op_null_handles() {
    labyrinth_stats s;
    s.struct_size = sizeof s;
    void *pg = reinterpret_cast<void *>(0x77);
    void *b = reinterpret_cast<void *>(0x77);
    std::size_t n = 77;
    labyrinth_owner o = 77;
    unsigned ord = 77;
    expect_failure(labyrinth_alloc_pages(nullptr, 0, 0, 0, &pg), LABYRINTH_ERR_INVALID, "alloc NULL pool");
    CHECK(labyrinth_void_alloc_page_gfp_atomic_exclusive(nullptr) == nullptr);
    CHECK(labyrinth_last_status() == LABYRINTH_ERR_INVALID);
    CHECK(labyrinth_alloc_page_inline(nullptr) == nullptr);
    expect_failure(labyrinth_free_pages(nullptr, base), LABYRINTH_ERR_INVALID, "free NULL pool");
    expect_failure(labyrinth_free_page_inline(nullptr, base), LABYRINTH_ERR_INVALID, "inline free NULL pool");
    expect_failure(labyrinth_page_transfer(nullptr, base, me), LABYRINTH_ERR_INVALID, "transfer NULL pool");
    expect_failure(labyrinth_page_info(nullptr, base, &o, &ord), LABYRINTH_ERR_INVALID, "info NULL pool");
    expect_failure(labyrinth_pool_stats(nullptr, &s), LABYRINTH_ERR_INVALID, "stats NULL pool");
    expect_failure(labyrinth_pool_stats(pool, nullptr), LABYRINTH_ERR_INVALID, "stats NULL out");
    expect_failure(labyrinth_pool_trim(nullptr), LABYRINTH_ERR_INVALID, "trim NULL");
    expect_failure(labyrinth_pool_reclaim_orphans(nullptr, &n), LABYRINTH_ERR_INVALID, "reclaim NULL");
    expect_failure(labyrinth_pool_arena(nullptr, &b, &n), LABYRINTH_ERR_INVALID, "arena NULL");
    expect_failure(labyrinth_alloc_pages(pool, 0, 0, 0, nullptr), LABYRINTH_ERR_INVALID, "alloc NULL out");
    CHECK(labyrinth_pool_destroy(nullptr) == LABYRINTH_OK);
    CHECK(pg == reinterpret_cast<void *>(0x77) && b == reinterpret_cast<void *>(0x77) && n == 77 &&
          o == 77 && ord == 77, "outputs written on failure");
    // Arena with NULL outputs is fine.
    CHECK(labyrinth_pool_arena(pool, nullptr, nullptr) == LABYRINTH_OK);
  }

  void op_bad_create() {
    std::uint8_t b = in.u8();
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    o.size_bytes = 64 * kPage;
    o.flags = 0;
    labyrinth_status want = LABYRINTH_ERR_INVALID;
    labyrinth_pool *out = reinterpret_cast<labyrinth_pool *>(0x99);
    const labyrinth_pool_options *arg = &o;
    labyrinth_pool **outp = &out;
    switch (b % 12) {
      case 0: arg = nullptr; break;
      case 1: outp = nullptr; break;
      case 2: o.struct_size = b % 16; break;
      case 3: o.struct_size = (1u << 16) + 8; break;
      case 4: o.size_bytes = 0; break;
      case 5: o.size_bytes = 64 * kPage + 1 + b; break;
      case 6: o.size_bytes = std::size_t{1} << 40; break;            // beyond the largest arena
      case 7:  // a bit above every known flag, or strict and best-effort pinning together
        o.flags = (b & 1) ? LABYRINTH_POOL_PIN_MASK : 1u << (8 + b % 24);
        break;
      case 8: o.atomic_reserve_pages = 65; break;
      case 9: o.watermark_min_pages = 10; o.watermark_low_pages = 5; break;
      case 10: o.thread_cache_batch = o.thread_cache_pages + 1; break;
      default:
        o.flags = LABYRINTH_POOL_PKEYS;
        if (machine_has_pkeys()) {
          // Created where the CPU and kernel have keys: a real pool, destroyed at once.
          labyrinth_pool *pk = nullptr;
          CHECK(labyrinth_pool_create(&o, &pk) == LABYRINTH_OK, "PKEYS pool refused: %s",
                labyrinth_last_error_message());
          CHECK(labyrinth_pool_destroy(pk) == LABYRINTH_OK);
          return;
        }
        want = LABYRINTH_ERR_UNSUPPORTED;
        break;
    }
    labyrinth_status st = labyrinth_pool_create(arg, outp);
    expect_failure(st, want, "bad pool options");
    CHECK(out == reinterpret_cast<labyrinth_pool *>(0x99), "out written on failure");
  }

  void op_exhaust() {
    // ATOMIC order-0 until refused: the refusal comes only when nothing is free.
    for (std::size_t k = 0; k <= npages + 1; ++k) {
      void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      if (!pg) {
        CHECK(labyrinth_last_status() == LABYRINTH_ERR_NOMEM);
        labyrinth_stats s = get_stats(pool);
        CHECK(s.free_pages == 0 && s.reserve_pages == 0, "flagship refused with %llu free, %llu reserve",
              (unsigned long long)s.free_pages, (unsigned long long)s.reserve_pages);
        return;
      }
      add_block(pg, 0, true, me);
    }
    CHECK(false, "more pages than the pool has");
  }

  void op_free_all_mine() {
    std::vector<std::size_t> mine;
    for (auto &[i, b] : live)
      if (!b.excl || b.owner == me) mine.push_back(i);
    for (std::size_t i : mine) {
      check_content(live.at(i));
      CHECK(labyrinth_free_pages(pool, base + i * kPage) == LABYRINTH_OK);
      remove_block_unchecked(i);
    }
  }
  void remove_block_unchecked(std::size_t idx) {
    auto it = live.find(idx);
    std::size_t pages = std::size_t{1} << it->second.order;
    for (std::size_t k = 0; k < pages; ++k) head_of[idx + k] = kNone;
    live_pages -= pages;
    live.erase(it);
  }

  // Everything back: then the pool must equal a fresh one.
  void teardown() {
    op_free_all_mine();
    std::vector<std::size_t> theirs;
    for (auto &[i, b] : live)
      if (b.excl && b.owner == helper().id()) theirs.push_back(i);
    for (std::size_t i : theirs) check_content(live.at(i));
    helper().run([&] {
      for (std::size_t i : theirs)
        CHECK(labyrinth_free_pages(pool, base + i * kPage) == LABYRINTH_OK);
      CHECK(labyrinth_pool_trim(pool) == LABYRINTH_OK);
    });
    for (std::size_t i : theirs) remove_block_unchecked(i);
    op_reclaim();
    bool stranded = !live.empty();  // blocks owned by ids no thread ever had
    for (auto &[i, b] : live)
      CHECK(b.excl && b.owner >= LABYRINTH_OWNER_MAX - 8, "block at %zu left behind", i);
    CHECK(labyrinth_pool_trim(pool) == LABYRINTH_OK);
    check_invariants();
    labyrinth_stats s = get_stats(pool);
    CHECK(s.cached_pages == 0, "%llu pages still cached after every thread trimmed",
          (unsigned long long)s.cached_pages);
    if (!stranded) {
      labyrinth_pool *fresh = nullptr;
      CHECK(labyrinth_pool_create(&opts, &fresh) == LABYRINTH_OK);
      labyrinth_stats f = get_stats(fresh);
      for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k)
        CHECK(s.free_blocks[k] == f.free_blocks[k], "order %d: %llu free blocks, a fresh pool has %llu",
              k, (unsigned long long)s.free_blocks[k], (unsigned long long)f.free_blocks[k]);
      CHECK(s.free_pages == f.free_pages && s.reserve_pages == f.reserve_pages);
      CHECK(labyrinth_pool_destroy(fresh) == LABYRINTH_OK);
      CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK, "destroy: %s", labyrinth_last_error_message());
    } else {
      expect_failure(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY, "destroy with stranded blocks");
      CHECK(labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE) == LABYRINTH_OK);
    }
    pool = nullptr;
  }

  void run() {
    trace = std::getenv("FUZZ_TRACE") != nullptr;
    create();
    if (trace)
      std::fprintf(stderr, "pool: %zu pages, flags 0x%x, reserve %zu, wm %zu/%zu/%zu, caches %u x %u (batch %u)\n",
                   npages, opts.flags, opts.atomic_reserve_pages, opts.watermark_min_pages,
                   opts.watermark_low_pages, opts.watermark_high_pages, opts.max_thread_caches,
                   opts.thread_cache_pages, opts.thread_cache_batch);
    check_invariants();
    while (in.more() && ops < 250) {
      std::uint8_t op = in.u8();
      if (trace) {
        static const char *names[20] = {"alloc", "alloc", "alloc", "free", "free", "transfer", "info",
                                        "helper alloc", "helper free", "helper transfer", "trim",
                                        "reclaim", "dying thread", "destroy", "stats sizes",
                                        "null handles", "bad create", "exhaust", "free all mine",
                                        "alloc"};
        std::fprintf(stderr, "op %llu: %s (live %zu blocks, %zu pages)\n", (unsigned long long)ops,
                     names[op % 20], live.size(), live_pages);
      }
      switch (op % 20) {
        case 0: case 1: case 2: op_alloc(false); break;
        case 3: case 4: op_free(false); break;
        case 5: op_transfer(false); break;
        case 6: op_info(); break;
        case 7: op_alloc(true); break;
        case 8: op_free(true); break;
        case 9: op_transfer(true); break;
        case 10: op_trim(op & 0x80); break;
        case 11: op_reclaim(); break;
        case 12: op_dying_thread(); break;
        case 13: op_destroy(); break;
        case 14: op_stats_sizes(); break;
        case 15: op_null_handles(); break;
        case 16: op_bad_create(); break;
        case 17: op_exhaust(); break;
        case 18: op_free_all_mine(); break;
        default: op_alloc(false); break;
      }
      ++ops;
      ++g_total_ops;
      check_invariants();
    }
    teardown();
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::atexit(print_totals);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 8) return 0;
  ++g_total_inputs;
  Fuzz f(data, size);
  f.run();
  return 0;
}
