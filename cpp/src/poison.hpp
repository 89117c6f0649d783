// poison.hpp - LABYRINTH_POOL_POISON: a block that becomes free is filled
// with a pattern (0x6B) and the pool remembers its last owner, per page
// (Pool::poison_owner); a page about to be handed out must still hold the
// pattern, or it was written after it was freed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lab {

struct Pool;

// Fill a block that is becoming free and remember who had it last.
void poison_block(Pool *pool, std::size_t idx, std::size_t pages, std::uint64_t last_owner);

// Check a block about to be handed out. A page that no longer holds the
// pattern is reported on stderr (the page, its last owner, the first bad
// byte), then the process aborts. Async-signal-safe (write, abort).
void check_poison(Pool *pool, std::size_t idx, std::size_t pages);

}  // namespace lab
