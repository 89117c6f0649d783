// labyrinth.hpp - a thin C++17 layer over the Labyrinth C ABI.
//
//   labyrinth::Pool pool(labyrinth::PoolOptions{}.size(64 << 20));
//   labyrinth::Page page = pool.alloc_page();      // atomic, exclusive
//   if (!page) { /* page.status() and labyrinth::last_error() say why */ }
//   std::memcpy(page.data(), src, 100);
//   // freed when `page` goes out of scope; page.release() gives up ownership.
//
// Errors: calls that construct things throw labyrinth::Error (a
// std::runtime_error carrying the status and the C message); the hot calls
// (alloc_page, Page destructor) never throw and report through return values.
//
// Lifetimes: a Page must not outlive its Pool. If it does, the mistake is
// loud and harmless: ~Pool (and a move-assignment over a Pool) destroys the
// pool only when no block of it is live; otherwise it writes a line to
// stderr naming the live pages and keeps the pool (a leak, for the life of
// the process), so that every Page still holding a block of it stays valid
// and frees it normally. Pool::destroy() refuses instead (throws BUSY), and
// Pool::destroy_force() destroys all the same (every block then dangles;
// freeing one afterwards is refused with INVALID: "not a live pool").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "labyrinth/labyrinth.h"

namespace labyrinth {

/// An error from the C ABI: its status and the thread's message.
class Error : public std::runtime_error {
 public:
  explicit Error(labyrinth_status status)
      : std::runtime_error(std::string(labyrinth_status_name(status)) + ": " +
                           labyrinth_last_error_message()),
        status_(status) {}
  labyrinth_status status() const noexcept { return status_; }

 private:
  labyrinth_status status_;
};

/// The calling thread's last failure (labyrinth_last_status() and its
/// message) as an Error, to read or to throw.
inline Error last_error() { return Error(labyrinth_last_status()); }

/// Throws Error unless status is LABYRINTH_OK.
inline void check(labyrinth_status status) {
  if (status != LABYRINTH_OK) throw Error(status);
}

/// Builder over labyrinth_pool_options, defaults from labyrinth_pool_options_init.
class PoolOptions {
 public:
  PoolOptions() noexcept { labyrinth_pool_options_init(&opts_); }
  PoolOptions &size(std::size_t bytes) noexcept { opts_.size_bytes = bytes; return *this; }
  PoolOptions &atomic_reserve(std::size_t pages) noexcept { opts_.atomic_reserve_pages = pages; return *this; }
  PoolOptions &flags(std::uint32_t f) noexcept { opts_.flags = f; return *this; }
  /// How the arena is pinned: kBestEffort (the default) pins when the
  /// memlock limit allows and otherwise runs unpinned with one warning;
  /// kStrict pins or the pool is not created; kOff never pins.
  enum class Pin { kOff, kStrict, kBestEffort };
  PoolOptions &pin(Pin mode) noexcept {
    set_flag(LABYRINTH_POOL_PIN, mode == Pin::kStrict);
    return set_flag(LABYRINTH_POOL_PIN_BEST_EFFORT, mode == Pin::kBestEffort);
  }
  /// pin(true): strict pinning; pin(false): never pin.
  PoolOptions &pin(bool strict) noexcept { return pin(strict ? Pin::kStrict : Pin::kOff); }
  PoolOptions &scrub(bool on) noexcept { return set_flag(LABYRINTH_POOL_SCRUB, on); }
  /// Let allocations without ATOMIC that would fail take back idle threads'
  /// cached pages (default on; LABYRINTH_POOL_NO_RECLAIM when off).
  PoolOptions &reclaim(bool on) noexcept { return set_flag(LABYRINTH_POOL_NO_RECLAIM, !on); }
  PoolOptions &numa_node(int node) noexcept { opts_.numa_node = node; return *this; }
  /// Bring your own arena (labyrinth_arena.h): `provider` is borrowed until
  /// the Pool is constructed (the pool copies it), its name and ctx until
  /// the pool is destroyed.
  PoolOptions &arena_provider(const labyrinth_arena_provider &provider) noexcept {
    opts_.arena_provider = &provider;
    return *this;
  }
  const labyrinth_pool_options &c() const noexcept { return opts_; }
  labyrinth_pool_options &c() noexcept { return opts_; }

