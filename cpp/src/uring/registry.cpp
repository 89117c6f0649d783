// registry.cpp - which rings the process's pools are registered with as
// io_uring fixed buffers (the application's rings and managed ones), how
// much of it the kernel pins, and the page -> buffer index map.
//
// The arena is split into as few fixed buffers as the kernel allows: pieces
// of at most 1 GiB (the kernel's limit per buffer) whose inner boundaries
// are aligned to the largest block (4 MiB), so every block of the pool lies
// in exactly one buffer. The split depends only on the arena, so a page has
// the same index on every ring.
//
// Invariants, under registry_mutex: each Registration is a registration
// listener of its pool (labyrinth_arena.h) that refuses the pool's destroy
// (EBUSY) for as long as it exists, so destroy is BUSY naming the ring. A registration is live (its ring has the table) or, for an
// application's tagged one after unregistering, releasing: kept until the
// application has handed back every tag completion, i.e. until the kernel
// no longer holds any of its buffers. Registrations that share one pinning
// (a fresh one and its clones) share a pin id; the pinned bytes of this
// process are the arena sizes of the distinct pin ids.
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "boundary.hpp"
#include "uring/uring_internal.hpp"

namespace lab {
namespace uring {

namespace {

// A registration's subscription to its pool. Heap-allocated so that `name`
// (borrowed by the pool) stays put while the registry's vector moves.
struct Listener {
  char name[48];
  labyrinth_listener *sub = nullptr;
};

int listener_added(void *, labyrinth_pool *, void *, std::size_t) { return 0; }
// Destroy asks: a registration never lets the arena go; unregister ends it.
int listener_destroy_requested(void *, labyrinth_pool *) { return EBUSY; }
void listener_removed(void *, labyrinth_pool *, void *, std::size_t) {}

struct Registration {
  labyrinth_pool *pool;
  int fd;
  labyrinth_ring *managed;    // null: the application's ring
  std::uint64_t pin;          // id of the fresh registration whose pinning this one uses
  std::uint64_t bytes;        // the arena's size
  std::uint64_t tag_base;     // application's tagged registration: its first tag, else 0
  std::uint32_t buffers;      // entries of the table
  bool releasing;             // unregistered; waiting for tags_left tag completions
  std::uint32_t tags_left;
  std::vector<bool> tag_seen;  // releasing: the tags handed back
  std::unique_ptr<Listener> listener;
};

struct ManagedRing {
  labyrinth_ring *ring;
  int fd;
  labyrinth_pool *pool;
};

std::mutex &registry_mutex() {
  static std::mutex m;
  return m;
}
std::vector<Registration> &registrations() {
  static std::vector<Registration> v;
  return v;
}
std::vector<ManagedRing> &managed_rings() {
  static std::vector<ManagedRing> v;
  return v;
}
std::uint64_t next_pin_id = 1;  // under registry_mutex

// The bytes this process's registrations pin: one arena per pin id.
std::uint64_t pinned_bytes() {
  std::vector<std::uint64_t> seen;
  std::uint64_t total = 0;
  for (const Registration &r : registrations()) {
    if (std::find(seen.begin(), seen.end(), r.pin) != seen.end()) continue;
    seen.push_back(r.pin);
    total += r.bytes;
  }
  return total;
}

// The live registration of ring_fd, or null.
Registration *live_on(int ring_fd) {
  for (Registration &r : registrations())
    if (r.fd == ring_fd && !r.releasing) return &r;
  return nullptr;
}

// BUSY if ring_fd has a live registration; else resolves *managed (the
// managed ring that owns ring_fd, if any; INVALID if it is another pool's).
labyrinth_status check_free_ring(labyrinth_pool *pool, int ring_fd, labyrinth_ring **managed,
                                 const char *what) {
  if (const Registration *r = live_on(ring_fd)) {
    if (r->pool == pool)
      return set_error(LABYRINTH_ERR_BUSY, "%s: the pool is already registered with io_uring fd %d",
                       what, ring_fd);
    return set_error(LABYRINTH_ERR_BUSY,
                     "%s: io_uring fd %d already has another pool's arena (%p) as its fixed "
                     "buffers; a ring holds one table of fixed buffers",
                     what, ring_fd, static_cast<void *>(r->pool));
  }
  if (*managed) return LABYRINTH_OK;
  for (const ManagedRing &m : managed_rings()) {
    if (m.fd != ring_fd) continue;
    if (m.pool != pool)
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: io_uring fd %d belongs to a labyrinth_ring of another pool", what,
                       ring_fd);
    *managed = m.ring;
  }
  return LABYRINTH_OK;
}

// The status for a failed table registration (errno e) of `bytes` on ring_fd.
labyrinth_status explain_register(int e, int ring_fd, std::uint64_t bytes, const char *what) {
  switch (e) {
    case ENOSYS:
    case EPERM:
      return explain_unavailable(e, what, "io_uring_register");
    case EBADF:
      return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not open (EBADF)", what, ring_fd);
    case EOPNOTSUPP:
      return set_error(LABYRINTH_ERR_INVALID, "%s: fd %d is not an io_uring (EOPNOTSUPP)", what,
                       ring_fd);
    case EBUSY:
      return set_error(LABYRINTH_ERR_BUSY,
                       "%s: io_uring fd %d already has fixed buffers registered (EBUSY); a "
                       "ring holds one table, unregister it first",
                       what, ring_fd);
    case ENOMEM:
      return explain_memlock(e, what, bytes);
    case EFAULT:
      return set_error(LABYRINTH_ERR_SYSTEM,
                       "%s: the kernel could not pin the arena (EFAULT); pools in the "
                       "GUARD or PKEYS debug modes (pages made inaccessible) cannot be "
                       "registered",
                       what);
    default:
      return set_error(LABYRINTH_ERR_SYSTEM,
                       "%s: io_uring_register(fd %d, %llu bytes of fixed buffers) failed (%s, "
                       "errno %d: %s)",
                       what, ring_fd, static_cast<unsigned long long>(bytes), errno_name(e), e,
                       std::strerror(e));
  }
}

// Subscribe the registration of ring_fd to pool as a listener.
labyrinth_status subscribe(labyrinth_pool *pool, int ring_fd, std::unique_ptr<Listener> *out) {
  auto l = std::make_unique<Listener>();
  std::snprintf(l->name, sizeof l->name, "io_uring fixed buffers on fd %d", ring_fd);
  labyrinth_arena_listener al{};
  al.struct_size = sizeof al;
  al.name = l->name;
  al.ctx = l.get();
  al.region_added = listener_added;
  al.destroy_requested = listener_destroy_requested;
  al.region_removed = listener_removed;
  if (labyrinth_status st = labyrinth_pool_listen(pool, &al, &l->sub); st != LABYRINTH_OK) return st;
  *out = std::move(l);
  return LABYRINTH_OK;
}

// Record a registration (the kernel has the table); undoes the table if
// the record cannot be kept.
labyrinth_status record(Registration reg, const char *what) {
  labyrinth_pool *pool = reg.pool;
  labyrinth_ring *managed = reg.managed;
  int fd = reg.fd;
  labyrinth_status st = subscribe(pool, fd, &reg.listener);
  if (st == LABYRINTH_OK) {
    try {
      registrations().push_back(std::move(reg));
    } catch (const std::bad_alloc &) {
      labyrinth_pool_unlisten(pool, reg.listener->sub);
      st = set_error(LABYRINTH_ERR_NOMEM, "%s: out of memory", what);
    }
  }
  if (st != LABYRINTH_OK) {
    kernel_unregister(fd);
    return st;
  }
  if (managed) ring_set_registered(managed, true);
  return LABYRINTH_OK;
}

// Forget registration `it`: its ring no longer has it, nor does the kernel.
void forget(std::vector<Registration>::iterator it) {
  labyrinth_pool_unlisten(it->pool, it->listener->sub);
  registrations().erase(it);
}

}  // namespace

std::uint32_t buffer_index(std::uintptr_t base, std::uintptr_t p) {
  // Greedy split: the first buffer ends at the last 4 MiB boundary within
  // 1 GiB of the base, the following ones are exactly 1 GiB.
  std::uintptr_t first_end = (base + kBufBytes) & ~(std::uintptr_t{kMaxBlockBytes} - 1);
  if (p < first_end) return 0;
  return 1 + static_cast<std::uint32_t>((p - first_end) / kBufBytes);
}

std::uint32_t buffer_count(std::uintptr_t base, std::size_t size) {
  if (size == 0) return 0;
  if (size <= kBufBytes) return 1;
  return buffer_index(base, base + size - 1) + 1;
}

labyrinth_status register_arena(labyrinth_pool *pool, int ring_fd, const RegisterArgs &args,
                                const char *what) {
  if (ring_fd < 0) return set_error(LABYRINTH_ERR_INVALID, "%s: ring_fd %d is not a file descriptor", what, ring_fd);
  auto base = reinterpret_cast<std::uintptr_t>(pool_arena_base(pool));
  std::size_t size = pool_arena_size(pool);
  std::uint32_t n = buffer_count(base, size);
  if (n > LABYRINTH_URING_MAX_BUFFERS)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: the arena (%zu bytes) needs %u fixed buffers, more than io_uring's "
                     "limit of %u",
                     what, size, n, LABYRINTH_URING_MAX_BUFFERS);
  std::lock_guard<std::mutex> lock(registry_mutex());
  labyrinth_ring *managed = args.managed;
  if (labyrinth_status st = check_free_ring(pool, ring_fd, &managed, what); st != LABYRINTH_OK)
    return st;
  if (labyrinth_status st = memlock_precheck(what, size, pinned_bytes()); st != LABYRINTH_OK) {
    if (args.memlock_refused) *args.memlock_refused = true;
    return st;
  }
  std::vector<iovec> iov = arena_iovecs(base, size);
  std::vector<std::uint64_t> tags;
  const bool tagged = managed || args.tag_base;
  for (std::uint32_t i = 0; tagged && i < n; ++i)
    tags.push_back(managed ? ring_buffer_tag(i) : args.tag_base + i);
  TableResult res = kernel_register(ring_fd, iov, tagged ? &tags : nullptr);
  if (res.no_sparse && args.tag_base)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: tagged registration needs sparse buffer tables (Linux 5.19); this "
                     "kernel refused IORING_RSRC_REGISTER_SPARSE (EINVAL)",
                     what);
  if (res.no_sparse) {  // a managed ring on an older kernel: untagged
    tags.clear();
    res = kernel_register(ring_fd, iov, nullptr);
  }
  if (res.err != 0) {
    if (res.err == ENOMEM && args.memlock_refused) *args.memlock_refused = true;
    return explain_register(res.err, ring_fd, size, what);
  }
  if (managed && !tags.empty()) ring_add_pinned(managed, n);
  return record(Registration{pool, ring_fd, managed, next_pin_id++, size, args.tag_base, n, false,
                             0, {}, {}},
                what);
}

