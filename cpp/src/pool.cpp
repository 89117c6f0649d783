// pool.cpp - a pool's lifecycle: create (read the options, create an empty
// pool, populate it), destroy, trim, and a thread's exit.
#include "pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

#include "boundary.hpp"
#include "depot.hpp"
#include "listeners.hpp"
#include "pkeys.hpp"
#include "reserve.hpp"
#include "thread_cache.hpp"
#include "waiters.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
std::atomic<std::uint64_t> g_next_pool_id{0};

// The options the pool will have, checked (the boundary has laid the
// caller's struct over the defaults). INVALID or UNSUPPORTED with
// a message if they cannot make a pool.
// A provider is copied into *provider, which o.arena_provider then names.
labyrinth_status read_options(const labyrinth_pool_options *opts, labyrinth_pool_options &o,
                              labyrinth_arena_provider *provider) {
  o = *opts;  // a complete struct of this version (boundary.hpp)
  if (o.arena_provider) {
    if (labyrinth_status st = check_struct_size(
            o.arena_provider->struct_size, sizeof(labyrinth_arena_provider),
            "labyrinth_pool_create", "arena_provider", "set it to sizeof(labyrinth_arena_provider)");
        st != LABYRINTH_OK)
      return st;
    copy_in(o.arena_provider, provider);
    o.arena_provider = provider;
    if (labyrinth_status st = check_provider(*provider, o.numa_node); st != LABYRINTH_OK) return st;
  }
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
                              LABYRINTH_POOL_NO_RECLAIM | LABYRINTH_POOL_PIN_BEST_EFFORT;
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
  return LABYRINTH_OK;
}

// The sizes a pool's memory needs, from the options and the arena just mapped.
void size_pool(Pool *p, const labyrinth_pool_options &o) {
  p->base = p->arena.base;
  p->size = o.size_bytes;
  p->npages = o.size_bytes / kPageSize;
  p->flags = (o.flags & ~LABYRINTH_POOL_PIN) | (p->arena.pinned ? LABYRINTH_POOL_PIN : 0u);
  p->max_caches = o.max_thread_caches;
  p->cache_capacity = o.thread_cache_pages;
  p->cache_batch = o.thread_cache_batch;
  p->cache_start = std::max(p->cache_batch, std::min<std::uint32_t>(kCacheStartPages, p->cache_capacity));
  // A mark rises to 1/16 of the pool at most (and never below its start).
  p->cache_high_max = static_cast<std::uint32_t>(
      std::max<std::size_t>(p->cache_start, std::min<std::size_t>(p->cache_capacity, p->npages / 16)));
  // Each cache starts on its own cache line (ThreadCache is alignas(64)),
  // whatever the capacity: no misaligned objects, no line shared by two threads.
  p->cache_stride = ThreadCache::bytes(p->cache_capacity);
  p->cache_mem_bytes = std::size_t{p->max_caches} * p->cache_stride;
}

// The side table, the thread caches' memory and (POISON) the poison table.
// NOMEM with a message if one cannot be mapped; what was mapped stays for
// unmap_tables.
labyrinth_status map_tables(Pool *p) {
  p->meta = static_cast<std::atomic<std::uint64_t> *>(meta_map(p->npages * sizeof(std::uint64_t)));
  p->cache_mem = p->cache_mem_bytes ? meta_map(p->cache_mem_bytes) : nullptr;
  if (p->flags & LABYRINTH_POOL_POISON)
    p->poison_owner = static_cast<std::uint64_t *>(meta_map(p->npages * sizeof(std::uint64_t)));
  if (!p->meta || (p->cache_mem_bytes && !p->cache_mem) ||
      ((p->flags & LABYRINTH_POOL_POISON) && !p->poison_owner))
    return set_error(LABYRINTH_ERR_NOMEM,
                     "labyrinth_pool_create: mmap of the side table failed (errno %d)", errno);
  return LABYRINTH_OK;
}

void unmap_tables(Pool *p) {
  meta_unmap(p->meta, p->npages * sizeof(std::uint64_t));
  meta_unmap(p->cache_mem, p->cache_mem_bytes);
  meta_unmap(p->poison_owner, p->npages * sizeof(std::uint64_t));
}

