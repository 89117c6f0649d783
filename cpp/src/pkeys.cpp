// pkeys.cpp - the process's protection keys: the free key, one key per
// owner thread, and each thread's access rights (pkeys.hpp).
#include "pkeys.hpp"

#include <errno.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdarg>
#include <mutex>
#include <new>

#include "common.hpp"

namespace lab::pkeys {

namespace {

// pkey_alloc's and pkey_set's access-rights bits (sys/mman.h may lack them
// on old libcs).
#ifndef PKEY_DISABLE_ACCESS
#define PKEY_DISABLE_ACCESS 0x1
#endif

constexpr int kMaxKeys = 16;  // the hardware's (x86 PKRU: 16 keys, key 0 the default)

struct OwnerKey {
  std::uint64_t owner = 0;  // 0: unused entry
  int key = -1;
  std::uint64_t blocks = 0;  // blocks carrying the key, in all PKEYS pools
  bool exited = false;
};

std::atomic<int> g_pools{0};  // live PKEYS pools (read without the mutex by any_pool)

struct Table {
  std::mutex mu;
  int free_key = -1;
  OwnerKey owners[kMaxKeys];
};

Table &table() {
  static Table *t = new Table;  // never destroyed: used at thread exit
  return *t;
}

// Call with the table's mutex held.
OwnerKey *find(Table &t, std::uint64_t owner) {
  for (auto &e : t.owners)
    if (e.owner == owner) return &e;
  return nullptr;
}
int in_use(const Table &t) {
  int n = 0;
  for (const auto &e : t.owners) n += e.owner != 0;
  return n;
}
void give_back_if_unused(OwnerKey &e) {
  if (!e.exited || e.blocks != 0) return;
  pkey_free(e.key);
  e = OwnerKey{};
}
void set_rights_locked(Table &t, std::uint64_t me) {
  if (t.free_key >= 0) pkey_set(t.free_key, PKEY_DISABLE_ACCESS);
  for (const auto &e : t.owners)
    if (e.owner) pkey_set(e.key, e.owner == me ? 0u : unsigned{PKEY_DISABLE_ACCESS});
}

}  // namespace

labyrinth_status attach(const char *what) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.free_key < 0) {
    // No access for the calling thread; threads that never had the key
    // have none either (the kernel starts every key but 0 without access).
    int k = pkey_alloc(0, PKEY_DISABLE_ACCESS);
    if (k < 0)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: LABYRINTH_POOL_PKEYS: no protection key for free pages (pkey_alloc: "
                       "errno %d%s)",
                       what, errno, errno == ENOSPC ? ", ENOSPC: none left in this process" : "");
    t.free_key = k;
  }
  g_pools.fetch_add(1, std::memory_order_relaxed);
  return LABYRINTH_OK;
}

void detach() {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (g_pools.fetch_sub(1, std::memory_order_relaxed) == 1 && t.free_key >= 0) {
    pkey_free(t.free_key);
    t.free_key = -1;
  }
}

int free_key() {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  return t.free_key;
}

labyrinth_status self_key(const char *what, int *key) {
  const std::uint64_t me = owner_self();
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  OwnerKey *e = find(t, me);
  if (!e) {
    OwnerKey *slot = find(t, 0);
    int k = slot ? pkey_alloc(0, PKEY_DISABLE_ACCESS) : -1;
    if (k < 0) {
      const int err = slot ? errno : ENOSPC;
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: PKEYS: no protection key left for owner %llu (pkey_alloc: errno %d); "
                       "%d owner threads hold one, each until its thread exits and no block "
                       "carries it",
                       what, static_cast<unsigned long long>(me), err, in_use(t));
    }
    *slot = OwnerKey{me, k, 0, false};
    e = slot;
  }
  set_rights_locked(t, me);
  *key = e->key;
  return LABYRINTH_OK;
}

