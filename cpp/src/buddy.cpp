// buddy.cpp - see buddy.hpp.
#include "buddy.hpp"

namespace lab {

using namespace side;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}

void Buddy::init(std::atomic<std::uint64_t> *meta, std::size_t begin, std::size_t end) {
  meta_ = meta;
  begin_ = begin;
  end_ = end;
  for (unsigned o = 0; o <= kMaxOrder; ++o) {
    head_[o] = kNoBlock;
    count_[o].store(0, kRelaxed);
  }
  pages_.store(0, kRelaxed);
  for (std::size_t i = begin; i < end; ++i) meta_[i].store(UNUSED, kRelaxed);
  std::size_t i = begin;
  while (i < end) {
    unsigned o = kMaxOrder;
    while (o > 0 && ((i & ((std::size_t{1} << o) - 1)) != 0 || i + (std::size_t{1} << o) > end)) --o;
    push(i, o);
    i += std::size_t{1} << o;
  }
}

void Buddy::set_next(std::size_t idx, std::uint64_t next) {
  std::uint64_t w = meta_[idx].load(kRelaxed);
  meta_[idx].store(buddy_word(order(w), buddy_prev(w), next), kRelaxed);
}

void Buddy::set_prev(std::size_t idx, std::uint64_t prev) {
  std::uint64_t w = meta_[idx].load(kRelaxed);
  meta_[idx].store(buddy_word(order(w), prev, buddy_next(w)), kRelaxed);
}

void Buddy::push(std::size_t idx, unsigned o) {
  std::uint64_t old = head_[o];
  meta_[idx].store(buddy_word(o, kNoBlock, old), kRelaxed);
  if (old != kNoBlock) set_prev(old, idx);
  head_[o] = idx;
  count_[o].store(count_[o].load(kRelaxed) + 1, kRelaxed);
  pages_.store(pages_.load(kRelaxed) + (std::size_t{1} << o), kRelaxed);
}

void Buddy::remove(std::size_t idx, unsigned o) {
  std::uint64_t w = meta_[idx].load(kRelaxed);
  std::uint64_t prev = buddy_prev(w), next = buddy_next(w);
  if (prev == kNoBlock) head_[o] = next;
  else set_next(prev, next);
  if (next != kNoBlock) set_prev(next, prev);
  meta_[idx].store(UNUSED, kRelaxed);
  count_[o].store(count_[o].load(kRelaxed) - 1, kRelaxed);
  pages_.store(pages_.load(kRelaxed) - (std::size_t{1} << o), kRelaxed);
}

bool Buddy::alloc(unsigned o, std::size_t *idx) {
  unsigned k = o;
  while (k <= kMaxOrder && head_[k] == kNoBlock) ++k;
  if (k > kMaxOrder) return false;
  std::size_t block = head_[k];
  remove(block, k);
  while (k > o) {
    --k;
    push(block + (std::size_t{1} << k), k);  // keep the low half, free the high half
  }
  // Not free any more: until the caller writes the block's real state
  // (possibly after dropping its zone's mutex), no merge may see it as a
  // free buddy. Its other pages are UNUSED already.
  meta_[block].store(TAKEN, kRelaxed);
  *idx = block;
  return true;
}

void Buddy::free(std::size_t idx, unsigned o) {
  while (o < kMaxOrder) {
    std::size_t buddy = idx ^ (std::size_t{1} << o);
    if (buddy < begin_ || buddy + (std::size_t{1} << o) > end_) break;
    std::uint64_t w = meta_[buddy].load(kRelaxed);
    if (state(w) != BUDDY || order(w) != o) break;
    remove(buddy, o);
    if (buddy < idx) {
      meta_[idx].store(UNUSED, kRelaxed);
      idx = buddy;
    }
    ++o;
  }
  push(idx, o);
}

int Buddy::largest_free_order() const {
  // From the counters, so it may be called without its zone's mutex.
  for (int o = kMaxOrder; o >= 0; --o)
    if (count_[o].load(kRelaxed) != 0) return o;
  return -1;
}

}  // namespace lab
