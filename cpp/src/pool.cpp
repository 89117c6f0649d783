// pool.cpp - creating and destroying pools, the general allocation path
// (every order and flag), returning blocks, watermarks, waiters, statistics.
#include "pool.hpp"

#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <climits>
#include <cstring>
#include <new>
#include <vector>

#include "pkeys.hpp"

namespace lab {

using namespace side;

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
std::atomic<std::uint64_t> g_next_pool_id{0};

// Fields of labyrinth_pool_options in ABI 1.0 and the struct_size that covers each.
#define LAB_HAS(opts, field) \
  ((opts)->struct_size >= offsetof(labyrinth_pool_options, field) + sizeof((opts)->field))

void futex_wake_all(std::atomic<std::uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX,
          nullptr, nullptr, 0);
}

void futex_wait(std::atomic<std::uint32_t> *word, std::uint32_t seen, long max_ns) {
  struct timespec ts {
    max_ns / 1000000000L, max_ns % 1000000000L
  };
  syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAIT_PRIVATE, seen, &ts,
          nullptr, 0);
}

}  // namespace

std::atomic<std::uint64_t> g_zone_nesting{0};

// A WAIT caller, queued in arrival order under the pool's wait_mu.
struct Waiter {
  unsigned order;
  Waiter *next;
};

void wake_waiters(Pool *p) {
  p->wait_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(&p->wait_seq);
}

// Under pressure, frees must reach the shared list, so every cache's limit
// drops to 0 (the inline free path reads it) and its high mark goes back to
// its start; afterwards the limit is the high mark again. An owner raising
// its high mark at the same moment may keep its raise (bounded by the
// capacity); it stores its limit with cache_sync_limit, which re-reads
// `pressure` after the store, so no cache keeps a limit through pressure.
static void set_cache_limits(Pool *p, bool pressure) {
  // Pairs with the fence in cache_sync_limit: `pressure` was set before it.
  if (pressure) std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    ThreadCache *c = p->cache_at(i);
    if (pressure) c->high.store(p->cache_start, kRelaxed);
    c->set_limit(pressure ? 0 : c->high.load(kRelaxed));
  }
}

void set_pressure(Pool *p) {
  if (!p->pressure.exchange(true, std::memory_order_seq_cst)) {
    p->pressure_events.fetch_add(1, kRelaxed);
    set_cache_limits(p, true);
  }
}

void update_pressure(Pool *p) {
  std::size_t free = p->free_pages();
  bool on = p->pressure.load(kRelaxed);
  if (!on && free < p->wm_low) {
    set_pressure(p);
  } else if (on && free >= p->wm_high && p->nwaiters.load(kRelaxed) == 0) {
    if (p->pressure.exchange(false, kRelaxed)) set_cache_limits(p, false);
    // A concurrent set_pressure() may have lost to us: it re-checks next time.
    if (p->free_pages() < p->wm_low) set_pressure(p);
  }
}

// ---------------------------------------------------------------------------
// Create / destroy
// ---------------------------------------------------------------------------

// ---- The atomic reserve's place ----
// A fresh pool takes its reserve as the first `target` pages of one block of
// order reserve_order() (the rest of the block goes back), from the smallest
// block the buddy allocator has; trim renews it to a place of the same kind
// (renew_reserve), so that a pool with every page free has exactly a
// fresh pool's blocks. Only a reserve larger than the largest block is taken
// page by page.

static unsigned reserve_order(std::size_t target) {
  unsigned order = 0;
  while ((std::size_t{1} << order) < target) ++order;
  return order;
}

// Give back the pages [block + used, block + 2^order) of a block just taken
// (its zone's mutex held), largest pieces first.
static void give_back_tail_locked(Zone &zone, std::size_t block, unsigned order, std::size_t used) {
  const std::size_t end = std::size_t{1} << order;
  while (used < end) {
    unsigned piece = 0;
    while ((used & (std::size_t{1} << piece)) == 0 && used + (std::size_t{2} << piece) <= end) ++piece;
    zone.buddy.free(block + used, piece);
    used += std::size_t{1} << piece;
  }
}

// Take a block of `order` where one buddy allocator over the whole arena
// would (in_zones' order) and keep its first `used` pages: the rest goes back
// in the same hold of that zone's mutex. May block. False if no zone has one.
static bool take_smallest(Pool *p, unsigned order, std::size_t used, std::size_t *idx) {
  return in_zones(p, order, false, [&](Zone &zone) {
    if (!zone.buddy.alloc(order, idx)) return false;
    give_back_tail_locked(zone, *idx, order, used);
    return true;
  });
}

// Single pages from the buddy allocator into the reserve until it is full
// or nothing is free.
static void top_up_reserve(Pool *p) {
  std::size_t idx;
  while (p->reserve.pages() < p->reserve_target && take_smallest(p, 0, 1, &idx))
    p->reserve.push([idx](std::size_t) { return idx; }, 1);
}

// Take the reserve into an empty reserve list as a fresh pool does.
static void fill_reserve(Pool *p) {
  const std::size_t target = p->reserve_target;
  if (!target) return;
  const unsigned order = reserve_order(target);
  std::size_t block;
  if (order <= kMaxOrder && take_smallest(p, order, target, &block)) {
    for (std::size_t i = 0; i < target; ++i)
      p->reserve.push([block, i](std::size_t) { return block + i; }, 1);
    return;
  }
  top_up_reserve(p);
}

