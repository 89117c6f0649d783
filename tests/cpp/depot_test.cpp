// The shared list's magazines (depot.hpp): a scattered chain lists its pages
// in its first page; a thread that pops the chain takes the pages from the
// list only if every link in it matches the side table. Whatever the list
// says (stale, cut short, too long, pages out of range, pages of another
// chain), the result is either exactly the chain or "no magazine", and the
// side table is never changed by reading it.
#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "depot.hpp"

using namespace lab;

namespace {

constexpr std::size_t kPages = 512;

struct Arena {
  Arena() : meta(new std::atomic<std::uint64_t>[kPages]) {
    mem = static_cast<std::uint8_t *>(std::aligned_alloc(kPageSize, kPages * kPageSize));
    std::memset(mem, 0xA5, kPages * kPageSize);
    for (std::size_t i = 0; i < kPages; ++i) meta[i].store(side::CACHED);
    depot.init(meta.get(), side::SHARED, mem, kPages);
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
    for (std::size_t i = first; i != side::kNil30; i = side::chain_next_page(meta[i].load())) v.push_back(i);
    return v;
  }
  std::uint32_t *magazine(std::size_t page) { return reinterpret_cast<std::uint32_t *>(mem + page * kPageSize); }
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
  EXPECT_EQ(rest, side::kNil30);
  for (std::size_t k = 0; k < 64; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << k;
  // Its first entry is not even read: the chain starts where the pop said.
  a.magazine(first)[2] = 7;
  ASSERT_EQ(take(a, first, 64, &out, &rest), 64u);
  EXPECT_EQ(out[0], a.at(first));
  // Fewer than the chain: the first `max`, and where the rest starts.
  ASSERT_EQ(take(a, first, 40, &out, &rest), 64u);
  EXPECT_EQ(rest, pages[40]);
  for (std::size_t k = 0; k < 40; ++k) EXPECT_EQ(out[k], a.at(pages[k])) << k;
  EXPECT_EQ(out[40], nullptr);
}

TEST(Magazine, NeighbouringPagesGetNone) {
  Arena a;
  std::vector<std::size_t> pages(64);
  std::iota(pages.begin(), pages.end(), 100);
  std::memset(a.mem + 100 * kPageSize, 0, 64);
  a.push(pages);
  const std::size_t first = a.depot.pop_chain();
  std::vector<void *> out;
  std::size_t rest = 0;
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  EXPECT_EQ(a.magazine(100)[0], 0u) << "a magazine was written for a chain of neighbours";
  EXPECT_EQ(a.walk(first), pages);
}

TEST(Magazine, WithoutAnArenaNothingIsWrittenOrRead) {
  Arena a;
  a.depot.init(a.meta.get(), side::SHARED);  // as in SCRUB, POISON and GUARD pools
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
      {"an entry names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[2 + 10] = kOther; }},
      {"two entries swapped", [](std::uint32_t *m, const std::vector<std::size_t> &) { std::swap(m[2 + 5], m[2 + 6]); }},
      {"count too small", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 63; }},
      {"count too large", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 65; m[2 + 64] = kOther; }},
      {"count too large, ending in nil", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 65; m[2 + 64] = side::kNil30; }},
      {"count absurd", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 0xFFFFFFFF; }},
      {"count zero", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[1] = 0; }},
      {"an entry out of the arena", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[2 + 30] = kPages + 3; }},
      {"an entry nil", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[2 + 30] = side::kNil30; }},
      {"first names another page", [](std::uint32_t *m, const std::vector<std::size_t> &) { m[0] = kOther; }},
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
// chain pushed back by push_linked keeps whatever its first page holds).
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
  std::vector<void *> out;
  std::size_t rest = 0;
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  // A stale list copied into the new first page, naming the new first page:
  // still only believed if it is exactly the chain.
  std::uint32_t *m = a.magazine(pages[10]);
  m[0] = static_cast<std::uint32_t>(pages[10]);
  m[1] = 64;
  for (std::size_t k = 0; k < 64; ++k) m[2 + k] = static_cast<std::uint32_t>(pages[k]);
  EXPECT_EQ(take(a, first, 64, &out, &rest), 0u);
  // The exact list of what is left is believed.
  m[1] = 54;
  for (std::size_t k = 0; k < 54; ++k) m[2 + k] = static_cast<std::uint32_t>(pages[10 + k]);
  EXPECT_EQ(take(a, first, 64, &out, &rest), 54u);
  for (std::size_t k = 0; k < 54; ++k) EXPECT_EQ(out[k], a.at(pages[10 + k])) << k;
}
