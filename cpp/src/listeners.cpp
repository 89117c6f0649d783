// listeners.cpp - registration listeners (listeners.hpp): subscribe,
// unsubscribe, and destroy's questions and notices; the two exported calls.
#include "listeners.hpp"

#include <cstring>
#include <mutex>
#include <vector>

#include "boundary.hpp"

namespace lab {

namespace {

struct Subscription {
  std::uint64_t id;  // the handle's value; never reused
  Pool *pool;
  labyrinth_arena_listener listener;  // the caller's copy
  bool adding;       // region_added is running: no one holds the handle yet
};

struct Listeners {
  std::mutex mu;
  std::vector<Subscription> subs;     // ids ascending: subscription order
  std::vector<const Pool *> destroying;
  std::uint64_t last_id = 0;
  Listeners *before_fork = nullptr;  // the parent's list, abandoned in a forked child
};

// Never destroyed: usable from any thread until the process ends. A forked
// child starts a fresh one (listeners_after_fork_child).
Listeners *&current() {
  static Listeners *l = new Listeners;
  return l;
}
Listeners &all() { return *current(); }

labyrinth_listener *handle_of(std::uint64_t id) {
  return reinterpret_cast<labyrinth_listener *>(static_cast<std::uintptr_t>(id));
}
std::uint64_t id_of(const labyrinth_listener *h) { return reinterpret_cast<std::uintptr_t>(h); }

// The subscription `id`, or nullptr (mu held).
Subscription *find(Listeners &l, std::uint64_t id) {
  for (auto &s : l.subs)
    if (s.id == id) return &s;
  return nullptr;
}

bool is_destroying(Listeners &l, const Pool *p) {
  for (const Pool *d : l.destroying)
    if (d == p) return true;
  return false;
}

// Take the subscription `id` out of the list (mu held).
void erase(Listeners &l, std::uint64_t id) {
  for (auto it = l.subs.begin(); it != l.subs.end(); ++it)
    if (it->id == id) {
      l.subs.erase(it);
      return;
    }
}

}  // namespace

labyrinth_status pool_listen(Pool *p, const labyrinth_arena_listener *listener,
                             labyrinth_listener **out) {
  const char *what = "labyrinth_pool_listen";
  if (!listener || !out)
    return refuse(p, LABYRINTH_ERR_INVALID, "%s: %s is NULL", what, !listener ? "listener" : "out");
  if (labyrinth_status st =
          check_struct_size(listener->struct_size, sizeof(labyrinth_arena_listener), what,
                            "listener", "set it to sizeof(labyrinth_arena_listener)");
      st != LABYRINTH_OK)
    return counted(p, st);
  labyrinth_arena_listener c{};
  copy_in(listener, &c);
  const char *missing = !c.name ? "name" : !c.region_added ? "region_added"
                        : !c.region_removed ? "region_removed" : nullptr;
  if (missing) return refuse(p, LABYRINTH_ERR_INVALID, "%s: listener->%s is NULL", what, missing);
  Listeners &l = all();
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> lock(l.mu);
    if (is_destroying(l, p))
      return refuse(p, LABYRINTH_ERR_BUSY,
                    "%s: listener '%s': the pool is being destroyed (a call from one of its "
                    "listeners' callbacks)",
                    what, c.name);
    id = ++l.last_id;
    l.subs.push_back(Subscription{id, p, c, true});
  }
  const int e = c.region_added(c.ctx, p, p->base, p->size);
  {
    std::lock_guard<std::mutex> lock(l.mu);
    if (e) erase(l, id);
    else find(l, id)->adding = false;
  }
  if (e) {
    char buf[96];
    return refuse(p, LABYRINTH_ERR_SYSTEM,
                  "%s: listener '%s' refused the arena region %p (%zu bytes): %s (returned %d)",
                  what, c.name, static_cast<void *>(p->base), p->size,
                  errno_text(e, buf, sizeof buf), e);
  }
  *out = handle_of(id);
  return LABYRINTH_OK;
}