labyrinth_status pool_create(const labyrinth_pool_options *opts, labyrinth_pool **out) {
  if (!opts || !out)
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_pool_create: %s is NULL",
                     !opts ? "opts" : "out");
  const std::size_t kMinSize = offsetof(labyrinth_pool_options, numa_node) + sizeof(int);
  if (opts->struct_size < kMinSize || opts->struct_size > (1u << 16))
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: opts->struct_size is %zu; it must be at least %zu "
                     "(call labyrinth_pool_options_init first)",
                     opts->struct_size, kMinSize);
  labyrinth_pool_options o;
  labyrinth_pool_options_init(&o);
  std::memcpy(&o, opts, std::min(opts->struct_size, sizeof o));
  o.struct_size = sizeof o;
  if (o.size_bytes == 0 || o.size_bytes % kPageSize != 0)
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: size_bytes %zu is not a non-zero multiple of %zu",
                     o.size_bytes, kPageSize);
  const std::size_t npages = o.size_bytes / kPageSize;
  if (npages >= kMaxPages)
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: size_bytes %zu exceeds the largest arena (%zu bytes)",
                     o.size_bytes, (kMaxPages - 1) * kPageSize);
  const std::uint32_t known = LABYRINTH_POOL_PIN | LABYRINTH_POOL_HUGEPAGES |
                              LABYRINTH_POOL_SCRUB | LABYRINTH_POOL_POISON |
                              LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PKEYS |
                              LABYRINTH_POOL_NO_RECLAIM;
  if (o.flags & ~known)
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_pool_create: unknown flags 0x%x",
                     o.flags & ~known);
  if (o.flags & LABYRINTH_POOL_PKEYS) {
    const PkeysProbe probe = pkeys_probe();
    if (!probe.usable()) {
      char why[160];
      pkeys_explain(probe, why, sizeof why);
      return set_error(LABYRINTH_ERR_UNSUPPORTED, "labyrinth_pool_create: LABYRINTH_POOL_PKEYS: %s",
                       why);
    }
  }
  if (o.atomic_reserve_pages == SIZE_MAX) o.atomic_reserve_pages = std::min<std::size_t>(npages / 64, 256);
  if (o.atomic_reserve_pages > npages)
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: atomic_reserve_pages %zu exceeds the pool's %zu pages",
                     o.atomic_reserve_pages, npages);
  if (o.watermark_low_pages == SIZE_MAX) o.watermark_low_pages = npages / 16;
  if (o.watermark_high_pages == SIZE_MAX) o.watermark_high_pages = npages / 8;
  if (o.watermark_min_pages > o.watermark_low_pages || o.watermark_low_pages > o.watermark_high_pages ||
      o.watermark_high_pages > npages)
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: watermarks must satisfy min (%zu) <= low (%zu) <= "
                     "high (%zu) <= pages (%zu)",
                     o.watermark_min_pages, o.watermark_low_pages, o.watermark_high_pages, npages);
  if (o.max_thread_caches > 1024 || o.thread_cache_pages == 0 || o.thread_cache_pages > 4096 ||
      o.thread_cache_batch == 0 || o.thread_cache_batch > o.thread_cache_pages)
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_create: thread caches: max_thread_caches %u (<= 1024), "
                     "thread_cache_pages %u (1..4096), thread_cache_batch %u (1..pages)",
                     o.max_thread_caches, o.thread_cache_pages, o.thread_cache_batch);

  // PKEYS: the free key first (every later failure gives it back).
  const bool pkeys = o.flags & LABYRINTH_POOL_PKEYS;
  if (pkeys) {
    labyrinth_status st = pkeys::attach("labyrinth_pool_create");
    if (st != LABYRINTH_OK) return st;
  }
  Pool *p = new (std::nothrow) Pool;
  if (!p) {
    if (pkeys) pkeys::detach();
    return set_error(LABYRINTH_ERR_NOMEM, "labyrinth_pool_create: out of memory");
  }
  labyrinth_status st = arena_map(o.size_bytes, o.flags, o.numa_node, &p->arena);
  if (st == LABYRINTH_OK && pkeys && !pkeys::protect(p->arena.base, o.size_bytes, pkeys::free_key())) {
    const int e = errno;
    arena_unmap(&p->arena);
    st = set_error(LABYRINTH_ERR_SYSTEM,
                   "labyrinth_pool_create: LABYRINTH_POOL_PKEYS: pkey_mprotect of the arena "
                   "failed (errno %d)",
                   e);
  }
  if (st != LABYRINTH_OK) {
    if (pkeys) pkeys::detach();
    delete p;
    return st;
  }
  p->base = p->arena.base;
  p->size = o.size_bytes;
  p->npages = npages;
  p->flags = o.flags & ~(p->arena.pinned ? 0u : LABYRINTH_POOL_PIN);
  p->meta = static_cast<std::atomic<std::uint64_t> *>(meta_map(npages * sizeof(std::uint64_t)));
  p->max_caches = o.max_thread_caches;
  p->cache_capacity = o.thread_cache_pages;
  p->cache_batch = o.thread_cache_batch;
  p->cache_start = std::max(p->cache_batch, std::min<std::uint32_t>(kCacheStartPages, p->cache_capacity));
  // A mark rises to 1/16 of the pool at most (and never below its start).
  p->cache_high_max = static_cast<std::uint32_t>(
      std::max<std::size_t>(p->cache_start, std::min<std::size_t>(p->cache_capacity, npages / 16)));
  // Each cache starts on its own cache line (ThreadCache is alignas(64)),
  // whatever the capacity: no misaligned objects, no line shared by two threads.
  p->cache_stride = ThreadCache::bytes(p->cache_capacity);
  p->cache_mem_bytes = std::size_t{p->max_caches} * p->cache_stride;
  p->cache_mem = p->cache_mem_bytes ? meta_map(p->cache_mem_bytes) : nullptr;
  if (p->flags & LABYRINTH_POOL_POISON)
    p->poison_owner = static_cast<std::uint64_t *>(meta_map(npages * sizeof(std::uint64_t)));
  if (!p->meta || (p->cache_mem_bytes && !p->cache_mem) ||
      ((p->flags & LABYRINTH_POOL_POISON) && !p->poison_owner)) {
    int e = errno;
    meta_unmap(p->meta, npages * sizeof(std::uint64_t));
    meta_unmap(p->cache_mem, p->cache_mem_bytes);
    meta_unmap(p->poison_owner, npages * sizeof(std::uint64_t));
    arena_unmap(&p->arena);
    if (pkeys) pkeys::detach();
    delete p;
    return set_error(LABYRINTH_ERR_NOMEM,
                     "labyrinth_pool_create: mmap of the side table failed (errno %d)", e);
  }
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    new (p->cache_at(i)) ThreadCache(p->cache_capacity, p->cache_batch, p->cache_start, npages / 32);
  }
  // GUARD and PKEYS change a block's protection at every hand-out and
  // return: every block goes through the buddy allocator, no cache.
  p->use_caches = !(p->flags & (LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PKEYS)) && p->max_caches > 0;
  p->fast_ok = p->use_caches &&
               !(p->flags & (LABYRINTH_POOL_SCRUB | LABYRINTH_POOL_GUARD | LABYRINTH_POOL_POISON));
  p->wm_min = o.watermark_min_pages;
  p->wm_low = o.watermark_low_pages;
  p->wm_high = o.watermark_high_pages;
  // Zones: 2 to 4 for pools of 2 to 4+ times 4 MiB, split at multiples of
  // 4 MiB (the last one takes the rest).
  const std::size_t units = npages / kZoneUnit;
  p->nzones = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(kMaxZones, units)));
  for (unsigned z = 0; z < p->nzones; ++z) {
    Zone &zone = p->zones[z];
    zone.begin = units * z / p->nzones * kZoneUnit;
    zone.end = z + 1 == p->nzones ? npages : units * (z + 1) / p->nzones * kZoneUnit;
    zone.buddy.init(p->meta, zone.begin, zone.end);
  }
  // Magazines are written inside free pages, on the free path: only where
  // every page is resident (PIN: a write must not fault a page in, which may
  // sleep), and not where free pages must stay zero (SCRUB), hold a pattern
  // (POISON) or are protected (GUARD, PKEYS).
  const bool magazines = p->arena.pinned &&
                         !(p->flags & (LABYRINTH_POOL_SCRUB | LABYRINTH_POOL_POISON |
                                       LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PKEYS));
  p->shared.init(p->meta, SHARED, magazines ? p->base : nullptr, npages);
  p->reserve.init(p->meta, RESERVE);
  p->reserve_target = o.atomic_reserve_pages;
  fill_reserve(p);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(p->base, p->size, PROT_NONE);
  p->fork_gen = fork_generation();
  update_pressure(p);
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    p->id = g_next_pool_id.fetch_add(1, kRelaxed) + 1;
    registry_pools().push_back(p);
  }
  *out = p;
  return LABYRINTH_OK;
}

