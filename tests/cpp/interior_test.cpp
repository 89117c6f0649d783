// Pointers inside a block. Only a block's first page has a side-table word
// of its own (side_table.hpp): the others stay UNUSED whether the block is
// allocated, in an order cache or free in the buddy allocator. So:
//  - every call refuses a pointer inside a block with the status it always
//    had and a message that names the block (and its owner, or where it
//    sits when free), and changes nothing;
//  - allocating or freeing a block writes a bounded number of words,
//    whatever its order (the uncached block path costs the same at every
//    order; checked by counting words, not by timing);
//  - after any mix of splits, merges, caching and hand-outs no inner word
//    holds anything but UNUSED, so the inline free and transfer never take
//    an inner page for an owned block.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "pool.hpp"
#include "test_util.hpp"

using namespace labtest;
namespace side = lab::side;

namespace {

constexpr std::size_t kPage = 4096;

std::string hex(const void *p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

void *page_of(void *block, std::size_t k) { return static_cast<char *>(block) + k * kPage; }

std::vector<std::uint64_t> side_table(labyrinth_pool *p) {
  const lab::Pool *pool = lab::from_handle(p);
  std::vector<std::uint64_t> t(pool->npages);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = pool->meta[i].load();
  return t;
}

std::size_t words_changed(const std::vector<std::uint64_t> &a, const std::vector<std::uint64_t> &b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

std::size_t index_of(labyrinth_pool *p, const void *page) {
  return static_cast<std::size_t>(static_cast<const std::uint8_t *>(page) - lab::from_handle(p)->base) / kPage;
}

// Pages the word at a block's first page covers (1 for order-0 words, whose
// bits 4-7 may be a link rather than an order).
std::size_t pages_headed(std::uint64_t w) {
  const side::State s = side::state(w);
  if (s == side::ALLOC || s == side::INFLIGHT || s == side::BUDDY || s == side::CACHED)
    return std::size_t{1} << side::order(w);
  return 1;
}

// Walk the arena block by block: every block starts with a word of its own
// and every other page of it is UNUSED.
void expect_only_first_pages_have_words(labyrinth_pool *p) {
  const std::vector<std::uint64_t> t = side_table(p);
  for (std::size_t i = 0; i < t.size();) {
    ASSERT_NE(side::state(t[i]), side::UNUSED) << "page " << i << " starts no block";
    ASSERT_NE(side::state(t[i]), side::TAKEN) << "page " << i << " was taken and never labelled";
    const std::size_t pages = pages_headed(t[i]);
    ASSERT_EQ(i % pages, 0u) << "block at page " << i << " is not aligned";
    for (std::size_t k = 1; k < pages; ++k)
      ASSERT_EQ(t[i + k], std::uint64_t{side::UNUSED}) << "page " << k << " of the block at page " << i;
    i += pages;
  }
}

// Snapshot of everything a refusal must leave as it was.
struct Unchanged {
  labyrinth_pool *p;
  std::vector<std::uint64_t> table;
  labyrinth_stats s;
  explicit Unchanged(labyrinth_pool *pool) : p(pool), table(side_table(pool)), s(stats(pool)) {}
  void check() const {
    EXPECT_EQ(words_changed(table, side_table(p)), 0u) << "a refusal changed the side table";
    const labyrinth_stats now = stats(p);
    EXPECT_EQ(now.allocated_pages, s.allocated_pages);
    EXPECT_EQ(now.free_pages, s.free_pages);
    EXPECT_EQ(now.cached_pages, s.cached_pages);
    for (int k = 0; k <= LABYRINTH_MAX_ORDER; ++k) EXPECT_EQ(now.free_blocks[k], s.free_blocks[k]);
  }
};

// Every call on `inner` is refused with `status` and a message holding `says`.
void expect_refused(labyrinth_pool *p, void *inner, unsigned order, labyrinth_status status,
                    const std::string &says) {
  Unchanged before(p);
  EXPECT_EQ(labyrinth_free_pages(p, inner), status) << last_message();
  EXPECT_NE(last_message().find(says), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_free_pages_order(p, inner, order), status) << last_message();
  EXPECT_NE(last_message().find(says), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_page_transfer(p, inner, labyrinth_owner_self()), status) << last_message();
  EXPECT_NE(last_message().find(says), std::string::npos) << last_message();
  labyrinth_owner own = 77;
  unsigned ord = 77;
  EXPECT_EQ(labyrinth_page_info(p, inner, &own, &ord), status) << last_message();
  EXPECT_NE(last_message().find(says), std::string::npos) << last_message();
  EXPECT_EQ(own, 77u);
  EXPECT_EQ(ord, 77u);
  before.check();
}

std::vector<std::size_t> inner_pages_to_try(unsigned order) {
  const std::size_t last = (std::size_t{1} << order) - 1;
  std::vector<std::size_t> ks{1, last};
  if (last > 2) ks.push_back(last / 2 + 1);
  return ks;
}

class Interior : public ::testing::TestWithParam<unsigned> {
 protected:
  labyrinth_pool_options opts(std::size_t bytes) const {
    labyrinth_pool_options o = options(bytes);
    o.flags |= GetParam();
    return o;
  }
};

}  // namespace

TEST_P(Interior, InnerPagesOfAnAllocatedBlockAreRefused) {
  PoolGuard p(opts(64u << 20));
  for (unsigned order = 1; order <= LABYRINTH_MAX_ORDER; ++order) {
    for (const bool excl : {true, false}) {
      SCOPED_TRACE("order " + std::to_string(order) + (excl ? " exclusive" : " shared"));
      void *b = nullptr;
      ASSERT_EQ(labyrinth_alloc_pages(p, order, excl ? LABYRINTH_GFP_EXCLUSIVE : 0, 0, &b), LABYRINTH_OK);
      const std::string whose =
          excl ? "exclusive to owner " + std::to_string(labyrinth_owner_self()) : "shared (no owner)";
      for (std::size_t k : inner_pages_to_try(order)) {
        const std::string says = "page " + std::to_string(k) + " of the order-" + std::to_string(order) +
                                 " block at " + hex(b) + ", " + whose;
        expect_refused(p, page_of(b, k), order, LABYRINTH_ERR_INVALID, says);
      }
      labyrinth_owner own = 0;
      ASSERT_EQ(labyrinth_page_info(p, b, &own, nullptr), LABYRINTH_OK);
      EXPECT_EQ(own, excl ? labyrinth_owner_self() : LABYRINTH_OWNER_NONE);
      ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    }
  }
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_only_first_pages_have_words(p);
}

TEST_P(Interior, InnerPagesOfACachedBlockAreRefused) {
  if (GetParam() & LABYRINTH_POOL_GUARD) GTEST_SKIP() << "GUARD pools have no order cache";
  PoolGuard p(opts(64u << 20));  // order cache budget: 1,024 pages, orders 1..10
  for (unsigned order = 1; order < LABYRINTH_MAX_ORDER; ++order) {
    SCOPED_TRACE("order " + std::to_string(order));
    void *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    ASSERT_EQ(side::state(side_table(p)[index_of(p, b)]), side::CACHED) << "not in the order cache";
    for (std::size_t k : inner_pages_to_try(order)) {
      const std::string says = "page " + std::to_string(k) + " of the free order-" + std::to_string(order) +
                               " block at " + hex(b) + ", in a thread's order cache";
      expect_refused(p, page_of(b, k), order, LABYRINTH_ERR_DOUBLE_FREE, says);
    }
    void *again = nullptr;  // still cached, whole, and handed out once
    ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &again),
              LABYRINTH_OK);
    EXPECT_EQ(again, b);
    ASSERT_EQ(labyrinth_free_pages(p, again), LABYRINTH_OK);
    ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  }
  expect_only_first_pages_have_words(p);
}

