/*
 * labyrinth-cp - a zero-copy file copy with O_DIRECT through registered pages.
 *
 * The source is read and the destination written with O_DIRECT, so the data
 * goes between the disks and the pool's pages by DMA, never through the page
 * cache, and with io_uring fixed buffers (the pool's arena is registered with
 * the ring once), so no I/O pins or maps a page on the way. Each block is a
 * power-of-two run of pages owned by the copier; while the kernel reads into
 * it or writes from it, it belongs to the kernel (labyrinth_free_pages would
 * return BUSY). A few blocks are kept in flight; each completed read is
 * written from the same page, then the page reads the next block. A checksum
 * of every block is taken as it passes, then the destination is read back
 * the same way and its checksum compared. Prints MB/s for the copy and the
 * verification. With --self-test it makes its own source file first.
 *
 * usage: labyrinth-cp SRC DST [--block-kb KB] [--depth N] [--buffered]
 *        labyrinth-cp --self-test [MB] [--block-kb KB] [--depth N] [--buffered]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth_uring.h>

static unsigned opt_block_kb = 256, opt_depth = 8;
static int opt_buffered = 0;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A fast 64-bit hash of a block (word-wise multiply-xorshift). */
static uint64_t block_hash(const void *data, size_t len, uint64_t seed) {
  const uint64_t *w = (const uint64_t *)data;
  uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull);
  for (size_t i = 0; i < len / 8; ++i) {
    h ^= w[i] * 0xff51afd7ed558ccdull;
    h = (h << 31 | h >> 33) * 0xc4ceb9fe1a85ec53ull;
  }
  const unsigned char *t = (const unsigned char *)data + (len & ~(size_t)7);
  for (size_t i = 0; i < (len & 7); ++i) h = (h ^ t[i]) * 0x100000001b3ull;
  return h;
}

static int fail(const char *what) {
  fprintf(stderr, "labyrinth-cp: %s: %s: %s\n", what, labyrinth_status_name(labyrinth_last_status()),
          labyrinth_last_error_message());
  return labyrinth_last_status() == LABYRINTH_ERR_UNSUPPORTED ? 77 : 1;
}

typedef struct slot {
  void *page;
  uint64_t block; /* block number in flight */
  int writing;
} slot;

/*
 * Pass over `size` bytes: read every block of `in` into pages; if out >= 0
 * write it back at the same offset. hashes[block] receives each block's hash.
 */
static int pass(labyrinth_pool *pool, labyrinth_ring *ring, int in, int out, uint64_t size,
                uint64_t *hashes) {
  const uint64_t bsize = (uint64_t)opt_block_kb << 10;
  const uint64_t nblocks = (size + bsize - 1) / bsize;
  unsigned order = 0;
  while (((uint64_t)LABYRINTH_PAGE_SIZE << order) < bsize) ++order;
  slot *slots = calloc(opt_depth, sizeof(slot));
  uint64_t next = 0, done = 0;
  unsigned live = 0;
  for (unsigned i = 0; i < opt_depth; ++i) {
    if (labyrinth_alloc_pages(pool, order, LABYRINTH_GFP_EXCLUSIVE, 0, &slots[i].page) != LABYRINTH_OK)
      return fail("allocating blocks");
  }
  int rc = 0;
  for (unsigned i = 0; i < opt_depth && next < nblocks; ++i, ++next) {
    slots[i].block = next;
    if (labyrinth_ring_read_fixed(ring, in, slots[i].page, (uint32_t)bsize, next * bsize, i) !=
        LABYRINTH_OK) {
      rc = fail("read");
      break;
    }
    ++live;
  }
  while (live > 0) {
    labyrinth_completion c[16];
    size_t n = 0;
    if (labyrinth_ring_complete(ring, c, 16, 1, LABYRINTH_TIMEOUT_INFINITE, &n) != LABYRINTH_OK) {
      rc = fail("complete");
      break;
    }
    for (size_t k = 0; k < n; ++k) {
      slot *s = &slots[c[k].user_data];
      --live;
      uint64_t off = s->block * bsize;
      uint64_t want = size - off < bsize ? size - off : bsize;
      if (c[k].result < 0) {
        fprintf(stderr, "labyrinth-cp: %s of block %llu failed: %s\n",
                s->writing ? "write" : "read", (unsigned long long)s->block,
                strerror(-c[k].result));
        rc = 1;
        continue;
      }
      if (!s->writing && (uint64_t)c[k].result != want) {
        fprintf(stderr, "labyrinth-cp: short read of block %llu (%d of %llu bytes)\n",
                (unsigned long long)s->block, c[k].result, (unsigned long long)want);
        rc = 1;
        continue;
      }
      if (rc) continue; /* drain what is in flight, submit nothing more */
      if (!s->writing) {
        hashes[s->block] = block_hash(s->page, (size_t)want, s->block);
        if (out >= 0) {
          /* O_DIRECT writes whole sectors: round the tail up; truncated later. */
          uint64_t len = (want + 4095) & ~(uint64_t)4095;
          s->writing = 1;
          if (labyrinth_ring_write_fixed(ring, out, s->page, (uint32_t)len, off, c[k].user_data) !=
              LABYRINTH_OK) {
            rc = fail("write");
            continue;
          }
          ++live;
          continue;
        }
      }
      s->writing = 0;
      if (++done, next < nblocks) {
        s->block = next++;
        if (labyrinth_ring_read_fixed(ring, in, s->page, (uint32_t)bsize, s->block * bsize,
                                      c[k].user_data) != LABYRINTH_OK) {
          rc = fail("read");
          continue;
        }
        ++live;
      }
    }
  }
  for (unsigned i = 0; i < opt_depth; ++i) labyrinth_free_pages(pool, slots[i].page);
  free(slots);
  return rc;
}

