// ownership.cpp - who may do what with an allocated block: classify a
// pointer, free, transfer, look up, hand to the kernel and back, and reclaim
// the blocks of threads that exited. Every refusal leaves the side table as
// it was and says why, naming the address.
#include <algorithm>

#include "internal_api.hpp"
#include "pkeys.hpp"
#include "pool.hpp"
#include "waiters.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;

const char *state_name(State s) {
  switch (s) {
    case UNUSED: return "inside a free block";
    case BUDDY: return "free (in the buddy allocator)";
    case CACHED: return "free (in a thread cache)";
    case DEPOT:
    case MAGAZINE: return "free (in the depot or a thread cache)";
    case RESERVE: return "free (in the atomic reserve)";
    default: return "free";
  }
}
}  // namespace

// The block that page `i` (whose word is UNUSED or TAKEN, so not a block's
// first page) lies inside: the first of the aligned pages i & ~(2^o - 1),
// o = 1..kMaxOrder, whose word heads a block of order >= o (side_table.hpp:
// only first pages have words of their own). A refusal naming that block.
// A misuse path: kept out of classify(), which every free runs.
__attribute__((noinline, cold)) static labyrinth_status inner_page_error(const Pool *p, const void *page,
                                                                         const char *what, std::size_t i,
                                                                         State s) {
  for (unsigned o = 1; o <= kMaxOrder; ++o) {
    const std::size_t head = i & ~((std::size_t{1} << o) - 1);
    const std::uint64_t hw = p->meta[head].load(kRelaxed);
    const State hs = state(hw);
    if (!(hs == ALLOC || hs == INFLIGHT || hs == CACHED || hs == BUDDY) || order(hw) < o) continue;
    const std::size_t k = i - head;
    void *at = p->page_at(head);
    if (hs == BUDDY || hs == CACHED)
      return set_error(LABYRINTH_ERR_DOUBLE_FREE,
                       "%s: %p is already free (page %zu of the free order-%u block at %p, in %s)",
                       what, page, k, order(hw), at,
                       hs == BUDDY ? "the buddy allocator" : "a thread's order cache");
    if (exclusive(hw))
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: %p is not the start of a block: it is page %zu of the order-%u block "
                       "at %p, exclusive to owner %llu",
                       what, page, k, order(hw), at, static_cast<unsigned long long>(owner(hw)));
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: %p is not the start of a block: it is page %zu of the order-%u block at "
                     "%p, shared (no owner)",
                     what, page, k, order(hw), at);
  }
  // No block head found: the block is being taken or given back right now.
  if (s == UNUSED)
    return set_error(LABYRINTH_ERR_DOUBLE_FREE, "%s: %p is already %s", what, page, state_name(s));
  return set_error(LABYRINTH_ERR_INVALID, "%s: %p is not the start of a block", what, page);
}

labyrinth_status classify(const Pool *p, const void *page, const char *what, std::size_t *idx,
                          std::uint64_t *word) {
  auto addr = reinterpret_cast<std::uintptr_t>(page);
  auto base = reinterpret_cast<std::uintptr_t>(p->base);
  if (!page)
    return set_error(LABYRINTH_ERR_INVALID, "%s: page is NULL", what);
  if (addr < base || addr - base >= p->size)
    return set_error(LABYRINTH_ERR_FOREIGN,
                     "%s: %p is not from this pool (its arena is %p..%p)", what, page,
                     static_cast<void *>(p->base), static_cast<void *>(p->base + p->size));
  std::uintptr_t off = addr - base;
  if (off & (kPageSize - 1))
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: %p is not the start of a block (it is %zu bytes into the page at %p)",
                     what, page, static_cast<std::size_t>(off & (kPageSize - 1)),
                     static_cast<void *>(p->base + (off & ~(kPageSize - 1))));
  std::size_t i = off >> kPageShift;
  std::uint64_t w = p->meta[i].load(std::memory_order_acquire);
  State s = state(w);
  if (s == ALLOC || s == INFLIGHT) {
    *idx = i;
    *word = w;
    return LABYRINTH_OK;
  }
  if (s == UNUSED || s == TAKEN) return inner_page_error(p, page, what, i, s);
  if (s == BUDDY)
    return set_error(LABYRINTH_ERR_DOUBLE_FREE,
                     "%s: %p is already free (in the buddy allocator: the first page of a free "
                     "order-%u block)",
                     what, page, order(w));
  return set_error(LABYRINTH_ERR_DOUBLE_FREE, "%s: %p is already %s", what, page, state_name(s));
}

