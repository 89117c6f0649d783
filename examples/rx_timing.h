/*
 * rx_timing.h - labyrinth-rx's clocks and latency histogram, and the
 * datagram it sends and checks. Included once, by labyrinth-rx.c.
 */
#ifndef LABYRINTH_RX_TIMING_H
#define LABYRINTH_RX_TIMING_H

#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* ---- timing: TSC ticks for the allocation latency, calibrated to ns ---- */
static double ns_per_tick = 1.0;

static inline uint64_t ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tick_resolution_ns = 0;

/* The receiver thread's CPU time in seconds, user and system apart. */
typedef struct cpu_split {
  double user, sys;
} cpu_split;

static cpu_split thread_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  cpu_split c = {(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6};
  return c;
}

/* The CPU time spent since `from`. */
static cpu_split cpu_since(cpu_split from) {
  cpu_split now = thread_cpu();
  cpu_split d = {now.user - from.user, now.sys - from.sys};
  return d;
}

static void calibrate(void) {
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 1000; ++i) {
    uint64_t a = ticks(), b = ticks();
    while (b == a) b = ticks();
    if (b - a < best) best = b - a;
  }
  double t0 = now_s();
  uint64_t c0 = ticks();
  while (now_s() - t0 < 0.05) {
  }
  double t1 = now_s();
  uint64_t c1 = ticks();
  ns_per_tick = (t1 - t0) * 1e9 / (double)(c1 - c0);
  tick_resolution_ns = (double)best * ns_per_tick;
}

/* Latency histogram: exact up to 64K ticks, then one overflow bucket. */
#define HIST_TICKS 65536
typedef struct hist {
  uint64_t count[HIST_TICKS];
  uint64_t overflow, n, max;
} hist;

static void hist_add(hist *h, uint64_t t) {
  if (t < HIST_TICKS) h->count[t]++;
  else h->overflow++;
  if (t > h->max) h->max = t;
  h->n++;
}

static double hist_pct_ns(const hist *h, double q) {
  uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
  for (uint64_t t = 0; t < HIST_TICKS; ++t) {
    seen += h->count[t];
    if (seen > want) return (double)t * ns_per_tick;
  }
  return (double)h->max * ns_per_tick;
}

/* ---- the datagrams ---------------------------------------------------- */
typedef struct header {
  uint32_t sender, len;
  uint64_t seq;
} header;

/* Read every word of len bytes in place. */
static uint64_t read_words(const void *data, size_t len) {
  const uint64_t *w = (const uint64_t *)data;
  uint64_t x = 0;
  for (size_t i = 0; i < len / 8; ++i) x ^= w[i];
  return x;
}

/* "Process" a datagram in place: check its header, read every word. */
static uint64_t consume(const void *data, size_t len) {
  const header *h = (const header *)data;
  if (len < sizeof(header) || h->len != len) return UINT64_MAX;
  return read_words(data, len);
}

#endif /* LABYRINTH_RX_TIMING_H */
