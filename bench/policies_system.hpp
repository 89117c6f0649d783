// policies_system.hpp - allocator policies (see bench_patterns.hpp) for the
// process's malloc (glibc, or jemalloc / tcmalloc when linked in), per-page
// mmap/munmap, and a bare per-thread stack of page pointers (the limit: what
// any page cache costs at least).
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace labbench {

// aligned_alloc(4096, size) / free of whatever malloc the process has.
// Order-N blocks are page-aligned (not size-aligned as Labyrinth's are: a
// weaker demand, in the peer's favour).
struct MallocPolicy {
  static const char *thread_enter() { return nullptr; }
  static void thread_leave() {}
  LABBENCH_HOT static void *alloc() { return aligned_alloc(4096, 4096); }
  LABBENCH_HOT static bool free(void *p) {
    std::free(p);
    return true;
  }
  LABBENCH_HOT static void *alloc_order(unsigned order) {
    return aligned_alloc(4096, std::size_t{4096} << order);
  }
  LABBENCH_HOT static bool free_order(void *p, unsigned) {
    std::free(p);
    return true;
  }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return true; }
  static const char *last_error() { return "aligned_alloc returned NULL"; }
};

// One anonymous mapping per page (or block), unmapped on free: the kernel as
// the allocator. Every fresh page faults on its first touch.
struct MmapPolicy {
  static const char *thread_enter() { return nullptr; }
  static void thread_leave() {}
  static void *map(std::size_t bytes) {
    void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  LABBENCH_HOT static void *alloc() { return map(4096); }
  LABBENCH_HOT static bool free(void *p) { return munmap(p, 4096) == 0; }
  LABBENCH_HOT static void *alloc_order(unsigned order) { return map(std::size_t{4096} << order); }
  LABBENCH_HOT static bool free_order(void *p, unsigned order) {
    return munmap(p, std::size_t{4096} << order) == 0;
  }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return true; }
  static const char *last_error() { return std::strerror(errno); }
};

// A per-thread stack of pointers to pages mapped up front: pop to allocate,
// push to free, nothing else (no ownership, no accounting). It cannot hand a
// page to another thread, so it has no cross-thread row.
//
// kCountInMemory = false ("bare_stack"): plain fields, so the compiler keeps
// the count in a register across the benchmark loop; the lower bound of any
// pop/push, but no real allocator can do that, because its count must be in
// memory whenever a call, another function or a signal handler may look.
// kCountInMemory = true ("bare_stack_mem"): the count is read and written in
// memory on every pop and push (relaxed atomics: no fence, no locked
// instruction), so each operation waits for the previous one's store to be
// forwarded: the floor for a signal-safe per-thread cache on this CPU.
template <bool kCountInMemory>
struct BareStackT {
  static constexpr std::uint32_t kPages = 4096;  // per thread
  static constexpr unsigned kBlocksPerOrder = 4;
  struct Stack {
    void **slots = nullptr;
    std::uint32_t n = 0, cap = 0;
  };
  struct Thread {
    Stack pages;
    Stack orders[11];
    void *region = nullptr;
    std::size_t region_bytes = 0;
  };
  static Thread &t() {
    static thread_local Thread th;
    return th;
  }
  static std::uint32_t get(const std::uint32_t &n) {
    return kCountInMemory ? __atomic_load_n(&n, __ATOMIC_RELAXED) : n;
  }
  static void set(std::uint32_t &n, std::uint32_t v) {
    if (kCountInMemory) __atomic_store_n(&n, v, __ATOMIC_RELAXED);
    else n = v;
  }
  static const char *thread_enter() {
    Thread &th = t();
    if (th.region) return nullptr;
    // One region: kPages pages, then kBlocksPerOrder blocks of each order 2..10.
    std::size_t bytes = std::size_t{kPages} * 4096;
    for (unsigned o = 2; o <= 10; ++o) bytes += kBlocksPerOrder * (std::size_t{4096} << o);
    void *r = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (r == MAP_FAILED) return "mmap of the bare stack's pages failed";
    th.region = r;
    th.region_bytes = bytes;
    char *c = static_cast<char *>(r);
    th.pages.slots = new void *[kPages];
    th.pages.cap = kPages;
    for (std::uint32_t i = 0; i < kPages; ++i) th.pages.slots[th.pages.n++] = c + std::size_t{i} * 4096;
    c += std::size_t{kPages} * 4096;
    for (unsigned o = 2; o <= 10; ++o) {
      Stack &s = th.orders[o];
      s.slots = new void *[kBlocksPerOrder];
      s.cap = kBlocksPerOrder;
      for (unsigned i = 0; i < kBlocksPerOrder; ++i) {
        s.slots[s.n++] = c;
        c += std::size_t{4096} << o;
      }
    }
    return nullptr;
  }
  static void thread_leave() {
    Thread &th = t();
    if (!th.region) return;
    munmap(th.region, th.region_bytes);
    delete[] th.pages.slots;
    for (unsigned o = 2; o <= 10; ++o) delete[] th.orders[o].slots;
    th = Thread{};
  }
  static void *pop(Stack &s) {
    const std::uint32_t n = get(s.n);
    if (__builtin_expect(n == 0, 0)) return nullptr;
    set(s.n, n - 1);
    return s.slots[n - 1];
  }
  static bool push(Stack &s, void *p) {
    const std::uint32_t n = get(s.n);
    if (__builtin_expect(n == s.cap, 0)) return false;
    s.slots[n] = p;
    set(s.n, n + 1);
    return true;
  }
  LABBENCH_HOT static void *alloc() { return pop(t().pages); }
  LABBENCH_HOT static bool free(void *p) { return push(t().pages, p); }
  LABBENCH_HOT static void *alloc_order(unsigned order) { return pop(t().orders[order]); }
  LABBENCH_HOT static bool free_order(void *p, unsigned order) { return push(t().orders[order], p); }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return false; }
  static const char *last_error() { return "the bare stack is empty or full"; }
};
using BareStackPolicy = BareStackT<false>;
using BareStackMemPolicy = BareStackT<true>;

// Not an allocator: "allocates" one fixed page and "frees" nothing. Run
// through the cross-thread pattern it measures what the queue and the two
// threads cost by themselves, the floor under every allocator's cross row.
struct QueueOnlyPolicy {
  alignas(4096) static inline char page[4096];
  static const char *thread_enter() { return nullptr; }
  static void thread_leave() {}
  LABBENCH_HOT static void *alloc() { return page; }
  static bool free(void *) { return true; }
  static void *alloc_order(unsigned) { return nullptr; }
  static bool free_order(void *, unsigned) { return false; }
  static std::uint64_t receiver_token() { return 0; }
  static bool hand_over(void *, std::uint64_t) { return true; }
  static const char *last_error() { return "no error"; }
};

}  // namespace labbench
