// side_table.hpp - the ownership table: one 64-bit word per page of the
// arena, outside the pages. It says what each page is (free in the buddy,
// cached, allocated and by whom, in flight in the kernel, ...), and it holds
// the free-list links, so nothing the allocator needs lives inside a page:
// the only thing it writes there is a free chain's magazine (depot.hpp), a
// copy of the links, believed only when the chain's first word is MAGAZINE.
//
// Word layout (bit 0 = least significant):
//   bits 0-3   state (State below)
//   ALLOC / INFLIGHT (first page of an allocated block):
//     bits 4-7   order of the block
//     bit  8     exclusive
//     bits 16-63 owner id (48 bits; 0 for a non-exclusive block)
//   BUDDY (first page of a free block in the buddy allocator):
//     bits 4-7   order
//     bits 8-35  previous free block of that order (page index, 28 bits)
//     bits 36-63 next free block of that order
//   DEPOT / MAGAZINE / RESERVE (order-0 page on a lock-free list):
//     bits 4-33  next page of the same chain (30 bits)
//     bits 34-63 first page of the next chain (chain heads only)
//   CACHED (order-cache block: bits 4-7 order), TAKEN, UNUSED: nothing else.
// Only the first page of a block has a word of its own. Every other page of a
// block, free in the buddy allocator, in an order cache or allocated, is
// UNUSED: allocating or freeing a block writes its first word (and, when the
// buddy allocator splits or merges, one or two words per order), never one
// per page, so its cost does not grow with its size. A pointer inside a block
// is classified from the at most kMaxOrder aligned first pages below it
// (classify, ownership.cpp). An UNUSED word is never an owner's word, so the
// inline free and transfer (labyrinth.h) leave such a pointer to the library.
// Tests: tests/cpp/interior_test.cpp.
// An order-0 page in a thread cache is CACHED, or keeps the DEPOT or
// MAGAZINE word it had in the depot when a refill took it from there (a
// refill does not rewrite the words it takes: depot.hpp): either way,
// not an owner's word, so freeing or handing on such a page is refused.
// An all-ones link field means "none". Page indexes are therefore below
// 2^28 - 1: arenas up to 1 TiB.
#pragma once

#include <cstdint>

namespace lab::side {

enum State : std::uint64_t {
  UNUSED = 0,    // inside a block (free, cached or allocated), not its first page
  BUDDY = 1,     // first page of a free buddy block
  ALLOC = 2,     // first page of an allocated block
  TAKEN = 3,     // first page of a block taken from the buddy allocator, not yet labelled
  CACHED = 4,    // free block in a thread cache (order 0) or order cache (bits 4-7: order)
  DEPOT = 5,     // order-0 page in the depot
  RESERVE = 6,   // order-0 page in the atomic reserve
  INFLIGHT = 7,  // allocated block the kernel holds (io_uring)
  MAGAZINE = 8,  // first page of a chain in the depot that holds its magazine
};

constexpr std::uint64_t kStateMask = 0xF;
constexpr std::uint64_t kExclusive = 1u << 8;
constexpr unsigned kOwnerShift = 16;
// "None" in a link field (all ones), and the field's mask: no block in a
// buddy free-list link (28 bits), no page in a chain link (30 bits).
constexpr std::uint64_t kNoBlock = (1u << 28) - 1;
constexpr std::uint64_t kNoPage = (1u << 30) - 1;
constexpr std::uint64_t kMaxPages = kNoBlock;  // page indexes stay below both

inline State state(std::uint64_t w) { return static_cast<State>(w & kStateMask); }
inline unsigned order(std::uint64_t w) { return static_cast<unsigned>((w >> 4) & 0xF); }

// Allocated blocks.
inline std::uint64_t alloc_word(unsigned ord, bool exclusive, std::uint64_t owner) {
  return ALLOC | (std::uint64_t{ord} << 4) | (exclusive ? kExclusive : 0) |
         (exclusive ? owner << kOwnerShift : 0);
}
inline bool exclusive(std::uint64_t w) { return (w & kExclusive) != 0; }
inline std::uint64_t owner(std::uint64_t w) { return w >> kOwnerShift; }
inline std::uint64_t with_state(std::uint64_t w, State s) { return (w & ~kStateMask) | s; }
inline std::uint64_t with_owner(std::uint64_t w, std::uint64_t new_owner) {
  return (w & ((std::uint64_t{1} << kOwnerShift) - 1)) | (new_owner << kOwnerShift);
}

// Buddy free-list nodes.
inline std::uint64_t buddy_word(unsigned ord, std::uint64_t prev, std::uint64_t next) {
  return BUDDY | (std::uint64_t{ord} << 4) | (prev << 8) | (next << 36);
}
inline std::uint64_t buddy_prev(std::uint64_t w) { return (w >> 8) & kNoBlock; }
inline std::uint64_t buddy_next(std::uint64_t w) { return (w >> 36) & kNoBlock; }

// Lock-free chain nodes.
inline std::uint64_t chain_word(State s, std::uint64_t next_page, std::uint64_t next_chain) {
  return s | (next_page << 4) | (next_chain << 34);
}
inline std::uint64_t chain_next_page(std::uint64_t w) { return (w >> 4) & kNoPage; }
inline std::uint64_t chain_next_chain(std::uint64_t w) { return (w >> 34) & kNoPage; }

}  // namespace lab::side