TEST_P(Interior, InnerPagesOfAFreeBuddyBlockAreRefused) {
  PoolGuard p(opts(32u << 20));
  // A freed order-10 block: larger than the order cache's budget (256 pages
  // on a 32 MiB pool), so it is back in the buddy allocator; and its split
  // neighbours of every order.
  void *big = nullptr, *small = nullptr;
  ASSERT_EQ(labyrinth_alloc_pages(p, LABYRINTH_MAX_ORDER, LABYRINTH_GFP_EXCLUSIVE, 0, &big), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_free_pages(p, big), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_alloc_pages(p, 1, LABYRINTH_GFP_EXCLUSIVE, 0, &small), LABYRINTH_OK);
  const std::vector<std::uint64_t> t = side_table(p);
  const std::uint8_t *base = lab::from_handle(p.pool)->base;
  bool orders_seen[LABYRINTH_MAX_ORDER + 1] = {};
  for (std::size_t i = 0; i < t.size(); i += pages_headed(t[i])) {
    if (side::state(t[i]) != side::BUDDY || side::order(t[i]) == 0 || orders_seen[side::order(t[i])]) continue;
    const unsigned order = side::order(t[i]);
    orders_seen[order] = true;
    void *head = const_cast<std::uint8_t *>(base) + i * kPage;
    SCOPED_TRACE("free order-" + std::to_string(order) + " block at page " + std::to_string(i));
    expect_refused(p, head, order, LABYRINTH_ERR_DOUBLE_FREE,
                   "already free (in the buddy allocator: the first page of a free order-" +
                       std::to_string(order) + " block)");
    for (std::size_t k : inner_pages_to_try(order)) {
      const std::string says = "page " + std::to_string(k) + " of the free order-" + std::to_string(order) +
                               " block at " + hex(head) + ", in the buddy allocator";
      expect_refused(p, page_of(head, k), order, LABYRINTH_ERR_DOUBLE_FREE, says);
    }
  }
  EXPECT_TRUE(orders_seen[LABYRINTH_MAX_ORDER]);
  EXPECT_GE(std::count(orders_seen + 1, orders_seen + LABYRINTH_MAX_ORDER + 1, true), 5) << "too few split orders";
  ASSERT_EQ(labyrinth_free_pages(p, small), LABYRINTH_OK);
}