// Free pages in thread caches (page slots and order caches); with `mine`,
// also how many of them are in the calling thread's own. Lock-free: only
// loads, so async-signal-safe.
static std::uint64_t cached_pages(const Pool *p, std::uint64_t *mine = nullptr) {
  std::uint64_t n = 0, own = 0;
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    const ThreadCache *c = p->cache_at(i);
    const std::uint64_t user = c->user.load(kRelaxed);
    if (!user) continue;
    n += c->held();
    if (user == tls.owner) own += c->held();
  }
  if (mine) *mine = own;
  return n;
}

labyrinth_status pool_destroy(labyrinth_pool *handle, std::uint32_t flags) {
  if (!handle) return LABYRINTH_OK;
  Pool *p = from_handle(handle);
  if (flags & ~std::uint32_t{LABYRINTH_DESTROY_FORCE})
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_pool_destroy_ex: unknown flags 0x%x",
                     flags & ~std::uint32_t{LABYRINTH_DESTROY_FORCE});
  std::lock_guard<std::mutex> reg(registry_mutex());
  auto &pools = registry_pools();
  auto it = std::find(pools.begin(), pools.end(), p);
  if (it == pools.end())
    return set_error(LABYRINTH_ERR_INVALID,
                     "labyrinth_pool_destroy: %p is not a live pool (already destroyed?)",
                     static_cast<void *>(handle));
  if (!p->forked()) {
    if (std::uint64_t h = p->holds.load()) {
      return set_error(p->fail(LABYRINTH_ERR_BUSY),
                       "labyrinth_pool_destroy: the pool is registered with %llu io_uring "
                       "instance(s) or managed ring(s); unregister or destroy them first",
                       static_cast<unsigned long long>(h));
    }
    if (std::uint64_t inflight = p->inflight_pages.load()) {
      return set_error(p->fail(LABYRINTH_ERR_BUSY),
                       "labyrinth_pool_destroy: %llu page(s) are in flight in the kernel",
                       static_cast<unsigned long long>(inflight));
    }
    std::uint64_t live = p->npages - p->free_pages() - p->reserve.pages() - cached_pages(p);
    if (live && !(flags & LABYRINTH_DESTROY_FORCE)) {
      std::size_t example = 0;
      for (std::size_t i = 0; i < p->npages; ++i) {
        State s = state(p->meta[i].load(kRelaxed));
        if (s == ALLOC || s == INFLIGHT) { example = i; break; }
      }
      return set_error(p->fail(LABYRINTH_ERR_BUSY),
                       "labyrinth_pool_destroy: %llu page(s) are still allocated (e.g. %p); free "
                       "them or pass LABYRINTH_DESTROY_FORCE",
                       static_cast<unsigned long long>(live), p->page_at(example));
    }
  }
  pools.erase(it);
  // Threads whose inline fast-path record names this pool forget it, so a
  // future pool at the same address cannot be mistaken for it.
  for (std::uint32_t i = 0; i < p->max_caches && !p->forked(); ++i) {
    if (labyrinth_fast_record *rec = p->cache_at(i)->record.load(kRelaxed)) {
      const labyrinth_pool *expected = p;
      __atomic_compare_exchange_n(&rec->pool, &expected, nullptr, false, __ATOMIC_RELAXED,
                                  __ATOMIC_RELAXED);
    }
  }
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    // Blocks still owned (a forced destroy) stop carrying their owners' keys.
    for (std::size_t i = 0; i < p->npages && !p->forked(); ++i) {
      const std::uint64_t w = p->meta[i].load(kRelaxed);
      if ((state(w) == ALLOC || state(w) == INFLIGHT) && exclusive(w)) pkeys::drop(owner(w));
    }
    pkeys::detach();
  }
  if (!p->forked()) {
    meta_unmap(p->meta, p->npages * sizeof(std::uint64_t));
    meta_unmap(p->cache_mem, p->cache_mem_bytes);
    meta_unmap(p->poison_owner, p->npages * sizeof(std::uint64_t));
    arena_unmap(&p->arena);
  }
  for (auto &slot : tls.slots)
    if (slot.pool_id == p->id) slot = CacheSlot{0, nullptr};
  if (fast_pool() == p) fast_forget();
  if (tls.stash == p) tls.stash = nullptr;
  delete p;
  return LABYRINTH_OK;
}

// Pages labyrinth_pool_trim gives to the buddy allocator per free_chain call
// (each page under its zone's mutex, one at a time).
constexpr std::size_t kTrimSlice = 256;

