// The depot's magazines (depot.hpp): a pushed chain of 2 or more pages
// lists its pages in its first page, and its first word says so (MAGAZINE).
// A thread that pops the chain takes the pages from the list only if that
// word says MAGAZINE and the list passes its checks (checksum, pages in the
// arena, second entry = the first page's link). Whatever the list says
// (stale, cut short, too long, pages out of range, pages of another chain),
// the result is either exactly the chain or "no magazine", and the side
// table is never changed by reading it.
#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "depot.hpp"

using namespace lab;

namespace {

constexpr std::size_t kPages = 1100;  // more than a magazine can list (1021)

struct Arena {
  Arena() : meta(new std::atomic<std::uint64_t>[kPages]) {
    mem = static_cast<std::uint8_t *>(std::aligned_alloc(kPageSize, kPages * kPageSize));
    std::memset(mem, 0xA5, kPages * kPageSize);
    for (std::size_t i = 0; i < kPages; ++i) meta[i].store(side::CACHED);
    depot.init(meta.get(), side::DEPOT, mem, kPages);
  }
  ~Arena() { std::free(mem); }
  void push(const std::vector<std::size_t> &pages) {
    depot.push([&](std::size_t i) { return pages[i]; }, pages.size());
  }
  std::vector<std::uint64_t> words() const {
    std::vector<std::uint64_t> w(kPages);
    for (std::size_t i = 0; i < kPages; ++i) w[i] = meta[i].load();
    return w;
  }
  // The chain from `first`, by its links.
  std::vector<std::size_t> walk(std::size_t first) const {
    std::vector<std::size_t> v;
    for (std::size_t i = first; i != side::kNoPage; i = side::chain_next_page(meta[i].load())) v.push_back(i);
    return v;
  }
  // The magazine in `page` as 32-bit words: [0] first, [1] count, [2] sum,
  // [3 + k] the k-th page (k >= 1).
  std::uint32_t *magazine(std::size_t page) { return reinterpret_cast<std::uint32_t *>(mem + page * kPageSize); }
  side::State head_state(std::size_t page) const { return side::state(meta[page].load()); }
  void *at(std::size_t page) const { return mem + page * kPageSize; }

  std::unique_ptr<std::atomic<std::uint64_t>[]> meta;
  std::uint8_t *mem;
  Depot depot;
};

std::vector<std::size_t> scattered(std::size_t n, unsigned seed) {
  std::vector<std::size_t> all(kPages);
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(n);
  if (all[1] + 1 == all[0] || all[0] + 1 == all[1]) std::swap(all[1], all[2]);
  return all;
}

// take_magazine's answer for the popped chain, checked against the links.
std::size_t take(Arena &a, std::size_t first, std::size_t max, std::vector<void *> *out,
                 std::size_t *rest) {
  out->assign(kPages, nullptr);
  const auto before = a.words();
  const std::size_t n = a.depot.take_magazine(first, out->data(), max, rest);
  EXPECT_EQ(a.words(), before) << "reading a magazine changed the side table";
  return n;
}

}  // namespace

TEST(Magazine, ScatteredChainIsReadFromItsFirstPage) {
  Arena a;
  const auto pages = scattered(64, 1);
  a.push(pages);
  const std::size_t first = a.depot.pop_chain();
  ASSERT_EQ(first, pages[0]);
  ASSERT_EQ(a.walk(first), pages);
  std::vector<void *> out;
  std::size_t rest = 0;
  ASSERT_EQ(take(a, first, 64, &out, &rest), 64u);
  EXPECT_EQ(rest, side::kNoPage);
  for (std::size_t k = 0; k < 64; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << k;
  EXPECT_EQ(a.head_state(first), side::MAGAZINE);
  // Its first entry is not even read: the chain starts where the pop said.
  a.magazine(first)[3] = 7;
  ASSERT_EQ(take(a, first, 64, &out, &rest), 64u);
  EXPECT_EQ(out[0], a.at(first));
  // Fewer than the chain: the first `max`, and where the rest starts.
  ASSERT_EQ(take(a, first, 40, &out, &rest), 64u);
  EXPECT_EQ(rest, pages[40]);
  for (std::size_t k = 0; k < 40; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << k;
  EXPECT_EQ(out[40], nullptr);
}

// Neighbouring pages get one too: following their links would read few
// side-table lines, but lines another CPU wrote, one after the other.
TEST(Magazine, NeighbouringPagesGetOneToo) {
  Arena a;
  std::vector<std::size_t> pages(64);
  std::iota(pages.begin(), pages.end(), 100);
  a.push(pages);
  const std::size_t first = a.depot.pop_chain();
  std::vector<void *> out;
  std::size_t rest = 0;
  ASSERT_EQ(take(a, first, 64, &out, &rest), 64u);
  for (std::size_t k = 0; k < 64; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << k;
  EXPECT_EQ(a.walk(first), pages);
}

// A single page has no magazine (there is nothing to list), nor has a chain
// longer than one fits in a page: their first words stay DEPOT, and what
// their first pages hold is never read.
TEST(Magazine, OnlyChainsThatFitGetOne) {
  for (const std::size_t n : {std::size_t{1}, std::size_t{1022}}) {
    Arena a;
    std::vector<std::size_t> pages(n);
    std::iota(pages.begin(), pages.end(), 0);
    std::shuffle(pages.begin(), pages.end(), std::mt19937(5));
    const auto before = std::vector<std::uint8_t>(a.mem, a.mem + kPages * kPageSize);
    a.push(pages);
    EXPECT_TRUE(std::equal(before.begin(), before.end(), a.mem)) << n << " pages: a page was written";
    const std::size_t first = a.depot.pop_chain();
    EXPECT_EQ(a.head_state(first), side::DEPOT) << n;
    std::vector<void *> out;
    std::size_t rest = 0;
    EXPECT_EQ(take(a, first, kPages, &out, &rest), 0u) << n;
    EXPECT_EQ(a.walk(first), pages) << n;
  }
}

TEST(Magazine, WithoutAnArenaNothingIsWrittenOrRead) {
  Arena a;
  a.depot.init(a.meta.get(), side::DEPOT);  // as in SCRUB, POISON and GUARD pools
  const auto pages = scattered(64, 2);
  const auto before = std::vector<std::uint8_t>(a.mem, a.mem + kPages * kPageSize);
  a.push(pages);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), a.mem)) << "a page was written";
  std::vector<void *> out;
  std::size_t rest = 0;
  EXPECT_EQ(take(a, a.depot.pop_chain(), 64, &out, &rest), 0u);
}

