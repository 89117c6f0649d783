// bench_malloc.cpp - aligned_alloc(4096) / free with a malloc that replaces
// glibc's (jemalloc, tcmalloc), linked into this process alone. The build
// names it with LABBENCH_PEER; run_main() checks at start-up that
// aligned_alloc really resolves to that library.
#include "bench_patterns.hpp"
#include "policies_system.hpp"

#ifndef LABBENCH_PEER
#error "define LABBENCH_PEER (the allocator's name)"
#endif
#define LABBENCH_NAME2(x) #x
#define LABBENCH_NAME(x) LABBENCH_NAME2(x)

using namespace labbench;

int main(int argc, char **argv) {
  register_patterns<MallocPolicy>(LABBENCH_NAME(LABBENCH_PEER));
  return run_main(argc, argv, LABBENCH_NAME(LABBENCH_PEER));
}