// Give up to `most` pages of the chain from *page (a popped chain, the
// caller's) to the buddy allocator, following its links, each page under its
// zone's mutex (held from one page to the next while they share a zone: a
// chain's pages mostly came from one refill, so from one zone; never two at
// once). ATOMIC callers only try the mutexes and stop at a busy one (noted).
// *page becomes the first page not given (kNil30 at the end). Returns how
// many were given.
static std::size_t free_chain(Pool *p, std::size_t *page, std::size_t most, bool atomic = false) {
  std::size_t n = 0, i = *page;
  Zone *held = nullptr;
  for (; i != kNil30 && n < most; ++n) {
    const std::size_t next = chain_next_page(p->meta[i].load(kRelaxed));
    Zone &zone = p->zone_of(i);
    if (&zone != held) {
      if (held) held->mu.unlock();
      held = nullptr;
      if (!zone.mu.acquire(atomic)) break;
      held = &zone;
    }
    zone.buddy.free(i, 0);
    i = next;
  }
  if (held) held->mu.unlock();
  *page = i;
  return n;
}

// Pull the shared list's chains into the buddy allocator (free_chain). An
// ATOMIC caller stops at the first busy zone: the rest of that chain goes
// back to the list.
static void flush_shared(Pool *p, bool atomic) {
  for (std::size_t i; (i = p->shared.pop_chain()) != kNil30;) {
    const std::size_t n = free_chain(p, &i, SIZE_MAX, atomic);
    if (i == kNil30) {
      p->shared.taken(n);
      continue;
    }
    const std::size_t rest = p->shared.length_from(i);
    p->shared.taken(n + rest);
    p->shared.push_linked(i, rest);
    return;
  }
}

void pool_thread_exit(Pool *p, std::uint64_t owner) {
  if (p->forked()) return;
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    ThreadCache *c = p->cache_at(i);
    if (c->user.load(kRelaxed) != owner) continue;
    give_back_cache(p, c);  // the next thread starts afresh
    c->record.store(nullptr, kRelaxed);
    c->user.store(0, std::memory_order_release);
    p->caches_in_use.fetch_sub(1, kRelaxed);
  }
}

// Give every page of the chains from `first` (chains linked as on a Depot,
// now the caller's) to the buddy allocator (free_chain); returns how many.
static std::size_t free_chains(Pool *p, std::size_t first) {
  std::size_t n = 0;
  while (first != kNil30) {
    std::size_t i = first;
    first = chain_next_chain(p->meta[first].load(kRelaxed));
    n += free_chain(p, &i, SIZE_MAX);
  }
  return n;
}

// Take `want` pages for the reserve into out[], from blocks as large as the
// buddy allocator has, so that they block as few large blocks as possible;
// each block's pages past what is needed go back. With `one_block` only one
// block of `order` (want <= 2^order) is tried: the reserve's place in a
// fresh pool. Returns how many pages were taken.
static std::size_t take_reserve_pages(Pool *p, std::size_t want, unsigned order, bool one_block,
                                      std::vector<std::size_t> &out) {
  out.clear();
  for (int o = static_cast<int>(order); o >= 0 && out.size() < want;) {
    std::size_t block;
    const std::size_t used = std::min(std::size_t{1} << o, want - out.size());
    if (!take_smallest(p, static_cast<unsigned>(o), used, &block)) {
      if (one_block) break;
      --o;
      continue;
    }
    for (std::size_t i = 0; i < used; ++i) out.push_back(block + i);
    if (one_block) break;
  }
  return out.size();
}

// The order of the largest block the buddy allocator can ever hold at
// `page`: the maximal block of the arena's initial carving that contains it.
static unsigned maximal_order_at(const Pool *p, std::size_t page) {
  unsigned o = kMaxOrder;
  while (o > 0 && ((page >> o) << o) + (std::size_t{1} << o) > p->npages) --o;
  return o;
}

// The order of the maximal block a fresh pool takes a block of `order` from:
// the smallest maximal block at least that large (buddy.alloc takes the
// smallest free block).
static int fresh_reserve_home(const Pool *p, unsigned order) {
  for (unsigned o = order; o <= kMaxOrder; ++o)
    if (o == kMaxOrder ? p->npages >= (std::size_t{1} << kMaxOrder) : ((p->npages >> o) & 1) != 0)
      return static_cast<int>(o);
  return -1;
}

// Renew the atomic reserve so that a pool with every page free
// has exactly a fresh pool's blocks. The new reserve is taken while the old
// one is still in place and swapped in at once (one CAS), so ATOMIC callers
// never find the reserve empty meanwhile; the old one then goes back to the
// buddy allocator. The new one must sit where a fresh pool's would: the
// start of a block of the reserve's order, inside a maximal block of the
// same order as a fresh pool's. When it cannot yet (the old reserve's pages
// are in the way), it is taken from the largest blocks there are and the
// swap is done again, up to three times: with the old pages gone, the right
// place is usually free. If it still is not, and every page of the pool is
// free (so no caller can be wanting the reserve), the old reserve goes back
// first and the new one is taken as a fresh pool takes it.
//
// Without any zone's mutex held for longer than one block: ATOMIC callers
// are never kept out of every zone at once (a trim preempted while it held
// them all refused them by the hundred).
static void renew_reserve(Pool *p, std::vector<std::size_t> &scratch) {
  const std::size_t target = p->reserve_target;
  if (!target) return;
  const unsigned order = reserve_order(target);
  const int home = order <= kMaxOrder ? fresh_reserve_home(p, order) : -1;
  auto at = [&scratch](std::size_t i) { return scratch[i]; };
  bool placed = false;
  // Without a block of the reserve's order to place it in (a reserve larger
  // than 4 MiB, or than the pool's largest block), one swap is all it needs.
  const int passes = home >= 0 ? 3 : 1;
  for (int pass = 0; pass < passes && !placed; ++pass) {
    const bool one = home >= 0 && take_reserve_pages(p, target, order, true, scratch) == target;
    if (!one && !take_reserve_pages(p, target, std::min(order, kMaxOrder), false, scratch)) break;
    p->reserve.taken(free_chains(p, p->reserve.replace(at, scratch.size())));
    placed = one && static_cast<int>(maximal_order_at(p, scratch[0])) == home;
  }
  if (!placed && p->buddy_free_pages() + p->reserve.pages() == p->npages) {
    p->reserve.taken(free_chains(p, p->reserve.replace(at, 0)));
    fill_reserve(p);
  }
  top_up_reserve(p);  // fewer free pages than the reserve
}