labyrinth_status pool_free(Pool *p, void *page, int expected_order) {
  const char *what = expected_order < 0 ? "labyrinth_free_pages" : "labyrinth_free_pages_order";
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, what, &idx, &w);
  if (st != LABYRINTH_OK) return p->fail(st);
  if (expected_order >= 0 && order(w) != static_cast<unsigned>(expected_order))
    return set_error(p->fail(LABYRINTH_ERR_INVALID),
                     "%s: %p is an order-%u block, not order %d; nothing was freed", what, page,
                     order(w), expected_order);
  if (state(w) == INFLIGHT)
    return set_error(p->fail(LABYRINTH_ERR_BUSY),
                     "%s: %p is in flight in the kernel (io_uring); it can be freed once its "
                     "completion has been reaped",
                     what, page);
  if (p->flags & LABYRINTH_POOL_PKEYS) pkeys::refresh_rights();
  if (exclusive(w)) {
    std::uint64_t me = owner_self();
    if (owner(w) != me)
      return set_error(p->fail(LABYRINTH_ERR_NOT_OWNER),
                       "%s: %p is exclusive to owner %llu, not to the calling thread (owner %llu)",
                       what, page, static_cast<unsigned long long>(owner(w)),
                       static_cast<unsigned long long>(me));
    // Only the owner changes an exclusive block's word: a plain store is enough.
  } else {
    // Anyone may free a shared block: the compare-and-swap decides who does.
    if (!p->meta[idx].compare_exchange_strong(w, with_state(w, CACHED), std::memory_order_acq_rel))
      return set_error(p->fail(LABYRINTH_ERR_DOUBLE_FREE),
                       "%s: %p was freed by another thread at the same time", what, page);
  }
  release_block(p, idx, order(w));
  return LABYRINTH_OK;
}

labyrinth_status pool_transfer(Pool *p, void *page, labyrinth_owner new_owner) {
  if (new_owner == LABYRINTH_OWNER_NONE || new_owner > LABYRINTH_OWNER_MAX)
    return set_error(p->fail(LABYRINTH_ERR_INVALID),
                     "labyrinth_page_transfer: new owner %llu is not a valid owner id (1..%llu)",
                     static_cast<unsigned long long>(new_owner),
                     static_cast<unsigned long long>(LABYRINTH_OWNER_MAX));
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, "labyrinth_page_transfer", &idx, &w);
  if (st != LABYRINTH_OK) return p->fail(st);
  if (state(w) == INFLIGHT)
    return set_error(p->fail(LABYRINTH_ERR_BUSY),
                     "labyrinth_page_transfer: %p is in flight in the kernel (io_uring)", page);
  if (!exclusive(w))
    return set_error(p->fail(LABYRINTH_ERR_INVALID),
                     "labyrinth_page_transfer: %p was not allocated with LABYRINTH_GFP_EXCLUSIVE; "
                     "it has no owner to transfer",
                     page);
  std::uint64_t me = owner_self();
  if (owner(w) != me)
    return set_error(p->fail(LABYRINTH_ERR_NOT_OWNER),
                     "labyrinth_page_transfer: %p is exclusive to owner %llu, not to the calling "
                     "thread (owner %llu)",
                     page, static_cast<unsigned long long>(owner(w)),
                     static_cast<unsigned long long>(me));
  if (p->flags & LABYRINTH_POOL_PKEYS) {
    // The block takes the new owner's key (refused, nothing changed, if it
    // has none); the caller loses access.
    pkeys::refresh_rights();
    const int key = pkeys::key_of(new_owner, "labyrinth_page_transfer");
    if (key < 0) return p->fail(LABYRINTH_ERR_UNSUPPORTED);
    if (!pkeys::protect(page, (std::size_t{1} << order(w)) * kPageSize, key))
      return set_error(p->fail(LABYRINTH_ERR_SYSTEM),
                       "labyrinth_page_transfer: pkey_mprotect of %p failed (errno %d); nothing "
                       "changed",
                       page, errno);
    pkeys::hold(new_owner);
    pkeys::drop(me);
  }
  p->meta[idx].store(with_owner(w, new_owner), std::memory_order_release);
  return LABYRINTH_OK;
}