labyrinth_status clone_arena(labyrinth_pool *pool, int src_fd, int dst_fd, const char *what) {
  if (src_fd < 0 || dst_fd < 0 || src_fd == dst_fd)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: src_ring_fd %d and dst_ring_fd %d must be two open io_uring fds", what,
                     src_fd, dst_fd);
  std::lock_guard<std::mutex> lock(registry_mutex());
  const Registration *src = live_on(src_fd);
  if (!src || src->pool != pool)
    return set_error(LABYRINTH_ERR_INVALID, "%s: the pool is not registered with io_uring fd %d",
                     what, src_fd);
  labyrinth_ring *managed = nullptr;
  if (labyrinth_status st = check_free_ring(pool, dst_fd, &managed, what); st != LABYRINTH_OK)
    return st;
  Registration reg{pool, dst_fd, managed, src->pin, src->bytes, 0, src->buffers, false, 0, {}, {}};
  int e = kernel_clone(dst_fd, src_fd);
  if (e == EINVAL)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: the kernel refused IORING_REGISTER_CLONE_BUFFERS (EINVAL): cloning "
                     "needs Linux 6.12, and both rings in this process",
                     what);
  if (e != 0) return explain_register(e, dst_fd, reg.bytes, what);
  return record(std::move(reg), what);
}

