// status.cpp - per-thread error state, status names, and a small
// async-signal-safe message formatter (snprintf is not async-signal-safe).
#include <cerrno>
#include <cstdarg>
#include <cstring>

#include "common.hpp"

namespace lab {

const char *errno_name(int e) {
  switch (e) {
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case ENXIO: return "ENXIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINTR: return "EINTR";
    case EEXIST: return "EEXIST";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOBUFS: return "ENOBUFS";
    case ECANCELED: return "ECANCELED";
    case EIO: return "EIO";
    default: return "errno";
  }
}

__thread ThreadLocal tls __attribute__((tls_model("initial-exec")));

void fast_forget() {
  if (in_call()) tls.stash = nullptr;  // leave_call() will restore "none"
  else set_fast_pool(nullptr);
}

namespace {

struct Out {
  char *buf;
  std::size_t cap, len;
  void put(char c) {
    if (len + 1 < cap) buf[len] = c;
    ++len;
  }
  void puts(const char *s) {
    if (!s) s = "(null)";
    while (*s) put(*s++);
  }
  void num(unsigned long long v, unsigned base) {
    char tmp[24];
    int n = 0;
    do {
      unsigned d = static_cast<unsigned>(v % base);
      tmp[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
      v /= base;
    } while (v);
    while (n) put(tmp[--n]);
  }
  void snum(long long v) {
    if (v < 0) {
      put('-');
      num(0ull - static_cast<unsigned long long>(v), 10);
    } else {
      num(static_cast<unsigned long long>(v), 10);
    }
  }
};

}  // namespace

std::size_t format_message(char *buf, std::size_t cap, const char *fmt, va_list ap) {
  Out o{buf, cap, 0};
  for (const char *f = fmt; *f; ++f) {
    if (*f != '%') {
      o.put(*f);
      continue;
    }
    ++f;
    int longs = 0;
    bool size_t_arg = false;
    while (*f == 'l') { ++longs; ++f; }
    if (*f == 'z') { size_t_arg = true; ++f; }
    switch (*f) {
      case 's': o.puts(va_arg(ap, const char *)); break;
      case 'c': o.put(static_cast<char>(va_arg(ap, int))); break;
      case 'd':
        if (longs >= 2) o.snum(va_arg(ap, long long));
        else if (longs == 1) o.snum(va_arg(ap, long));
        else o.snum(va_arg(ap, int));
        break;
      case 'u':
      case 'x': {
        unsigned base = *f == 'x' ? 16 : 10;
        unsigned long long v;
        if (size_t_arg) v = va_arg(ap, std::size_t);
        else if (longs >= 2) v = va_arg(ap, unsigned long long);
        else if (longs == 1) v = va_arg(ap, unsigned long);
        else v = va_arg(ap, unsigned);
        o.num(v, base);
        break;
      }
      case 'p':
        o.puts("0x");
        o.num(reinterpret_cast<std::uintptr_t>(va_arg(ap, void *)), 16);
        break;
      case '%': o.put('%'); break;
      case '\0': --f; break;
      default: o.put('%'); o.put(*f); break;
    }
  }
  if (cap) buf[o.len < cap ? o.len : cap - 1] = '\0';
  return o.len;
}

labyrinth_status set_error(labyrinth_status status, const char *fmt, ...) {
  int saved_errno = errno;
  va_list ap;
  va_start(ap, fmt);
  format_message(tls.message, sizeof tls.message, fmt, ap);
  va_end(ap);
  tls.status = status;
  errno = saved_errno;
  return status;
}

}  // namespace lab

using lab::tls;

extern "C" {

LABYRINTH_API __thread labyrinth_fast_record labyrinth_thread_fast
    __attribute__((tls_model("initial-exec")));

LABYRINTH_API labyrinth_status labyrinth_last_status(void) { return tls.status; }

LABYRINTH_API const char *labyrinth_last_error_message(void) { return tls.message; }

LABYRINTH_API void labyrinth_clear_last_error(void) {
  tls.status = LABYRINTH_OK;
  tls.message[0] = '\0';
}

LABYRINTH_API const char *labyrinth_status_name(labyrinth_status status) {
  switch (status) {
    case LABYRINTH_OK: return "LABYRINTH_OK";
    case LABYRINTH_ERR_NOMEM: return "LABYRINTH_ERR_NOMEM";
    case LABYRINTH_ERR_INVALID: return "LABYRINTH_ERR_INVALID";
    case LABYRINTH_ERR_NOT_OWNER: return "LABYRINTH_ERR_NOT_OWNER";
    case LABYRINTH_ERR_DOUBLE_FREE: return "LABYRINTH_ERR_DOUBLE_FREE";
    case LABYRINTH_ERR_FOREIGN: return "LABYRINTH_ERR_FOREIGN";
    case LABYRINTH_ERR_BUSY: return "LABYRINTH_ERR_BUSY";
    case LABYRINTH_ERR_TIMEOUT: return "LABYRINTH_ERR_TIMEOUT";
    case LABYRINTH_ERR_UNSUPPORTED: return "LABYRINTH_ERR_UNSUPPORTED";
    case LABYRINTH_ERR_SYSTEM: return "LABYRINTH_ERR_SYSTEM";
  }
  return "LABYRINTH_STATUS_UNKNOWN";
}

LABYRINTH_API uint32_t labyrinth_abi_version(void) { return LABYRINTH_ABI_VERSION; }

}  // extern "C"