// An empty pool: its memory mapped (the arena, with PKEYS the free key on
// it, and the tables), nothing in it yet. On failure nothing is left: one
// path undoes whatever was done.
labyrinth_status create_empty(const labyrinth_pool_options &o, Pool **out) {
  const bool pkeys = o.flags & LABYRINTH_POOL_PKEYS;
  labyrinth_status st = pkeys ? pkeys::attach("labyrinth_pool_create") : LABYRINTH_OK;
  const bool attached = pkeys && st == LABYRINTH_OK;
  Pool *p = nullptr;
  if (st == LABYRINTH_OK && !(p = new (std::nothrow) Pool))
    st = set_error(LABYRINTH_ERR_NOMEM, "labyrinth_pool_create: out of memory");
  if (st == LABYRINTH_OK) st = arena_map(o.size_bytes, o.flags, o.numa_node, o.arena_provider, &p->arena);
  if (st == LABYRINTH_OK && pkeys && !pkeys::protect(p->arena.base, o.size_bytes, pkeys::free_key()))
    st = set_error(LABYRINTH_ERR_SYSTEM,
                   "labyrinth_pool_create: LABYRINTH_POOL_PKEYS: pkey_mprotect of the arena "
                   "failed (errno %d)",
                   errno);
  if (st == LABYRINTH_OK) {
    size_pool(p, o);
    st = map_tables(p);
  }
  if (st == LABYRINTH_OK) {
    *out = p;
    return LABYRINTH_OK;
  }
  if (p) {
    unmap_tables(p);
    arena_unmap(&p->arena);
    delete p;
  }
  if (attached) pkeys::detach();
  return st;
}

// Zones: 2 to 4 for pools of 2 to 4+ times 4 MiB.
void init_zones(Pool *p) {
  // Split at multiples of 4 MiB (the last one takes the rest).
  const std::size_t units = p->npages / kZoneUnit;
  p->nzones = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(kMaxZones, units)));
  for (unsigned z = 0; z < p->nzones; ++z) {
    Zone &zone = p->zones[z];
    zone.begin = units * z / p->nzones * kZoneUnit;
    zone.end = z + 1 == p->nzones ? p->npages : units * (z + 1) / p->nzones * kZoneUnit;
    zone.buddy.init(p->meta, zone.begin, zone.end);
  }
}

// Fill an empty pool: its thread caches, zones, depot and reserve.
void populate(Pool *p, const labyrinth_pool_options &o) {
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    new (p->cache_at(i)) ThreadCache(p->cache_capacity, p->cache_batch, p->cache_start, p->npages / 32);
  }
  // GUARD and PKEYS change a block's protection at every hand-out and
  // return: every block goes through the buddy allocator, no cache.
  p->use_caches = !(p->flags & (LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PKEYS)) && p->max_caches > 0;
  p->fast_ok = p->use_caches &&
               !(p->flags & (LABYRINTH_POOL_SCRUB | LABYRINTH_POOL_GUARD | LABYRINTH_POOL_POISON));
  p->wm_min = o.watermark_min_pages;
  p->wm_low = o.watermark_low_pages;
  p->wm_high = o.watermark_high_pages;
  init_zones(p);
  // Magazines are written inside free pages, on the free path: only where
  // every page is resident (PIN: a write must not fault a page in, which may
  // sleep), and not where free pages must stay zero (SCRUB), hold a pattern
  // (POISON) or are protected (GUARD, PKEYS).
  const bool magazines = p->arena.pinned &&
                         !(p->flags & (LABYRINTH_POOL_SCRUB | LABYRINTH_POOL_POISON |
                                       LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PKEYS));
  p->depot.init(p->meta, DEPOT, magazines ? p->base : nullptr, p->npages);
  p->reserve.init(p->meta, RESERVE);
  p->reserve_target = o.atomic_reserve_pages;
  fill_reserve(p);
  if (p->flags & LABYRINTH_POOL_GUARD) mprotect(p->base, p->size, PROT_NONE);
  p->fork_gen = fork_generation();
  update_pressure(p);
}

}  // namespace

labyrinth_status pool_create(const labyrinth_pool_options *opts, labyrinth_pool **out) {
  labyrinth_pool_options o;
  labyrinth_arena_provider provider{};
  labyrinth_status st = read_options(opts, o, &provider);
  Pool *p = nullptr;
  if (st == LABYRINTH_OK) st = create_empty(o, &p);
  if (st != LABYRINTH_OK) return st;
  populate(p, o);
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    p->id = g_next_pool_id.fetch_add(1, kRelaxed) + 1;
    registry_pools().push_back(p);
  }
  *out = p;
  return LABYRINTH_OK;
}

