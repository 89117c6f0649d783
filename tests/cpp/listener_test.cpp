// Registration listeners (labyrinth_arena.h): told the region at listen,
// asked before destroy (a refusal makes destroy BUSY and changes nothing),
// told region_removed in a stable order before the arena goes; every
// misuse refused with INVALID and no callback; callbacks may call back.
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "labyrinth/labyrinth.hpp"
#include "test_util.hpp"

using namespace labtest;

namespace {

constexpr std::size_t kPool = std::size_t{4} << 20;

// One listener: what it answers, and what it was told (also into a log
// shared by all, for the order).
struct Probe {
  explicit Probe(std::string n, std::vector<std::string> *l = nullptr) : name(std::move(n)), log(l) {}
  std::string name;
  std::vector<std::string> *log = nullptr;
  int added_answer = 0, destroy_answer = 0;
  int added = 0, asked = 0, removed = 0;
  void *base = nullptr;
  std::size_t size = 0;
  labyrinth_pool *pool = nullptr;
  std::function<void()> on_ask, on_remove;  // calls back into Labyrinth
};

int probe_added(void *ctx, labyrinth_pool *pool, void *base, std::size_t size) {
  auto *p = static_cast<Probe *>(ctx);
  p->added++;
  p->pool = pool;
  p->base = base;
  p->size = size;
  if (p->log) p->log->push_back("added " + p->name);
  return p->added_answer;
}
int probe_destroy(void *ctx, labyrinth_pool *) {
  auto *p = static_cast<Probe *>(ctx);
  p->asked++;
  if (p->log) p->log->push_back("asked " + p->name);
  if (p->on_ask) p->on_ask();
  return p->destroy_answer;
}
void probe_removed(void *ctx, labyrinth_pool *pool, void *base, std::size_t size) {
  auto *p = static_cast<Probe *>(ctx);
  p->removed++;
  EXPECT_EQ(pool, p->pool);
  EXPECT_EQ(base, p->base);
  EXPECT_EQ(size, p->size);
  (void)*static_cast<volatile char *>(base);  // still mapped: a fault here fails the test
  if (p->log) p->log->push_back("removed " + p->name);
  if (p->on_remove) p->on_remove();
}

labyrinth_arena_listener listener_of(Probe *p) {
  labyrinth_arena_listener l;
  std::memset(&l, 0, sizeof l);
  l.struct_size = sizeof l;
  l.name = p->name.c_str();
  l.ctx = p;
  l.region_added = probe_added;
  l.destroy_requested = probe_destroy;
  l.region_removed = probe_removed;
  return l;
}

labyrinth_listener *listen(labyrinth_pool *pool, Probe *p) {
  const labyrinth_arena_listener l = listener_of(p);
  labyrinth_listener *h = nullptr;
  EXPECT_EQ(labyrinth_pool_listen(pool, &l, &h), LABYRINTH_OK) << last_message();
  EXPECT_NE(h, nullptr);
  return h;
}

labyrinth_pool *make_pool() {
  labyrinth_pool_options o = options(kPool);
  labyrinth_pool *p = nullptr;
  EXPECT_EQ(labyrinth_pool_create(&o, &p), LABYRINTH_OK) << last_message();
  return p;
}

std::uint64_t busy_failures(labyrinth_pool *p) { return stats(p).failures[LABYRINTH_ERR_BUSY]; }

}  // namespace

