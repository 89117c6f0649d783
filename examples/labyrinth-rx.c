/*
 * labyrinth-rx - the NIC receive path, on loopback.
 *
 * Sender threads blast UDP datagrams at a socket on 127.0.0.1 for a few
 * seconds. The receiver takes them with an io_uring multishot receive: the
 * kernel picks each datagram's page itself from a provided-buffer ring that
 * the receiver keeps fed with pages from labyrinth_void_alloc_page_gfp_
 * atomic_exclusive(), one for every page it has finished with and freed.
 * While a page sits in that ring it belongs to the kernel (free or transfer
 * would return BUSY); the completion hands it to the receiver, which reads
 * the datagram in place (no copy) and frees it. The same senders then feed
 * a classic receiver that recvmsg()s into malloc'd buffers, for comparison.
 * The report gives packets/s, Gbit/s, each receiver thread's CPU per packet
 * (user and system apart) and packets per call that waits for them, the
 * latency of each allocation (labyrinth's atomic page vs malloc) at
 * p50/p99/p99.9/max, and the pool's pages in flight and leaked at the end,
 * which must both be 0 (the exit status is 1 otherwise; 77 if this machine
 * has no usable io_uring).
 *
 * --mode incremental (the default where the kernel has it: incremental
 * consumption with a minimum room per receive, max_datagram) lets one page
 * take 4096 / --size datagrams, none cut: each completion is a slice of a
 * page, released by its generation when read (a completion flagged
 * LABYRINTH_COMPLETION_MAYBE_TRUNC is counted and reported); the ring feeds
 * itself from the pool. --mode page gives each datagram a page of its own; --mode
 * bundle receives with bundles (labyrinth_ring_recv_bundle, Linux 6.10),
 * which on UDP also means one datagram per page: the kernel sizes a bundle
 * by the bytes a socket reports queued, which only TCP reports. The
 * report gives the pool bytes taken per datagram (blocks taken from the pool
 * times their size, over the datagrams received).
 *
 * With --tcp one sender writes a TCP stream (in sends of 32 messages of
 * --size bytes) and both receivers read it (recvmsg reads up to 4096 bytes
 * a call); a "packet" is then --size bytes of the stream, and "dropped" is
 * what was still in flight when the receiver stopped. --mode bundle is
 * where bundles pay: one completion carries many pages.
 *
 * With --starve the receiver keeps the pages it received and gives them back
 * only once a millisecond, so the provided-buffer ring runs dry over and
 * over: the ring re-arms the receive by itself each time, and the report
 * counts the starvations, re-arms and time starved.
 *
 * usage: labyrinth-rx [--duration SEC] [--size BYTES] [--senders N]
 *                     [--entries N] [--pool-mb MB] [--pin auto|strict|off]
 *                     [--mode page|incremental|bundle] [--no-baseline] [--starve]
 *                     [--tcp]
 *
 * Pinning: --pin auto (the default) mlocks the pool when RLIMIT_MEMLOCK
 * allows and otherwise runs it unpinned with one warning, so a normal user
 * with Debian's 8 MiB limit can run it; --pin strict refuses to run unpinned.
 * The arena is not registered as fixed buffers (multishot receive into a
 * provided-buffer ring does not use them), so the limit only meets mlock.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth_uring.h>

#include "rx_options.h"
#include "rx_timing.h"

/* ---- senders ---------------------------------------------------------- */
static atomic_int stop_senders;
static atomic_ullong sent_total;
static struct sockaddr_in target;

static void *sender_main(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  int fd = socket(AF_INET, opt_tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0) {
    perror("labyrinth-rx: sender socket");
    return NULL;
  }
  enum { BATCH = 32 };
  static __thread unsigned char bufs[BATCH][4096];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; ++i) {
    memset(bufs[i], 0x5a ^ i, sizeof(bufs[i]));
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = opt_size;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t seq = 0, sent = 0;
  while (!atomic_load_explicit(&stop_senders, memory_order_relaxed)) {
    for (int i = 0; i < BATCH; ++i) {
      header h = {id, opt_size, seq++};
      memcpy(bufs[i], &h, sizeof(h));
    }
    if (opt_tcp) { /* a stream: sent counts bytes here, --size messages below */
      ssize_t k = send(fd, bufs, sizeof(bufs), MSG_NOSIGNAL | MSG_DONTWAIT);
      struct pollfd out = {fd, POLLOUT, 0};
      if (k < 0 && errno == EAGAIN) poll(&out, 1, 10); /* never blocks past a stop */
      else if (k <= 0) break;
      else sent += (uint64_t)k;
      continue;
    }
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n > 0) sent += (uint64_t)n;
    else if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR) break;
  }
  atomic_fetch_add(&sent_total, opt_tcp ? sent / opt_size : sent);
  close(fd);
  return NULL;
}

