/*
 * labyrinth-remote: a receiver lends pool pages to a sender through UCX; the
 * sender puts a 4 KiB record into each and returns it; the receiver checks
 * the record and frees the page.
 *
 *   labyrinth-remote [--records N] [--window W] [--anon-arena]
 *       both sides on this machine: the receiver starts the sender as a
 *       second process and connects it by worker address. UCX_TLS picks the
 *       transport (tcp; sm,tcp for shared memory). The pool's arena is
 *       UCX-allocated (one-sided puts over shared memory) unless
 *       --anon-arena (anonymous memory registered at attach).
 *   labyrinth-remote --listen PORT [--records N] [--window W]   (receiver)
 *   labyrinth-remote --connect IP:PORT [--records N]            (sender)
 *       the same between two hosts.
 *
 * The receiver reports records/s, MB/s, the latency from lend to return
 * (p50, p99) and the pages lent, returned and leaked (0).
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "labyrinth/labyrinth_ucx.h"

extern char **environ;

enum { REC = 4096 };

struct opts {
  long records, window;
  int anon_arena;
  const char *listen_port, *connect_to, *address_hex;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int die(const char *what) {
  fprintf(stderr, "labyrinth-remote: %s: %s\n", what, labyrinth_last_error_message());
  return 1;
}

/* Record: [seq][sum][payload]; sum covers the payload. */
static uint64_t payload_sum(const uint64_t *w) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 2; i < REC / 8; ++i) h = (h ^ w[i]) * 1099511628211ull;
  return h;
}

static int run_sender(const struct opts *o) {
  labyrinth_ucx_peer *peer = NULL;
  labyrinth_status st;
  if (o->connect_to) {
    char ip[64];
    snprintf(ip, sizeof ip, "%s", o->connect_to);
    char *colon = strchr(ip, ':');
    if (!colon) return fprintf(stderr, "labyrinth-remote: --connect IP:PORT\n"), 2;
    *colon = '\0';
    st = labyrinth_ucx_peer_connect_ip(ip, (uint16_t)atoi(colon + 1), 30000, &peer);
  } else {
    size_t n = strlen(o->address_hex) / 2;
    unsigned char *addr = malloc(n);
    for (size_t i = 0; i < n; ++i) sscanf(o->address_hex + 2 * i, "%2hhx", &addr[i]);
    st = labyrinth_ucx_peer_connect_address(addr, n, 30000, &peer);
    free(addr);
  }
  if (st) return die("connect");
  static uint64_t rec[REC / 8];
  for (long seq = 1; seq <= o->records; ++seq) {
    labyrinth_ucx_lent l;
    if (labyrinth_ucx_peer_next(peer, 30000, &l)) return die("next lend");
    for (int i = 2; i < REC / 8; ++i) rec[i] = (uint64_t)seq * 31 + (uint64_t)i;
    rec[0] = (uint64_t)seq;
    rec[1] = payload_sum(rec);
    if (labyrinth_ucx_peer_put(peer, l.id, 0, rec, REC)) return die("put");
    if (labyrinth_ucx_peer_return(peer, l.id, (uint64_t)seq)) return die("return");
  }
  labyrinth_ucx_peer_destroy(peer);
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Start this program as the sender, connected by the node's address. */
static pid_t start_sender(labyrinth_ucx_node *node, const struct opts *o) {
  unsigned char addr[4096];
  size_t len = 0;
  if (labyrinth_ucx_node_address(node, addr, sizeof addr, &len)) return -1;
  char *hex = malloc(2 * len + 1), records[32];
  for (size_t i = 0; i < len; ++i) sprintf(hex + 2 * i, "%02x", addr[i]);
  snprintf(records, sizeof records, "%ld", o->records);
  char *argv[] = {"/proc/self/exe", "--sender-address", hex, "--records", records, NULL};
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0) pid = -1;
  free(hex);
  return pid;
}

/* Lend up to `window` pages at a time until o->records came back. */
static int lend_loop(labyrinth_pool *pool, labyrinth_ucx_node *node, labyrinth_ucx_conn conn,
                     const struct opts *o, uint64_t *lat, long *bad, long *leaked) {
  void *base;
  size_t size;
  labyrinth_pool_arena(pool, &base, &size);
  uint64_t *t_lend = calloc(size / REC, sizeof *t_lend);
  long sent = 0, done = 0, lent = 0;
  labyrinth_ucx_returned_page back[64];
  while (done < o->records) {
    while (lent < o->window && sent < o->records) {
      void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
      if (!page) break;
      t_lend[((char *)page - (char *)base) / REC] = now_ns();
      if (labyrinth_ucx_lend(node, conn, page, LABYRINTH_UCX_LEND_WRITE)) {
        labyrinth_free_pages(pool, page);
        free(t_lend);
        return die("lend");
      }
      ++sent, ++lent;
    }
    size_t n = 0;
    if (lent > 0) /* no progress thread: this loop is the progress; sleeps while idle */
      labyrinth_ucx_progress(node, 10, NULL);
    labyrinth_ucx_returned(node, back, 64, &n);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t *w = back[i].page;
      if (back[i].how != LABYRINTH_UCX_RETURNED || w[0] != back[i].value || w[1] != payload_sum(w))
        ++*bad;
      lat[done++] = now_ns() - t_lend[((char *)back[i].page - (char *)base) / REC];
      if (labyrinth_free_pages(pool, back[i].page)) ++*leaked;
      --lent;
      if (back[i].how != LABYRINTH_UCX_RETURNED) done = o->records; /* the sender died */
    }
  }
  *leaked += lent; /* never came back: impossible unless the node is stuck */
  free(t_lend);
  return 0;
}

