// reserve.cpp - the atomic reserve's place and renewal (reserve.hpp).
#include "reserve.hpp"

#include <algorithm>

#include "depot.hpp"
#include "pool.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

static unsigned reserve_order(std::size_t target) {
  unsigned order = 0;
  while ((std::size_t{1} << order) < target) ++order;
  return order;
}

// Single pages from the buddy allocator into the reserve until it is full
// or nothing is free.
static void top_up_reserve(Pool *p) {
  std::size_t idx;
  while (p->reserve.pages() < p->reserve_target && take_smallest(p, 0, 1, &idx))
    p->reserve.push([idx](std::size_t) { return idx; }, 1);
}

void fill_reserve(Pool *p) {
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

void renew_reserve(Pool *p, std::vector<std::size_t> &scratch) {
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

bool take_reserve(Pool *p, std::size_t *idx) {
  const std::size_t first = p->reserve.pop_page();
  if (first == kNoPage) return false;
  p->reserve_uses.fetch_add(1, kRelaxed);
  *idx = first;
  return true;
}

}  // namespace lab
