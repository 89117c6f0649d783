/*
 * labyrinth-xdp - the NIC receive path with AF_XDP, on a veth pair.
 *
 * The program moves into a private network namespace of its own (so the
 * veth pair vanishes with the process, Ctrl-C and kill included) holding
 * veth pair xa <-> xb; xb has 10.78.0.2/24. A sender thread blasts UDP
 * datagrams out of xa with an AF_PACKET socket (hand-made IPv4/UDP frames
 * from 10.78.0.3 to 10.78.0.2:9977) for a few seconds; they arrive on xb.
 *  - AF_XDP: an AF_XDP socket on xb, queue 0, whose UMEM is the pool's
 *    arena; its FILL ring is fed with labyrinth_void_alloc_page_gfp_atomic_
 *    exclusive() pages; each datagram lands in a page the receiver then owns,
 *    reads in place and frees; the FILL ring is refilled from the pool.
 *  - recvmsg + malloc: the same datagrams through the kernel's UDP stack into
 *    a UDP socket on 10.78.0.2:9977, one malloc'd buffer per datagram.
 * For each datagram size and receiver: packets/s, Gbit/s (UDP payload),
 * drops (sent - received), and the receiving thread's CPU time per packet
 * (CLOCK_THREAD_CPUTIME_ID; both receivers sleep in poll()/recvmsg when
 * idle). The kernel's share of receive (veth NAPI, XDP, the UDP stack) runs
 * in softirq on the sender's CPU for both and is not in that figure. At the
 * end: the pool's frames in flight and leaked, both 0 (exit 1 otherwise;
 * 130 after Ctrl-C, which ends the run early with the same check).
 * Exit 77, saying why, without root or AF_XDP.
 *
 * The AF_XDP receiver naps --nap-us (200 us) when its ring is empty rather
 * than taking a wakeup per datagram; its 16384 FILL frames (64 MiB) hold what
 * arrives meanwhile, and while the receiving thread is not scheduled. --nap-us 0 makes it sleep in poll() like the recvmsg receiver.
 *
 * usage: labyrinth-xdp [--duration SEC] [--sizes N,N] [--generic]
 *                      [--pool-mb MB] [--nap-us US] [--no-baseline]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <xdp/libxdp.h>

#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth_xdp.h>

#define PORT 9977
#define BATCH 64

static double opt_duration = 2.0;
static unsigned opt_sizes[4] = {64, 1472};
static unsigned opt_nsizes = 2;
static unsigned opt_pool_mb = 128;
static unsigned opt_nap_us = 200;
static int opt_generic = 0, opt_baseline = 1;

static atomic_int stop_all;     /* Ctrl-C */
static atomic_int sender_done;  /* this round's sender has finished */

struct result {
  uint64_t sent, received, bytes, cpu_ns;
  double secs;
};

static uint64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop_all, 1);
}

/* libbpf and libxdp report loading libxdp's program at length: keep their
 * warnings only (libxdp says so when it runs without its dispatcher). */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}
