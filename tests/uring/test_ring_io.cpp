// The managed ring with files: fixed writes then fixed reads of owned pages,
// through the page cache and with O_DIRECT, checked by checksum; a file
// closed while its read is in flight; ring option misuse.
#include <cerrno>
#include <map>
#include <thread>

#include "uring_test_util.hpp"

using namespace uring_test;

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;

void write_then_read(bool direct) {
  labyrinth_pool *pool = make_pool(16u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.sq_entries = 64;
  URING_CREATE_OR_SKIP(pool, &o, ring);
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK);
  EXPECT_EQ(rs.registered, 1u);

  TempFile file;
  ASSERT_GE(file.fd, 0);
  int fd = file.fd;
  if (direct) {
    fd = open(file.path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0 && errno == EINVAL) {
      labyrinth_ring_destroy(ring);
      labyrinth_pool_destroy(pool);
      GTEST_SKIP() << "the filesystem of " << file.path << " does not support O_DIRECT";
    }
    ASSERT_GE(fd, 0) << strerror(errno);
  }

  // Blocks of several orders, each filled with its own pattern.
  const unsigned orders[] = {0, 0, 1, 2, 3, 0, 4, 0, 1, 5};
  struct Blk { void *p; std::size_t len; std::uint64_t off, sum; };
  std::vector<Blk> blks;
  std::uint64_t off = 0;
  for (unsigned i = 0; i < sizeof(orders) / sizeof(orders[0]); ++i) {
    void *p = nullptr;
    ASSERT_EQ(labyrinth_alloc_pages(pool, orders[i], LABYRINTH_GFP_EXCLUSIVE, 0, &p), LABYRINTH_OK);
    std::size_t len = kPage << orders[i];
    fill_pattern(p, len, i + 1);
    blks.push_back({p, len, off, checksum(p, len)});
    off += len;
  }
  for (std::size_t i = 0; i < blks.size(); ++i)
    ASSERT_EQ(labyrinth_ring_write_fixed(ring, fd, blks[i].p, static_cast<uint32_t>(blks[i].len),
                                         blks[i].off, 100 + i),
              LABYRINTH_OK)
        << last_error();
  // While the kernel holds them the pages are not ours to free.
  for (const Blk &b : blks) {
    labyrinth_status st = labyrinth_free_pages(pool, b.p);
    if (st == LABYRINTH_OK) FAIL() << "freed a page in flight";
  }
  std::map<uint64_t, void *> back;
  while (back.size() < blks.size()) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(ring, &c));
    ASSERT_EQ(c.op, static_cast<uint32_t>(LABYRINTH_OP_WRITE_FIXED));
    std::size_t i = c.user_data - 100;
    ASSERT_LT(i, blks.size());
    EXPECT_EQ(c.result, static_cast<int32_t>(blks[i].len));
    EXPECT_EQ(c.page, blks[i].p);
    back[c.user_data] = c.page;
  }
  // Wipe, then read back with fixed reads into the same pages (in reverse).
  for (const Blk &b : blks) std::memset(b.p, 0, b.len);
  for (std::size_t i = blks.size(); i-- > 0;)
    ASSERT_EQ(labyrinth_ring_read_fixed(ring, fd, blks[i].p, static_cast<uint32_t>(blks[i].len),
                                        blks[i].off, 200 + i),
              LABYRINTH_OK)
        << last_error();
  for (std::size_t got = 0; got < blks.size(); ++got) {
    labyrinth_completion c{};
    ASSERT_TRUE(complete_one(ring, &c));
    ASSERT_EQ(c.op, static_cast<uint32_t>(LABYRINTH_OP_READ_FIXED));
    std::size_t i = c.user_data - 200;
    ASSERT_LT(i, blks.size());
    EXPECT_EQ(c.result, static_cast<int32_t>(blks[i].len));
    EXPECT_EQ(checksum(c.page, blks[i].len), blks[i].sum) << "block " << i;
  }
  for (const Blk &b : blks) EXPECT_EQ(labyrinth_free_pages(pool, b.p), LABYRINTH_OK);
  if (direct) close(fd);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(pool_stat_allocated(pool), 0u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

TEST(UringRingFile, FixedWriteReadPageCache) { write_then_read(false); }
TEST(UringRingFile, FixedWriteReadODirect) { write_then_read(true); }

// The file is closed right after the read was submitted: io_uring holds its
// own reference, the read completes with the data, and only then is the page
// ours again.
TEST(UringRingFile, FileClosedWhileReadInFlight) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  TempFile file;
  std::vector<unsigned char> src(kPage);
  fill_pattern(src.data(), kPage, 9);
  ASSERT_EQ(pwrite(file.fd, src.data(), kPage, 0), static_cast<ssize_t>(kPage));
  int fd = open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(labyrinth_ring_read_fixed(ring, fd, page, kPage, 0, 7), LABYRINTH_OK) << last_error();
  close(fd);
  labyrinth_completion c{};
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.user_data, 7u);
  EXPECT_EQ(c.page, page);
  EXPECT_EQ(c.result, static_cast<int32_t>(kPage));
  EXPECT_EQ(checksum(page, kPage), checksum(src.data(), kPage));
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  // A read on a descriptor that is already closed: the completion says EBADF
  // and hands the page back.
  page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_EQ(labyrinth_ring_read_fixed(ring, fd, page, kPage, 0, 8), LABYRINTH_OK) << last_error();
  ASSERT_TRUE(complete_one(ring, &c));
  EXPECT_EQ(c.result, -EBADF);
  EXPECT_EQ(c.page, page);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

