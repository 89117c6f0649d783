// private_abi.cpp - the LABYRINTH_PRIVATE_1.0 entry points (private_abi.h):
// each forwards to the internal call it names.
#include "private_abi.h"

#include "boundary.hpp"
#include "common.hpp"
#include "internal_api.hpp"
#include "process.hpp"

extern "C" {

labyrinth_status lab_private_page_begin_io(labyrinth_pool *pool, void *page, labyrinth_owner owner) {
  return lab::page_begin_io(pool, page, owner);
}
labyrinth_status lab_private_page_end_io(labyrinth_pool *pool, void *page, labyrinth_owner new_owner) {
  return lab::page_end_io(pool, page, new_owner);
}
labyrinth_status lab_private_page_release_from_io(labyrinth_pool *pool, void *page) {
  return lab::page_release_from_io(pool, page);
}
void *lab_private_pool_arena_base(const labyrinth_pool *pool) { return lab::pool_arena_base(pool); }
size_t lab_private_pool_arena_size(const labyrinth_pool *pool) { return lab::pool_arena_size(pool); }
void lab_private_pool_hold(labyrinth_pool *pool) { lab::pool_hold(pool); }
void lab_private_pool_unhold(labyrinth_pool *pool) { lab::pool_unhold(pool); }
uint64_t lab_private_fork_generation(void) { return lab::fork_generation(); }
labyrinth_status lab_private_refuse_unusable(const lab::Pool *p, const char *what) {
  return lab::refuse_unusable(p, what);
}
labyrinth_status lab_private_check_struct_size(size_t struct_size, size_t min, const char *what,
                                               const char *name, const char *how) {
  return lab::check_struct_size(struct_size, min, what, name, how);
}
labyrinth_status lab_private_set_error_va(labyrinth_status status, const char *fmt, va_list ap) {
  char message[lab::kMessageBytes];
  lab::format_message(message, sizeof message, fmt, ap);
  return lab::set_error(status, "%s", message);
}

}  // extern "C"