labyrinth_status unregister_arena(labyrinth_pool *pool, int ring_fd, const char *what,
                                  bool from_ring_destroy) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &regs = registrations();
  auto it = std::find_if(regs.begin(), regs.end(), [&](const Registration &r) {
    return r.pool == pool && r.fd == ring_fd && !r.releasing;
  });
  if (it == regs.end()) {
    it = std::find_if(regs.begin(), regs.end(), [&](const Registration &r) {
      return r.pool == pool && r.fd == ring_fd;
    });
    if (it == regs.end())
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: the pool is not registered with io_uring fd %d", what, ring_fd);
    // Unregistered, tags outstanding: only a ring that is gone lets go now.
    int e = kernel_unregister(ring_fd);
    if (e != EBADF && e != EOPNOTSUPP)
      return set_error(LABYRINTH_ERR_INVALID,
                       "%s: already unregistered from io_uring fd %d; %u tag completion(s) are "
                       "still to be given to labyrinth_pool_io_uring_released()",
                       what, ring_fd, it->tags_left);
    forget(it);
    return LABYRINTH_OK;
  }
  if (it->managed && !from_ring_destroy) {
    if (std::uint64_t n = ring_pages_inflight(it->managed))
      return set_error(LABYRINTH_ERR_BUSY,
                       "%s: %llu page(s) are in flight through the labyrinth_ring on io_uring "
                       "fd %d; wait for their completions (or destroy the ring)",
                       what, static_cast<unsigned long long>(n), ring_fd);
  }
  int e = kernel_unregister(ring_fd);
  if (it->managed) ring_set_registered(it->managed, false);
  // EBADF / EOPNOTSUPP / ENXIO: the ring is closed (its buffers went with
  // it) or has none; either way it holds none of the pool's buffers now.
  if (it->tag_base && e == 0) {
    it->releasing = true;
    it->tags_left = it->buffers;
    it->tag_seen.assign(it->buffers, false);
    return LABYRINTH_OK;
  }
  forget(it);
  return LABYRINTH_OK;
}