static int libxdp_quiet(enum libxdp_print_level level, const char *fmt, va_list ap) {
  return level == LIBXDP_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The namespace and veth pair; NULL when ready, else why not. */
static const char *make_world(void) {
  static char why[160];
  if (geteuid() != 0) return "needs root (a network namespace, AF_XDP: CAP_NET_ADMIN, CAP_NET_RAW)";
  int fd = socket(AF_XDP, SOCK_RAW, 0);
  if (fd < 0) {
    snprintf(why, sizeof why, "AF_XDP is unavailable: socket(AF_XDP): %s (kernel without CONFIG_XDP_SOCKETS?)", strerror(errno));
    return why;
  }
  close(fd);
  if (unshare(CLONE_NEWNET) != 0) {
    snprintf(why, sizeof why, "unshare(CLONE_NEWNET): %s", strerror(errno));
    return why;
  }
  if (system("ip link set lo up && "
             "ip link add xa numtxqueues 1 numrxqueues 1 type veth peer name xb numtxqueues 1 numrxqueues 1 && "
             "ip addr add 10.78.0.2/24 dev xb && ip link set xa up && ip link set xb up && "
             "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.xb.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1") != 0)
    return "could not create the veth pair with ip(8) (is iproute2 installed?)";
  return NULL;
}

/* IPv4 header checksum. */
static uint16_t ip_checksum(const unsigned char *h) {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* An Ethernet/IPv4/UDP frame to xb carrying `payload` bytes; returns its length. */
static size_t make_frame(unsigned char *f, const unsigned char *dst_mac, unsigned payload) {
  const size_t len = 14 + 20 + 8 + payload;
  memset(f, 0, len);
  memcpy(f, dst_mac, 6);
  f[6] = 0x02; f[11] = 0x0a;  /* a locally administered source MAC */
  f[12] = 0x08;
  unsigned char *ip = f + 14;
  ip[0] = 0x45; ip[2] = (unsigned char)((20 + 8 + payload) >> 8); ip[3] = (unsigned char)(20 + 8 + payload);
  ip[8] = 64; ip[9] = 17;
  inet_pton(AF_INET, "10.78.0.3", ip + 12);
  inet_pton(AF_INET, "10.78.0.2", ip + 16);
  uint16_t c = ip_checksum(ip);
  ip[10] = (unsigned char)(c >> 8); ip[11] = (unsigned char)c;
  unsigned char *udp = ip + 20;
  udp[0] = PORT >> 8; udp[1] = PORT & 0xff; udp[2] = PORT >> 8; udp[3] = PORT & 0xff;
  udp[4] = (unsigned char)((8 + payload) >> 8); udp[5] = (unsigned char)(8 + payload);
  return len;
}

struct sender_arg {
  unsigned payload;
  uint64_t sent;
  double secs; /* how long it sent */
};

/* Blast frames out of xa with sendmmsg for opt_duration seconds. */
static void *sender(void *p) {
  struct sender_arg *a = p;
  pin_to_cpu(0);
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("xa"), .sll_halen = 6};
  unsigned char mac[6];
  FILE *m = fopen("/sys/class/net/xb/address", "r");
  if (!m || fscanf(m, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) memset(mac, 0xff, 6);
  if (m) fclose(m);
  static unsigned char frame[2048];
  size_t len = make_frame(frame, mac, a->payload);
  struct iovec iov = {frame, len};
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; ++i)
    msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1}};
  const uint64_t start = now_ns(CLOCK_MONOTONIC), end = start + (uint64_t)(opt_duration * 1e9);
  while (!atomic_load(&stop_all) && now_ns(CLOCK_MONOTONIC) < end) {
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n > 0) a->sent += (uint64_t)n;
  }
  a->secs = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
  close(fd);
  atomic_store(&sender_done, 1);
  return NULL;
}

/* The AF_XDP receiver: takes frames until the sender is done and the ring
 * stays empty, touching each datagram's first payload byte. */
static void xdp_receive(labyrinth_pool *pool, labyrinth_xdp_socket *s, struct result *r) {
  labyrinth_xdp_frame f[BATCH];
  struct pollfd pfd = {.fd = labyrinth_xdp_socket_fd(s), .events = POLLIN};
  volatile unsigned char sink = 0;
  int idle = 0;
  while (idle < 20) {
    size_t n = 0;
    labyrinth_xdp_receive(s, f, BATCH, &n);
    for (size_t i = 0; i < n; ++i) {
      const unsigned char *b = (const unsigned char *)f[i].page + f[i].offset;
      if (f[i].len > 42 && b[12] == 0x08 && b[13] == 0 && b[23] == 17 && b[36] == (PORT >> 8) && b[37] == (PORT & 0xff)) {
        sink ^= b[42];
        r->bytes += f[i].len - 42;
        r->received++;
      }
      labyrinth_free_pages(pool, f[i].page);
    }
    if (n == 0 && opt_nap_us && !atomic_load(&sender_done)) {
      /* Nap instead of a wakeup per datagram: the FILL ring's frames hold
       * what arrives meanwhile (interrupt moderation, done by the reader). */
      struct timespec ts = {0, (long)opt_nap_us * 1000};
      nanosleep(&ts, NULL);
    } else if (n == 0) {
      int ready = poll(&pfd, 1, 10);
      if (ready == 0 && atomic_load(&sender_done)) ++idle;
    }
  }
}

/* The classic receiver: recvmsg into a malloc'd buffer per datagram. */
static void recvmsg_receive(int fd, struct result *r) {
  volatile unsigned char sink = 0;
  int idle = 0;
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  while (idle < 20) {
    unsigned char *buf = malloc(2048);
    struct iovec iov = {buf, 2048};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n >= 0) {
      sink ^= buf[0];
      r->bytes += (uint64_t)n;
      r->received++;
    }
    free(buf);
    if (n < 0) {
      int ready = poll(&pfd, 1, 10);
      if (ready == 0 && atomic_load(&sender_done)) ++idle;
    }
  }
}