static int open_file(const char *path, int flags) {
  int fd = -1;
  if (!opt_buffered) {
    fd = open(path, flags | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) {
      fprintf(stderr, "labyrinth-cp: %s: no O_DIRECT on this filesystem, using the page cache\n",
              path);
      opt_buffered = 1;
    }
  }
  if (fd < 0) fd = open(path, flags, 0644);
  if (fd < 0) fprintf(stderr, "labyrinth-cp: %s: %s\n", path, strerror(errno));
  return fd;
}

static int make_source(const char *path, uint64_t bytes) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  static uint64_t buf[1 << 17];
  uint64_t x = 0x243F6A8885A308D3ull;
  for (uint64_t done = 0; done < bytes;) {
    for (size_t i = 0; i < sizeof(buf) / 8; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = x;
    }
    size_t n = bytes - done < sizeof(buf) ? (size_t)(bytes - done) : sizeof(buf);
    if (write(fd, buf, n) != (ssize_t)n) {
      close(fd);
      return -1;
    }
    done += n;
  }
  fsync(fd);
  close(fd);
  return 0;
}

/* The command line into *src, *dst, *self_mb and the opt_* settings: 0, or
 * 2 after printing the usage. */
static int parse_args(int argc, char **argv, const char **src, const char **dst, unsigned *self_mb) {
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--self-test")) {
      *self_mb = 64;
      if (i + 1 < argc && argv[i + 1][0] != '-') *self_mb = (unsigned)atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--block-kb") && i + 1 < argc) {
      opt_block_kb = (unsigned)atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
      opt_depth = (unsigned)atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--buffered")) {
      opt_buffered = 1;
    } else if (!*src) {
      *src = argv[i];
    } else if (!*dst) {
      *dst = argv[i];
    } else {
      *src = NULL;
      break;
    }
  }
  int block_ok = opt_block_kb >= 4 && opt_block_kb <= 4096 && !(opt_block_kb & (opt_block_kb - 1));
  if ((!*self_mb && (!*src || !*dst)) || !block_ok || opt_depth < 1 || opt_depth > 256) {
    fprintf(stderr,
            "usage: labyrinth-cp SRC DST [--block-kb KB] [--depth N] [--buffered]\n"
            "       labyrinth-cp --self-test [MB] [--block-kb KB] [--depth N] [--buffered]\n"
            "  --block-kb KB  block size, a power of two from 4 to 4096 (default 256)\n"
            "  --depth N      blocks in flight (default 8)\n"
            "  --buffered     use the page cache instead of O_DIRECT\n");
    return 2;
  }
  return 0;
}

/* --self-test: a source file of mb MiB and a destination path, both in
 * $TMPDIR (default /var/tmp), into src_tmp and dst_tmp (256 bytes each).
 * 0, or 1 after saying why. */
static int make_self_test(unsigned mb, char *src_tmp, char *dst_tmp) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/var/tmp";
  snprintf(src_tmp, 256, "%s/labyrinth-cp-src.%d", dir, (int)getpid());
  snprintf(dst_tmp, 256, "%s/labyrinth-cp-dst.%d", dir, (int)getpid());
  /* A size that is not a multiple of the block, to exercise the tail. */
  uint64_t bytes = ((uint64_t)mb << 20) + 12345;
  if (make_source(src_tmp, bytes) != 0) {
    fprintf(stderr, "labyrinth-cp: cannot write %s: %s\n", src_tmp, strerror(errno));
    return 1;
  }
  return 0;
}

/* A pool for opt_depth blocks in flight (twice over, plus room) and a
 * single-thread ring on it. 0, or the exit code after saying why (nothing
 * is left open then). */