TEST(Listener, ToldTheRegionAtListenAndRemovedAtUnlisten) {
  labyrinth_pool *pool = make_pool();
  Probe a("a");
  labyrinth_listener *h = listen(pool, &a);
  void *base = nullptr;
  std::size_t size = 0;
  ASSERT_EQ(labyrinth_pool_arena(pool, &base, &size), LABYRINTH_OK);
  EXPECT_EQ(a.added, 1);
  EXPECT_EQ(a.pool, pool);
  EXPECT_EQ(a.base, base);
  EXPECT_EQ(a.size, size);
  EXPECT_EQ(a.removed, 0);
  EXPECT_EQ(labyrinth_pool_unlisten(pool, h), LABYRINTH_OK) << last_message();
  EXPECT_EQ(a.removed, 1);
  // A second unlisten: refused, nothing called.
  EXPECT_EQ(labyrinth_pool_unlisten(pool, h), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("not a live subscription"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(a.removed, 1);
  EXPECT_EQ(a.asked, 0) << "an ended subscription is not asked";
}

TEST(Listener, RefusedRegionKeepsNothing) {
  labyrinth_pool *pool = make_pool();
  Probe a("refuser");
  a.added_answer = ENODEV;
  const labyrinth_arena_listener l = listener_of(&a);
  labyrinth_listener *h = reinterpret_cast<labyrinth_listener *>(0x1);
  EXPECT_EQ(labyrinth_pool_listen(pool, &l, &h), LABYRINTH_ERR_SYSTEM);
  EXPECT_EQ(h, reinterpret_cast<labyrinth_listener *>(0x1)) << "out untouched";
  EXPECT_NE(last_message().find("'refuser'"), std::string::npos) << last_message();
  EXPECT_NE(last_message().find(std::strerror(ENODEV)), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(a.asked + a.removed, 0);
}

TEST(Listener, DestroyAsksInOrderThenRemovesInReverseBeforeTheArenaGoes) {
  ProviderCounts counts;
  const labyrinth_arena_provider pv = provider("counted", memfd_map, &counts);
  labyrinth_pool_options o = options(kPool);
  o.arena_provider = &pv;
  labyrinth_pool *pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create(&o, &pool), LABYRINTH_OK) << last_message();
  std::vector<std::string> log;
  Probe a("a", &log), b("b", &log), c("c", &log);
  listen(pool, &a);
  listen(pool, &b);
  listen(pool, &c);
  c.on_remove = [&] { EXPECT_EQ(counts.unmaps, 0) << "region_removed before the arena goes"; };
  ASSERT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_message();
  EXPECT_EQ(log, (std::vector<std::string>{"added a", "added b", "added c", "asked a", "asked b",
                                           "asked c", "removed c", "removed b", "removed a"}));
  EXPECT_EQ(counts.unmaps, 1);
}

TEST(Listener, DestroyIsBusyWhileAListenerRefusesThenOkAfterUnlisten) {
  labyrinth_pool *pool = make_pool();
  std::vector<std::string> log;
  Probe a("a", &log), b("engine b", &log), c("c", &log);
  listen(pool, &a);
  labyrinth_listener *hb = listen(pool, &b);
  listen(pool, &c);
  b.destroy_answer = EBUSY;
  const std::uint64_t busy = busy_failures(pool);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_NE(last_message().find("'engine b'"), std::string::npos) << last_message();
  EXPECT_EQ(busy_failures(pool), busy + 1);
  EXPECT_EQ(c.asked, 0) << "the listeners after a refusal are not asked";
  EXPECT_EQ(a.removed + b.removed + c.removed, 0) << "a refused destroy changes nothing";
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);  // the pool still works
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  ASSERT_EQ(labyrinth_pool_unlisten(pool, hb), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_message();
  EXPECT_EQ(a.removed, 1);
  EXPECT_EQ(b.removed, 1);
  EXPECT_EQ(c.removed, 1);
}

TEST(Listener, PoolRefusalsComeBeforeTheQuestion) {
  labyrinth_pool *pool = make_pool();
  Probe a("a");
  listen(pool, &a);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  EXPECT_NE(last_message().find("still allocated"), std::string::npos) << last_message();
  EXPECT_EQ(a.asked + a.removed, 0);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(a.removed, 1);
}

TEST(Listener, MisuseIsRefusedWithoutACall) {
  labyrinth_pool *pool = make_pool(), *other = make_pool();
  Probe a("a"), theirs("theirs");
  labyrinth_listener *h = nullptr;
  const labyrinth_arena_listener good = listener_of(&a);
  const std::uint64_t invalid = stats(pool).failures[LABYRINTH_ERR_INVALID];
  struct Case {
    const char *says;
    void (*spoil)(labyrinth_arena_listener &);
  } cases[] = {
      {"struct_size", [](labyrinth_arena_listener &l) { l.struct_size = 8; }},
      {"listener->name is NULL", [](labyrinth_arena_listener &l) { l.name = nullptr; }},
      {"listener->region_added is NULL", [](labyrinth_arena_listener &l) { l.region_added = nullptr; }},
      {"listener->region_removed is NULL", [](labyrinth_arena_listener &l) { l.region_removed = nullptr; }},
  };
  for (const Case &c : cases) {
    labyrinth_arena_listener l = good;
    c.spoil(l);
    EXPECT_EQ(labyrinth_pool_listen(pool, &l, &h), LABYRINTH_ERR_INVALID) << c.says;
    EXPECT_NE(last_message().find(c.says), std::string::npos) << last_message();
  }
  EXPECT_EQ(labyrinth_pool_listen(pool, nullptr, &h), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_listen(pool, &good, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_listen(nullptr, &good, &h), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(a.added, 0);
  labyrinth_listener *their_h = listen(other, &theirs);
  EXPECT_EQ(labyrinth_pool_unlisten(pool, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_pool_unlisten(pool, reinterpret_cast<labyrinth_listener *>(0xdead0)),
            LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("not a live subscription"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_pool_unlisten(pool, their_h), LABYRINTH_ERR_INVALID);
  EXPECT_NE(last_message().find("belongs to pool"), std::string::npos) << last_message();
  EXPECT_EQ(theirs.removed, 0) << "a refused unlisten ends nothing";
  EXPECT_EQ(labyrinth_pool_unlisten(nullptr, their_h), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(stats(pool).failures[LABYRINTH_ERR_INVALID], invalid + 9) << "each refusal counted";
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(other), LABYRINTH_OK);
  EXPECT_EQ(theirs.removed, 1);
  EXPECT_EQ(labyrinth_pool_unlisten(other, their_h), LABYRINTH_ERR_INVALID) << "destroyed pool";
  EXPECT_NE(last_message().find("not a live pool"), std::string::npos) << last_message();
  EXPECT_EQ(labyrinth_pool_listen(other, &good, &h), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(a.added, 0);
}

TEST(Listener, ForkedChildIsRefused) {
  labyrinth_pool *pool = make_pool();
  Probe a("a");
  labyrinth_listener *h = listen(pool, &a);
  pid_t pid = fork();
  if (pid == 0) {
    const labyrinth_arena_listener l = listener_of(&a);
    labyrinth_listener *h2 = nullptr;
    int bad = 0;
    if (labyrinth_pool_listen(pool, &l, &h2) != LABYRINTH_ERR_INVALID) bad |= 1;
    if (std::string(labyrinth_last_error_message()).find("parent") == std::string::npos) bad |= 1;
    if (labyrinth_pool_unlisten(pool, h) != LABYRINTH_ERR_INVALID) bad |= 2;
    if (labyrinth_pool_destroy(pool) != LABYRINTH_ERR_INVALID) bad |= 4;
    if (a.added != 1 || a.removed != 0 || a.asked != 0) bad |= 8;  // no callback ran here
    // The child's own pools take listeners; the parent's handles are not theirs.
    labyrinth_pool_options o = options(kPool);
    labyrinth_pool *mine = nullptr;
    if (labyrinth_pool_create(&o, &mine) != LABYRINTH_OK) bad |= 16;
    if (labyrinth_pool_listen(mine, &l, &h2) != LABYRINTH_OK || a.added != 2) bad |= 32;
    if (labyrinth_pool_unlisten(mine, h) != LABYRINTH_ERR_INVALID) bad |= 64;
    if (labyrinth_pool_destroy(mine) != LABYRINTH_OK || a.removed != 1) bad |= 128;
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "refusal bits";
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK);
  EXPECT_EQ(a.removed, 1);
}

TEST(Listener, CallbacksMayCallBackWithoutDeadlock) {
  labyrinth_pool *pool = make_pool();
  Probe a("a"), b("b");
  labyrinth_listener *ha = listen(pool, &a);
  listen(pool, &b);
  std::vector<labyrinth_status> seen;
  b.on_ask = [&] {
    labyrinth_stats s = stats(pool);  // takes the registry mutex
    (void)s;
    seen.push_back(labyrinth_pool_destroy(pool));  // already being destroyed
    const labyrinth_arena_listener l = listener_of(&a);
    labyrinth_listener *h = nullptr;
    seen.push_back(labyrinth_pool_listen(pool, &l, &h));  // refused while being destroyed
  };
  // b goes first (reverse order) and ends a's subscription itself.
  b.on_remove = [&] { seen.push_back(labyrinth_pool_unlisten(pool, ha)); };
  ASSERT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_message();
  EXPECT_EQ(seen, (std::vector<labyrinth_status>{LABYRINTH_ERR_BUSY, LABYRINTH_ERR_BUSY,
                                                 LABYRINTH_OK}));
  EXPECT_EQ(a.removed, 1) << "told once, by the unlisten";
  EXPECT_EQ(b.removed, 1);
}

TEST(Listener, StructIsCopiedAndNullDestroyRequestedLetsGo) {
  labyrinth_pool *pool = make_pool();
  Probe a("a");
  labyrinth_arena_listener l = listener_of(&a);
  l.destroy_requested = nullptr;
  labyrinth_listener *h = nullptr;
  ASSERT_EQ(labyrinth_pool_listen(pool, &l, &h), LABYRINTH_OK);
  std::memset(&l, 0, sizeof l);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_message();
  EXPECT_EQ(a.asked, 0);
  EXPECT_EQ(a.removed, 1);
}

TEST(Listener, CppSubscriptionEndsWithItsScope) {
  ProviderCounts counts;
  const labyrinth_arena_provider pv = provider("c++", memfd_map, &counts);
  labyrinth::Pool pool(labyrinth::PoolOptions{}.size(kPool).pin(false).arena_provider(pv));
  EXPECT_STREQ(pool.stats().arena_provider, "c++");
  Probe a("a"), b("b");
  {
    labyrinth::Subscription sub(pool, listener_of(&a));
    EXPECT_EQ(a.added, 1);
    labyrinth::Subscription moved = std::move(sub);
    EXPECT_EQ(sub.get(), nullptr);
  }
  EXPECT_EQ(a.removed, 1) << "ended once, by the object that held it";
  b.added_answer = EACCES;
  try {
    labyrinth::Subscription refused(pool, listener_of(&b));
    ADD_FAILURE() << "region_added refused: construction must throw";
  } catch (const labyrinth::Error &e) {
    EXPECT_EQ(e.status(), LABYRINTH_ERR_SYSTEM);
  }
  b.added_answer = 0;
  labyrinth::Subscription kept(pool, listener_of(&b));
  pool.destroy();
  EXPECT_EQ(b.removed, 1);
  EXPECT_EQ(counts.unmaps, 1);
  EXPECT_THROW(kept.end(), labyrinth::Error) << "the destroy ended it";
}