labyrinth_status pool_page_info(const Pool *p, const void *page, labyrinth_owner *own,
                                unsigned *ord) {
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, "labyrinth_page_info", &idx, &w);
  if (st != LABYRINTH_OK) return st;
  if (own) *own = exclusive(w) ? owner(w) : LABYRINTH_OWNER_NONE;
  if (ord) *ord = order(w);
  return LABYRINTH_OK;
}

// Orphans: exclusive blocks whose owner id belongs to a thread that exited
// (`dead`: exited_owners(), registry mutex held).
static bool is_orphan(std::uint64_t w, const std::vector<std::uint64_t> &dead) {
  return state(w) == ALLOC && exclusive(w) && std::binary_search(dead.begin(), dead.end(), owner(w));
}

std::uint64_t count_orphaned_pages(const Pool *p) {
  const auto &dead = exited_owners();
  if (dead.empty()) return 0;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < p->npages; ++i) {
    std::uint64_t w = p->meta[i].load(kRelaxed);
    if (is_orphan(w, dead)) n += std::uint64_t{1} << order(w);
  }
  return n;
}

labyrinth_status pool_reclaim_orphans(Pool *p, std::size_t *reclaimed, const void *const *in_use,
                                      std::size_t n_in_use) {
  std::vector<std::size_t> orphans;
  std::vector<std::uint64_t> owners;
  {
    std::lock_guard<std::mutex> reg(registry_mutex());
    const auto &dead = exited_owners();
    // No owner exits while the registry mutex is held: an orphan found in
    // use here is refused before anything is claimed.
    for (std::size_t k = 0; k < n_in_use && !dead.empty(); ++k) {
      const auto off = static_cast<std::uintptr_t>(static_cast<const std::uint8_t *>(in_use[k]) - p->base);
      if (off < p->size && is_orphan(p->meta[off >> kPageShift].load(std::memory_order_acquire), dead))
        return set_error(p->fail(LABYRINTH_ERR_BUSY),
                         "labyrinth_pool_reclaim_orphans: the orphaned block at %p is still in "
                         "use; nothing was reclaimed",
                         in_use[k]);
    }
    for (std::size_t i = 0; i < p->npages && !dead.empty(); ++i) {
      std::uint64_t w = p->meta[i].load(std::memory_order_acquire);
      if (!is_orphan(w, dead)) continue;
      // Nobody can change an orphan's word (its owner is gone), but claim it
      // with a CAS all the same.
      if (p->meta[i].compare_exchange_strong(w, with_state(w, CACHED))) {
        orphans.push_back(i | (std::size_t{order(w)} << 56));
        owners.push_back(owner(w));
      }
    }
  }
  for (std::size_t k = 0; k < orphans.size(); ++k) {
    std::size_t idx = orphans[k] & ((std::size_t{1} << 56) - 1);
    unsigned ord = static_cast<unsigned>(orphans[k] >> 56);
    // Straight to the buddy (not this thread's cache): they may be large.
    // Scrubbed, poisoned or protected like every freed block.
    release_orphan_block(p, idx, ord, owners[k]);
  }
  if (!orphans.empty()) {
    wake_waiters(p);
    update_pressure(p);
  }
  if (reclaimed) *reclaimed = orphans.size();
  return LABYRINTH_OK;
}

