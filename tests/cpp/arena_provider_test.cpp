// Bring your own arena (labyrinth_arena.h): the pool maps through the
// provider, aligns, advises and pins as the provider allows, refuses every
// bad provider or answer with a message, and gives the memory back exactly
// once. The ownership, misuse and lifetime suites also run on provider
// arenas (tests/cpp/CMakeLists.txt, LABYRINTH_TEST_ARENA).
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "../../examples/arena_memfd.h"
#include "test_util.hpp"

using namespace labtest;

namespace {

constexpr std::size_t kPool = std::size_t{8} << 20;
constexpr std::size_t kSlack = LABYRINTH_ARENA_ALIGN - 4096;

// The VmFlags line of /proc/self/smaps for the mapping that holds addr
// ("dc": MADV_DONTFORK, "lo": mlocked, "hg": MADV_HUGEPAGE), "" if none.
std::string vm_flags(const void *addr) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' '))
      inside = a >= lo && a < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line + " ";
  }
  return "";
}
bool has_flag(const std::string &flags, const char *f) {
  return flags.find(std::string(" ") + f + " ") != std::string::npos;
}

// A provider that records its calls: map answers as `answer` says, unmap
// checks it gets back exactly what map gave and what state it is in.
struct Recorder {
  enum Answer { kGood, kFail, kNullBase, kMisaligned, kHoled } answer = kGood;
  int error = 0;  // for kFail
  ProviderCounts counts;
  void *gave = nullptr;
  std::size_t gave_size = 0;
  void *raw = nullptr;  // the mapping behind `gave` (it is 64 bytes in for kMisaligned)
  std::string flags_at_unmap;
  bool readable_at_unmap = false;
};

int recorder_map(void *ctx, std::size_t size, void **base) {
  auto *r = static_cast<Recorder *>(ctx);
  r->counts.maps++;
  if (r->answer == Recorder::kFail) return r->error;
  if (r->answer == Recorder::kNullBase) return 0;
  void *m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return errno;
  if (r->answer == Recorder::kHoled) munmap(static_cast<char *>(m) + (size / 2 & ~std::size_t{4095}), 4096);
  r->raw = m;
  r->gave = r->answer == Recorder::kMisaligned ? static_cast<char *>(m) + 64 : m;
  r->gave_size = size;
  *base = r->gave;
  return 0;
}

void recorder_unmap(void *ctx, void *base, std::size_t size) {
  auto *r = static_cast<Recorder *>(ctx);
  r->counts.unmaps++;
  if (base != r->gave || size != r->gave_size) r->counts.unmap_mismatches++;
  if (r->answer == Recorder::kGood) {
    const std::uintptr_t window =
        (reinterpret_cast<std::uintptr_t>(base) + LABYRINTH_ARENA_ALIGN - 1) &
        ~(std::uintptr_t{LABYRINTH_ARENA_ALIGN} - 1);
    r->flags_at_unmap = vm_flags(reinterpret_cast<void *>(window));
    r->readable_at_unmap = mprotect(reinterpret_cast<void *>(window), 4096, PROT_READ) == 0 &&
                           *reinterpret_cast<volatile char *>(window) == 0;
  }
  munmap(r->raw, r->gave_size);  // exactly the mapping map made, not a page past it
}

labyrinth_arena_provider recorder_provider(Recorder *r, std::uint32_t flags = 0) {
  labyrinth_arena_provider p = provider("recorder", recorder_map, r, flags);
  p.unmap = recorder_unmap;
  return p;
}

labyrinth_pool_options options_with(const labyrinth_arena_provider *pv) {
  labyrinth_pool_options o = options(kPool);
  o.arena_provider = pv;
  return o;
}

// Allocate every order-0 page, write each, free them all: every page of the
// window is memory the provider gave.
void touch_every_page(labyrinth_pool *p) {
  std::vector<void *> pages;
  for (void *pg; labyrinth_alloc_pages(p, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0,
                                       &pg) == LABYRINTH_OK;)
    pages.push_back(pg);
  EXPECT_EQ(pages.size(), kPool / 4096);
  for (void *pg : pages) std::memset(pg, 0x5A, 4096);
  for (void *pg : pages) ASSERT_EQ(labyrinth_free_pages(p, pg), LABYRINTH_OK);
}

}  // namespace

TEST(ArenaProvider, MemfdExampleBacksThePool) {
  arena_memfd m = ARENA_MEMFD_INIT;
  const labyrinth_arena_provider pv = arena_memfd_provider(&m);
  labyrinth_pool_options o = options_with(&pv);
  labyrinth_pool *p = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  void *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(p, &base, nullptr), LABYRINTH_OK);
  EXPECT_EQ(base, m.base) << "an aligned base is used as it is";
  EXPECT_EQ(m.size, kPool + kSlack);
  const labyrinth_stats s = stats(p);
  EXPECT_STREQ(s.arena_provider, "memfd");
  EXPECT_EQ(s.arena_unused_bytes, kSlack);
  EXPECT_EQ(s.arena_flags, 0u);
  auto *page = static_cast<char *>(labyrinth_void_alloc_page_gfp_atomic_exclusive(p));
  ASSERT_NE(page, nullptr);
  std::strcpy(page, "through the file");
  char back[32] = {};
  ASSERT_GT(pread(m.fd, back, sizeof back - 1, page - static_cast<char *>(m.base)), 0);
  EXPECT_STREQ(back, "through the file");
  EXPECT_EQ(labyrinth_free_pages(p, page), LABYRINTH_OK);
  touch_every_page(p);
  EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK);
  EXPECT_EQ(m.fd, -1) << "unmap closes the file";
}