int key_of(std::uint64_t owner, const char *what) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  const OwnerKey *e = find(t, owner);
  if (e && !e->exited) return e->key;
  set_error(LABYRINTH_ERR_UNSUPPORTED,
            "%s: LABYRINTH_POOL_PKEYS: owner %llu has no protection key%s (an owner thread gets "
            "one at its first exclusive allocation in a PKEYS pool, or when it calls "
            "labyrinth_owner_self() while one exists)",
            what, static_cast<unsigned long long>(owner), e ? " any more: its thread has exited" : "");
  return -1;
}

void hold(std::uint64_t owner) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (OwnerKey *e = find(t, owner)) ++e->blocks;
}

void drop(std::uint64_t owner) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  OwnerKey *e = find(t, owner);
  if (e && e->blocks > 0) {
    --e->blocks;
    give_back_if_unused(*e);
  }
}

void refresh_rights() {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  set_rights_locked(t, tls.owner);
}

void owner_exited(std::uint64_t owner) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (OwnerKey *e = find(t, owner)) {
    e->exited = true;
    give_back_if_unused(*e);
  }
}

FreePageAccess::FreePageAccess() {
  const int k = free_key();
  if (k < 0) return;
  saved_ = static_cast<unsigned>(pkey_get(k));
  pkey_set(k, 0);
  active_ = true;
}

FreePageAccess::~FreePageAccess() {
  if (active_) pkey_set(free_key(), saved_);
}

bool protect(void *addr, std::size_t bytes, int key) {
  return pkey_mprotect(addr, bytes, PROT_READ | PROT_WRITE, key) == 0;
}

int owner_keys_in_use() {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  return in_use(t);
}

bool any_pool() { return g_pools.load(std::memory_order_relaxed) > 0; }

void after_fork_child() { new (&table().mu) std::mutex; }

}  // namespace lab::pkeys

// ---------------------------------------------------------------------------
// The run-time probe behind PKEYS' UNSUPPORTED.
// ---------------------------------------------------------------------------

namespace lab {

PkeysProbe pkeys_probe() {
  PkeysProbe r;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    r.cpu = (c >> 3) & 1;  // CPUID.(EAX=7,ECX=0):ECX.PKU[bit 3]
    r.os = (c >> 4) & 1;   // ECX.OSPKE[bit 4]: the kernel set CR4.PKE
  }
#elif defined(__aarch64__)
#ifndef HWCAP2_POE
#define HWCAP2_POE (1UL << 63)
#endif
  r.cpu = (getauxval(AT_HWCAP2) & HWCAP2_POE) ? 1 : 0;  // the kernel reports POE only if it uses it
  r.os = r.cpu;
#endif
#ifdef SYS_pkey_alloc
  long key = syscall(SYS_pkey_alloc, 0ul, 0ul);
  if (key >= 0) {
    r.key = static_cast<int>(key);
    syscall(SYS_pkey_free, key);
  } else {
    r.err = errno;
  }
#else
  r.err = ENOSYS;
#endif
  return r;
}

static std::size_t format_into(char *buf, std::size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::size_t n = format_message(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

void pkeys_explain(const PkeysProbe &r, char *buf, std::size_t cap) {
  if (r.cpu == 0)
    format_into(buf, cap, "this CPU has no memory protection keys (no x86 PKU, no arm64 POE), so "
                          "exclusivity cannot be enforced in hardware here");
  else if (r.cpu == 1 && r.os == 0)
    format_into(buf, cap, "the CPU has memory protection keys but the kernel has not enabled them "
                          "(booted with nopku, or built without protection key support)");
  else if (r.key < 0 && r.err == ENOSYS)
    format_into(buf, cap, "the kernel has no pkey_alloc system call (ENOSYS)");
  else if (r.key < 0 && r.err == ENOSPC)
    format_into(buf, cap, "the kernel has no protection key left for this process (pkey_alloc: "
                          "ENOSPC)");
  else if (r.key < 0)
    format_into(buf, cap, "pkey_alloc failed (errno %d)", r.err);
  else
    format_into(buf, cap, "this CPU and kernel have memory protection keys (pkey_alloc gave key "
                          "%d)",
                r.key);
}

}  // namespace lab
