// bench_mimalloc.cpp - mimalloc through its own API (mi_malloc_aligned /
// mi_free), in a process of its own (linking libmimalloc also replaces malloc).
#include <mimalloc.h>

#include "bench_patterns.hpp"

using namespace labbench;

namespace {

struct MimallocPolicy {
  static const char *thread_enter() { return nullptr; }
  static void thread_leave() {}
  LABBENCH_HOT static void *alloc() { return mi_malloc_aligned(4096, 4096); }
  LABBENCH_HOT static bool free(void *p) {
    mi_free(p);
    return true;
  }
  // Page-aligned blocks (Labyrinth's are size-aligned: a weaker demand here).
  LABBENCH_HOT static void *alloc_order(unsigned order) {
    return mi_malloc_aligned(std::size_t{4096} << order, 4096);
  }
  LABBENCH_HOT static bool free_order(void *p, unsigned) {
    mi_free(p);
    return true;
  }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return true; }
  static const char *last_error() { return "mi_malloc_aligned returned NULL"; }
};

}  // namespace

int main(int argc, char **argv) {
  benchmark::AddCustomContext("labbench_mimalloc_version", std::to_string(mi_version()));
  register_patterns<MimallocPolicy>("mimalloc");
  return run_main(argc, argv, "mimalloc");
}
