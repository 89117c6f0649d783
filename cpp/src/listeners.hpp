// listeners.hpp - registration listeners (labyrinth_arena.h): engines that
// subscribe to a pool's arena, are asked before it is destroyed and told
// when it goes away.
//
// Invariants:
//   - Subscriptions live in one process-wide list, in subscription order,
//     guarded by one mutex that is never held while a callback runs: a
//     callback may call back into Labyrinth.
//   - A subscription handle is a number, never a pointer: it is never
//     dereferenced and never reused, so a stale, foreign or forged handle is
//     found missing instead of read.
//   - A pool being destroyed takes no new subscription; a pool with a
//     subscription whose region_added is running is not destroyed.
#pragma once

#include "pool.hpp"

namespace lab {

// labyrinth_pool_listen / labyrinth_pool_unlisten on a usable pool
// (boundary.hpp); every other argument is checked here. Refusals counted.
labyrinth_status pool_listen(Pool *p, const labyrinth_arena_listener *listener,
                             labyrinth_listener **out);
labyrinth_status pool_unlisten(Pool *p, labyrinth_listener *subscription);

// Destroy's part, in this order (pool_destroy):
//   begin_destroy  the pool is being destroyed: listen refused from now on.
//                  BUSY (counted, naming `what`) if it already is, or a
//                  region_added of it is running.
//   ask_listeners  destroy_requested of each, in subscription order; BUSY
//                  naming the first that refuses (the rest are not asked).
//   remove_listeners  region_removed of each, last subscribed first; each is
//                  forgotten before its call.
//   end_destroy    the destroy is over, done or refused.
labyrinth_status begin_destroy(Pool *p, const char *what);
labyrinth_status ask_listeners(Pool *p, const char *what);
void remove_listeners(Pool *p);
void end_destroy(Pool *p);

// In a forked child (process.cpp): a fresh, empty list and mutex.
void listeners_after_fork_child();

}  // namespace lab
