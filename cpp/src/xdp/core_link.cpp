// core_link.cpp - in liblabyrinth_xdp.so only: the core's internal calls
// that the AF_XDP code makes, each forwarding to its LABYRINTH_PRIVATE_1.0
// entry point in liblabyrinth.so (private_abi.h), so that the one copy of
// the core in the process serves both libraries. The static
// liblabyrinth_xdp.a leaves these to liblabyrinth.a, which defines them.
#include <cstdarg>

#include "boundary.hpp"
#include "common.hpp"
#include "internal_api.hpp"
#include "private_abi.h"
#include "process.hpp"

namespace lab {

labyrinth_status page_begin_io(labyrinth_pool *pool, void *page, labyrinth_owner owner) {
  return lab_private_page_begin_io(pool, page, owner);
}
labyrinth_status page_end_io(labyrinth_pool *pool, void *page, labyrinth_owner new_owner) {
  return lab_private_page_end_io(pool, page, new_owner);
}
labyrinth_status page_release_from_io(labyrinth_pool *pool, void *page) {
  return lab_private_page_release_from_io(pool, page);
}
void *pool_arena_base(const labyrinth_pool *pool) { return lab_private_pool_arena_base(pool); }
std::size_t pool_arena_size(const labyrinth_pool *pool) { return lab_private_pool_arena_size(pool); }
void pool_hold(labyrinth_pool *pool) { lab_private_pool_hold(pool); }
void pool_unhold(labyrinth_pool *pool) { lab_private_pool_unhold(pool); }
std::uint64_t fork_generation() { return lab_private_fork_generation(); }
labyrinth_status refuse_unusable(const Pool *p, const char *what) {
  return lab_private_refuse_unusable(p, what);
}
labyrinth_status check_struct_size(std::size_t struct_size, std::size_t min, const char *what,
                                   const char *name, const char *how) {
  return lab_private_check_struct_size(struct_size, min, what, name, how);
}
labyrinth_status set_error(labyrinth_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  labyrinth_status st = lab_private_set_error_va(status, fmt, ap);
  va_end(ap);
  return st;
}

}  // namespace lab