labyrinth_status tag_released(labyrinth_pool *pool, int ring_fd, std::uint64_t user_data,
                              const char *what) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &regs = registrations();
  // Registrations are kept in the order they were made, so a releasing one
  // is found before a later registration of the same ring.
  auto it = std::find_if(regs.begin(), regs.end(), [&](const Registration &r) {
    return r.pool == pool && r.fd == ring_fd && r.tag_base && user_data >= r.tag_base &&
           user_data - r.tag_base < r.buffers;
  });
  if (it == regs.end())
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: %llu is not a tag of the pool's tagged registration with io_uring fd %d",
                     what, static_cast<unsigned long long>(user_data), ring_fd);
  if (!it->releasing)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: the registration with io_uring fd %d is still live; the kernel posts "
                     "tag %llu only after labyrinth_pool_unregister_io_uring()",
                     what, ring_fd, static_cast<unsigned long long>(user_data));
  std::size_t i = user_data - it->tag_base;
  if (it->tag_seen[i])
    return set_error(LABYRINTH_ERR_INVALID, "%s: tag %llu was already released", what,
                     static_cast<unsigned long long>(user_data));
  it->tag_seen[i] = true;
  if (--it->tags_left == 0) forget(it);
  return LABYRINTH_OK;
}

void managed_ring_add(labyrinth_ring *ring, int fd, labyrinth_pool *pool) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  managed_rings().push_back(ManagedRing{ring, fd, pool});
}

