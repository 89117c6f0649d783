// poison.cpp - LABYRINTH_POOL_POISON (poison.hpp).
#include "poison.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "pool.hpp"

namespace lab {

namespace {
constexpr unsigned char kPoison = 0x6B;
constexpr std::uint64_t kPoisonWord = 0x6B6B6B6B6B6B6B6Bull;
}  // namespace

void poison_block(Pool *p, std::size_t idx, std::size_t pages, std::uint64_t last_owner) {
  std::memset(p->page_at(idx), kPoison, pages * kPageSize);
  for (std::size_t i = 0; i < pages; ++i) p->poison_owner[idx + i] = last_owner ? last_owner : 1;
}

static void write_report(const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  std::size_t n = format_message(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n >= sizeof msg) n = sizeof msg - 1;
  ssize_t ignored = write(STDERR_FILENO, msg, n);
  (void)ignored;
}

void check_poison(Pool *p, std::size_t idx, std::size_t pages) {
  for (std::size_t i = idx; i < idx + pages; ++i) {
    const std::uint64_t last = p->poison_owner[i];
    if (!last) continue;  // never freed, or not freed since it was last handed out
    const auto *w = static_cast<const std::uint64_t *>(p->page_at(i));
    for (std::size_t k = 0; k < kPageSize / 8; ++k) {
      if (LAB_LIKELY(w[k] == kPoisonWord)) continue;
      const auto *b = reinterpret_cast<const unsigned char *>(w + k);
      std::size_t off = k * 8;
      while (b[off - k * 8] == kPoison) ++off;
      write_report("labyrinth: POISON: write after free in pool %p: page %p (page %zu of the "
                   "arena) was written while it was free: first bad byte at offset %zu is 0x%x "
                   "(expected 0x%x); its last owner was %llu; aborting\n",
                   static_cast<void *>(p), p->page_at(i), i, off,
                   static_cast<unsigned>(b[off - k * 8]), static_cast<unsigned>(kPoison),
                   static_cast<unsigned long long>(last));
      abort();
    }
    p->poison_owner[i] = 0;
  }
}

}  // namespace lab
