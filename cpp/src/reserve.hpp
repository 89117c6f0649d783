// reserve.hpp - the atomic reserve: order-0 pages that only ATOMIC callers
// take, when their thread cache, the depot and the buddy allocator have
// nothing (a lock-free Depot of its own, Pool::reserve, state RESERVE).
// Frees top it up before anything else; watermarks (Pool::wm_min, wm_low,
// wm_high) keep non-ATOMIC callers away from the last pages (waiters.hpp).
//
// Its place: a fresh pool takes its reserve as the first `target` pages of one block of
// order reserve_order() (the rest of the block goes back), from the smallest
// block the buddy allocator has; trim renews it to a place of the same kind
// (renew_reserve), so that a pool with every page free has exactly a
// fresh pool's blocks. Only a reserve larger than the largest block is taken
// page by page.
#pragma once

#include <cstddef>
#include <vector>

namespace lab {

struct Pool;

// Take the reserve into an empty reserve as a fresh pool does. May block.
void fill_reserve(Pool *pool);

// Renew the atomic reserve so that a pool with every page free
// has exactly a fresh pool's blocks. The new reserve is taken while the old
// one is still in place and swapped in at once (one CAS), so ATOMIC callers
// never find the reserve empty meanwhile; the old one then goes back to the
// buddy allocator. The new one must sit where a fresh pool's would: the
// start of a block of the reserve's order, inside a maximal block of the
// same order as a fresh pool's. When it cannot yet (the old reserve's pages
// are in the way), it is taken from the largest blocks there are and the
// swap is done again, up to three times: with the old pages gone, the right
// place is usually free. If it still is not, and every page of the pool is
// free (so no caller can be wanting the reserve), the old reserve goes back
// first and the new one is taken as a fresh pool takes it.
//
// Without any zone's mutex held for longer than one block: ATOMIC callers
// are never kept out of every zone at once (zones_test).
// `scratch` has room for the reserve's page numbers. May block.
void renew_reserve(Pool *pool, std::vector<std::size_t> &scratch);

// One page from the reserve (counted in reserve_uses). Lock-free,
// async-signal-safe.
bool take_reserve(Pool *pool, std::size_t *idx);

}  // namespace lab