labyrinth_status pool_trim(Pool *p) {
  if (p->forked())
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_pool_trim: the pool belongs to the parent "
                                            "process; it cannot be used after fork()");
  // The reserve's renewal needs room for its page numbers; if that cannot be
  // had (NOMEM through the C boundary), nothing has changed yet.
  std::vector<std::size_t> scratch;
  scratch.reserve(p->reserve_target);
  if (ThreadCache *c = enter_cache(p)) {
    give_back_cache(p, c);
    leave_call();
  }
  // The shared list, a slice at a time, each page under its own zone's
  // mutex: ATOMIC callers on other threads only try the mutexes, and a
  // zone trim holds sends them to the next one. Holding one mutex for the
  // whole list (a millisecond for 16k pages, longer if the holder is
  // preempted) refused them by the thousand with most of the pool free;
  // so did holding every zone's mutex for each slice, when trim was
  // preempted in one. Only as many pages as the list held when trim began:
  // frees on other threads cannot keep it going.
  std::size_t budget = p->shared.pages();
  while (budget) {
    std::size_t i = p->shared.pop_chain();
    if (i == kNil30) break;
    while (i != kNil30) {  // a chain's pages not yet freed still count as shared
      const std::size_t n = free_chain(p, &i, kTrimSlice);
      p->shared.taken(n);
      budget -= n < budget ? n : budget;
    }
  }
  renew_reserve(p, scratch);
  update_pressure(p);
  return LABYRINTH_OK;
}

// ---------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------

// A block of `order` from the buddy allocator, zone by zone (in_zones);
// non-ATOMIC callers keep the min watermark.
static bool take_block(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  const std::size_t pages = std::size_t{1} << order;
  bool got = false;
  in_zones(p, order, atomic, [&](Zone &zone) {
    if (!atomic && p->free_pages() < p->wm_min + pages) return true;
    return got = zone.buddy.alloc(order, idx);
  });
  return got;
}

// Order-0 page from this thread's cache, the shared list or the buddy.
static bool take_page(Pool *p, bool atomic, std::size_t *idx) {
  if (ThreadCache *c = enter_cache(p)) {
    std::uint32_t n = c->n();
    if (n == 0) n = cache_refill(p, c, atomic);
    bool ok = false;
    if (n) {
      n = c->n();
      *idx = p->index_of(c->slots()[n - 1]);
      c->set_n(n - 1);
      ok = true;
    }
    leave_call();
    return ok;
  }
  // No cache (none left, debug mode, or re-entered from a signal handler):
  // one page from the shared list, lock-free.
  if (p->use_caches && (atomic || p->free_pages() > p->wm_min)) {
    const std::size_t first = p->shared.pop_page();
    if (first != kNil30) {
      *idx = first;
      return true;
    }
  }
  return take_block(p, 0, atomic, idx);
}

// A block of order >= 1 from this thread's order cache.
static bool take_cached_block(Pool *p, unsigned order, std::size_t *idx) {
  ThreadCache *c = enter_cache(p);
  if (!c) return false;
  void *b = order_cache_pop(c, order);
  if (b) c->set_order_hint(order);  // the hint the inline free tries first
  leave_call();
  if (!b) return false;
  *idx = p->index_of(b);
  return true;
}

// When everything else failed: a block of `order` carved out of the
// smallest larger block in this thread's order cache (that block goes to the
// buddy allocator, which splits it). Done only when it succeeds for certain,
// so a failed allocation still changes nothing; blocks of smaller orders that
// might merge into the one asked for stay cached (labyrinth_pool_trim gives
// them back). These are the thread's own free pages: no watermark applies.
static bool carve_cached_block(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  ThreadCache *c = enter_cache(p);
  if (!c) return false;
  unsigned from = order + 1;
  while (from <= kMaxOrder && c->blocks(from) == 0) ++from;
  if (from > kMaxOrder) {
    leave_call();
    return false;
  }
  // The block order_cache_pop will give, so that its zone's mutex is taken
  // first. Inside the call (BUSY) throughout: the cache cannot change
  // meanwhile, not even by a reclaim (which waits for the call to end, or
  // gives up on this cache).
  Zone &zone = p->zone_of(p->index_of(c->order_slots(from).blocks[c->blocks(from) - 1]));
  if (!zone.mu.acquire(atomic)) {
    leave_call();
    return false;
  }
  std::unique_lock<ZoneMutex> lock(zone.mu, std::adopt_lock);
  void *b = order_cache_pop(c, from);
  leave_call();
  zone.buddy.free(p->index_of(b), from);
  return zone.buddy.alloc(order, idx);
}

static bool take_reserve(Pool *p, std::size_t *idx) {
  const std::size_t first = p->reserve.pop_page();
  if (first == kNil30) return false;
  p->reserve_uses.fetch_add(1, kRelaxed);
  *idx = first;
  return true;
}

// A block of any order from the buddy allocator (take_block); if there is
// none, the shared list may hold the pages that would merge into one: it is
// flushed into the buddy allocator (flush_shared) and the zones tried again.
static bool take_block_flushing(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  if (take_block(p, order, atomic, idx)) return true;
  if (p->shared.empty()) return false;
  flush_shared(p, atomic);
  return take_block(p, order, atomic, idx);
}

// ---------------------------------------------------------------------------
// POISON: freed blocks are filled with kPoison and checked when handed out.
// ---------------------------------------------------------------------------

constexpr unsigned char kPoison = 0x6B;
constexpr std::uint64_t kPoisonWord = 0x6B6B6B6B6B6B6B6Bull;

// Fill a block that is becoming free and remember who had it last.
static void poison_block(Pool *p, std::size_t idx, std::size_t pages, std::uint64_t last_owner) {
  std::memset(p->page_at(idx), kPoison, pages * kPageSize);
  for (std::size_t i = 0; i < pages; ++i) p->poison_owner[idx + i] = last_owner ? last_owner : 1;
}

static void write_report(const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  std::size_t n = format_message(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n >= sizeof msg) n = sizeof msg - 1;
  ssize_t ignored = write(STDERR_FILENO, msg, n);
  (void)ignored;
}

