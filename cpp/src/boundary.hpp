// boundary.hpp - the C boundary: how every exported call enters the library.
// One helper for each thing every call needs:
//   usable_pool   the Pool behind a handle, if this process may use it: not
//                 NULL, live (not destroyed) and created in this process (not
//                 the parent's pool in a forked child). Refused with INVALID
//                 and a message otherwise.
//   refuse        a failed call: its status and message for this thread,
//                 counted in the pool's failures[] ("failed calls by status").
//   guarded       no exception crosses into C: bad_alloc becomes NOMEM, any
//                 other one SYSTEM, each with a message naming the call.
//   check_struct_size, copy_in, copy_out
//                 versioned structs (struct_size first): the library reads
//                 and writes only the fields the caller's struct covers.
//
// Handles: a Pool object is never freed. Destroying a pool releases what it
// holds (arena, side table, caches) and leaves the object as a tombstone
// (Pool::destroyed), readable for the life of the process, so that a call on
// a destroyed handle is refused instead of reading freed memory, and no
// later pool is ever created at its address. The check is two loads, no
// lock: async-signal-safe, fit for the ATOMIC calls. Calls made while
// another thread destroys the same pool remain undefined (labyrinth.h).
// Tests: tests/cpp/lifetime_test.cpp (every call, destroyed and forked).
#pragma once

#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <utility>

#include "pool.hpp"

namespace lab {

// Why a handle is not usable here, as a status and message naming `what`;
// counts nothing (the pool's counters belong to the parent or are gone).
labyrinth_status refuse_unusable(const Pool *p, const char *what);

// OK with *out the Pool behind `handle` if this process may use it, else
// INVALID with the thread's message set (*out nullptr). Never blocks;
// async-signal-safe.
inline labyrinth_status usable_pool(const labyrinth_pool *handle, const char *what, Pool **out) {
  Pool *p = const_cast<Pool *>(from_handle(handle));
  if (LAB_UNLIKELY(!p || p->destroyed.load(std::memory_order_acquire) || p->forked())) {
    *out = nullptr;
    return refuse_unusable(p, what);
  }
  *out = p;
  return LABYRINTH_OK;
}

// usable_pool for callers that need no Pool (io_uring support): OK, or
// INVALID with the thread's message set.
labyrinth_status pool_usable(const labyrinth_pool *handle, const char *what);

// A refusal by a usable pool: counted in its failures[], then the status
// and message for this thread (the set_error format subset). Returns status.
template <typename... Args>
labyrinth_status refuse(Pool *p, labyrinth_status status, const char *fmt, Args... args) {
  return set_error(p->fail(status), fmt, args...);
}

// Count the failure `status` of a usable pool's call whose inner code does
// not count its own refusals. Returns status.
inline labyrinth_status counted(Pool *p, labyrinth_status status) {
  return status == LABYRINTH_OK ? status : p->fail(status);
}

// Run body() (which returns a labyrinth_status) so that no exception leaves
// it. Exceptions come from std containers only, never from an ATOMIC path.
template <typename Body>
labyrinth_status guarded(const char *what, Body &&body) noexcept {
  try {
    return std::forward<Body>(body)();
  } catch (const std::bad_alloc &) {
    return set_error(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);
  } catch (...) {
    return set_error(LABYRINTH_ERR_SYSTEM, "%s: internal error (exception caught at the C boundary)",
                     what);
  }
}

// The largest struct_size accepted: a sanity bound against garbage.
constexpr std::size_t kMaxStructSize = std::size_t{1} << 16;

// Check a caller's struct_size: at least `min` (the fields of the struct's
// first version) and at most kMaxStructSize. `name` is the argument
// ("opts", "out"), `how` says how to set it ("call labyrinth_pool_options_init
// first"). INVALID with a message otherwise.
labyrinth_status check_struct_size(std::size_t struct_size, std::size_t min, const char *what,
                                   const char *name, const char *how);

// Copy in: over *full (already holding the defaults), the fields the
// caller's struct covers; full->struct_size stays sizeof(T). The caller's
// struct_size must have passed check_struct_size.
template <typename T>
void copy_in(const T *caller, T *full) {
  const std::size_t n = caller->struct_size < sizeof(T) ? caller->struct_size : sizeof(T);
  std::memcpy(reinterpret_cast<char *>(full) + sizeof(std::size_t),
              reinterpret_cast<const char *>(caller) + sizeof(std::size_t), n - sizeof(std::size_t));
}

// Copy out: the fields of `full` that the caller's struct covers; the
// caller's struct_size stays theirs. The caller's struct_size must have
// passed check_struct_size.
template <typename T>
void copy_out(const T &full, T *caller) {
  const std::size_t n = caller->struct_size < sizeof(T) ? caller->struct_size : sizeof(T);
  std::memcpy(reinterpret_cast<char *>(caller) + sizeof(std::size_t),
              reinterpret_cast<const char *>(&full) + sizeof(std::size_t), n - sizeof(std::size_t));
}

// Destroying a pool (pool_destroy) ends with this: the Pool joins the
// tombstones, which stay reachable (leak checkers see no leak).
void retire_pool(Pool *p);

}  // namespace lab
