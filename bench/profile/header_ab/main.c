/* main.c - header_ab.sh's driver: one pool (128 MiB, default flags, as the
 * bench's), and for each pattern ROUNDS rounds, each timing the old and the
 * new loops back to back (which goes first alternates). On our VMs the
 * same loop drifts by 20-40 % from one second to the next, and whole
 * processes land in a slow mode: a ratio taken inside each round, a few
 * milliseconds apart, is what survives that. Prints, per pattern, each
 * side's median and fastest round (ns per page or block) and the median
 * and quartiles of new/old over the rounds.
 *
 * The cross pattern (two CPUs or more) runs the freeing side on a second
 * thread pinned to CPU 0, the allocating thread on the last CPU: both
 * sides of a round use the same header version. */
#define _GNU_SOURCE
#include "loops.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long hab_pair_old(labyrinth_pool *, long);
long hab_pair_new(labyrinth_pool *, long);
long hab_burst_old(labyrinth_pool *, long);
long hab_burst_new(labyrinth_pool *, long);
long hab_order_old(labyrinth_pool *, unsigned, long);
long hab_order_new(labyrinth_pool *, unsigned, long);
long hab_cross_alloc_old(labyrinth_pool *, labyrinth_owner, hab_ring *, long);
long hab_cross_alloc_new(labyrinth_pool *, labyrinth_owner, hab_ring *, long);
long hab_cross_free_old(labyrinth_pool *, hab_ring *, long);
long hab_cross_free_new(labyrinth_pool *, hab_ring *, long);

/* The freeing thread of the cross pattern: it waits for a job (a count of
 * pages and a header version), frees that many pages from the ring, and
 * reports its failures. */
static struct {
  labyrinth_pool *pool;
  hab_ring ring;
  _Atomic long job;       /* pages to free; 0: none; -1: exit */
  _Atomic int job_new;    /* which loops free them */
  _Atomic long done_bad;  /* -1 while the job runs */
  _Atomic labyrinth_owner owner;
} cross;

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *cross_freer(void *arg) {
  (void)arg;
  pin(0);
  atomic_store(&cross.owner, labyrinth_owner_self());
  for (;;) {
    long n;
    while ((n = atomic_load(&cross.job)) == 0) HAB_PAUSE();
    if (n < 0) return NULL;
    atomic_store(&cross.job, 0);
    atomic_store(&cross.done_bad, (atomic_load(&cross.job_new) ? hab_cross_free_new : hab_cross_free_old)(
                                      cross.pool, &cross.ring, n));
  }
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
/* One run of pattern w with the new (1) or old (0) loops; ns per unit, or -1. */
static double run(labyrinth_pool *p, int w, int is_new) {
  const double t0 = now_ns();
  long bad;
  double units;
  if (w == 0) {
    bad = (is_new ? hab_pair_new : hab_pair_old)(p, 200000);
    units = 200000;
  } else if (w == 1) {
    bad = (is_new ? hab_burst_new : hab_burst_old)(p, 800);
    units = 800 * 256.0;
  } else if (w == 7) {
    const long n = 100000;
    atomic_store(&cross.done_bad, -1);
    atomic_store(&cross.job_new, is_new);
    atomic_store(&cross.job, n);
    bad = (is_new ? hab_cross_alloc_new : hab_cross_alloc_old)(p, atomic_load(&cross.owner), &cross.ring, n);
    if (bad < 0) { /* fewer than n pages went through the ring: the freer would wait for ever */
      fprintf(stderr, "header_ab: cross: an allocation failed: %s\n", labyrinth_last_error_message());
      _exit(1);
    }
    while (atomic_load(&cross.done_bad) < 0) HAB_PAUSE();
    bad += atomic_load(&cross.done_bad);
    units = n;
  } else {
    bad = (is_new ? hab_order_new : hab_order_old)(p, 2u * (unsigned)(w - 1), 100000);
    units = 100000;
  }
  return bad ? -1 : (now_ns() - t0) / units;
}

int main(int argc, char **argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 200;
  const char *only = argc > 2 ? argv[2] : NULL; /* one pattern by name */
  static const char *const names[] = {"pair", "burst256", "order2", "order4", "order6",
                                      "order8", "order10",  "cross"};
  const int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
  const int patterns = cpus >= 2 ? 8 : 7;
  pthread_t freer;
  labyrinth_pool_options o;
  labyrinth_pool *p;
  double *old_ns, *new_ns, *ratio;
  if (rounds < 4) {
    fprintf(stderr, "header_ab: ROUNDS must be at least 4\n");
    return 2;
  }
  labyrinth_pool_options_init(&o);
  o.size_bytes = (size_t)128 << 20;
  if (labyrinth_pool_create(&o, &p) != LABYRINTH_OK) {
    fprintf(stderr, "header_ab: pool: %s\n", labyrinth_last_error_message());
    return 1;
  }
  pin(cpus - 1);
  if (patterns == 8) {
    cross.pool = p;
    if (pthread_create(&freer, NULL, cross_freer, NULL) != 0) return 1;
    while (!atomic_load(&cross.owner)) HAB_PAUSE();
  }
  old_ns = malloc(sizeof(double) * (size_t)rounds);
  new_ns = malloc(sizeof(double) * (size_t)rounds);
  ratio = malloc(sizeof(double) * (size_t)rounds);
  if (!old_ns || !new_ns || !ratio) return 1;
  printf("%-9s %22s %22s %30s\n", "pattern", "old: median (fastest)", "new: median (fastest)",
         "new/old: median [quartiles]");
  for (int w = 0; w < patterns; ++w) {
    if (only && strcmp(only, names[w]) != 0) continue;
    for (int r = 0; r < rounds; ++r) {
      const int new_first = r & 1;
      double t[2];
      t[new_first] = run(p, w, new_first);
      t[!new_first] = run(p, w, !new_first);
      if (t[0] < 0 || t[1] < 0) {
        fprintf(stderr, "header_ab: %s: a call failed: %s\n", names[w], labyrinth_last_error_message());
        return 1;
      }
      old_ns[r] = t[0];
      new_ns[r] = t[1];
      ratio[r] = t[1] / t[0];
    }
    qsort(old_ns, (size_t)rounds, sizeof(double), by_value);
    qsort(new_ns, (size_t)rounds, sizeof(double), by_value);
    qsort(ratio, (size_t)rounds, sizeof(double), by_value);
    printf("%-9s %14.2f (%5.2f) %14.2f (%5.2f) %14.3f [%.3f %.3f]\n", names[w], old_ns[rounds / 2],
           old_ns[0], new_ns[rounds / 2], new_ns[0], ratio[rounds / 2], ratio[rounds / 4],
           ratio[3 * rounds / 4]);
  }
  if (patterns == 8) {
    atomic_store(&cross.job, -1);
    pthread_join(freer, NULL);
  }
  free(old_ns);
  free(new_ns);
  free(ratio);
  labyrinth_pool_destroy(p);
  return 0;
}
