// versus.hpp - Labyrinth and DPDK's rte_mempool in one process, in
// alternating rounds (labyrinth_bench_versus). The driver's table compares
// separate processes, and on our VMs a whole process can land in a slow
// phase of the host (a sibling thread's load, by its look: Labyrinth's
// store-bound loops slow down by up to 1.8x in it, DPDK's latency-bound ones
// much less), so the table compares phases as much as allocators. Here each
// round times both on the same CPU a few milliseconds apart, and the ratio
// is taken inside the round.
//
// The loops are the bench's (bench_patterns.hpp: pair, burst of 256, order
// N with the same touches), each side compiled as the bench compiles it:
// Labyrinth with the project's flags, the flagship by name (inline common
// case), blocks freed with labyrinth_free_pages_order; DPDK with
// -march=native, as its headers want, through the per-lcore cache. With two
// CPUs or more, the cross-thread pattern too: one thread allocates (and, for
// Labyrinth, transfers) on the last CPU, the other frees on CPU 0, through
// the bench's SpscRing.
#pragma once

#include <cstdint>

namespace labbench {
class SpscRing;
}

namespace versus {

// Each returns false if an allocation or a free failed.
bool lab_pair(long n);
bool lab_burst(long n);  // n bursts of 256
bool lab_order(unsigned order, long n);
bool dpdk_pair(long n);
bool dpdk_burst(long n);
bool dpdk_order(unsigned order, long n);
// Cross: the calling thread allocates n pages, touches each and passes it
// through the ring (Labyrinth: transferred to owner `to` first); the other
// thread frees n pages from the ring.
bool lab_cross_alloc(labbench::SpscRing *ring, std::uint64_t to, long n);
bool lab_cross_free(labbench::SpscRing *ring, long n);
bool dpdk_cross_alloc(labbench::SpscRing *ring, long n);
bool dpdk_cross_free(labbench::SpscRing *ring, long n);
std::uint64_t lab_owner();  // labyrinth_owner_self() of the calling thread
// The pool (versus_labyrinth.cpp); false with a message on stderr.
bool lab_setup();
// Pool size, Labyrinth alone: the pair and burst loops on an unpinned 16 MiB
// pool (big = 0) and an unpinned 16 GiB one (big = 1), the performance
// issue's "cost independent of pool size" rows, timed in alternating rounds
// like the rest. lab_sizes_setup: false with a message (the section is then
// skipped).
bool lab_sizes_setup();
bool lab_sized_pair(int big, long n);
bool lab_sized_burst(int big, long n);  // n bursts of 256

}  // namespace versus