// Every way a write after free (or a stale list) can change a magazine:
// never believed, the links decide.
TEST(Magazine, AChangedMagazineIsNotBelieved) {
  const std::size_t kOther = 7;  // a page in no chain
  struct Case {
    const char *what;
    void (*change)(std::uint32_t *m, const std::vector<std::size_t> &pages);
  };
  const Case cases[] = {
      {"an entry names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[3 + 10] = kOther; }},
      {"the second entry names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[3 + 1] = kOther; }},
      {"the last entry names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[3 + 63] = kOther; }},
      {"two entries swapped", [](std::uint32_t *m, const std::vector<std::size_t> &) { std::swap(m[3 + 5], m[3 + 6]); }},
      {"two distant entries swapped", [](std::uint32_t *m, const std::vector<std::size_t> &) { std::swap(m[3 + 2], m[3 + 60]); }},
      {"count too small", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 63; }},
      {"count too large", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 65; m[3 + 64] = kOther; }},
      {"count too large, ending in nil", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 65; m[3 + 64] = side::kNoPage; }},
      {"count absurd", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 0xFFFFFFFF; }},
      {"count zero", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 0; }},
      {"an entry out of the arena", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[3 + 30] = kPages + 3; }},
      {"an entry nil", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[3 + 30] = side::kNoPage; }},
      {"first names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[0] = kOther; }},
      {"the sum changed", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[2] ^= 1; }},
      {"the sum zeroed", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[2] = 0; }},
      {"all of it zeroed", [](std::uint32_t *m, const std::vector<std::size_t> &) { std::memset(m, 0, 4096); }},
      {"all of it 0xFF", [](std::uint32_t *m, const std::vector<std::size_t> &) { std::memset(m, 0xFF, 4096); }},
  };
  for (const Case &c : cases) {
    Arena a;
    const auto pages = scattered(64, 3);
    ASSERT_EQ(std::find(pages.begin(), pages.end(), kOther), pages.end()) << "test setup";
    a.push(pages);
    c.change(a.magazine(pages[0]), pages);
    const std::size_t first = a.depot.pop_chain();
    std::vector<void *> out;
    std::size_t rest = 0;
    EXPECT_EQ(take(a, first, 64, &out, &rest), 0u) << c.what;
    EXPECT_EQ(a.walk(first), pages) << c.what;
  }
}