// A page about to be handed out must still hold the pattern: anything else
// was written after it was freed. Report the page, its last owner and the
// first bad byte on stderr, then abort (async-signal-safe: write, abort).
static void check_poison(Pool *p, std::size_t idx, std::size_t pages) {
  for (std::size_t i = idx; i < idx + pages; ++i) {
    const std::uint64_t last = p->poison_owner[i];
    if (!last) continue;  // never freed, or not freed since it was last handed out
    const auto *w = static_cast<const std::uint64_t *>(p->page_at(i));
    for (std::size_t k = 0; k < kPageSize / 8; ++k) {
      if (LAB_LIKELY(w[k] == kPoisonWord)) continue;
      const auto *b = reinterpret_cast<const unsigned char *>(w + k);
      std::size_t off = k * 8;
      while (b[off - k * 8] == kPoison) ++off;
      write_report("labyrinth: POISON: write after free in pool %p: page %p (page %zu of the "
                   "arena) was written while it was free: first bad byte at offset %zu is 0x%x "
                   "(expected 0x%x); its last owner was %llu; aborting\n",
                   static_cast<void *>(p), p->page_at(i), i, off,
                   static_cast<unsigned>(b[off - k * 8]), static_cast<unsigned>(kPoison),
                   static_cast<unsigned long long>(last));
      abort();
    }
    p->poison_owner[i] = 0;
  }
}

// `tails_marked`: the block's other pages are TAIL already (it comes from an
// order cache), so only its first word changes.
// `pkey` (PKEYS pools, else -1): the key the block gets, the caller's for an
// exclusive block, 0 (open to all) for a shared one.
static void hand_out(Pool *p, std::size_t idx, unsigned order, labyrinth_gfp gfp,
                     bool tails_marked, int pkey) {
  const bool excl = gfp & LABYRINTH_GFP_EXCLUSIVE;
  const std::size_t pages = std::size_t{1} << order;
  if (!tails_marked)
    for (std::size_t i = 1; i < pages; ++i) p->meta[idx + i].store(TAIL, kRelaxed);
  void *page = p->page_at(idx);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(page, pages * kPageSize, PROT_READ | PROT_WRITE);
  if (pkey >= 0) {
    pkeys::protect(page, pages * kPageSize, pkey);
    if (excl) pkeys::hold(owner_self());
  }
  if (p->flags & LABYRINTH_POOL_POISON) check_poison(p, idx, pages);
  // Fresh pages are zero; freed ones hold zeros (SCRUB) or the pattern
  // (POISON; with SCRUB too, the block is zeroed here instead).
  const bool zero = (p->flags & LABYRINTH_POOL_SCRUB) ? (p->flags & LABYRINTH_POOL_POISON) != 0
                                                       : (gfp & LABYRINTH_GFP_ZERO) != 0;
  if (zero) std::memset(page, 0, pages * kPageSize);
  p->meta[idx].store(alloc_word(order, excl, excl ? owner_self() : 0), std::memory_order_release);
}

// The message budget is tls.message (224 bytes, initial-exec TLS: kept small
// so the library still fits glibc's static TLS surplus when dlopen()ed), so
// the pieces are terse: the typical worst case (ATOMIC, busy mutex) is ~210.
// Free pages in other threads' caches are out of this call's reach; a
// non-ATOMIC caller is told how many (a scan of every cache: up to two cache
// misses per cache in use), an ATOMIC one only how many caches are in use,
// so that its refusal stays as quick as the rest of its path.
static labyrinth_status nomem(Pool *p, unsigned order, labyrinth_gfp gfp) {
  const char *busy = tls.mutex_busy ? "; the mutex of a zone with free blocks was busy (ATOMIC "
                                      "never waits for it)"
                                    : "";
  if (gfp & LABYRINTH_GFP_ATOMIC)
    return set_error(p->fail(LABYRINTH_ERR_NOMEM),
                     "no free block of order %u (ATOMIC): %zu free outside the %u thread caches "
                     "in use, reserve %zu/%zu, min watermark %zu, largest free order %d%s",
                     order, p->free_pages(), p->caches_in_use.load(kRelaxed), p->reserve.pages(),
                     p->reserve_target, p->wm_min, p->largest_free_order(), busy);
  std::uint64_t mine = 0;
  const std::uint64_t cached = cached_pages(p, &mine);
  return set_error(p->fail(LABYRINTH_ERR_NOMEM),
                   "no free block of order %u (without waiting): %zu free, %llu in thread caches "
                   "(%llu this thread's), reserve %zu/%zu, min watermark %zu, largest free order %d%s",
                   order, p->free_pages(), static_cast<unsigned long long>(cached),
                   static_cast<unsigned long long>(mine), p->reserve.pages(), p->reserve_target,
                   p->wm_min, p->largest_free_order(), busy);
}

static labyrinth_status wait_for_block(Pool *p, unsigned order, labyrinth_gfp gfp,
                                       std::uint32_t timeout_ms, std::size_t *idx) {
  const std::int64_t deadline =
      timeout_ms == LABYRINTH_TIMEOUT_INFINITE ? INT64_MAX : now_ns() + std::int64_t{timeout_ms} * 1000000;
  Waiter self{order, nullptr};
  std::unique_lock<std::mutex> lock(p->wait_mu);
  if (p->wait_tail) p->wait_tail->next = &self;
  else p->wait_head = &self;
  p->wait_tail = &self;
  p->nwaiters.fetch_add(1, std::memory_order_seq_cst);
  set_pressure(p);
  p->waits.fetch_add(1, kRelaxed);
  bool got = false, timed_out = false;
  for (;;) {
    std::uint32_t seen = p->wait_seq.load(std::memory_order_seq_cst);
    if (p->wait_head == &self) {
      // Only the first waiter takes pages: arrival order is service order.
      if (order == 0 && p->use_caches && p->free_pages() > p->wm_min) {
        const std::size_t first = p->shared.pop_page();
        if (first != kNil30) {
          *idx = first;
          got = true;
        }
      }
      if (!got) got = take_block_flushing(p, order, false, idx);
      if (got) break;
    }
    std::int64_t left = deadline - now_ns();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    lock.unlock();
    // Sleep until pages come back (wait_seq changes), the deadline, or 100 ms:
    // the periodic re-check is a safety net for pages freed into thread caches.
    futex_wait(&p->wait_seq, seen, std::min<std::int64_t>(left, 100000000));
    lock.lock();
  }
  // Dequeue ourselves (we may not be first if we timed out).
  Waiter **link = &p->wait_head;
  Waiter *prev = nullptr;
  while (*link != &self) {
    prev = *link;
    link = &(*link)->next;
  }
  *link = self.next;
  if (p->wait_tail == &self) p->wait_tail = prev;
  p->nwaiters.fetch_sub(1, std::memory_order_seq_cst);
  lock.unlock();
  wake_waiters(p);  // the next waiter is now first
  update_pressure(p);
  if (timed_out) {
    p->timeouts.fetch_add(1, kRelaxed);
    std::uint64_t mine = 0;
    const std::uint64_t cached = cached_pages(p, &mine);
    return set_error(p->fail(LABYRINTH_ERR_TIMEOUT),
                     "no block of order %u became free within %u ms (%zu free pages, %llu in "
                     "thread caches (%llu this thread's), min watermark %zu)",
                     order, timeout_ms, p->free_pages(), static_cast<unsigned long long>(cached),
                     static_cast<unsigned long long>(mine), p->wm_min);
  }
  (void)gfp;
  return LABYRINTH_OK;
}