static pthread_t senders[64];

static void start_senders(void) {
  atomic_store(&stop_senders, 0);
  atomic_store(&sent_total, 0);
  for (unsigned i = 0; i < opt_senders; ++i)
    pthread_create(&senders[i], NULL, sender_main, (void *)(uintptr_t)i);
}

static uint64_t stop_all_senders(void) {
  atomic_store(&stop_senders, 1);
  for (unsigned i = 0; i < opt_senders; ++i) pthread_join(senders[i], NULL);
  return atomic_load(&sent_total);
}

/* The receiving socket; with --tcp the accepted connection of the sender,
   which this starts (for UDP the caller starts the senders). */
static int make_receiver(void) {
  int fd = socket(AF_INET, opt_tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  int big = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  memset(&target, 0, sizeof(target));
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(target);
  if (bind(fd, (struct sockaddr *)&target, sizeof(target)) != 0 ||
      getsockname(fd, (struct sockaddr *)&target, &len) != 0) {
    perror("labyrinth-rx: receiver socket");
    exit(1);
  }
  if (!opt_tcp) return fd;
  listen(fd, 1);
  start_senders();
  int conn = accept(fd, NULL, NULL);
  close(fd);
  if (conn < 0) perror("labyrinth-rx: accept");
  return conn;
}

typedef struct result {
  uint64_t packets, bytes, sent, bad, maybe_trunc, cut;
  uint64_t waits; /* labyrinth_ring_complete or recvmsg calls */
  uint64_t sink;  /* what reading the data gave, so that it is not optimised away */
  double seconds;
  cpu_split cpu;
  hist *alloc;
} result;

/* Read a received datagram (or, with --tcp, bytes of the stream) in place
   and count it: the same work for both receivers. */
static void count_packet(result *r, const void *data, size_t len) {
  uint64_t x = opt_tcp ? read_words(data, len) : consume(data, len);
  if (x == UINT64_MAX) r->bad++;
  r->sink += x;
  r->packets++;
  r->bytes += (uint64_t)len;
}

/* ---- receiver 1: multishot receive into labyrinth pages --------------- */
/* Give a page the receiver is done with back to the pool, and a fresh
   atomic exclusive page (its allocation timed) to the provided-buffer ring. */
static void recycle(labyrinth_pool *pool, labyrinth_ring *ring, void *done, result *r) {
  labyrinth_free_pages(pool, done);
  uint64_t a = ticks();
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  uint64_t b = ticks();
  hist_add(r->alloc, b - a);
  if (page && labyrinth_ring_provide(ring, page) != LABYRINTH_OK) labyrinth_free_pages(pool, page);
}

/* Give a slice back by its generation, so that a stale pointer can never
   release a newer slice at the same address; a refusal is a bug here. */
static void release_slice(labyrinth_ring *ring, void *slice, uint32_t gen) {
  if (labyrinth_ring_slice_release_gen(ring, slice, gen) != LABYRINTH_OK) {
    fprintf(stderr, "labyrinth-rx: slice release: %s\n", labyrinth_last_error_message());
    exit(1);
  }
}

/* Blocks in the provided-buffer ring before the first datagram. */
static uint64_t refills_at_start;

/* Create the ring for --mode and, in page mode, fill its provided-buffer
   ring; *rs gets its stats. 0, or the exit status (77: no io_uring). */
static int open_ring(labyrinth_pool *pool, labyrinth_ring **out, labyrinth_ring_stats *rs) {
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = 64;
  o.pbuf_entries = opt_entries;
  /* We feed the ring ourselves (timing each allocation); only this thread
     uses the ring, so the kernel may batch completion work for it. */
  o.flags = LABYRINTH_RING_MANUAL_REFILL | LABYRINTH_RING_SINGLE_THREAD | LABYRINTH_RING_NO_REGISTER;
  /* Incremental: the ring feeds itself from the pool (allocations not timed);
     "if available" so that the default falls back to a page per datagram. */
  if (opt_mode == MODE_INCREMENTAL || opt_mode < 0) {
    o.flags = LABYRINTH_RING_SINGLE_THREAD | LABYRINTH_RING_NO_REGISTER |
              (opt_mode == MODE_INCREMENTAL ? LABYRINTH_RING_PBUF_INCREMENTAL
                                            : LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE);
    /* The kernel never starts a datagram in a block with less room left, so
       none is cut (a block then takes 4096 / size datagrams). */
    o.max_datagram = opt_size;
  }
  labyrinth_ring *ring = NULL;
  labyrinth_status st = labyrinth_ring_create(pool, &o, &ring);
  if (st != LABYRINTH_OK) {
    fprintf(stderr, "labyrinth-rx: %s: %s\n", labyrinth_status_name(st),
            labyrinth_last_error_message());
    return st == LABYRINTH_ERR_UNSUPPORTED ? 77 : 1;
  }
  memset(rs, 0, sizeof(*rs));
  rs->struct_size = sizeof(*rs);
  labyrinth_ring_get_stats(ring, rs);
  /* Fill the provided-buffer ring with atomic exclusive pages. */
  for (unsigned i = 0; i < opt_entries && !(o.flags & LABYRINTH_RING_PBUF_INCREMENTAL_IF_AVAILABLE) &&
                       !(o.flags & LABYRINTH_RING_PBUF_INCREMENTAL);
       ++i) {
    void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
    if (!page || labyrinth_ring_provide(ring, page) != LABYRINTH_OK) {
      fprintf(stderr, "labyrinth-rx: filling the ring: %s\n", labyrinth_last_error_message());
      if (page) labyrinth_free_pages(pool, page);
      labyrinth_ring_destroy(ring);
      return 1;
    }
  }
  labyrinth_ring_get_stats(ring, rs);
  refills_at_start = rs->pbuf_refills;
  *out = ring;
  return 0;
}

static int run_labyrinth(labyrinth_pool *pool, result *r, labyrinth_ring_stats *rs) {
  labyrinth_ring *ring = NULL;
  int rc = open_ring(pool, &ring, rs);
  if (rc != 0) return rc;
  const int slices = rs->pbuf_incremental != 0;
  int fd = make_receiver();
  labyrinth_status st = opt_mode == MODE_BUNDLE ? labyrinth_ring_recv_bundle(ring, fd, 0, 0, 1)
                                                : labyrinth_ring_recv_multishot(ring, fd, 0, 1);
  if (st != LABYRINTH_OK) {
    fprintf(stderr, "labyrinth-rx: %s: %s\n", labyrinth_status_name(st),
            labyrinth_last_error_message());
    labyrinth_ring_destroy(ring);
    close(fd);
    return st == LABYRINTH_ERR_UNSUPPORTED ? 77 : 1;
  }
  if (!opt_tcp) start_senders();
  double t0 = now_s(), end = t0 + opt_duration;
  cpu_split cpu0 = thread_cpu();
  labyrinth_completion c[256];
  /* --starve: pages (or slices, as many as the ring's blocks hold) kept back */
  const size_t max_held = (size_t)opt_entries * (slices ? 4096 / opt_size : 1);
  void **held = calloc(max_held, sizeof(void *));
  uint32_t *held_gen = calloc(max_held, sizeof(uint32_t));
  size_t nheld = 0;
  double give_back_at = t0 + 0.001;
  while (now_s() < end) {
    size_t n = 0;
    r->waits++;
    if (labyrinth_ring_complete(ring, c, 256, 32, 1, &n) != LABYRINTH_OK) {
      fprintf(stderr, "labyrinth-rx: %s\n", labyrinth_last_error_message());
      break;
    }
    for (size_t i = 0; i < n; ++i) {
      if (c[i].page) {
        if (c[i].flags & LABYRINTH_COMPLETION_MAYBE_TRUNC) {
          r->maybe_trunc++; /* an exact fit at the block's end is flagged too */
          if (!opt_tcp && c[i].result != (int32_t)opt_size) r->cut++;
        }
        if (c[i].result > 0) count_packet(r, c[i].page, (size_t)c[i].result);
        if (opt_starve && nheld < max_held) {
          held_gen[nheld] = c[i].slice_gen;
          held[nheld++] = c[i].page;
        } else if (slices)
          release_slice(ring, c[i].page, c[i].slice_gen);
        else
          recycle(pool, ring, c[i].page, r);
      }
      if (!(c[i].flags & LABYRINTH_COMPLETION_MORE)) {
        /* A starved receive is re-armed by the ring; this is a real end. */
        fprintf(stderr, "labyrinth-rx: the receive ended: %d\n", c[i].result);
        end = 0;
      }
    }
    if (opt_starve && now_s() >= give_back_at) {
      for (; nheld && slices; --nheld) release_slice(ring, held[nheld - 1], held_gen[nheld - 1]);
      while (nheld) recycle(pool, ring, held[--nheld], r);
      give_back_at = now_s() + 0.001;
    }
  }
  r->seconds = now_s() - t0;
  if (opt_tcp) r->packets = r->bytes / opt_size;
  r->cpu = cpu_since(cpu0);
  for (; nheld && slices; --nheld) release_slice(ring, held[nheld - 1], held_gen[nheld - 1]);
  while (nheld) labyrinth_free_pages(pool, held[--nheld]);
  free(held);
  free(held_gen);
  r->sent = stop_all_senders();
  memset(rs, 0, sizeof(*rs));
  rs->struct_size = sizeof(*rs);
  labyrinth_ring_get_stats(ring, rs);
  /* Teardown cancels the receive, waits for the kernel, and returns the
     pages still in the provided-buffer ring (and any it filled that we never
     took) to the pool. */
  labyrinth_ring_destroy(ring);
  close(fd);
  return 0;
}

/* ---- receiver 2: recvmsg into malloc'd buffers ------------------------ */
static void run_baseline(result *r) {
  int fd = make_receiver();
  struct timeval tv = {0, 50000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (!opt_tcp) start_senders();
  double t0 = now_s(), end = t0 + opt_duration;
  cpu_split cpu0 = thread_cpu();
  unsigned since_clock = 0;
  for (;;) {
    if (++since_clock == 64) {
      since_clock = 0;
      if (now_s() >= end) break;
    }
    uint64_t a = ticks();
    void *buf = malloc(4096);
    uint64_t b = ticks();
    hist_add(r->alloc, b - a);
    struct iovec iov = {buf, 4096};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    r->waits++;
    ssize_t n = recvmsg(fd, &mh, 0);
    if (n > 0) {
      count_packet(r, buf, (size_t)n);
    } else if (now_s() >= end) {
      free(buf);
      break;
    }
    free(buf);
  }
  r->seconds = now_s() - t0;
  if (opt_tcp) r->packets = r->bytes / opt_size;
  r->cpu = cpu_since(cpu0);
  r->sent = stop_all_senders();
  close(fd);
}

static void print_row(const char *name, const result *r) {
  double pps = (double)r->packets / r->seconds;
  double gbit = (double)r->bytes * 8.0 / r->seconds / 1e9;
  double drop = r->sent ? 100.0 * (1.0 - (double)r->packets / (double)r->sent) : 0.0;
  double cpu_ns = r->packets ? (r->cpu.user + r->cpu.sys) * 1e9 / (double)r->packets : 0.0;
  if (r->sink == 42) printf(" ");
  printf("%-31s %10.0f %6.2f %8.0f %6.1f %6.1f %6.1f %8.0f %6.1f%%\n", name, pps, gbit, cpu_ns,
         hist_pct_ns(r->alloc, 0.50), hist_pct_ns(r->alloc, 0.99), hist_pct_ns(r->alloc, 0.999),
         (double)r->alloc->max * ns_per_tick, drop);
}

/* Where a receiver's CPU went: user and system ns per packet, and packets
   per call that waits for them. */
static void print_cpu(const char *name, const result *r, const char *call) {
  if (!r->packets) return;
  double p = (double)r->packets;
  printf("%s: user %.0f + system %.0f ns/packet; %.2f packets per %s call\n", name,
         r->cpu.user * 1e9 / p, r->cpu.sys * 1e9 / p, p / (double)(r->waits ? r->waits : 1), call);
}

/* The report of both runs: the table, where the CPU went, the pool bytes per
   datagram, starvations and cut or malformed datagrams. */
static void report(const result *lab, const result *base, const labyrinth_ring_stats *rs) {
  printf("%-31s %10s %6s %8s %6s %6s %6s %8s %7s\n", "receiver", "packets/s", "Gbit/s",
         "cpu/pkt", "p50", "p99", "p99.9", "max", "dropped");
  print_row(opt_mode == MODE_BUNDLE ? "labyrinth multishot, bundle"
            : rs->pbuf_incremental ? "labyrinth multishot, incremental"
                                  : "labyrinth multishot, page",
            lab);
  if (opt_baseline) print_row("recvmsg + malloc(4096)", base);
  printf("(cpu/pkt: receiver thread CPU ns per packet; p50..max: ns per allocation,\n"
         " labyrinth_void_alloc_page_gfp_atomic_exclusive vs malloc(4096), timer resolution "
         "%.1f ns;\n dropped: sent but not received, the socket buffer overflowed)\n",
         tick_resolution_ns);
  print_cpu("labyrinth", lab, "labyrinth_ring_complete");
  if (opt_baseline) print_cpu("recvmsg + malloc", base, "recvmsg");
  if (opt_baseline && base->packets)
    printf("\nlabyrinth / recvmsg: %.2fx packets/s\n",
           ((double)lab->packets / lab->seconds) / ((double)base->packets / base->seconds));
  if (lab->packets)
    printf("pool bytes held per datagram: %.0f (%llu blocks of %u bytes taken from the pool "
           "after the first fill, for %llu datagrams; recvmsg + malloc: 4096)\n",
           (double)(rs->pbuf_refills - refills_at_start) * rs->pbuf_block_bytes /
               (double)lab->packets,
           (unsigned long long)(rs->pbuf_refills - refills_at_start), rs->pbuf_block_bytes,
           (unsigned long long)lab->packets);
  printf("provided-buffer ring ran dry %llu time(s); the ring re-armed the receive %llu "
         "time(s), %.3f ms starved in all\n",
         (unsigned long long)rs->recv_starvations, (unsigned long long)rs->recv_rearms,
         (double)rs->recv_starved_ns / 1e6);
  if (rs->pbuf_incremental)
    printf("slices flagged MAYBE_TRUNC (reached the end of their block): %llu, of them "
           "shorter than --size (cut): %llu\n",
           (unsigned long long)lab->maybe_trunc, (unsigned long long)lab->cut);
  if (lab->bad || base->bad)
    printf("MALFORMED datagrams: %llu labyrinth, %llu recvmsg\n", (unsigned long long)lab->bad,
           (unsigned long long)base->bad);
}

int main(int argc, char **argv) {
  if (parse_options(argc, argv) != 0) return 2;
  calibrate();

  labyrinth_pool_options po;
  labyrinth_pool_options_init(&po);
  po.size_bytes = (size_t)opt_pool_mb << 20;
  po.flags = (po.flags & ~LABYRINTH_POOL_PIN_MASK) | opt_pin;
  labyrinth_pool *pool = NULL;
  if (labyrinth_pool_create(&po, &pool) != LABYRINTH_OK) {
    fprintf(stderr, "labyrinth-rx: pool: %s\n", labyrinth_last_error_message());
    if (opt_pin == LABYRINTH_POOL_PIN)
      fprintf(stderr, "labyrinth-rx: here: --pin auto (the default) or --pin off runs unpinned\n");
    return 1;
  }
  struct utsname u;
  uname(&u);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  printf("labyrinth-rx: %u-byte %s on 127.0.0.1, %u sender thread(s), %.1f s per receiver\n",
         opt_size, opt_tcp ? "messages of a TCP stream" : "UDP datagrams", opt_senders, opt_duration);
  labyrinth_stats ps;
  memset(&ps, 0, sizeof(ps));
  ps.struct_size = sizeof(ps);
  labyrinth_pool_stats(pool, &ps);
  printf("machine: %ld CPU(s), %s %s; pool %u MiB (%s), provided-buffer ring %u pages\n\n", cpus,
         u.sysname, u.release, opt_pool_mb,
         (ps.flags & LABYRINTH_POOL_PIN) ? "pinned" : "not pinned", opt_entries);

  hist *h1 = calloc(1, sizeof(hist)), *h2 = calloc(1, sizeof(hist));
  result lab = {0}, base = {0};
  lab.alloc = h1;
  base.alloc = h2;
  labyrinth_ring_stats rs;
  int rc = run_labyrinth(pool, &lab, &rs);
  if (rc == 77) {
    printf("io_uring is not usable here (see above); nothing to measure.\n");
    labyrinth_pool_destroy(pool);
    return 77;
  }
  if (rc != 0) return rc;
  if (opt_baseline) run_baseline(&base);

  report(&lab, &base, &rs);

  labyrinth_stats s;
  memset(&s, 0, sizeof(s));
  s.struct_size = sizeof(s);
  labyrinth_pool_stats(pool, &s);
  printf("\npool at the end: %llu pages in flight, %llu leaked (allocated), %llu reserve uses\n",
         (unsigned long long)s.inflight_pages, (unsigned long long)s.allocated_pages,
         (unsigned long long)s.reserve_uses);
  int leak = s.inflight_pages != 0 || s.allocated_pages != 0;
  labyrinth_status dst = labyrinth_pool_destroy(pool);
  if (dst != LABYRINTH_OK) {
    fprintf(stderr, "labyrinth-rx: pool destroy: %s\n", labyrinth_last_error_message());
    leak = 1;
  }
  free(h1);
  free(h2);
  if (lab.packets == 0) {
    fprintf(stderr, "labyrinth-rx: no packet received\n");
    return 1;
  }
  return leak || lab.bad || base.bad || lab.cut ? 1 : 0;
}
