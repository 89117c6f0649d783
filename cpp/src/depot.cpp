// depot.cpp - between a pool's depot and its zones: the depot's chains go to
// the buddy allocator, where their pages can merge (depot.hpp).
#include "depot.hpp"

#include <algorithm>
#include <cstdint>

#include "pool.hpp"
#include "zones.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
// Pages labyrinth_pool_trim gives to the buddy allocator per free_chain call
// (each page under its zone's mutex, one at a time).
constexpr std::size_t kTrimSlice = 256;
}  // namespace

std::size_t free_chain(Pool *p, std::size_t *page, std::size_t most, bool atomic) {
  std::size_t n = 0, i = *page;
  Zone *held = nullptr;
  for (; i != kNoPage && n < most; ++n) {
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

void flush_depot(Pool *p, bool atomic) {
  std::size_t budget = p->depot.pages();
  for (std::size_t i; budget && (i = p->depot.pop_chain()) != kNoPage;) {
    const std::size_t n = free_chain(p, &i, SIZE_MAX, atomic);
    budget -= std::min(budget, n);
    if (i == kNoPage) {
      p->depot.taken(n);
      continue;
    }
    const std::size_t rest = p->depot.length_from(i);
    p->depot.taken(n + rest);
    p->depot.push_linked(i, rest);
    return;
  }
}

std::size_t free_chains(Pool *p, std::size_t first) {
  std::size_t n = 0;
  while (first != kNoPage) {
    std::size_t i = first;
    first = chain_next_chain(p->meta[first].load(kRelaxed));
    n += free_chain(p, &i, SIZE_MAX);
  }
  return n;
}

void trim_depot(Pool *p) {
  std::size_t budget = p->depot.pages();
  while (budget) {
    std::size_t i = p->depot.pop_chain();
    if (i == kNoPage) break;
    while (i != kNoPage) {  // a chain's pages not yet freed still count as the depot's
      const std::size_t n = free_chain(p, &i, kTrimSlice);
      p->depot.taken(n);
      budget -= n < budget ? n : budget;
    }
  }
}

bool take_block_flushing(Pool *p, unsigned order, bool atomic, std::size_t *idx) {
  if (take_block(p, order, atomic, idx)) return true;
  if (p->depot.empty()) return false;
  flush_depot(p, atomic);
  return take_block(p, order, atomic, idx);
}

}  // namespace lab