/* One round: the sender on CPU 0, this thread (CPU 1) receives. */
static void run_round(unsigned payload, labyrinth_pool *pool, labyrinth_xdp_socket *s, int udp_fd,
                      struct result *r) {
  memset(r, 0, sizeof *r);
  pin_to_cpu(1);
  atomic_store(&sender_done, 0);
  struct sender_arg a = {payload, 0, 0};
  pthread_t t;
  const uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  pthread_create(&t, NULL, sender, &a);
  if (s)
    xdp_receive(pool, s, r);
  else
    recvmsg_receive(udp_fd, r);
  pthread_join(t, NULL);
  /* Rates over the sending time; the receiver's idle tail (20 empty 10 ms
   * polls) costs it next to no CPU. */
  r->secs = a.secs > 0 ? a.secs : 1e-9;
  r->cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
  r->sent = a.sent;
}

static void print_row(const char *name, unsigned payload, const struct result *r) {
  printf("| %-16s | %5u | %10.0f | %7.3f | %10llu | %10llu | %8.1f |\n", name, payload,
         r->received / r->secs, r->bytes * 8.0 / r->secs / 1e9,
         (unsigned long long)r->received, (unsigned long long)(r->sent - r->received),
         r->received ? (double)r->cpu_ns / (double)r->received : 0.0);
}

static int usage(const char *why) {
  fprintf(stderr, "labyrinth-xdp: %s\n"
          "usage: labyrinth-xdp [--duration SEC] [--sizes N[,N...]] [--generic] [--pool-mb MB] [--no-baseline]\n"
          "  --duration SEC  seconds of sending per receiver and size (default 2)\n"
          "  --sizes LIST    UDP payload sizes, 18..1472, at most 4 (default 64,1472)\n"
          "  --generic       attach the XDP program in generic (SKB) mode\n"
          "  --pool-mb MB    pool size (default 128; the FILL ring takes 64 MiB)\n"
          "  --nap-us US     AF_XDP: sleep US when the ring is empty (default 200; 0: poll() wakeups)\n"
          "  --no-baseline   skip recvmsg + malloc\n", why);
  return 2;
}

static int parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--generic")) opt_generic = 1;
    else if (!strcmp(a, "--no-baseline")) opt_baseline = 0;
    else if (!v) return usage("missing value or unknown option");
    else if (!strcmp(a, "--duration") && ++i) opt_duration = atof(v);
    else if (!strcmp(a, "--pool-mb") && ++i) opt_pool_mb = (unsigned)atoi(v);
    else if (!strcmp(a, "--nap-us") && ++i) opt_nap_us = (unsigned)atoi(v);
    else if (!strcmp(a, "--sizes") && ++i) {
      opt_nsizes = 0;
      for (char *dup = strdup(v), *tok = strtok(dup, ","); tok && opt_nsizes < 4; tok = strtok(NULL, ","))
        opt_sizes[opt_nsizes++] = (unsigned)atoi(tok);
    } else return usage("unknown option");
  }
  if (opt_duration <= 0 || opt_duration > 60) return usage("--duration must be in (0, 60]");
  if (opt_pool_mb < 96 || opt_pool_mb > 4096) return usage("--pool-mb must be in [96, 4096]");
  if (opt_nap_us > 10000) return usage("--nap-us must be at most 10000");
  for (unsigned i = 0; i < opt_nsizes; ++i)
    if (opt_sizes[i] < 18 || opt_sizes[i] > 1472) return usage("sizes must be in [18, 1472]");
  return 0;
}

static void fail_msg(const char *what) {
  fprintf(stderr, "labyrinth-xdp: %s: %s: %s\n", what, labyrinth_status_name(labyrinth_last_status()),
          labyrinth_last_error_message());
}

