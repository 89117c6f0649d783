// pkeys.hpp - hardware-enforced exclusivity with memory protection keys
// (LABYRINTH_POOL_PKEYS; x86 PKU through glibc's pkey_* calls).
//
// Keys belong to the process, not to a pool, and there are few (the kernel
// hands out at most 15). Labyrinth uses:
//   - one "free" key, shared by every PKEYS pool: every free page of such a
//     pool carries it, and no thread has access to it (a use after free
//     faults, like GUARD);
//   - one key per owner thread that holds exclusive blocks in a PKEYS pool:
//     its blocks carry it; the owner has access, every other thread that
//     has called into Labyrinth since the key was handed out has none;
//   - key 0 (the kernel's default, open to all) for shared blocks.
// An owner's key is taken when the owner first needs one (its first
// exclusive allocation, or labyrinth_owner_self() while a PKEYS pool
// exists) and given back when its thread has exited and no block carries
// it any more. When none is left the call that needed it fails with
// UNSUPPORTED and changes nothing.
//
// A thread's access rights live in its PKRU register. Labyrinth sets them
// on every call into a PKEYS pool; a thread that never calls Labyrinth keeps
// the rights it was created with (a thread inherits its creator's), so a
// thread started by an owner can touch that owner's pages until its first
// call. Signal handlers run with the kernel's default rights.
//
// Not async-signal-safe: a mutex guards the key table, and every change of
// a block's key is a pkey_mprotect() system call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "labyrinth/labyrinth.h"

namespace lab::pkeys {

// A PKEYS pool is being created: make sure the free key exists.
// UNSUPPORTED (message set, naming `what`) when the CPU or kernel has no
// keys or none is left. Every successful attach is matched by a detach.
labyrinth_status attach(const char *what);
void detach();

// The key every free page of a PKEYS pool carries.
int free_key();

// The calling thread's key, taken on first use (and the thread's rights set
// to match). UNSUPPORTED with a message naming `what` when none is left.
labyrinth_status self_key(const char *what, int *key);

// The key of another owner, or -1 if it has none (message set, naming `what`).
int key_of(std::uint64_t owner, const char *what);

// Blocks that carry an owner's key: one more (a block got the key) or one
// fewer (a block lost it; the key is given back when the owner's thread has
// exited and no block carries it).
void hold(std::uint64_t owner);
void drop(std::uint64_t owner);

// Set the calling thread's rights: its own key (if any) read-write, the
// free key and every other owner's key no access.
void refresh_rights();

// The owner's thread has exited (registry mutex held by the caller).
void owner_exited(std::uint64_t owner);

// The calling thread may read and write free pages while one of these is
// alive (scrubbing, poisoning, checking the poison); its rights are
// restored afterwards.
class FreePageAccess {
 public:
  FreePageAccess();
  ~FreePageAccess();
  FreePageAccess(const FreePageAccess &) = delete;
  FreePageAccess &operator=(const FreePageAccess &) = delete;

 private:
  unsigned saved_ = 0;
  bool active_ = false;
};

// Give `bytes` at `addr` key `key` (read-write); false with errno on failure.
bool protect(void *addr, std::size_t bytes, int key);

// Owner keys in use now (for tests and messages).
int owner_keys_in_use();

// A PKEYS pool is alive in this process (async-signal-safe: one atomic load).
bool any_pool();

// In a forked child: the table's mutex may have been held by a thread that
// does not exist there.
void after_fork_child();

}  // namespace lab::pkeys

namespace lab {

// Memory protection keys, probed at run time: what labyrinth_pool_create
// checks before it accepts LABYRINTH_POOL_PKEYS.
struct PkeysProbe {
  int cpu = -1;  // 1: the CPU has protection keys, 0: it has none, -1: cannot tell here
  int os = -1;   // 1: the OS enabled them (x86 OSPKE), 0: it did not, -1: cannot tell
  int key = -1;  // the key pkey_alloc() gave (freed again), or -1
  int err = 0;   // errno of pkey_alloc() when it failed
  // PKEYS pools can be created: the CPU and kernel have keys and one was given.
  bool usable() const { return cpu != 0 && os != 0 && key >= 0; }
};
// Two system calls (pkey_alloc, pkey_free); not async-signal-safe.
PkeysProbe pkeys_probe();
// Why PKEYS cannot be used, in words, for the UNSUPPORTED message.
void pkeys_explain(const PkeysProbe &probe, char *buf, std::size_t cap);

}  // namespace lab
