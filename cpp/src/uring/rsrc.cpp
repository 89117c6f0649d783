// rsrc.cpp - the kernel side of fixed buffers: the arena's iovecs, and the
// io_uring_register calls that install, clone and drop a ring's table.
//
// A tagged table is registered sparse (IORING_RSRC_REGISTER_SPARSE, Linux
// 5.19) and filled with IORING_REGISTER_BUFFERS_UPDATE carrying one tag per
// buffer (tags: Linux 5.13). The kernel posts a CQE whose user_data is a
// buffer's tag when it drops that buffer (unregister, or replacement by an
// update) and no request holds it any more. A clone
// (IORING_REGISTER_CLONE_BUFFERS, Linux 6.12) shares the source's pinned
// pages: the kernel charges RLIMIT_MEMLOCK once, and the pages stay pinned
// until the source and every clone have dropped them; the clone's entries
// carry no tags.
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "uring/uring_internal.hpp"

namespace lab {
namespace uring {

namespace {

// Kernel uapi (include/uapi/linux/io_uring.h) newer than the installed
// headers: IORING_REGISTER_CLONE_BUFFERS and its argument, Linux 6.12 (6.13
// turned three pad words into src_off, dst_off and nr; zero means the whole
// table, as on 6.12).
constexpr unsigned kRegisterCloneBuffers = 30;
struct CloneBuffersArg {
  std::uint32_t src_fd;
  std::uint32_t flags;
  std::uint32_t src_off;
  std::uint32_t dst_off;
  std::uint32_t nr;
  std::uint32_t pad[3];
};
static_assert(sizeof(CloneBuffersArg) == 32, "struct io_uring_clone_buffers is 32 bytes");

int register_call(int fd, unsigned opcode, const void *arg, unsigned nr_args) {
  long rc;
  do {
    rc = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

// Fill a sparse table's entries [0, n) with iov and tags: 0 or errno.
int update_tagged(int fd, const std::vector<iovec> &iov, const std::vector<std::uint64_t> &tags) {
  std::uint32_t done = 0;
  while (done < iov.size()) {
    io_uring_rsrc_update2 up{};
    up.offset = done;
    up.data = reinterpret_cast<std::uintptr_t>(iov.data() + done);
    up.tags = reinterpret_cast<std::uintptr_t>(tags.data() + done);
    up.nr = static_cast<std::uint32_t>(iov.size()) - done;
    long rc;
    do {
      rc = syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS_UPDATE, &up,
                   static_cast<unsigned>(sizeof up));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return errno;
    if (rc == 0) return EINVAL;
    done += static_cast<std::uint32_t>(rc);
  }
  return 0;
}

}  // namespace

std::vector<iovec> arena_iovecs(std::uintptr_t base, std::size_t size) {
  std::uint32_t n = buffer_count(base, size);
  std::vector<iovec> iov(n);
  std::uintptr_t end = base + size, start = base;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uintptr_t stop;
    if (n == 1) {
      stop = end;
    } else if (i == 0) {
      stop = (base + kBufBytes) & ~(std::uintptr_t{kMaxBlockBytes} - 1);
    } else {
      stop = std::min<std::uintptr_t>(end, start + kBufBytes);
    }
    iov[i].iov_base = reinterpret_cast<void *>(start);
    iov[i].iov_len = stop - start;
    start = stop;
  }
  return iov;
}

TableResult kernel_register(int fd, const std::vector<iovec> &iov,
                            const std::vector<std::uint64_t> *tags) {
  if (!tags)
    return {register_call(fd, IORING_REGISTER_BUFFERS, iov.data(),
                          static_cast<unsigned>(iov.size())),
            false};
  io_uring_rsrc_register reg{};
  reg.nr = static_cast<std::uint32_t>(iov.size());
  reg.flags = IORING_RSRC_REGISTER_SPARSE;
  int e = register_call(fd, IORING_REGISTER_BUFFERS2, &reg, static_cast<unsigned>(sizeof reg));
  if (e == EINVAL) return {EINVAL, true};  // no sparse tables: before Linux 5.19
  if (e != 0) return {e, false};
  e = update_tagged(fd, iov, *tags);
  if (e != 0) kernel_unregister(fd);
  return {e, false};
}

int kernel_unregister(int fd) { return register_call(fd, IORING_UNREGISTER_BUFFERS, nullptr, 0); }

int kernel_clone(int dst_fd, int src_fd) {
  CloneBuffersArg arg{};
  arg.src_fd = static_cast<std::uint32_t>(src_fd);
  return register_call(dst_fd, kRegisterCloneBuffers, &arg, 1);
}

}  // namespace uring
}  // namespace lab
