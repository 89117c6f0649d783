// bench_system.cpp - glibc aligned_alloc(4096), per-page mmap/munmap and the
// bare per-thread pointer stack, all in one process (none replaces malloc);
// and the cross-thread queue alone (queue_only), the floor of that pattern.
#include "bench_patterns.hpp"
#include "policies_system.hpp"

using namespace labbench;

int main(int argc, char **argv) {
  register_patterns<MallocPolicy>("glibc");
  register_patterns<MmapPolicy>("mmap");
  Patterns bare;
  bare.cross = false;  // a per-thread stack cannot hand pages across threads
  register_patterns<BareStackPolicy>("bare_stack", bare);
  bare.tail = false;
  register_patterns<BareStackMemPolicy>("bare_stack_mem", bare);
  register_patterns<QueueOnlyPolicy>("queue_only", Patterns{false, false, false, true, false});
  return run_main(argc, argv, "glibc,mmap,bare_stack,bare_stack_mem,queue_only");
}
