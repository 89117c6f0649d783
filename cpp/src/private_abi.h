/* private_abi.h - the private ABI of liblabyrinth.so.1 for its sibling
 * libraries of the same release (liblabyrinth_xdp.so.1): C entry points to
 * the internal calls of internal_api.hpp and boundary.hpp, exported in the
 * version node LABYRINTH_PRIVATE_1.0 (labyrinth.map, docs/abi.md). Not
 * installed; no compatibility promise across releases: a sibling library
 * is only ever used with the liblabyrinth.so.1 of its own release, since it
 * also reads the core's structures through inline helpers.
 * Each call has the contract of the internal call it names. */
#ifndef LABYRINTH_PRIVATE_ABI_H
#define LABYRINTH_PRIVATE_ABI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "labyrinth/labyrinth.h"

#ifdef __cplusplus
namespace lab {
struct Pool;
}
typedef lab::Pool lab_private_pool_impl;
extern "C" {
#else
typedef struct lab_private_pool_impl lab_private_pool_impl;
#endif

#define LAB_PRIVATE_API __attribute__((visibility("default")))

/* lab::page_begin_io, page_end_io, page_release_from_io. */
LAB_PRIVATE_API labyrinth_status lab_private_page_begin_io(labyrinth_pool *pool, void *page,
                                                           labyrinth_owner owner);
LAB_PRIVATE_API labyrinth_status lab_private_page_end_io(labyrinth_pool *pool, void *page,
                                                         labyrinth_owner new_owner);
LAB_PRIVATE_API labyrinth_status lab_private_page_release_from_io(labyrinth_pool *pool, void *page);
/* lab::pool_arena_base, pool_arena_size, pool_hold, pool_unhold. */
LAB_PRIVATE_API void *lab_private_pool_arena_base(const labyrinth_pool *pool);
LAB_PRIVATE_API size_t lab_private_pool_arena_size(const labyrinth_pool *pool);
LAB_PRIVATE_API void lab_private_pool_hold(labyrinth_pool *pool);
LAB_PRIVATE_API void lab_private_pool_unhold(labyrinth_pool *pool);
/* lab::fork_generation, refuse_unusable, check_struct_size. */
LAB_PRIVATE_API uint64_t lab_private_fork_generation(void);
LAB_PRIVATE_API labyrinth_status lab_private_refuse_unusable(const lab_private_pool_impl *p,
                                                             const char *what);
LAB_PRIVATE_API labyrinth_status lab_private_check_struct_size(size_t struct_size, size_t min,
                                                               const char *what, const char *name,
                                                               const char *how);
/* lab::set_error with a va_list (the same format subset); async-signal-safe. */
LAB_PRIVATE_API labyrinth_status lab_private_set_error_va(labyrinth_status status, const char *fmt,
                                                          va_list ap);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_PRIVATE_ABI_H */
