// fuzz_check.hpp - CHECK(cond, fmt, ...) for the fuzz targets: on failure,
// print the place, the condition, the message and the library's last
// status and message, then abort (libFuzzer keeps the input).
#pragma once

#include <labyrinth/labyrinth.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

[[noreturn]] inline void fuzz_die(const char *file, int line, const char *cond, const char *fmt,
                                  ...) {
  std::fprintf(stderr, "\n%s:%d: CHECK(%s) failed: ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n  last status %s, message: %s\n",
               labyrinth_status_name(labyrinth_last_status()), labyrinth_last_error_message());
  std::abort();
}
#define CHECK(cond, ...)                                                 \
  do {                                                                   \
    if (!(cond)) fuzz_die(__FILE__, __LINE__, #cond, "" __VA_ARGS__);    \
  } while (0)