labyrinth_status pool_unlisten(Pool *p, labyrinth_listener *subscription) {
  const char *what = "labyrinth_pool_unlisten";
  if (!subscription) return refuse(p, LABYRINTH_ERR_INVALID, "%s: subscription is NULL", what);
  Listeners &l = all();
  Subscription s;
  {
    std::lock_guard<std::mutex> lock(l.mu);
    const Subscription *found = find(l, id_of(subscription));
    if (!found || found->adding)
      return refuse(p, LABYRINTH_ERR_INVALID,
                    "%s: %p is not a live subscription (already ended by labyrinth_pool_unlisten "
                    "or the pool's destroy, or never returned by labyrinth_pool_listen)",
                    what, static_cast<void *>(subscription));
    if (found->pool != p)
      return refuse(p, LABYRINTH_ERR_INVALID,
                    "%s: subscription %p (listener '%s') belongs to pool %p, not to %p", what,
                    static_cast<void *>(subscription), found->listener.name,
                    static_cast<void *>(found->pool), static_cast<void *>(p));
    s = *found;
    erase(l, s.id);
  }
  s.listener.region_removed(s.listener.ctx, p, p->base, p->size);
  return LABYRINTH_OK;
}

labyrinth_status begin_destroy(Pool *p, const char *what) {
  Listeners &l = all();
  std::lock_guard<std::mutex> lock(l.mu);
  if (is_destroying(l, p))
    return refuse(p, LABYRINTH_ERR_BUSY,
                  "%s: the pool is already being destroyed (a call from one of its listeners' "
                  "callbacks)",
                  what);
  for (const auto &s : l.subs)
    if (s.pool == p && s.adding)
      return refuse(p, LABYRINTH_ERR_BUSY,
                    "%s: labyrinth_pool_listen of listener '%s' on this pool is under way", what,
                    s.listener.name);
  l.destroying.push_back(p);
  return LABYRINTH_OK;
}

labyrinth_status ask_listeners(Pool *p, const char *what) {
  Listeners &l = all();
  for (std::uint64_t last = 0;;) {
    Subscription s{};
    {
      std::lock_guard<std::mutex> lock(l.mu);
      const Subscription *next = nullptr;
      for (const auto &c : l.subs)
        if (c.pool == p && c.id > last) {
          next = &c;
          break;
        }
      if (!next) return LABYRINTH_OK;
      s = *next;
    }
    last = s.id;
    if (!s.listener.destroy_requested) continue;
    if (const int e = s.listener.destroy_requested(s.listener.ctx, p)) {
      char buf[96];
      return refuse(p, LABYRINTH_ERR_BUSY,
                    "%s: listener '%s' refuses to let the arena go (%s, returned %d); finish its "
                    "use of the pool or end its subscription (labyrinth_pool_unlisten) first",
                    what, s.listener.name, errno_text(e, buf, sizeof buf), e);
    }
  }
}

void remove_listeners(Pool *p) {
  Listeners &l = all();
  for (;;) {
    Subscription s{};
    {
      std::lock_guard<std::mutex> lock(l.mu);
      const Subscription *last = nullptr;
      for (const auto &c : l.subs)
        if (c.pool == p) last = &c;
      if (!last) return;
      s = *last;
      erase(l, s.id);
    }
    s.listener.region_removed(s.listener.ctx, p, p->base, p->size);
  }
}

void end_destroy(Pool *p) {
  Listeners &l = all();
  std::lock_guard<std::mutex> lock(l.mu);
  for (auto it = l.destroying.begin(); it != l.destroying.end(); ++it)
    if (*it == p) {
      l.destroying.erase(it);
      return;
    }
}

void listeners_after_fork_child() {
  // The mutex may have been held, and the list half changed, by a thread
  // that does not exist in the child; every subscription in it is of the
  // parent's pools, which the child cannot use. The old one is abandoned,
  // not freed, and stays reachable from the new one. Handles stay unique:
  // the numbering goes on.
  auto *fresh = new Listeners;
  fresh->last_id = current()->last_id;
  fresh->before_fork = current();
  current() = fresh;
}

}  // namespace lab

using namespace lab;

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_pool_listen(labyrinth_pool *pool,
                                                     const labyrinth_arena_listener *listener,
                                                     labyrinth_listener **out) {
  const char *what = "labyrinth_pool_listen";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return pool_listen(p, listener, out); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_unlisten(labyrinth_pool *pool,
                                                       labyrinth_listener *subscription) {
  const char *what = "labyrinth_pool_unlisten";
  Pool *p;
  if (labyrinth_status st = usable_pool(pool, what, &p); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return pool_unlisten(p, subscription); });
}

}  // extern "C"