 private:
  PoolOptions &set_flag(std::uint32_t f, bool on) noexcept {
    opts_.flags = on ? (opts_.flags | f) : (opts_.flags & ~f);
    return *this;
  }
  labyrinth_pool_options opts_;
};

/// One allocated block, owned by this handle: freed on destruction.
/// Move-only. An empty Page (allocation failed) converts to false, and its
/// status() says why.
class Page {
 public:
  /// Order of a block adopted without saying it.
  static constexpr unsigned kUnknownOrder = ~0u;

  Page() noexcept = default;
  /// Adopt a block the caller owns. With its order, freeing checks it and
  /// takes the faster labyrinth_free_pages_order().
  Page(labyrinth_pool *pool, void *ptr, unsigned order = kUnknownOrder) noexcept
      : pool_(pool), ptr_(ptr), order_(order) {}
  /// The result of an allocation: empty (ptr NULL) records the thread's
  /// last status, the reason the allocation failed.
  static Page allocated(labyrinth_pool *pool, void *ptr, unsigned order) noexcept {
    Page page(pool, ptr, order);
    if (!ptr) page.status_ = labyrinth_last_status();
    return page;
  }
  Page(Page &&o) noexcept
      : pool_(o.pool_), ptr_(std::exchange(o.ptr_, nullptr)), order_(o.order_), status_(o.status_) {}
  Page &operator=(Page &&o) noexcept {
    if (this != &o) {
      reset();
      pool_ = o.pool_;
      ptr_ = std::exchange(o.ptr_, nullptr);
      order_ = o.order_;
      status_ = o.status_;
    }
    return *this;
  }
  Page(const Page &) = delete;
  Page &operator=(const Page &) = delete;
  /// Frees the block. If the free is refused (e.g. BUSY, NOT_OWNER), the block
  /// stays allocated and labyrinth_last_status() says why; call free() to see it.
  ~Page() { reset(); }

  explicit operator bool() const noexcept { return ptr_ != nullptr; }
  void *data() const noexcept { return ptr_; }
  std::byte *bytes() const noexcept { return static_cast<std::byte *>(ptr_); }
  labyrinth_pool *pool() const noexcept { return pool_; }
  /// The block's order, or kUnknownOrder if it was adopted without one.
  unsigned order() const noexcept { return order_; }
  /// Why this Page is empty: the status of the allocation that failed
  /// (the message is labyrinth::last_error() until the thread's next failure).
  /// LABYRINTH_OK for a Page that got a block (also once freed or moved from).
  labyrinth_status status() const noexcept { return status_; }

  /// Free now; throws Error (and keeps the block) if the pool refuses.
  void free() {
    if (!ptr_) return;
    check(free_now());
    ptr_ = nullptr;
  }
  /// Give up ownership without freeing; returns the raw pointer.
  void *release() noexcept { return std::exchange(ptr_, nullptr); }
  /// Hand the block to another owner; this handle becomes empty on success.
  void transfer(labyrinth_owner to) {
    check(labyrinth_page_transfer(pool_, ptr_, to));
    ptr_ = nullptr;
  }

 private:
  labyrinth_status free_now() noexcept {
    return order_ == kUnknownOrder ? labyrinth_free_pages(pool_, ptr_)
                                   : labyrinth_free_pages_order(pool_, ptr_, order_);
  }
  void reset() noexcept {
    if (ptr_) free_now();
    ptr_ = nullptr;
  }
  labyrinth_pool *pool_ = nullptr;
  void *ptr_ = nullptr;
  unsigned order_ = kUnknownOrder;
  labyrinth_status status_ = LABYRINTH_OK;
};

/// A pool, destroyed with the object when none of its blocks is live (see
/// "Lifetimes" above). Move-only.
class Pool {
 public:
  explicit Pool(const PoolOptions &opts) { check(labyrinth_pool_create(&opts.c(), &pool_)); }
  explicit Pool(std::size_t size_bytes) : Pool(PoolOptions().size(size_bytes)) {}
  Pool(Pool &&o) noexcept : pool_(std::exchange(o.pool_, nullptr)) {}
  Pool &operator=(Pool &&o) noexcept {
    if (this != &o) {
      release_or_keep(pool_);
      pool_ = std::exchange(o.pool_, nullptr);
    }
    return *this;
  }
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;
  /// Destroys the pool; with blocks still live, says so on stderr and keeps it.
  ~Pool() { release_or_keep(pool_); }