TEST_P(Interior, FreeOrder0PagesAreRefused) {
  PoolGuard p(opts(16u << 20));
  void *pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p);  // a refill: cached, shared and reserve pages
  ASSERT_NE(pg, nullptr);
  const std::vector<std::uint64_t> t = side_table(p);
  const std::uint8_t *base = lab::from_handle(p.pool)->base;
  int seen = 0;
  for (std::size_t i = 0; i < t.size(); i += pages_headed(t[i])) {
    const side::State s = side::state(t[i]);
    if (s != side::DEPOT && s != side::MAGAZINE && s != side::RESERVE && !(s == side::CACHED && side::order(t[i]) == 0))
      continue;
    ++seen;
    SCOPED_TRACE("page " + std::to_string(i) + " state " + std::to_string(s));
    expect_refused(p, const_cast<std::uint8_t *>(base) + i * kPage, 0, LABYRINTH_ERR_DOUBLE_FREE, "already free (in ");
  }
  EXPECT_GT(seen, 0);
  ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

// Pages that were order-0 blocks with owners' words, merged back into large
// blocks: inside a large block again they never pass for an owned page.
TEST_P(Interior, MergedPagesNeverPassForOwnedOnes) {
  labyrinth_pool_options o = opts(8u << 20);
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  std::vector<void *> pages;
  for (void *pg; (pg = labyrinth_void_alloc_page_gfp_atomic_exclusive(p)) != nullptr;) pages.push_back(pg);
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_only_first_pages_have_words(p);
  std::vector<void *> blocks;
  for (void *b; labyrinth_alloc_pages(p, LABYRINTH_MAX_ORDER, LABYRINTH_GFP_EXCLUSIVE, 0, &b) == LABYRINTH_OK;)
    blocks.push_back(b);
  ASSERT_EQ(blocks.size(), 2u);
  for (void *b : blocks) {
    for (std::size_t k = 1; k < (std::size_t{1} << LABYRINTH_MAX_ORDER); k += 37)
      ASSERT_EQ(labyrinth_free_pages(p, page_of(b, k)), LABYRINTH_ERR_INVALID) << k;
    EXPECT_EQ(labyrinth_page_transfer(p, page_of(b, 1), 12345), LABYRINTH_ERR_INVALID);
  }
  expect_only_first_pages_have_words(p);
  for (void *b : blocks) ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
}

