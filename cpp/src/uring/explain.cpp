// explain.cpp - why an io_uring call failed, in words: io_uring missing or
// forbidden (ENOSYS, seccomp, sysctl), and RLIMIT_MEMLOCK, which the kernel
// applies to the pages a registration pins (user->locked_vm, a charge
// separate from mlock's) for a user without CAP_IPC_LOCK.
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "boundary.hpp"
#include "uring/uring_internal.hpp"

namespace lab {
namespace uring {

namespace {

bool has_cap_ipc_lock() {
  __user_cap_header_struct hdr{};
  __user_cap_data_struct data[2]{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1u;
}

int read_sysctl_int(const char *path) {
  FILE *f = std::fopen(path, "r");
  if (!f) return -1;
  int v = -1;
  if (std::fscanf(f, "%d", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

}  // namespace


labyrinth_status explain_unavailable(int err, const char *what, const char *syscall_name) {
  if (err == ENOSYS)
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: io_uring is not available: %s returned ENOSYS (a kernel built without "
                     "CONFIG_IO_URING, or a seccomp policy that hides it)",
                     what, syscall_name);
  if (err == EPERM) {
    int disabled = read_sysctl_int("/proc/sys/kernel/io_uring_disabled");
    if (disabled == 2)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: io_uring is disabled: %s returned EPERM because sysctl "
                       "kernel.io_uring_disabled is 2 (set it to 0 to allow io_uring)",
                       what, syscall_name);
    if (disabled == 1)
      return set_error(LABYRINTH_ERR_UNSUPPORTED,
                       "%s: io_uring is restricted: %s returned EPERM because sysctl "
                       "kernel.io_uring_disabled is 1 (only CAP_SYS_ADMIN and members of the "
                       "group kernel.io_uring_group may use it)",
                       what, syscall_name);
    return set_error(LABYRINTH_ERR_UNSUPPORTED,
                     "%s: io_uring is forbidden: %s returned EPERM although "
                     "kernel.io_uring_disabled is 0; a seccomp policy (e.g. a container "
                     "runtime's default profile) blocks it",
                     what, syscall_name);
  }
  return set_error(LABYRINTH_ERR_SYSTEM, "%s: %s failed (%s, errno %d: %s)", what, syscall_name,
                   errno_name(err), err, std::strerror(err));
}

labyrinth_status explain_memlock(int err, const char *what, std::uint64_t bytes) {
  struct rlimit rl {};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  if (rl.rlim_cur == RLIM_INFINITY || has_cap_ipc_lock())
    return set_error(LABYRINTH_ERR_SYSTEM,
                     "%s: registering %llu bytes as io_uring fixed buffers failed (%s, errno %d) "
                     "although RLIMIT_MEMLOCK does not apply (unlimited or CAP_IPC_LOCK): the "
                     "system is short of memory to pin; use a smaller pool",
                     what, static_cast<unsigned long long>(bytes), errno_name(err), err);
  // Messages hold 223 characters: keep it to the facts and the remedy.
  return set_error(LABYRINTH_ERR_NOMEM,
                   "%s: pinning %llu bytes failed (%s): above RLIMIT_MEMLOCK %llu bytes "
                   "(no CAP_IPC_LOCK); raise it: ulimit -l, prlimit --memlock, limits.conf",
                   what, static_cast<unsigned long long>(bytes), errno_name(err),
                   static_cast<unsigned long long>(rl.rlim_cur));
}

labyrinth_status memlock_precheck(const char *what, std::uint64_t bytes,
                                  std::uint64_t pinned_already) {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return LABYRINTH_OK;
  if (pinned_already + bytes <= rl.rlim_cur || has_cap_ipc_lock()) return LABYRINTH_OK;
  return set_error(LABYRINTH_ERR_NOMEM,
                   "%s: pinning %llu bytes (+%llu pinned) exceeds RLIMIT_MEMLOCK %llu bytes (no "
                   "CAP_IPC_LOCK); raise it (ulimit -l, prlimit --memlock) or clone a registration",
                   what, static_cast<unsigned long long>(bytes),
                   static_cast<unsigned long long>(pinned_already),
                   static_cast<unsigned long long>(rl.rlim_cur));
}

}  // namespace uring
}  // namespace lab
