// process.hpp - what the process has once: owner ids, thread lifetime, the
// registry of pools, and fork detection.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "common.hpp"

namespace lab {

struct Pool;

// Owner ids ever issued are 1..owners_issued(). Async-signal-safe.
std::uint64_t owners_issued();

// Make sure this thread's exit hook is registered (returns its caches and
// records the owner as exited). Async-signal-safe (glibc keeps the first 32
// thread-specific keys in the thread descriptor: no allocation).
void ensure_exit_hook();

// The registry: every live pool, guarded by registry_mutex(). Thread exit and
// pool destroy both take it, so a thread never drains into a dying pool.
std::mutex &registry_mutex();
std::vector<Pool *> &registry_pools();  // call with registry_mutex() held

// Owners whose thread has exited, sorted (registry_mutex() held).
const std::vector<std::uint64_t> &exited_owners();

// Bumped in the child at every fork(); pools remember the value they were
// created under and refuse to work in a forked child.
std::uint64_t fork_generation();


}  // namespace lab