static int run_receiver(const struct opts *o) {
  labyrinth_ucx_node *node;
  if (labyrinth_ucx_node_create(0, &node)) return die("node");
  labyrinth_arena_provider prov;
  labyrinth_ucx_arena_provider(node, &prov);
  labyrinth_pool_options po;
  labyrinth_pool_options_init(&po);
  po.size_bytes = 64u << 20;
  po.flags = 0;
  po.arena_provider = o->anon_arena ? NULL : &prov;
  labyrinth_pool *pool;
  if (labyrinth_pool_create(&po, &pool)) return die("pool");
  if (labyrinth_ucx_node_attach(node, pool)) return die("attach");
  pid_t child = -1;
  if (o->listen_port) {
    uint16_t port = 0;
    if (labyrinth_ucx_node_listen(node, NULL, (uint16_t)atoi(o->listen_port), &port))
      return die("listen");
    printf("listening on port %u\n", port);
    fflush(stdout);
  } else if ((child = start_sender(node, o)) < 0) {
    return die("starting the sender");
  }
  labyrinth_ucx_conn conn;
  if (labyrinth_ucx_accept(node, 30000, &conn)) return die("accept");
  uint64_t *lat = calloc((size_t)o->records, sizeof *lat);
  long bad = 0, leaked = 0;
  const uint64_t t0 = now_ns();
  if (lend_loop(pool, node, conn, o, lat, &bad, &leaked)) return 1;
  const double secs = (double)(now_ns() - t0) / 1e9;
  int status = 0;
  /* The sender's goodbye (closing its endpoints) needs this side's progress. */
  while (child > 0 && waitpid(child, &status, WNOHANG) == 0) labyrinth_ucx_progress(node, 10, NULL);
  labyrinth_ucx_stats s = {.struct_size = sizeof s};
  labyrinth_ucx_node_stats(node, &s);
  qsort(lat, (size_t)s.returned, sizeof *lat, cmp_u64);
  const size_t n = s.returned ? (size_t)s.returned : 1;
  printf("%llu records of %d bytes in %.3f s: %.0f records/s, %.1f MB/s; lend-to-return latency "
         "p50 %.1f us, p99 %.1f us; %ld bad records\n",
         (unsigned long long)s.returned, REC, secs, (double)s.returned / secs,
         (double)s.returned * REC / secs / 1e6, (double)lat[n / 2] / 1e3,
         (double)lat[n * 99 / 100] / 1e3, bad);
  labyrinth_ucx_node_detach(node);
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK && leaked == 0) leaked = -1;
  printf("pages: %llu lent in all, %llu returned, %llu back by peer death; %llu lent, %ld leaked\n",
         (unsigned long long)s.lent_total, (unsigned long long)s.returned,
         (unsigned long long)s.returned_by_peer_death, (unsigned long long)s.lent_now, leaked);
  labyrinth_ucx_node_destroy(node);
  free(lat);
  return bad || leaked || s.returned != (uint64_t)o->records || status != 0;
}

int main(int argc, char **argv) {
  struct opts o = {.records = 100000, .window = 32};
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--anon-arena")) o.anon_arena = 1;
    else if (!v) return fprintf(stderr, "labyrinth-remote: %s needs a value\n", a), 2;
    else if (!strcmp(a, "--records")) o.records = atol(v), ++i;
    else if (!strcmp(a, "--window")) o.window = atol(v), ++i;
    else if (!strcmp(a, "--listen")) o.listen_port = v, ++i;
    else if (!strcmp(a, "--connect")) o.connect_to = v, ++i;
    else if (!strcmp(a, "--sender-address")) o.address_hex = v, ++i;
    else return fprintf(stderr, "labyrinth-remote: unknown option %s\n", a), 2;
  }
  if (o.records < 1 || o.window < 1) return fprintf(stderr, "labyrinth-remote: bad counts\n"), 2;
  return o.connect_to || o.address_hex ? run_sender(&o) : run_receiver(&o);
}