static int open_pool_and_ring(labyrinth_pool **pool, labyrinth_ring **ring) {
  labyrinth_pool_options po;
  labyrinth_pool_options_init(&po);
  po.size_bytes = ((size_t)opt_block_kb << 10) * opt_depth * 2 + (4u << 20);
  po.size_bytes = (po.size_bytes + (4u << 20) - 1) & ~(size_t)((4u << 20) - 1);
  if (labyrinth_pool_create(&po, pool) != LABYRINTH_OK) return fail("pool");
  labyrinth_ring_options ro;
  labyrinth_ring_options_init(&ro);
  ro.sq_entries = opt_depth * 2;
  ro.flags = LABYRINTH_RING_SINGLE_THREAD;
  if (labyrinth_ring_create(*pool, &ro, ring) != LABYRINTH_OK) {
    int rc = fail("ring");
    labyrinth_pool_destroy(*pool);
    return rc;
  }
  return 0;
}

/* Copies in to out (closed here), reads dst back to compare the blocks'
 * hashes, prints the report and destroys the ring and the pool. Returns the
 * exit code: 0 only if the copy matches and the pool ends with nothing in
 * flight or allocated. */
static int copy_and_verify(labyrinth_pool *pool, labyrinth_ring *ring, const char *src, const char *dst,
                           int in, int out, uint64_t size) {
  const uint64_t bsize = (uint64_t)opt_block_kb << 10;
  const uint64_t nblocks = (size + bsize - 1) / bsize;
  uint64_t *h_src = calloc(nblocks + 1, sizeof(uint64_t));
  uint64_t *h_dst = calloc(nblocks + 1, sizeof(uint64_t));
  double t0 = now_s();
  int rc = pass(pool, ring, in, out, size, h_src);
  if (rc == 0 && ftruncate(out, (off_t)size) != 0) rc = 1;
  if (rc == 0) fsync(out);
  double t1 = now_s();
  close(out);
  int ok = 0;
  double t2 = t1, t3 = t1;
  if (rc == 0) {
    int check = open_file(dst, O_RDONLY);
    t2 = now_s();
    rc = check < 0 ? 1 : pass(pool, ring, check, -1, size, h_dst);
    t3 = now_s();
    if (check >= 0) close(check);
    ok = rc == 0 && memcmp(h_src, h_dst, nblocks * sizeof(uint64_t)) == 0;
  }
  labyrinth_ring_destroy(ring);
  labyrinth_stats s;
  memset(&s, 0, sizeof(s));
  s.struct_size = sizeof(s);
  labyrinth_pool_stats(pool, &s);
  uint64_t total = block_hash(h_src, nblocks * sizeof(uint64_t), size);
  double mb = (double)size / 1e6;
  printf("labyrinth-cp: %s -> %s, %llu bytes, %s, %u KiB blocks, %u in flight, fixed buffers\n",
         src, dst, (unsigned long long)size, opt_buffered ? "page cache" : "O_DIRECT",
         opt_block_kb, opt_depth);
  printf("copy:   %.3f s, %.0f MB/s\n", t1 - t0, mb / (t1 - t0));
  printf("verify: %.3f s, %.0f MB/s\n", t3 - t2, mb / (t3 - t2 > 0 ? t3 - t2 : 1e-9));
  printf("checksum %016llx: %s\n", (unsigned long long)total, ok ? "OK" : "MISMATCH");
  printf("pool at the end: %llu pages in flight, %llu leaked\n",
         (unsigned long long)s.inflight_pages, (unsigned long long)s.allocated_pages);
  if (s.inflight_pages || s.allocated_pages) ok = 0;
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK) ok = 0;
  free(h_src);
  free(h_dst);
  return rc ? rc : (ok ? 0 : 1);
}

int main(int argc, char **argv) {
  const char *src = NULL, *dst = NULL;
  unsigned self_mb = 0;
  int rc = parse_args(argc, argv, &src, &dst, &self_mb);
  if (rc != 0) return rc;
  char src_tmp[256] = "", dst_tmp[256] = "";
  if (self_mb) {
    if (make_self_test(self_mb, src_tmp, dst_tmp) != 0) return 1;
    src = src_tmp;
    dst = dst_tmp;
  }
  int in = open_file(src, O_RDONLY);
  if (in < 0) return 1;
  struct stat st;
  fstat(in, &st);
  int out = open_file(dst, O_WRONLY | O_CREAT | O_TRUNC);
  if (out < 0) return 1;
  labyrinth_pool *pool = NULL;
  labyrinth_ring *ring = NULL;
  rc = open_pool_and_ring(&pool, &ring);
  if (rc == 0) rc = copy_and_verify(pool, ring, src, dst, in, out, (uint64_t)st.st_size);
  close(in);
  if (self_mb) {
    unlink(src_tmp);
    unlink(dst_tmp);
  }
  return rc;
}