TEST(ArenaProvider, UnalignedBaseIsAlignedInsideWhatWasAsked) {
  ProviderCounts counts;
  const labyrinth_arena_provider pv = provider("unaligned", unaligned_map, &counts);
  labyrinth_pool_options o = options_with(&pv);
  labyrinth_pool *p = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  void *base = nullptr;
  std::size_t size = 0;
  ASSERT_EQ(labyrinth_pool_arena(p, &base, &size), LABYRINTH_OK);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(base) % LABYRINTH_ARENA_ALIGN, 0u);
  EXPECT_EQ(size, kPool);
  EXPECT_EQ(stats(p).arena_unused_bytes, kSlack);
  touch_every_page(p);  // the last page is the provider's last page
  EXPECT_EQ(counts.maps, 1);
  EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK);
  EXPECT_EQ(counts.unmaps, 1);
}

TEST(ArenaProvider, MemoryGoesBackOnceAsItCame) {
  Recorder r;
  const labyrinth_arena_provider pv = recorder_provider(&r);
  labyrinth_pool_options o = options_with(&pv);
  o.flags |= LABYRINTH_POOL_GUARD | LABYRINTH_POOL_PIN_BEST_EFFORT;
  labyrinth_pool *p = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  void *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(p, &base, nullptr), LABYRINTH_OK);
  EXPECT_TRUE(has_flag(vm_flags(base), "dc")) << "MADV_DONTFORK on provider memory";
// The sanitizers' runtimes turn mlock into a no-op that succeeds.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  if (stats(p).flags & LABYRINTH_POOL_PIN) {
    EXPECT_TRUE(has_flag(vm_flags(base), "lo"));
  }
#endif
  EXPECT_EQ(r.counts.unmaps, 0);
  EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK);
  EXPECT_EQ(r.counts.maps, 1);
  EXPECT_EQ(r.counts.unmaps, 1);
  EXPECT_EQ(r.counts.unmap_mismatches, 0);
  EXPECT_FALSE(has_flag(r.flags_at_unmap, "dc")) << r.flags_at_unmap;
  EXPECT_FALSE(has_flag(r.flags_at_unmap, "lo")) << r.flags_at_unmap;
  EXPECT_TRUE(r.readable_at_unmap) << "GUARD's PROT_NONE undone before unmap";
}

TEST(ArenaProvider, NoAdviceAndPinnedAreHonoured) {
  Recorder r;
  const labyrinth_arena_provider pv =
      recorder_provider(&r, LABYRINTH_ARENA_NO_ADVICE | LABYRINTH_ARENA_PINNED);
  labyrinth_pool_options o = options_with(&pv);
  o.flags |= LABYRINTH_POOL_PIN | LABYRINTH_POOL_HUGEPAGES;  // strict: never refused here
  labyrinth_pool *p = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  void *base = nullptr;
  ASSERT_EQ(labyrinth_pool_arena(p, &base, nullptr), LABYRINTH_OK);
  const std::string flags = vm_flags(base);
  EXPECT_FALSE(has_flag(flags, "dc")) << flags;
  EXPECT_FALSE(has_flag(flags, "hg")) << flags;
  EXPECT_FALSE(has_flag(flags, "lo")) << "the pool must not mlock PINNED memory: " << flags;
  const labyrinth_stats s = stats(p);
  EXPECT_EQ(s.huge_pages, 0u);
  EXPECT_TRUE(s.flags & LABYRINTH_POOL_PIN);
  EXPECT_EQ(s.arena_flags, LABYRINTH_ARENA_NO_ADVICE | LABYRINTH_ARENA_PINNED);
  EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK);
  EXPECT_EQ(r.counts.unmaps, 1);
}

TEST(ArenaProvider, MapFailureIsExplainedAndNothingIsGivenBack) {
  for (int e : {ENOMEM, EACCES}) {
    Recorder r;
    r.answer = Recorder::kFail;
    r.error = e;
    const labyrinth_arena_provider pv = recorder_provider(&r);
    labyrinth_pool_options o = options_with(&pv);
    labyrinth_pool *p = reinterpret_cast<labyrinth_pool *>(0x1);
    EXPECT_EQ(labyrinth_pool_create(&o, &p),
              e == ENOMEM ? LABYRINTH_ERR_NOMEM : LABYRINTH_ERR_SYSTEM);
    EXPECT_EQ(p, reinterpret_cast<labyrinth_pool *>(0x1)) << "out untouched";
    EXPECT_NE(last_message().find("'recorder'"), std::string::npos) << last_message();
    EXPECT_NE(last_message().find(std::strerror(e)), std::string::npos) << last_message();
    EXPECT_EQ(r.counts.maps, 1);
    EXPECT_EQ(r.counts.unmaps, 0);
  }
}

