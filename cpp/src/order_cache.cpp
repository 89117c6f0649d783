// order_cache.cpp - a thread's order cache: blocks of order 1..kMaxOrder it
// freed, kept for its next allocation of the same order (the layout and the
// rules are in thread_cache.hpp; the inline push and pop in
// labyrinth_inline.h). Owner thread only.
#include "pool.hpp"
#include "thread_cache.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

namespace {
// Pages the order cache's limits promise: at most the budget.
std::uint64_t limit_pages(const ThreadCache *c) {
  std::uint64_t pages = 0;
  for (unsigned o = 1; o <= kMaxOrder; ++o) pages += std::uint64_t{c->order_slots(o).limit} << o;
  return pages;
}

// Make room in the budget for one more block of `order`: other orders'
// limits come down to what they hold, largest order first; then their
// blocks go back to the buddy allocator, largest first (the newest free
// wins). False if even that is not enough.
bool make_room(Pool *p, ThreadCache *c, unsigned order) {
  const std::uint64_t want = c->budget - (std::uint64_t{1} << order);
  for (unsigned o = kMaxOrder; o >= 1 && limit_pages(c) > want; --o)
    if (o != order) c->order_slots(o).limit = c->order_slots(o).count;
  for (unsigned o = kMaxOrder; o >= 1 && limit_pages(c) > want; --o) {
    if (o == order) continue;
    while (limit_pages(c) > want) {
      void *b = order_cache_pop(c, o);
      if (!b) break;
      c->order_slots(o).limit -= 1;
      buddy_free_block(p, p->index_of(b), o);
    }
  }
  return limit_pages(c) <= want;
}
}  // namespace

bool order_cache_push(Pool *p, ThreadCache *c, std::size_t idx, unsigned order) {
  OrderSlots &os = c->order_slots(order);
  const std::uint32_t n = os.count;
  if (p->pressure.load(kRelaxed) || (std::uint64_t{1} << order) > c->budget) return false;
  if (n >= os.limit) {
    if (os.limit >= LABYRINTH_ORDER_CACHE_SLOTS || !make_room(p, c, order)) return false;
    os.limit += 1;
  }
  p->meta[idx].store(CACHED | (std::uint64_t{order} << 4), std::memory_order_release);
  os.blocks[n] = p->page_at(idx);
  __atomic_store_n(&os.count, n + 1, __ATOMIC_RELAXED);
  return true;
}

std::size_t order_cache_flush(Pool *p, ThreadCache *c, bool atomic) {
  std::size_t given = 0;
  for (unsigned o = 1; o <= kMaxOrder; ++o) {
    while (const std::uint32_t n = c->blocks(o)) {
      // The zone of the block order_cache_pop gives, locked before the pop.
      Zone &zone = p->zone_of(p->index_of(c->order_slots(o).blocks[n - 1]));
      if (!zone.mu.acquire(atomic)) return given;
      std::lock_guard<ZoneMutex> lock(zone.mu, std::adopt_lock);
      zone.buddy.free(p->index_of(order_cache_pop(c, o)), o);
      given += std::size_t{1} << o;
    }
  }
  return given;
}

}  // namespace lab
