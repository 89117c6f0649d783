// process.cpp - owner ids never reused, a thread-exit hook that returns the
// thread's caches, the registry of pools, and fork handling.
#include "process.hpp"

#include <pthread.h>

#include <algorithm>

#include "listeners.hpp"
#include "pkeys.hpp"
#include "pool.hpp"

namespace lab {

namespace {

std::atomic<std::uint64_t> g_next_owner{0};
std::atomic<std::uint64_t> g_fork_generation{0};
pthread_key_t g_exit_key;

std::mutex &reg_mu() {
  static std::mutex *mu = new std::mutex;  // never destroyed: used at thread exit
  return *mu;
}
std::vector<Pool *> &reg_pools() {
  static auto *v = new std::vector<Pool *>;
  return *v;
}
std::vector<std::uint64_t> &dead_owners() {
  static auto *v = new std::vector<std::uint64_t>;
  return *v;
}

void on_thread_exit(void *) {
  std::uint64_t me = tls.owner;
  std::lock_guard<std::mutex> lock(reg_mu());
  for (Pool *p : reg_pools()) pool_thread_exit(p, me);
  if (me) pkeys::owner_exited(me);
  auto &dead = dead_owners();
  dead.insert(std::upper_bound(dead.begin(), dead.end(), me), me);
  for (auto &slot : tls.slots) slot = CacheSlot{0, nullptr};
  fast_forget();
}

void on_fork_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  for (auto &slot : tls.slots) slot = CacheSlot{0, nullptr};
  tls.stash = nullptr;
  set_fast_pool(nullptr);  // the only thread of the child; its pools are the parent's
  // The mutex may have been held by a thread that does not exist in the
  // child; make a fresh one (the old one is leaked on purpose).
  new (&reg_mu()) std::mutex;
  pkeys::after_fork_child();
  listeners_after_fork_child();
}

__attribute__((constructor)) void labyrinth_process_init() {
  pthread_key_create(&g_exit_key, on_thread_exit);
  pthread_atfork(nullptr, nullptr, on_fork_child);
}

}  // namespace

std::uint64_t owner_self() {
  std::uint64_t id = tls.owner;
  if (LAB_LIKELY(id != 0)) return id;
  std::uint64_t fresh = g_next_owner.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint64_t expected = 0;
  // A signal handler may have assigned one in between: keep the first.
  if (!__atomic_compare_exchange_n(&tls.owner, &expected, fresh, false, __ATOMIC_RELAXED,
                                   __ATOMIC_RELAXED)) {
    fresh = expected;
  }
  tls.alloc_word = side::alloc_word(0, true, fresh);
  // A thread with an id may own pages (allocated, or transferred to it), so
  // its exit must be recorded even if it never claims a thread cache (pools
  // without caches, GUARD pools, a thread that only receives pages): else
  // its pages would never count as orphans. Same cost and signal safety as
  // ensure_exit_hook().
  if (!tls.exit_hook_set) {
    pthread_setspecific(g_exit_key, reinterpret_cast<void *>(1));
    tls.exit_hook_set = 1;
  }
  return fresh;
}

std::uint64_t owners_issued() { return g_next_owner.load(std::memory_order_relaxed); }

void ensure_exit_hook() {
  if (LAB_LIKELY(tls.exit_hook_set)) return;
  owner_self();
  pthread_setspecific(g_exit_key, reinterpret_cast<void *>(1));
  tls.exit_hook_set = 1;
}

std::mutex &registry_mutex() { return reg_mu(); }
std::vector<Pool *> &registry_pools() { return reg_pools(); }
const std::vector<std::uint64_t> &exited_owners() { return dead_owners(); }
std::uint64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

}  // namespace lab

extern "C" LABYRINTH_API labyrinth_owner labyrinth_owner_self(void) {
  // While a PKEYS pool exists, the thread gets its protection key now, so
  // that blocks can be transferred to it (a thread learns its id here to
  // tell the sender). No key left: the id is returned all the same, and a
  // transfer to it is refused with a message.
  if (lab::pkeys::any_pool()) {
    int key;
    (void)lab::pkeys::self_key("labyrinth_owner_self", &key);
  }
  return lab::owner_self();
}