TEST(UringRingFile, SubmissionMisuseGivesThePageBack) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  o.max_inflight = 1;
  URING_CREATE_OR_SKIP(pool, &o, ring);
  TempFile file;
  void *page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  ASSERT_NE(page, nullptr);
  // len 0 / beyond the block, not the start of a block, NULLs, foreign pointers.
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, page, 0, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, page, kPage + 1, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, static_cast<char *>(page) + 64, 64, 0, 1),
            LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_read_fixed(nullptr, file.fd, page, kPage, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, nullptr, kPage, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, -1, page, kPage, 0, 1), LABYRINTH_ERR_INVALID);
  static char foreign[8192] __attribute__((aligned(4096)));
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, foreign, kPage, 0, 1), LABYRINTH_ERR_FOREIGN);
  EXPECT_EQ(labyrinth_ring_send_zc(ring, 0, page, 0, 0, 1), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_recv_multishot(ring, 0, 0, 1), LABYRINTH_ERR_INVALID);  // no pbuf ring
  EXPECT_EQ(labyrinth_ring_provide(ring, page), LABYRINTH_ERR_INVALID);
  // A page owned by another thread.
  void *theirs = nullptr;
  std::thread t([&] { theirs = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool); });
  t.join();
  ASSERT_NE(theirs, nullptr);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, theirs, kPage, 0, 1), LABYRINTH_ERR_NOT_OWNER);
  // max_inflight 1: the second submission is refused and its page stays ours.
  // (The receive is on a socket closed at once: it stays in flight.)
  ASSERT_EQ(labyrinth_ring_recv(ring, UdpPair().rx, page, kPage, 0, 1), LABYRINTH_OK);
  void *second = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  EXPECT_EQ(labyrinth_ring_read_fixed(ring, file.fd, second, kPage, 0, 2), LABYRINTH_ERR_BUSY);
  EXPECT_EQ(labyrinth_free_pages(pool, second), LABYRINTH_OK);
  labyrinth_ring_stats rs{};
  rs.struct_size = sizeof(rs);
  ASSERT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_OK);
  EXPECT_EQ(rs.ops_inflight, 1u);
  EXPECT_EQ(rs.pages_inflight, 1u);
  EXPECT_EQ(pool_stat_inflight(pool), 1u);
  // Teardown cancels the receive (its socket is already closed) and gives
  // the page back to us.
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(pool_stat_inflight(pool), 0u);
  EXPECT_EQ(labyrinth_free_pages(pool, page), LABYRINTH_OK) << last_error();
  std::size_t reclaimed = 0;  // `theirs` is an orphan: its owner thread exited
  EXPECT_EQ(labyrinth_pool_reclaim_orphans(pool, &reclaimed), LABYRINTH_OK);
  EXPECT_EQ(reclaimed, 1u);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

TEST(UringRingOptions, Misuse) {
  labyrinth_pool *pool = make_pool(4u << 20);
  ASSERT_NE(pool, nullptr);
  labyrinth_ring *ring = reinterpret_cast<labyrinth_ring *>(0x1);
  labyrinth_ring_options o;
  labyrinth_ring_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(o));
  o.struct_size = 3;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  labyrinth_ring_options_init(&o);
  o.pbuf_entries = 48;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  labyrinth_ring_options_init(&o);
  o.sq_entries = 0;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  labyrinth_ring_options_init(&o);
  o.flags = 1u << 20;
  EXPECT_EQ(labyrinth_ring_create(pool, &o, &ring), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_create(nullptr, nullptr, &ring), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_create(pool, nullptr, nullptr), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(ring, reinterpret_cast<labyrinth_ring *>(0x1));  // untouched on failure
  EXPECT_EQ(labyrinth_ring_destroy(nullptr), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_ring_fd(nullptr), -1);
  // A ring holds the pool: destroying the pool first is refused.
  ring = nullptr;
  URING_CREATE_OR_SKIP(pool, nullptr, ring);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_ERR_BUSY);
  labyrinth_completion c;
  std::size_t n = 99;
  EXPECT_EQ(labyrinth_ring_complete(ring, &c, 0, 0, 0, &n), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_complete(ring, &c, 1, 1, 100, &n), LABYRINTH_OK);  // nothing in flight
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(labyrinth_ring_cancel(ring, 5), LABYRINTH_ERR_INVALID);
  labyrinth_ring_stats rs{};
  rs.struct_size = 1;
  EXPECT_EQ(labyrinth_ring_get_stats(ring, &rs), LABYRINTH_ERR_INVALID);
  EXPECT_EQ(labyrinth_ring_destroy(ring), LABYRINTH_OK);
  EXPECT_EQ(labyrinth_pool_destroy(pool), LABYRINTH_OK) << last_error();
}

}  // namespace
