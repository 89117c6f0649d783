// boundary.cpp - the out-of-line parts of the C boundary (boundary.hpp):
// refusing handles this process may not use, struct_size checks, and the
// tombstones of destroyed pools.
#include "boundary.hpp"

#include <atomic>

namespace lab {

labyrinth_status refuse_unusable(const Pool *p, const char *what) {
  if (!p) return set_error(LABYRINTH_ERR_INVALID, "%s: pool is NULL", what);
  if (p->destroyed.load(std::memory_order_acquire))
    return set_error(LABYRINTH_ERR_INVALID, "%s: %p is not a live pool (already destroyed?)", what,
                     static_cast<const void *>(p));
  return set_error(LABYRINTH_ERR_INVALID,
                   "%s: the pool belongs to the parent process; it cannot be used after fork()",
                   what);
}

labyrinth_status pool_usable(const labyrinth_pool *handle, const char *what) {
  Pool *p;
  return usable_pool(handle, what, &p);
}

labyrinth_status check_struct_size(std::size_t struct_size, std::size_t min, const char *what,
                                   const char *name, const char *how) {
  if (struct_size >= min && struct_size <= kMaxStructSize) return LABYRINTH_OK;
  return set_error(LABYRINTH_ERR_INVALID, "%s: %s->struct_size is %zu; it must be %zu..%zu (%s)",
                   what, name, struct_size, min, kMaxStructSize, how);
}

namespace {
// Every destroyed pool, linked through Pool::next_tombstone; a global, so
// that the tombstones stay reachable.
std::atomic<Pool *> g_tombstones{nullptr};
}  // namespace

void retire_pool(Pool *p) {
  p->destroyed.store(true, std::memory_order_release);
  Pool *head = g_tombstones.load(std::memory_order_relaxed);
  do p->next_tombstone = head;
  while (!g_tombstones.compare_exchange_weak(head, p, std::memory_order_release,
                                             std::memory_order_relaxed));
}

}  // namespace lab