/* One AF_XDP round: a UMEM and a socket made for it and destroyed after. */
static int xdp_round(labyrinth_pool *pool, unsigned payload, struct result *r, const char **mode) {
  labyrinth_xdp_umem *u = NULL;
  labyrinth_xdp_socket *s = NULL;
  labyrinth_status st = labyrinth_xdp_umem_create(pool, &u);
  if (st != LABYRINTH_OK) return fail_msg("labyrinth_xdp_umem_create"), st == LABYRINTH_ERR_UNSUPPORTED ? 77 : 1;
  labyrinth_xdp_socket_options o;
  labyrinth_xdp_socket_options_init(&o);
  o.ifname = "xb";
  o.ring_size = 16384;
  o.fill_target = 16384;
  o.flags = opt_generic ? LABYRINTH_XDP_GENERIC : 0;
  st = labyrinth_xdp_socket_create(u, &o, &s);
  if (st != LABYRINTH_OK) {
    fail_msg("labyrinth_xdp_socket_create");
    labyrinth_xdp_umem_destroy(u);
    return st == LABYRINTH_ERR_UNSUPPORTED ? 77 : 1;
  }
  labyrinth_xdp_socket_info in = {.struct_size = sizeof in};
  labyrinth_xdp_socket_info_get(s, &in);
  *mode = in.mode == LABYRINTH_XDP_MODE_ZEROCOPY ? (in.generic ? "zero-copy, generic" : "zero-copy, native")
                                                : (in.generic ? "copy, generic XDP" : "copy, native XDP");
  run_round(payload, pool, s, -1, r);
  labyrinth_xdp_socket_info_get(s, &in);
  printf("AF_XDP %u bytes: socket dropped %llu (RX ring full %llu), FILL ring found empty %llu times, "
         "refills that found the pool empty %llu\n", payload, (unsigned long long)in.rx_dropped,
         (unsigned long long)in.rx_ring_full, (unsigned long long)in.fill_ring_empty,
         (unsigned long long)in.fill_starved);
  if (labyrinth_xdp_socket_destroy(s) != LABYRINTH_OK || labyrinth_xdp_umem_destroy(u) != LABYRINTH_OK)
    return fail_msg("teardown"), 1;
  return 0;
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
  inet_pton(AF_INET, "10.78.0.2", &a.sin_addr);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("labyrinth-xdp: bind 10.78.0.2");
    close(fd);
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  if (parse_args(argc, argv)) return 2;
  const char *why = make_world();
  if (why) {
    printf("labyrinth-xdp: cannot run here: %s\n", why);
    return 77;
  }
  libbpf_set_print(libbpf_quiet);
  libxdp_set_print(libxdp_quiet);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  labyrinth_pool_options po;
  labyrinth_pool_options_init(&po);
  po.size_bytes = (size_t)opt_pool_mb << 20;
  labyrinth_pool *pool = NULL;
  if (labyrinth_pool_create(&po, &pool) != LABYRINTH_OK) return fail_msg("labyrinth_pool_create"), 1;
  int udp_fd = opt_baseline ? udp_socket() : -1;
  if (opt_baseline && udp_fd < 0) return 1;
  const char *mode = "?";
  struct result r[4][2];
  int rc = 0;
  unsigned rows = 0; /* sizes whose rounds all ran to the end */
  for (unsigned i = 0; i < opt_nsizes && !rc && !atomic_load(&stop_all); ++i) {
    rc = xdp_round(pool, opt_sizes[i], &r[i][0], &mode);
    if (!rc && opt_baseline) run_round(opt_sizes[i], pool, NULL, udp_fd, &r[i][1]);
    if (!rc && !atomic_load(&stop_all)) rows = i + 1;
  }
  if (atomic_load(&stop_all)) printf("labyrinth-xdp: interrupted; the rows below ran to the end\n");
  if (udp_fd >= 0) close(udp_fd);
  if (rc == 0) {
    printf("veth pair in a private network namespace; AF_XDP mode: %s; %.1f s per row; "
           "sender on CPU 0, receiver on CPU 1; AF_XDP nap %u us\n", mode, opt_duration, opt_nap_us);
    printf("| receiver         | bytes |  packets/s |  Gbit/s |   received |    dropped | CPU ns/pkt |\n"
           "|---|---|---|---|---|---|---|\n");
    for (unsigned i = 0; i < rows; ++i) {
      print_row("AF_XDP (pages)", opt_sizes[i], &r[i][0]);
      if (opt_baseline) print_row("recvmsg + malloc", opt_sizes[i], &r[i][1]);
    }
  }
  labyrinth_stats ps = {.struct_size = sizeof ps};
  labyrinth_pool_stats(pool, &ps);
  printf("pool: %llu frames in flight, %llu leaked\n", (unsigned long long)ps.inflight_pages,
         (unsigned long long)ps.allocated_pages);
  if (ps.inflight_pages || ps.allocated_pages) rc = rc ? rc : 1;
  if (!rc && atomic_load(&stop_all)) rc = 130; /* interrupted: 128 + SIGINT */
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) return fail_msg("labyrinth_pool_destroy"), 1;
  return rc;
}