// ---------------------------------------------------------------------------
// The kernel as an owner (internal_api.hpp)
// ---------------------------------------------------------------------------

void *pool_arena_base(const labyrinth_pool *pool) { return from_handle(pool)->base; }
std::size_t pool_arena_size(const labyrinth_pool *pool) { return from_handle(pool)->size; }

labyrinth_status page_begin_io(labyrinth_pool *pool, void *page, labyrinth_owner who) {
  Pool *p = from_handle(pool);
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, "io submission", &idx, &w);
  if (st != LABYRINTH_OK) return st;
  if (state(w) == INFLIGHT)
    return set_error(LABYRINTH_ERR_BUSY,
                     "io submission: %p is already in flight in the kernel; wait for its "
                     "completion",
                     page);
  if (exclusive(w) && owner(w) != who)
    return set_error(LABYRINTH_ERR_NOT_OWNER,
                     "io submission: %p is exclusive to owner %llu, not to owner %llu", page,
                     static_cast<unsigned long long>(owner(w)),
                     static_cast<unsigned long long>(who));
  if (!p->meta[idx].compare_exchange_strong(w, with_state(w, INFLIGHT), std::memory_order_acq_rel))
    return set_error(LABYRINTH_ERR_BUSY, "io submission: %p changed state concurrently", page);
  p->inflight_pages.fetch_add(std::uint64_t{1} << order(w), kRelaxed);
  return LABYRINTH_OK;
}

labyrinth_status page_end_io(labyrinth_pool *pool, void *page, labyrinth_owner new_owner) {
  Pool *p = from_handle(pool);
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, "io completion", &idx, &w);
  if (st != LABYRINTH_OK) return st;
  if (state(w) != INFLIGHT)
    return set_error(LABYRINTH_ERR_INVALID, "io completion: %p is not in flight", page);
  std::uint64_t back = with_state(w, ALLOC);
  if (new_owner != LABYRINTH_OWNER_NONE && exclusive(w)) back = with_owner(back, new_owner);
  if (!p->meta[idx].compare_exchange_strong(w, back, std::memory_order_acq_rel))
    return set_error(LABYRINTH_ERR_BUSY, "io completion: %p changed state concurrently", page);
  if ((p->flags & LABYRINTH_POOL_PKEYS) && owner(back) != owner(w)) {
    // Handed to another owner: the block takes its key, if it has one (else
    // it keeps the old owner's key: the new owner faults on it until it is
    // transferred again; see labyrinth.h, LABYRINTH_POOL_PKEYS).
    const int key = pkeys::key_of(new_owner, "io completion");
    if (key >= 0 && pkeys::protect(page, (std::size_t{1} << order(w)) * kPageSize, key)) {
      pkeys::hold(new_owner);
      pkeys::drop(owner(w));
    }
  }
  p->inflight_pages.fetch_sub(std::uint64_t{1} << order(w), kRelaxed);
  return LABYRINTH_OK;
}

labyrinth_status page_release_from_io(labyrinth_pool *pool, void *page) {
  Pool *p = from_handle(pool);
  std::size_t idx;
  std::uint64_t w;
  labyrinth_status st = classify(p, page, "io release", &idx, &w);
  if (st != LABYRINTH_OK) return st;
  if (state(w) != INFLIGHT)
    return set_error(LABYRINTH_ERR_INVALID, "io release: %p is not in flight", page);
  if (!p->meta[idx].compare_exchange_strong(w, with_state(w, CACHED), std::memory_order_acq_rel))
    return set_error(LABYRINTH_ERR_BUSY, "io release: %p changed state concurrently", page);
  p->inflight_pages.fetch_sub(std::uint64_t{1} << order(w), kRelaxed);
  release_block(p, idx, order(w));
  return LABYRINTH_OK;
}

void pool_hold(labyrinth_pool *pool) { from_handle(pool)->holds.fetch_add(1); }
void pool_unhold(labyrinth_pool *pool) { from_handle(pool)->holds.fetch_sub(1); }

}  // namespace lab