  labyrinth_pool *get() const noexcept { return pool_; }

  /// The flagship: atomic, exclusive, one page. Empty Page on failure.
  Page alloc_page() noexcept {
    return Page::allocated(pool_, labyrinth_void_alloc_page_gfp_atomic_exclusive(pool_), 0);
  }
  /// General allocation; throws Error on failure.
  Page alloc(unsigned order, labyrinth_gfp gfp, std::uint32_t timeout_ms = 0) {
    void *p = nullptr;
    check(labyrinth_alloc_pages(pool_, order, gfp, timeout_ms, &p));
    return Page(pool_, p, order);
  }
  labyrinth_stats stats() const {
    labyrinth_stats s{};
    s.struct_size = sizeof s;
    check(labyrinth_pool_stats(pool_, &s));
    return s;
  }
  void trim() { check(labyrinth_pool_trim(pool_)); }
  /// Destroy now; throws Error(BUSY) and keeps the pool if blocks are live.
  void destroy() {
    if (!pool_) return;
    check(labyrinth_pool_destroy(pool_));
    pool_ = nullptr;
  }
  /// Destroy now even with live blocks (LABYRINTH_DESTROY_FORCE): every
  /// Page of it then dangles, and freeing it is refused (INVALID). Throws
  /// Error(BUSY) and keeps the pool while the kernel holds a page.
  void destroy_force() {
    if (!pool_) return;
    check(labyrinth_pool_destroy_ex(pool_, LABYRINTH_DESTROY_FORCE));
    pool_ = nullptr;
  }

 private:
  // Destroy `pool`; if that is refused as BUSY (live blocks, io_uring), tell
  // stderr and keep it, so that the blocks stay valid. The other refusal, in
  // a forked child for the parent's pool, needs no word: that pool is not
  // this process's to destroy.
  static void release_or_keep(labyrinth_pool *pool) noexcept {
    if (!pool || labyrinth_pool_destroy(pool) != LABYRINTH_ERR_BUSY) return;
    std::fprintf(stderr,
                 "labyrinth::Pool: destroyed while in use (%s); the pool is kept until the "
                 "process exits so that its pages stay valid\n",
                 labyrinth_last_error_message());
  }
  labyrinth_pool *pool_ = nullptr;
};

/// A registration listener's subscription to a pool's arena
/// (labyrinth_pool_listen), ended when the object goes (labyrinth_pool_unlisten:
/// region_removed is called). Move-only. It must not outlive its Pool's
/// destroy: the destroy ends it (region_removed), and the later unlisten is
/// refused harmlessly. Construction throws Error (SYSTEM when region_added
/// refuses, INVALID for a bad listener, BUSY while the pool is being destroyed).
class Subscription {
 public:
  Subscription(const Pool &pool, const labyrinth_arena_listener &listener) : pool_(pool.get()) {
    check(labyrinth_pool_listen(pool_, &listener, &sub_));
  }
  Subscription(Subscription &&o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), sub_(std::exchange(o.sub_, nullptr)) {}
  Subscription &operator=(Subscription &&o) noexcept {
    if (this != &o) {
      if (sub_) labyrinth_pool_unlisten(pool_, sub_);
      pool_ = std::exchange(o.pool_, nullptr);
      sub_ = std::exchange(o.sub_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription &) = delete;
  Subscription &operator=(const Subscription &) = delete;
  ~Subscription() {
    if (sub_) labyrinth_pool_unlisten(pool_, sub_);
  }
  /// End it now; throws Error (INVALID) if it has already ended (the pool's destroy).
  void end() {
    if (!sub_) return;
    labyrinth_listener *s = std::exchange(sub_, nullptr);
    check(labyrinth_pool_unlisten(pool_, s));
  }
  labyrinth_listener *get() const noexcept { return sub_; }

 private:
  labyrinth_pool *pool_ = nullptr;
  labyrinth_listener *sub_ = nullptr;
};

/// The calling thread's owner id.
inline labyrinth_owner owner_self() noexcept { return labyrinth_owner_self(); }

}  // namespace labyrinth