// Random splits, merges, order-cache round trips, hand-outs and trims: after
// each step only first pages have words, and inner pages stay refused.
TEST_P(Interior, RandomMixKeepsInnerWordsUnused) {
  PoolGuard p(opts(16u << 20));
  std::mt19937 rng(2026);
  struct Live { void *b; unsigned order; };
  std::vector<Live> live;
  for (int step = 0; step < 3000; ++step) {
    const unsigned r = rng() % 100;
    if (r < 55) {
      const unsigned order = rng() % 3 == 0 ? rng() % (LABYRINTH_MAX_ORDER + 1) : rng() % 5;
      const labyrinth_gfp gfp = rng() % 2 ? LABYRINTH_GFP_EXCLUSIVE : LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE;
      void *b = nullptr;
      if (labyrinth_alloc_pages(p, order, gfp, 0, &b) == LABYRINTH_OK) live.push_back({b, order});
    } else if (r < 97 && !live.empty()) {
      const std::size_t k = rng() % live.size();
      const Live l = live[k];
      live[k] = live.back();
      live.pop_back();
      if (l.order > 0) {
        ASSERT_EQ(labyrinth_free_pages(p, page_of(l.b, 1 + rng() % ((std::size_t{1} << l.order) - 1))),
                  LABYRINTH_ERR_INVALID);
      }
      const bool by_order = rng() % 2;
      ASSERT_EQ(by_order ? labyrinth_free_pages_order(p, l.b, l.order) : labyrinth_free_pages(p, l.b), LABYRINTH_OK);
    } else {
      ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
    }
    if (step % 100 == 0) expect_only_first_pages_have_words(p);
    if (HasFatalFailure()) return;
  }
  for (const Live &l : live) ASSERT_EQ(labyrinth_free_pages(p, l.b), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_only_first_pages_have_words(p);
}

// Another thread's interior pointers, racing with its allocations and frees
// of every order: never taken for a block (every block is the allocating
// thread's), and nothing is lost.
TEST_P(Interior, InteriorPointersRacingAllocationsAreNeverTaken) {
  labyrinth_pool_options o = opts(16u << 20);
  PoolGuard p(o);
  std::atomic<void *> shown{nullptr};
  std::atomic<bool> done{false};
  std::atomic<long> taken{0}, tries{0};
  std::thread prober([&] {
    std::mt19937 rng(7);
    while (!done.load()) {
      void *b = shown.load();
      if (!b) continue;
      void *inner = page_of(b, 1 + rng() % 3);
      labyrinth_status st = rng() % 2 ? labyrinth_free_pages(p, inner) : labyrinth_page_transfer(p, inner, 99);
      if (st == LABYRINTH_OK) taken.fetch_add(1);
      tries.fetch_add(1);
    }
  });
  for (int i = 0; i < 3000 || tries.load() < 200; ++i) {
    const unsigned order = 2 + static_cast<unsigned>(i) % (LABYRINTH_MAX_ORDER - 1);
    void *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK) << last_message();
    shown.store(b);
    ASSERT_EQ(labyrinth_free_pages_order(p, b, order), LABYRINTH_OK) << last_message();
    if (i > 2000000) break;  // the prober never got a turn: the count check below says so
  }
  done.store(true);
  prober.join();
  EXPECT_EQ(taken.load(), 0) << "an interior pointer was freed or transferred";
  EXPECT_GE(tries.load(), 200);
  ASSERT_EQ(labyrinth_pool_trim(p), LABYRINTH_OK);
  expect_only_first_pages_have_words(p);
  expect_accounting(stats(p));
  EXPECT_EQ(stats(p).allocated_pages, 0u);
}

// The uncached block path writes a bounded number of side-table words at
// every order: the block's first word, and one or two words per split or
// merge (at most one of each per order). Without thread caches every
// allocation and free goes through the buddy allocator.
TEST_P(Interior, UncachedAllocAndFreeWriteBoundedWordsAtEveryOrder) {
  labyrinth_pool_options o = opts(64u << 20);
  o.max_thread_caches = 0;
  o.atomic_reserve_pages = 0;
  PoolGuard p(o);
  constexpr std::size_t kBound = 4 * (LABYRINTH_MAX_ORDER + 1);
  for (unsigned order = 0; order <= LABYRINTH_MAX_ORDER; ++order) {
    SCOPED_TRACE("order " + std::to_string(order));
    const std::vector<std::uint64_t> fresh = side_table(p);
    void *b = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(p, order, LABYRINTH_GFP_EXCLUSIVE, 0, &b), LABYRINTH_OK);
    const std::vector<std::uint64_t> held = side_table(p);
    EXPECT_LE(words_changed(fresh, held), kBound);
    const std::size_t first = index_of(p, b);
    for (std::size_t k = 1; k < (std::size_t{1} << order); ++k)
      ASSERT_EQ(held[first + k], std::uint64_t{side::UNUSED}) << "inner page " << k << " was written";
    ASSERT_EQ(labyrinth_free_pages(p, b), LABYRINTH_OK);
    EXPECT_LE(words_changed(held, side_table(p)), kBound);
    EXPECT_EQ(words_changed(fresh, side_table(p)), 0u) << "free did not restore the words alloc changed";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Interior,
                         ::testing::Values(0u, LABYRINTH_POOL_POISON | LABYRINTH_POOL_SCRUB, LABYRINTH_POOL_GUARD),
                         [](const ::testing::TestParamInfo<unsigned> &i) -> std::string {
                           if (i.param == 0) return "Default";
                           return (i.param & LABYRINTH_POOL_GUARD) ? "Guard" : "PoisonScrub";
                         });