TEST(ArenaProvider, BadAnswersAreRefusedAndGivenBackOnce) {
  struct Case {
    Recorder::Answer answer;
    const char *says;
    int unmaps;
  } cases[] = {{Recorder::kNullBase, "base NULL", 0},
               {Recorder::kMisaligned, "not 4096-aligned", 1},
               {Recorder::kHoled, "not wholly mapped", 1}};
  for (const Case &c : cases) {
    Recorder r;
    r.answer = c.answer;
    const labyrinth_arena_provider pv = recorder_provider(&r);
    labyrinth_pool_options o = options_with(&pv);
    labyrinth_pool *p = nullptr;
    EXPECT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_ERR_SYSTEM) << c.says;
    EXPECT_EQ(p, nullptr);
    EXPECT_NE(last_message().find(c.says), std::string::npos) << last_message();
    EXPECT_EQ(r.counts.unmaps, c.unmaps) << c.says;
    EXPECT_EQ(r.counts.unmap_mismatches, 0) << c.says;
  }
}

TEST(ArenaProvider, FailedCreateAfterMapGivesTheMemoryBack) {
  Recorder r;
  const labyrinth_arena_provider pv = recorder_provider(&r);
  labyrinth_pool_options o = options_with(&pv);
  o.numa_node = 5000;  // refused after the arena is mapped
  labyrinth_pool *p = nullptr;
  EXPECT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("numa_node"), std::string::npos) << last_message();
  EXPECT_EQ(r.counts.maps, 1);
  EXPECT_EQ(r.counts.unmaps, 1);
  EXPECT_EQ(r.counts.unmap_mismatches, 0);
}

TEST(ArenaProvider, BadProvidersAreRefusedWithoutACall) {
  Recorder r;
  const labyrinth_arena_provider good = recorder_provider(&r);
  struct Case {
    const char *says;
    void (*spoil)(labyrinth_arena_provider &, labyrinth_pool_options &);
  } cases[] = {
      {"struct_size", [](labyrinth_arena_provider &pv, labyrinth_pool_options &) { pv.struct_size = 8; }},
      {"arena_provider->name is NULL", [](labyrinth_arena_provider &pv, labyrinth_pool_options &) { pv.name = nullptr; }},
      {"arena_provider->map is NULL", [](labyrinth_arena_provider &pv, labyrinth_pool_options &) { pv.map = nullptr; }},
      {"arena_provider->unmap is NULL", [](labyrinth_arena_provider &pv, labyrinth_pool_options &) { pv.unmap = nullptr; }},
      {"unknown flags 0x4", [](labyrinth_arena_provider &pv, labyrinth_pool_options &) { pv.flags = 4; }},
      {"NUMA node 0", [](labyrinth_arena_provider &pv, labyrinth_pool_options &o) {
         pv.flags = LABYRINTH_ARENA_NO_ADVICE;
         o.numa_node = 0;
       }},
  };
  for (const Case &c : cases) {
    labyrinth_arena_provider pv = good;
    labyrinth_pool_options o = options_with(&pv);
    c.spoil(pv, o);
    labyrinth_pool *p = nullptr;
    EXPECT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_ERR_INVALID) << c.says;
    EXPECT_NE(last_message().find(c.says), std::string::npos) << last_message();
    EXPECT_EQ(p, nullptr);
  }
  EXPECT_EQ(r.counts.maps, 0);
}

TEST(ArenaProvider, ProviderStructIsCopiedAtCreate) {
  ProviderCounts counts;
  labyrinth_arena_provider pv = provider("copied", memfd_map, &counts);
  labyrinth_pool_options o = options_with(&pv);
  labyrinth_pool *p = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  std::memset(&pv, 0, sizeof pv);  // the caller's struct is borrowed for the call only
  EXPECT_STREQ(stats(p).arena_provider, "copied");
  EXPECT_EQ(labyrinth_pool_destroy(p), LABYRINTH_OK);
  EXPECT_EQ(counts.unmaps, 1);
}

TEST(ArenaProvider, AnonymousPoolsSayAnonymous) {
  labyrinth_pool_options o = options(kPool);
  o.arena_provider = nullptr;
  PoolGuard p(o);
  const labyrinth_stats s = stats(p);
  EXPECT_STREQ(s.arena_provider, "anonymous");
  EXPECT_EQ(s.arena_unused_bytes, 0u);
}

TEST(ArenaProvider, SharedSuitesRunOnTheArenaNamed) {
  ASSERT_EQ(setenv("LABYRINTH_TEST_ARENA", "memfd", 1), 0);
  {
    PoolGuard p(options(kPool));
    EXPECT_STREQ(stats(p).arena_provider, "memfd");
  }
  ASSERT_EQ(setenv("LABYRINTH_TEST_ARENA", "unaligned", 1), 0);
  {
    PoolGuard p(options(kPool));
    EXPECT_STREQ(stats(p).arena_provider, "unaligned");
  }
  ASSERT_EQ(unsetenv("LABYRINTH_TEST_ARENA"), 0);
}
