/*
 * rx_options.h - labyrinth-rx's command line: the options, their checks and
 * the usage text. Included once, by labyrinth-rx.c.
 */
#ifndef LABYRINTH_RX_OPTIONS_H
#define LABYRINTH_RX_OPTIONS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <labyrinth/labyrinth.h>

/* ---- options ---------------------------------------------------------- */
static double opt_duration = 3.0;
static unsigned opt_size = 1472;
static unsigned opt_senders = 1;
static unsigned opt_entries = 4096;
static unsigned opt_pool_mb = 64;
static int opt_baseline = 1;
static int opt_starve = 0;
static int opt_tcp = 0; /* --tcp: one TCP stream instead of UDP datagrams */
static uint32_t opt_pin = LABYRINTH_POOL_PIN_BEST_EFFORT;
static int opt_mode = -1; /* MODE_*; -1: the best the kernel has */
enum { MODE_PAGE = 0, MODE_INCREMENTAL = 1, MODE_BUNDLE = 2 };

static void usage(void) {
  fprintf(stderr,
          "usage: labyrinth-rx [--duration SEC] [--size BYTES] [--senders N] [--entries N]\n"
          "                    [--pool-mb MB] [--pin auto|strict|off]\n"
          "                    [--mode page|incremental|bundle] [--no-baseline] [--starve] [--tcp]\n"
          "  --duration SEC  seconds per receiver, 0..600 (default 3)\n"
          "  --size BYTES    datagram size, 64..4096 (default 1472)\n"
          "  --senders N     sender threads, 1..64 (default 1)\n"
          "  --entries N     pages in the provided-buffer ring, power of two up to 32768\n"
          "                  (default 4096)\n"
          "  --pool-mb MB    pool size; it must hold twice --entries pages (default 64)\n"
          "  --pin MODE      auto: mlock the pool when the memlock limit allows, else run\n"
          "                  unpinned with a warning (default); strict: mlock or fail;\n"
          "                  off: never mlock\n"
          "  --mode MODE     page: a page per datagram; incremental: 4096 / --size datagrams\n"
          "                  per page, none cut (IOU_PBUF_RING_INC with min_left: Linux 7.1,\n"
          "                  6.12.y, 6.18.y); default: incremental where the kernel has it,\n"
          "                  else page; bundle: bundle receives (Linux 6.10; on UDP a page\n"
          "                  per datagram)\n"
          "  --no-baseline   skip the recvmsg + malloc comparison\n"
          "  --starve        give received pages back only once a millisecond, so that\n"
          "                  the provided-buffer ring runs dry and the receive is re-armed\n"
          "  --tcp           one sender writes a TCP stream in --size-byte sends; a packet is\n"
          "                  --size bytes of it (page or bundle mode; baseline: recv + malloc)\n");
}

/* Print why the command line was refused, then the usage; returns 2. */
static int refuse(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("labyrinth-rx: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n\n", stderr);
  va_end(ap);
  usage();
  return 2;
}

/* The MODE_* that --mode v names, or -1 for an unknown one. */
static int mode_named(const char *v) {
  return !strcmp(v, "page") ? MODE_PAGE : !strcmp(v, "incremental") ? MODE_INCREMENTAL
         : !strcmp(v, "bundle") ? MODE_BUNDLE : -1;
}

/* The pool flag for --pin MODE, or UINT32_MAX for an unknown mode. */
static uint32_t pin_flag(const char *mode) {
  if (!strcmp(mode, "auto")) return LABYRINTH_POOL_PIN_BEST_EFFORT;
  if (!strcmp(mode, "strict")) return LABYRINTH_POOL_PIN;
  if (!strcmp(mode, "off")) return 0;
  return UINT32_MAX;
}

/* Parse the command line into the opt_* globals; 0, or 2 after saying why. */
static int parse_options(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage();
      exit(0);
    }
    if (!strcmp(a, "--no-baseline")) {
      opt_baseline = 0;
      continue;
    }
    if (!strcmp(a, "--starve") || !strcmp(a, "--tcp")) {
      opt_starve |= !strcmp(a, "--starve");
      opt_tcp |= !strcmp(a, "--tcp");
      continue;
    }
    if (!v) return refuse("%s needs a value", a);
    ++i;
    if (!strcmp(a, "--duration")) opt_duration = atof(v);
    else if (!strcmp(a, "--size")) opt_size = (unsigned)atoi(v);
    else if (!strcmp(a, "--senders")) opt_senders = (unsigned)atoi(v);
    else if (!strcmp(a, "--entries")) opt_entries = (unsigned)atoi(v);
    else if (!strcmp(a, "--pool-mb")) opt_pool_mb = (unsigned)atoi(v);
    else if (!strcmp(a, "--mode") && (opt_mode = mode_named(v)) < 0)
      return refuse("--mode %s: give page, incremental or bundle", v);
    else if (!strcmp(a, "--pin") && (opt_pin = pin_flag(v)) == UINT32_MAX)
      return refuse("--pin %s: give auto, strict or off", v);
    else if (strcmp(a, "--pin") && strcmp(a, "--mode")) return refuse("unknown option %s", a);
  }
  if (opt_size < 64 || opt_size > 4096)
    return refuse("--size %u: a datagram is 64..4096 bytes", opt_size);
  if (opt_tcp && opt_mode == MODE_INCREMENTAL)
    return refuse("--tcp: give --mode page or bundle");
  if (opt_tcp && opt_senders != 1) return refuse("--tcp: one sender (--senders 1)");
  if (opt_tcp && opt_mode < 0) opt_mode = MODE_PAGE;
  if (opt_senders < 1 || opt_senders > 64) return refuse("--senders %u: give 1..64", opt_senders);
  if (!(opt_duration > 0) || opt_duration > 600)
    return refuse("--duration %g: give more than 0 and at most 600 seconds", opt_duration);
  if (opt_entries < 1 || (opt_entries & (opt_entries - 1)) || opt_entries > 32768)
    return refuse("--entries %u: give a power of two up to 32768", opt_entries);
  if ((uint64_t)opt_pool_mb * 256 < 2ull * opt_entries)
    return refuse("--pool-mb %u: the pool must hold twice --entries (%u) pages, so at least %u MB; "
                  "or give fewer --entries",
                  opt_pool_mb, opt_entries, (2 * opt_entries + 255) / 256);
  return 0;
}

#endif /* LABYRINTH_RX_OPTIONS_H */