void managed_ring_remove(labyrinth_ring *ring) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto &v = managed_rings();
  v.erase(std::remove_if(v.begin(), v.end(), [&](const ManagedRing &m) { return m.ring == ring; }),
          v.end());
}

}  // namespace uring
}  // namespace lab

// ---------------------------------------------------------------------------
// C boundary
// ---------------------------------------------------------------------------
using namespace lab;

extern "C" {

LABYRINTH_API labyrinth_status labyrinth_pool_register_io_uring(labyrinth_pool *pool, int ring_fd) {
  const char *what = "labyrinth_pool_register_io_uring";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::register_arena(pool, ring_fd, {}, what); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_register_io_uring_tagged(labyrinth_pool *pool,
                                                                       int ring_fd,
                                                                       uint64_t tag_base) {
  const char *what = "labyrinth_pool_register_io_uring_tagged";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (tag_base == 0 || tag_base > UINT64_MAX - LABYRINTH_URING_MAX_BUFFERS)
    return set_error(LABYRINTH_ERR_INVALID,
                     "%s: tag_base must be at least 1 and leave room for %u tags after it", what,
                     LABYRINTH_URING_MAX_BUFFERS);
  uring::RegisterArgs args;
  args.tag_base = tag_base;
  return guarded(what, [&] { return uring::register_arena(pool, ring_fd, args, what); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_io_uring_released(labyrinth_pool *pool, int ring_fd,
                                                                uint64_t user_data) {
  const char *what = "labyrinth_pool_io_uring_released";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::tag_released(pool, ring_fd, user_data, what); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_clone_io_uring(labyrinth_pool *pool,
                                                             int src_ring_fd, int dst_ring_fd) {
  const char *what = "labyrinth_pool_clone_io_uring";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::clone_arena(pool, src_ring_fd, dst_ring_fd, what); });
}

LABYRINTH_API labyrinth_status labyrinth_pool_unregister_io_uring(labyrinth_pool *pool,
                                                                  int ring_fd) {
  const char *what = "labyrinth_pool_unregister_io_uring";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  return guarded(what, [&] { return uring::unregister_arena(pool, ring_fd, what, false); });
}

LABYRINTH_API labyrinth_status labyrinth_page_buf_index(const labyrinth_pool *pool,
                                                        const void *page,
                                                        uint16_t *buf_index) {
  const char *what = "labyrinth_page_buf_index";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!buf_index) return set_error(LABYRINTH_ERR_INVALID, "%s: buf_index is NULL", what);
  auto base = reinterpret_cast<std::uintptr_t>(pool_arena_base(pool));
  std::size_t size = pool_arena_size(pool);
  auto p = reinterpret_cast<std::uintptr_t>(page);
  if (p < base || p - base >= size)
    return set_error(LABYRINTH_ERR_FOREIGN, "%s: %p is not inside the pool's arena [%p, +%zu)",
                     what, page, reinterpret_cast<void *>(base), size);
  *buf_index = static_cast<uint16_t>(uring::buffer_index(base, p));
  return LABYRINTH_OK;
}

LABYRINTH_API labyrinth_status labyrinth_pool_io_uring_buffers(const labyrinth_pool *pool,
                                                               uint32_t *count) {
  const char *what = "labyrinth_pool_io_uring_buffers";
  if (labyrinth_status st = pool_usable(pool, what); st != LABYRINTH_OK) return st;
  if (!count) return set_error(LABYRINTH_ERR_INVALID, "%s: count is NULL", what);
  *count = uring::buffer_count(reinterpret_cast<std::uintptr_t>(pool_arena_base(pool)),
                               pool_arena_size(pool));
  return LABYRINTH_OK;
}

}  // extern "C"