labyrinth_status pool_alloc(Pool *p, unsigned order, labyrinth_gfp gfp, std::uint32_t timeout_ms,
                            void **out) {
  if (LAB_UNLIKELY(p->forked()))
    return set_error(LABYRINTH_ERR_INVALID, "the pool belongs to the parent process; it cannot "
                                            "be used after fork()");
  const bool atomic = gfp & LABYRINTH_GFP_ATOMIC;
  std::size_t idx = 0;
  bool got = false;
  tls.mutex_busy = 0;
  // PKEYS: the key the block will carry, known before any block is taken
  // (no key left: UNSUPPORTED, nothing changed).
  int pkey = -1;
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    if (gfp & LABYRINTH_GFP_EXCLUSIVE) {
      labyrinth_status st = pkeys::self_key("labyrinth_alloc_pages", &pkey);
      if (st != LABYRINTH_OK) return p->fail(st);
    } else {
      pkey = 0;
      pkeys::refresh_rights();
    }
  }
  // WAIT callers queue behind earlier waiters rather than overtake them.
  const bool queue_first = (gfp & LABYRINTH_GFP_WAIT) && p->nwaiters.load(kRelaxed) > 0;
  bool cached = false;
  if (!queue_first) {
    auto attempt = [&] {
      return (order == 0 ? take_page(p, atomic, &idx) : take_block_flushing(p, order, atomic, &idx)) ||
             carve_cached_block(p, order, atomic, &idx);
    };
    got = order > 0 && (cached = take_cached_block(p, order, &idx));
    if (!got) got = attempt();
    if (!got && atomic && order == 0) got = take_reserve(p, &idx);
    // Free pages may sit in the caches of threads that have gone idle: a
    // caller that may block takes them back (reclaim_caches) and tries once
    // more, before it fails or sleeps.
    if (!got && !atomic && reclaim_caches(p, std::size_t{1} << order) != 0) got = attempt();
  }
  if (!got) {
    if (!(gfp & LABYRINTH_GFP_WAIT)) return nomem(p, order, gfp);
    labyrinth_status st = wait_for_block(p, order, gfp, timeout_ms, &idx);
    if (st != LABYRINTH_OK) return st;
  }
  hand_out(p, idx, order, gfp, cached, pkey);
  *out = p->page_at(idx);
  return LABYRINTH_OK;
}

// ---------------------------------------------------------------------------
// Returning blocks
// ---------------------------------------------------------------------------

// What every mode does to a block that is becoming free, before any free
// list can hand it out again.
static void treat_freed_block(Pool *p, std::size_t idx, std::size_t pages, std::uint64_t last_owner) {
  if (p->flags & LABYRINTH_POOL_POISON) poison_block(p, idx, pages, last_owner);
  else if (p->flags & LABYRINTH_POOL_SCRUB) std::memset(p->page_at(idx), 0, pages * kPageSize);
}

void release_block(Pool *p, std::size_t idx, unsigned order) {
  const std::size_t pages = std::size_t{1} << order;
  void *page = p->page_at(idx);
  if (p->flags & (LABYRINTH_POOL_POISON | LABYRINTH_POOL_SCRUB)) {
    // The word still names the owner of an exclusive block; a shared block
    // was last held by the thread freeing it.
    std::uint64_t w = p->meta[idx].load(kRelaxed);
    treat_freed_block(p, idx, pages, exclusive(w) ? side::owner(w) : owner_self());
  }
  if (order == 0 && p->use_caches) {
    ThreadCache *c = enter_cache(p);
    if (c && !p->pressure.load(kRelaxed)) {
      const std::uint32_t high = c->high.load(kRelaxed);
      if (c->n() >= high) cache_overflow(p, c);
      // A limit left at 0 by pressure that has ended sends every free here.
      if (c->limit() != high) cache_sync_limit(p, c);
      std::uint32_t n = c->n();
      p->meta[idx].store(CACHED, kRelaxed);
      c->slots()[n] = page;
      c->set_n(n + 1);
      leave_call();
      return;
    }
    // Under pressure the pages this thread keeps cached are what other
    // threads lack: the first free it makes under pressure gives them all
    // back (lock-free, like a drain; its later frees find the cache empty).
    if (c) {
      if (c->n()) cache_drain(p, c, c->n());
      leave_call();
    }
    // Under pressure, without a cache or re-entered: straight to the shared
    // list (or the reserve, if it is short), lock-free, and wake waiters.
    if (p->reserve.pages() < p->reserve_target)
      p->reserve.push([idx](std::size_t) { return idx; }, 1);
    else
      p->shared.push([idx](std::size_t) { return idx; }, 1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (p->nwaiters.load(kRelaxed)) wake_waiters(p);
    update_pressure(p);
    return;
  }
  if (order > 0 && p->use_caches) {
    if (ThreadCache *c = enter_cache(p)) {
      bool kept = order_cache_push(p, c, idx, order);
      leave_call();
      if (kept) return;
    }
  }
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    const std::uint64_t w = p->meta[idx].load(kRelaxed);
    pkeys::protect(page, pages * kPageSize, pkeys::free_key());
    if (exclusive(w)) pkeys::drop(side::owner(w));
  }
  {
    Zone &zone = p->zone_of(idx);
    std::lock_guard<ZoneMutex> lock(zone.mu);
    if (p->flags & LABYRINTH_POOL_GUARD) mprotect(page, pages * kPageSize, PROT_NONE);
    zone.buddy.free(idx, order);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (p->nwaiters.load(kRelaxed)) wake_waiters(p);
  update_pressure(p);
}

void release_orphan_block(Pool *p, std::size_t idx, unsigned order, std::uint64_t owner) {
  const std::size_t pages = std::size_t{1} << order;
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    // The dead owner's key: this thread has no access. Free key first, then
    // scrub or poison with access to free pages for the moment.
    pkeys::protect(p->page_at(idx), pages * kPageSize, pkeys::free_key());
    pkeys::drop(owner);
    pkeys::FreePageAccess access;
    treat_freed_block(p, idx, pages, owner);
  } else {
    treat_freed_block(p, idx, pages, owner);
  }
  Zone &zone = p->zone_of(idx);
  std::lock_guard<ZoneMutex> lock(zone.mu);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(p->page_at(idx), pages * kPageSize, PROT_NONE);
  zone.buddy.free(idx, order);
}