// Why the pool cannot be destroyed now (BUSY, counted), or OK.
static labyrinth_status destroy_refusal(Pool *p, std::uint32_t flags, const char *what) {
  if (std::uint64_t h = p->holds.load())
    return refuse(p, LABYRINTH_ERR_BUSY,
                  "%s: the pool is held by %llu io_uring registration(s), managed ring(s) or AF_XDP "
                  "UMEM(s); unregister or destroy them first",
                  what, static_cast<unsigned long long>(h));
  if (std::uint64_t inflight = p->inflight_pages.load())
    return refuse(p, LABYRINTH_ERR_BUSY, "%s: %llu page(s) are in flight in the kernel", what,
                  static_cast<unsigned long long>(inflight));
  const std::uint64_t live = p->npages - p->free_pages() - p->reserve.pages() - cached_pages(p);
  if (!live || (flags & LABYRINTH_DESTROY_FORCE)) return LABYRINTH_OK;
  std::size_t example = 0;
  for (std::size_t i = 0; i < p->npages; ++i) {
    State s = state(p->meta[i].load(kRelaxed));
    if (s == ALLOC || s == INFLIGHT) { example = i; break; }
  }
  return refuse(p, LABYRINTH_ERR_BUSY,
                "%s: %llu page(s) are still allocated (e.g. %p); free them or pass "
                "LABYRINTH_DESTROY_FORCE",
                what, static_cast<unsigned long long>(live), p->page_at(example));
}

// Whether the pool may be destroyed now (registry mutex taken and let go).
static labyrinth_status destroyable(Pool *p, std::uint32_t flags, const char *what) {
  std::lock_guard<std::mutex> reg(registry_mutex());
  auto &pools = registry_pools();
  if (std::find(pools.begin(), pools.end(), p) == pools.end()) return refuse_unusable(p, what);
  return destroy_refusal(p, flags, what);
}

// Free everything the pool holds, unless destroy_refusal says otherwise
// now (the listeners' callbacks ran since destroyable()).
static labyrinth_status tear_down(Pool *p, std::uint32_t flags, const char *what) {
  std::lock_guard<std::mutex> reg(registry_mutex());
  auto &pools = registry_pools();
  auto it = std::find(pools.begin(), pools.end(), p);
  if (it == pools.end()) return refuse_unusable(p, what);  // destroyed by another thread just now
  if (labyrinth_status st = destroy_refusal(p, flags, what); st != LABYRINTH_OK) return st;
  pools.erase(it);
  // Threads whose inline fast-path record names this pool forget it: their
  // inline code then hands every call on it to the library, which refuses it.
  for (std::uint32_t i = 0; i < p->max_caches; ++i) {
    if (labyrinth_fast_record *rec = p->cache_at(i)->record.load(kRelaxed)) {
      const labyrinth_pool *expected = p;
      __atomic_compare_exchange_n(&rec->pool, &expected, nullptr, false, __ATOMIC_RELAXED,
                                  __ATOMIC_RELAXED);
    }
  }
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    // Blocks still owned (a forced destroy) stop carrying their owners' keys.
    for (std::size_t i = 0; i < p->npages; ++i) {
      const std::uint64_t w = p->meta[i].load(kRelaxed);
      if ((state(w) == ALLOC || state(w) == INFLIGHT) && exclusive(w)) pkeys::drop(owner(w));
    }
    pkeys::detach();
  }
  meta_unmap(p->meta, p->npages * sizeof(std::uint64_t));
  meta_unmap(p->cache_mem, p->cache_mem_bytes);
  meta_unmap(p->poison_owner, p->npages * sizeof(std::uint64_t));
  arena_unmap(&p->arena);
  for (auto &slot : tls.slots)
    if (slot.pool_id == p->id) slot = CacheSlot{0, nullptr};
  if (fast_pool() == p) fast_forget();
  if (tls.stash == p) tls.stash = nullptr;
  retire_pool(p);  // the handle stays a tombstone: later calls on it are refused
  return LABYRINTH_OK;
}

// The pool's own checks, then its listeners' consent, then their notices,
// then the teardown; listener callbacks run with no lock held.
labyrinth_status pool_destroy(Pool *p, std::uint32_t flags, const char *what) {
  if (labyrinth_status st = begin_destroy(p, what); st != LABYRINTH_OK) return st;
  labyrinth_status st = destroyable(p, flags, what);
  if (st == LABYRINTH_OK) st = ask_listeners(p, what);
  if (st == LABYRINTH_OK) {
    remove_listeners(p);
    st = tear_down(p, flags, what);
  }
  end_destroy(p);
  return st;
}

void pool_thread_exit(Pool *p, std::uint64_t owner) {
  // Thread exit is no boundary call: the parent's pools, registered in a
  // forked child too, are its own to check.
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

labyrinth_status pool_trim(Pool *p) {
  // The reserve's renewal needs room for its page numbers; if that cannot be
  // had (NOMEM through the C boundary), nothing has changed yet.
  std::vector<std::size_t> scratch;
  scratch.reserve(p->reserve_target);
  if (ThreadCache *c = enter_cache(p)) {
    give_back_cache(p, c);
    leave_call();
  }
  // The depot, each page under its own zone's mutex: ATOMIC callers on
  // other threads find the other zones free (depot.hpp, trim_depot).
  trim_depot(p);
  renew_reserve(p, scratch);
  update_pressure(p);
  return LABYRINTH_OK;
}

}  // namespace lab