// A magazine left in a page that later heads another chain (the rest of a
// chain pushed back by push_linked keeps whatever its first page holds): its
// first word is DEPOT, so no list in it is read, not even a perfect one.
TEST(Magazine, AStaleMagazineIsNotBelieved) {
  Arena a;
  auto pages = scattered(64, 4);
  a.push(pages);
  std::size_t first = a.depot.pop_chain();
  a.depot.taken(64);
  // Hand out the first 10 pages (their words become the owner's), then push
  // the other 54 back, still linked: their first page holds no magazine of
  // theirs, but the old magazine is still in pages[0].
  for (std::size_t k = 0; k < 10; ++k) a.meta[pages[k]].store(side::ALLOC);
  a.depot.push_linked(pages[10], 54);
  first = a.depot.pop_chain();
  ASSERT_EQ(first, pages[10]);
  EXPECT_EQ(a.head_state(first), side::DEPOT);
  std::vector<void *> out;
  std::size_t rest = 0;
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  EXPECT_EQ(a.walk(first), std::vector<std::size_t>(pages.begin() + 10, pages.end()));
  // The old magazine copied into the new first page, naming it: not read.
  std::memcpy(a.magazine(first), a.magazine(pages[0]), kPageSize);
  a.magazine(first)[0] = static_cast<std::uint32_t>(first);
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  // A list that was exactly right once, and still is byte for byte: the 54
  // pages pushed with a magazine of their own, popped (it is believed), then
  // pushed back by push_linked. The bytes are unchanged; the word is not.
  std::vector<std::size_t> left(pages.begin() + 10, pages.end());
  a.depot.taken(54);
  a.push(left);
  first = a.depot.pop_chain();
  ASSERT_EQ(take(a, first, 64, &out, &rest), 54u);
  a.depot.taken(54);
  a.depot.push_linked(first, 54);
  first = a.depot.pop_chain();
  ASSERT_EQ(first, left[0]);
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  EXPECT_EQ(a.walk(first), left);
}

// The rest of a magazine chain (more pages than the room): where it starts.
TEST(Magazine, TheRestStartsAfterTheRoom) {
  Arena a;
  const auto pages = scattered(64, 6);
  a.push(pages);
  const std::size_t first = a.depot.pop_chain();
  std::vector<void *> out;
  for (const std::size_t max : {std::size_t{1}, std::size_t{2}, std::size_t{63}, std::size_t{64}}) {
    std::size_t rest = 0;
    ASSERT_EQ(take(a, first, max, &out, &rest), 64u) << max;
    EXPECT_EQ(rest, max < 64 ? pages[max] : side::kNoPage) << max;
    for (std::size_t k = 0; k < max; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << max << " " << k;
    EXPECT_EQ(out[max], nullptr) << max;
  }
  std::size_t rest = 0;
  EXPECT_EQ(take(a, first, 0, &out, &rest), 0u) << "no room: nothing taken";
}

// replace(): the whole list is swapped for a run of single pages in one CAS.
// The old list comes back whole (every chain, every page once), and a thread
// that pops a page and pushes it back all the while never finds the list
// empty: there is no moment between the old list and the new one.
TEST(Replace, TheOldListComesBackWholeAndTheListIsNeverEmpty) {
  Arena a;
  a.depot.init(a.meta.get(), side::RESERVE);  // the reserve: single pages, no magazines
  constexpr std::size_t kRun = 4, kRounds = kPages / kRun - 1;
  for (std::size_t i = 0; i < kRun; ++i) a.depot.push([i](std::size_t) { return i; }, 1);
  std::atomic<bool> stop{false};
  std::atomic<long> empty{0}, cycles{0};
  std::thread user([&] {
    while (!stop.load()) {
      const std::size_t pg = a.depot.pop_page();
      if (pg == side::kNoPage) {
        ++empty;
        continue;
      }
      a.depot.push([pg](std::size_t) { return pg; }, 1);
      ++cycles;
    }
  });
  std::vector<int> seen(kPages, 0);
  std::vector<std::size_t> bad_rounds;
  for (std::size_t r = 1; r <= kRounds; ++r) {
    // Each replace while the user is busy: wait for a few of its cycles.
    for (const long c = cycles.load(); cycles.load() < c + 3;) std::this_thread::yield();
    std::size_t chain = a.depot.replace([r](std::size_t i) { return r * kRun + i; }, kRun);
    std::size_t n = 0;
    while (chain != side::kNoPage) {  // as the pool walks it: chains, then pages
      const std::size_t next_chain = side::chain_next_chain(a.meta[chain].load());
      for (std::size_t pg : a.walk(chain)) {
        ++seen[pg];
        ++n;
      }
      chain = next_chain;
    }
    a.depot.taken(n);
    // The user may hold a page of the old list across the replace (it goes
    // back on the new list), and may have brought one from the list before.
    if (n + 1 < kRun || n > kRun + 1) bad_rounds.push_back(r);
  }
  stop = true;
  user.join();
  for (std::size_t r : bad_rounds) ADD_FAILURE() << "round " << r << " gave back too few or too many pages";
  for (std::size_t pg = a.depot.pop_page(); pg != side::kNoPage; pg = a.depot.pop_page()) ++seen[pg];
  EXPECT_EQ(a.depot.pages(), 0u);
  for (std::size_t pg = 0; pg < (kRounds + 1) * kRun; ++pg) EXPECT_EQ(seen[pg], 1) << "page " << pg;
  EXPECT_EQ(empty.load(), 0) << "the list was seen empty during a replace";
  std::printf("[replace] %ld pops and pushes during %zu replaces\n", cycles.load(), kRounds);
}