// ---------------------------------------------------------------------------
// Memory protection keys: the run-time probe behind PKEYS' UNSUPPORTED.
// ---------------------------------------------------------------------------

PkeysProbe pkeys_probe() {
  PkeysProbe r;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    r.cpu = (c >> 3) & 1;  // CPUID.(EAX=7,ECX=0):ECX.PKU[bit 3]
    r.os = (c >> 4) & 1;   // ECX.OSPKE[bit 4]: the kernel set CR4.PKE
  }
#elif defined(__aarch64__)
#ifndef HWCAP2_POE
#define HWCAP2_POE (1UL << 63)
#endif
  r.cpu = (getauxval(AT_HWCAP2) & HWCAP2_POE) ? 1 : 0;  // the kernel reports POE only if it uses it
  r.os = r.cpu;
#endif
#ifdef SYS_pkey_alloc
  long key = syscall(SYS_pkey_alloc, 0ul, 0ul);
  if (key >= 0) {
    r.key = static_cast<int>(key);
    syscall(SYS_pkey_free, key);
  } else {
    r.err = errno;
  }
#else
  r.err = ENOSYS;
#endif
  return r;
}

static std::size_t format_into(char *buf, std::size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::size_t n = format_message(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

void pkeys_explain(const PkeysProbe &r, char *buf, std::size_t cap) {
  if (r.cpu == 0)
    format_into(buf, cap, "this CPU has no memory protection keys (no x86 PKU, no arm64 POE), so "
                          "exclusivity cannot be enforced in hardware here");
  else if (r.cpu == 1 && r.os == 0)
    format_into(buf, cap, "the CPU has memory protection keys but the kernel has not enabled them "
                          "(booted with nopku, or built without protection key support)");
  else if (r.key < 0 && r.err == ENOSYS)
    format_into(buf, cap, "the kernel has no pkey_alloc system call (ENOSYS)");
  else if (r.key < 0 && r.err == ENOSPC)
    format_into(buf, cap, "the kernel has no protection key left for this process (pkey_alloc: "
                          "ENOSPC)");
  else if (r.key < 0)
    format_into(buf, cap, "pkey_alloc failed (errno %d)", r.err);
  else
    format_into(buf, cap, "this CPU and kernel have memory protection keys (pkey_alloc gave key "
                          "%d)",
                r.key);
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

labyrinth_status pool_stats(const Pool *cp, labyrinth_stats *out) {
  Pool *p = const_cast<Pool *>(cp);
  if (p->forked())
    return set_error(LABYRINTH_ERR_INVALID, "labyrinth_pool_stats: the pool belongs to the "
                                            "parent process; it cannot be used after fork()");
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  s.total_pages = p->npages;
  // The zones' counters, read without their mutexes (exact when no other
  // thread is changing them).
  for (unsigned z = 0; z < p->nzones; ++z)
    for (unsigned o = 0; o <= kMaxOrder; ++o) s.free_blocks[o] += p->zones[z].buddy.free_blocks(o);
  s.free_pages = p->free_pages();
  s.shared_free_pages = p->shared.pages();
  s.reserve_pages = p->reserve.pages();
  s.reserve_target = p->reserve_target;
  s.cached_pages = cached_pages(p);
  std::uint64_t not_allocated = s.free_pages + s.reserve_pages + s.cached_pages;
  s.allocated_pages = s.total_pages > not_allocated ? s.total_pages - not_allocated : 0;
  s.inflight_pages = p->inflight_pages.load(kRelaxed);
  {
    std::lock_guard<std::mutex> reg(registry_mutex());
    s.orphaned_pages = count_orphaned_pages(p);
  }
  s.reserve_uses = p->reserve_uses.load(kRelaxed);
  for (unsigned i = 0; i < LABYRINTH_STATUS_COUNT; ++i) s.failures[i] = p->failures[i].load(kRelaxed);
  s.waits = p->waits.load(kRelaxed);
  s.timeouts = p->timeouts.load(kRelaxed);
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {  // every cache, in use or not
    s.refills += p->cache_at(i)->refills.load(kRelaxed);
    s.drains += p->cache_at(i)->drains.load(kRelaxed);
  }
  s.pressure_events = p->pressure_events.load(kRelaxed);
  s.watermark_min = p->wm_min;
  s.watermark_low = p->wm_low;
  s.watermark_high = p->wm_high;
  s.thread_caches_in_use = p->caches_in_use.load(kRelaxed);
  s.metadata_bytes = p->npages * sizeof(std::uint64_t);
  s.flags = p->flags;
  s.huge_pages = p->arena.huge_pages ? 1 : 0;
  s.cache_reclaims = p->cache_reclaims.load(kRelaxed);
  s.reclaimed_pages = p->reclaimed_pages.load(kRelaxed);
  // Write only what the caller's struct covers; struct_size stays theirs.
  std::size_t n = std::min(out->struct_size, sizeof s);
  std::memcpy(reinterpret_cast<char *>(out) + sizeof(std::size_t),
              reinterpret_cast<const char *>(&s) + sizeof(std::size_t), n - sizeof(std::size_t));
  return LABYRINTH_OK;
}

}  // namespace lab
