// fuzz_uring.cpp - libFuzzer target for the managed ring's submission and
// completion bookkeeping: who owns a page while the kernel holds it, and
// that every page comes back exactly once.
//
// The first bytes choose a pool (small; SCRUB/POISON sometimes) and a ring
// (queue size, max_inflight, provided-buffer ring size, MANUAL_REFILL,
// NO_REGISTER, REPORT_STARVED). The rest is a program: allocate blocks;
// submit fixed reads and writes on a memfd, send / recv / zero-copy send on a connected UDP
// pair, multishot receive into provided buffers; provide pages; cancel;
// take completions (with and without waiting); free; destroy the ring with
// operations in flight and create another; and misuse: a page already in
// flight (BUSY for submit, free, transfer), a page not ours (NOT_OWNER), a
// freed, foreign, interior or NULL page, len 0 or past the block, bad fd,
// fixed I/O without registration, provide of a wrong page or into a full
// ring, cancel of nothing, NULL ring/out, max 0, pool destroy under a ring.
//
// Checked after every step against a model of every block:
//  - ring stats: operations in flight plus starved receives == the
//    model's; pages in flight == blocks in flight + provided pages; the
//    pool's in-flight pages agree; the pool's allocated pages == ours + in
//    flight; re-arms never exceed starvations;
//  - each completion names a live submission, its op, and hands back its
//    page exactly when the model says (SEND_ZC: with the notification);
//    a multishot completion's page is new to us and ours afterwards;
//  - every refused call returns the predicted status and changes nothing;
//  - destroying the ring gives every submitted page back to us and the
//    provided pages back to the pool; at the end the pool is empty.
#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth_uring.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "fuzz_check.hpp"

namespace {

constexpr std::size_t kPage = LABYRINTH_PAGE_SIZE;

struct Input {
  const std::uint8_t *d;
  std::size_t n, i = 0;
  bool more() const { return i < n; }
  std::uint8_t u8() { return i < n ? d[i++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
};

bool g_usable = true;  // io_uring works here (checked once)
std::uint64_t g_total_ops = 0, g_total_inputs = 0, g_total_completions = 0;
void print_totals() {
  std::fprintf(stderr, "fuzz_uring: %llu operations checked in %llu inputs, %llu completions\n",
               (unsigned long long)g_total_ops, (unsigned long long)g_total_inputs,
               (unsigned long long)g_total_completions);
}

enum State { MINE, INFLIGHT };
struct Blk {
  unsigned order;
  bool excl;
  State state;
  std::uint64_t ud;  // while in flight
};
struct LiveOp {
  void *page;  // nullptr for multishot receive
  unsigned op;
  bool zc_first_seen = false;
};

struct Fuzz {
  Input in;
  labyrinth_pool *pool = nullptr;
  labyrinth_ring *ring = nullptr;
  labyrinth_ring_options ropts{};
  std::uint8_t *base = nullptr;
  std::size_t size = 0;
  int memfd = -1, udp[2] = {-1, -1};
  std::map<void *, Blk> blocks;        // every block we allocated and still hold (or lent)
  std::map<std::uint64_t, LiveOp> ops;  // by user_data
  std::uint64_t next_ud = 1;
  labyrinth_owner me = labyrinth_owner_self();
  bool trace = std::getenv("FUZZ_TRACE") != nullptr;
  std::uint64_t completions_seen = 0;

  explicit Fuzz(const std::uint8_t *d, std::size_t n) : in{d, n} {}

  // -- setup --
  bool setup() {
    labyrinth_pool_options o;
    labyrinth_pool_options_init(&o);
    std::uint8_t a = in.u8();
    o.size_bytes = (32 + in.u8() % 224) * kPage;
    o.flags &= ~LABYRINTH_POOL_PIN_MASK;
    if (a & 1) o.flags |= LABYRINTH_POOL_SCRUB;
    if (a & 2) o.flags |= LABYRINTH_POOL_POISON;
    o.max_thread_caches = (a & 4) ? 0 : 4;
    o.thread_cache_pages = 8;
    o.thread_cache_batch = 4;
    CHECK(labyrinth_pool_create(&o, &pool) == LABYRINTH_OK);
    void *b = nullptr;
    CHECK(labyrinth_pool_arena(pool, &b, &size) == LABYRINTH_OK);
    base = static_cast<std::uint8_t *>(b);

    memfd = memfd_create("fuzz_uring", 0);
    CHECK(memfd >= 0 && ftruncate(memfd, 64 * kPage) == 0);
    udp[0] = socket(AF_INET, SOCK_DGRAM, 0);
    udp[1] = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(udp[0] >= 0 && udp[1] >= 0);
    sockaddr_in sa[2];
    for (int k = 0; k < 2; ++k) {
      std::memset(&sa[k], 0, sizeof sa[k]);
      sa[k].sin_family = AF_INET;
      sa[k].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      CHECK(bind(udp[k], reinterpret_cast<sockaddr *>(&sa[k]), sizeof sa[k]) == 0);
      socklen_t len = sizeof sa[k];
      CHECK(getsockname(udp[k], reinterpret_cast<sockaddr *>(&sa[k]), &len) == 0);
    }
    for (int k = 0; k < 2; ++k)
      CHECK(connect(udp[k], reinterpret_cast<sockaddr *>(&sa[1 - k]), sizeof sa[1 - k]) == 0);
    return make_ring();
  }

  bool make_ring() {
    labyrinth_ring_options_init(&ropts);
    std::uint8_t a = in.u8(), b = in.u8();
    ropts.sq_entries = 1u << (a % 6);  // 1..32
    ropts.max_inflight = (a & 0x40) ? 0 : 1 + b % 12;
    ropts.pbuf_entries = (b & 0x80) ? 0 : 1u << (b % 5);  // 0 or 1..16
    ropts.flags = 0;
    if (a & 0x80) ropts.flags |= LABYRINTH_RING_MANUAL_REFILL;
    if ((b & 0x70) == 0x70) ropts.flags |= LABYRINTH_RING_NO_REGISTER;
    if (b & 0x08) ropts.flags |= LABYRINTH_RING_REPORT_STARVED;
    labyrinth_status st = labyrinth_ring_create(pool, &ropts, &ring);
    if (st == LABYRINTH_ERR_UNSUPPORTED) {
      std::fprintf(stderr, "fuzz_uring: io_uring is not usable here: %s\n",
                   labyrinth_last_error_message());
      g_usable = false;
      return false;
    }
    if (st == LABYRINTH_ERR_NOMEM && ropts.pbuf_entries) {
      // The pool could not fill the provided-buffer ring: allowed; say so.
      CHECK(std::strstr(labyrinth_last_error_message(), "") != nullptr);
      ropts.pbuf_entries = 0;
      st = labyrinth_ring_create(pool, &ropts, &ring);
    }
    CHECK(st == LABYRINTH_OK, "ring_create sq %u inflight %u pbuf %u flags 0x%x: %s",
          ropts.sq_entries, ropts.max_inflight, ropts.pbuf_entries, ropts.flags,
          labyrinth_status_name(st));
    if (trace)
      std::fprintf(stderr, "ring: sq %u, max_inflight %u, pbuf %u, flags 0x%x\n", ropts.sq_entries,
                   ropts.max_inflight, ropts.pbuf_entries, ropts.flags);
    // A pool under a ring cannot be destroyed.
    CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_ERR_BUSY);
    return true;
  }

  labyrinth_ring_stats rstats() {
    labyrinth_ring_stats s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK(labyrinth_ring_get_stats(ring, &s) == LABYRINTH_OK);
    return s;
  }
  labyrinth_stats pstats() {
    labyrinth_stats s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK(labyrinth_pool_stats(pool, &s) == LABYRINTH_OK);
    return s;
  }

  void check() {
    std::size_t mine_pages = stranded, inflight_blocks = 0, inflight_pages = 0;
    for (auto &[p, b] : blocks) {
      std::size_t n = std::size_t{1} << b.order;
      if (b.state == MINE) mine_pages += n;
      else { ++inflight_blocks; inflight_pages += n; }
    }
    labyrinth_stats ps = pstats();
    if (!ring) {
      CHECK(inflight_blocks == 0);
      CHECK(ps.inflight_pages == 0);
      CHECK(ps.allocated_pages == mine_pages, "allocated %llu, ours %zu",
            (unsigned long long)ps.allocated_pages, mine_pages);
      return;
    }
    labyrinth_ring_stats rs = rstats();
    // A starved multishot receive is live for us but not in the kernel.
    CHECK(rs.ops_inflight + rs.recv_starved_now == ops.size(),
          "ring has %llu ops in flight + %llu starved, model %zu",
          (unsigned long long)rs.ops_inflight, (unsigned long long)rs.recv_starved_now, ops.size());
    CHECK(rs.recv_rearms + rs.recv_starved_now <= rs.recv_starvations);
    CHECK(rs.pbuf_pages <= rs.pbuf_entries);
    CHECK(rs.pages_inflight == inflight_blocks + rs.pbuf_pages,
          "ring pages in flight %llu, model %zu blocks + %llu provided",
          (unsigned long long)rs.pages_inflight, inflight_blocks, (unsigned long long)rs.pbuf_pages);
    CHECK(ps.inflight_pages == inflight_pages + rs.pbuf_pages, "pool in flight %llu, model %zu + %llu",
          (unsigned long long)ps.inflight_pages, inflight_pages, (unsigned long long)rs.pbuf_pages);
    CHECK(ps.allocated_pages == mine_pages + ps.inflight_pages, "allocated %llu, ours %zu + in flight %llu",
          (unsigned long long)ps.allocated_pages, mine_pages, (unsigned long long)ps.inflight_pages);
    CHECK(ps.free_pages + ps.reserve_pages + ps.cached_pages + ps.allocated_pages == ps.total_pages);
    CHECK(rs.completions == completions_seen);
  }

  // -- picking --
  void *pick_block(bool want_mine, bool order0 = false) {
    if (blocks.empty()) return nullptr;
    std::uint8_t k = in.u8();
    auto it = blocks.begin();
    std::advance(it, k % blocks.size());
    for (std::size_t tries = 0; tries < blocks.size(); ++tries) {
      if ((!want_mine || it->second.state == MINE) && (!order0 || it->second.order == 0))
        return it->first;
      if (++it == blocks.end()) it = blocks.begin();
    }
    return nullptr;
  }

  void expect_refused(labyrinth_status got, labyrinth_status want, const char *what,
                      const labyrinth_ring_stats *rbefore, const labyrinth_stats &pbefore) {
    CHECK(got == want, "%s: %s, expected %s", what, labyrinth_status_name(got),
          labyrinth_status_name(want));
    CHECK(labyrinth_last_status() == want && labyrinth_last_error_message()[0], "%s: no message", what);
    labyrinth_stats pa = pstats();
    CHECK(pa.allocated_pages == pbefore.allocated_pages && pa.inflight_pages == pbefore.inflight_pages,
          "%s changed the pool", what);
    if (rbefore && ring) {
      labyrinth_ring_stats ra = rstats();
      CHECK(ra.ops_inflight == rbefore->ops_inflight && ra.pages_inflight == rbefore->pages_inflight &&
                ra.submitted == rbefore->submitted,
            "%s changed the ring", what);
    }
  }

  // -- operations --
  void op_alloc() {
    std::uint8_t a = in.u8();
    unsigned order = (a & 0x80) ? a % 3 : 0;
    labyrinth_gfp gfp = LABYRINTH_GFP_ATOMIC | ((a & 1) ? 0 : LABYRINTH_GFP_EXCLUSIVE);
    void *pg = nullptr;
    if (labyrinth_alloc_pages(pool, order, gfp, 0, &pg) != LABYRINTH_OK) return;
    CHECK(!blocks.count(pg), "block %p handed out twice", pg);
    blocks[pg] = Blk{order, !(a & 1), MINE, 0};
  }

  void op_free() {
    void *pg = pick_block(false);
    if (!pg) return;
    Blk &b = blocks[pg];
    labyrinth_stats before = pstats();
    labyrinth_status st = labyrinth_free_pages(pool, pg);
    if (b.state == INFLIGHT) {
      expect_refused(st, LABYRINTH_ERR_BUSY, "free of a page in flight", nullptr, before);
      labyrinth_status t = labyrinth_page_transfer(pool, pg, me);
      if (b.excl) expect_refused(t, LABYRINTH_ERR_BUSY, "transfer of a page in flight", nullptr, before);
      return;
    }
    CHECK(st == LABYRINTH_OK, "free: %s", labyrinth_status_name(st));
    blocks.erase(pg);
  }

  // Submit one operation on one of our blocks (or misuse).
  void op_submit() {
    std::uint8_t a = in.u8(), b = in.u8();
    unsigned kind = a % 6;  // 0 read_fixed 1 write_fixed 2 send 3 recv 4 send_zc 5 multishot
    void *pg = pick_block(false);
    std::uint8_t misuse = b & 0x0F;
    labyrinth_ring_stats rbefore = rstats();
    labyrinth_stats pbefore = pstats();
    int fd = (kind <= 1) ? memfd : udp[(a >> 3) & 1];
    std::uint32_t len = 0;
    if (kind != 5 && !pg) return;
    if (kind != 5) {
      std::size_t cap = kPage << blocks[pg].order;
      len = 1 + (in.u16() % cap);
      if (kind >= 2 && len > 1400) len = 1 + len % 1400;  // datagrams
    }
    const Blk *bk = pg ? &blocks[pg] : nullptr;
    switch (misuse) {  // (multishot takes no page: only the fd misuse applies)
      case 1: len = 0; break;
      case 2: if (bk) len = static_cast<std::uint32_t>((kPage << bk->order) + 1); break;
      case 3: fd = -1; break;
      case 4: pg = nullptr; break;
      case 5: pg = base + size + kPage; break;
      case 6: if (pg) pg = static_cast<char *>(pg) + 8; break;
      default: break;
    }
    // The ring's checks, in its order.
    const std::size_t max_inflight = ropts.max_inflight ? ropts.max_inflight : 2 * ropts.sq_entries;
    labyrinth_status want = LABYRINTH_OK;
    if (fd < 0) want = LABYRINTH_ERR_INVALID;
    else if (kind <= 1 && (ropts.flags & LABYRINTH_RING_NO_REGISTER)) want = LABYRINTH_ERR_INVALID;
    else if (kind == 5 && !ropts.pbuf_entries) want = LABYRINTH_ERR_INVALID;
    else if (kind != 5 && misuse == 4) want = LABYRINTH_ERR_INVALID;
    else if (kind != 5 && misuse == 5) want = LABYRINTH_ERR_FOREIGN;
    else if (kind != 5 && misuse == 6) want = LABYRINTH_ERR_INVALID;
    else if (kind != 5 && (misuse == 1 || misuse == 2)) want = LABYRINTH_ERR_INVALID;
    else if (ops.size() >= max_inflight) want = LABYRINTH_ERR_BUSY;
    else if (kind != 5 && bk->state == INFLIGHT) want = LABYRINTH_ERR_BUSY;
    std::uint64_t ud = next_ud++;
    labyrinth_status st;
    switch (kind) {
      case 0: st = labyrinth_ring_read_fixed(ring, fd, pg, len, (b >> 4) * kPage, ud); break;
      case 1: st = labyrinth_ring_write_fixed(ring, fd, pg, len, (b >> 4) * kPage, ud); break;
      case 2: st = labyrinth_ring_send(ring, fd, pg, len, 0, ud); break;
      case 3: st = labyrinth_ring_recv(ring, fd, pg, len, 0, ud); break;
      case 4: st = labyrinth_ring_send_zc(ring, fd, pg, len, 0, ud); break;
      default: st = labyrinth_ring_recv_multishot(ring, fd, 0, ud); break;
    }
    if (trace)
      std::fprintf(stderr, "  submit kind %u page %p len %u ud %llu -> %s (want %s)\n", kind, pg, len,
                   (unsigned long long)ud, labyrinth_status_name(st), labyrinth_status_name(want));
    if (want != LABYRINTH_OK || st != LABYRINTH_OK) {
      // The kernel may also refuse for its own reasons (BUSY: EAGAIN/EBUSY).
      if (want == LABYRINTH_OK) CHECK(st == LABYRINTH_ERR_BUSY, "submission failed: %s", labyrinth_status_name(st));
      expect_refused(st, want == LABYRINTH_OK ? st : want, "a refused submission", want == LABYRINTH_OK ? nullptr : &rbefore, pbefore);
      return;
    }
    if (kind == 5) {
      ops[ud] = LiveOp{nullptr, LABYRINTH_OP_RECV_MULTISHOT};
    } else {
      Blk &bk = blocks[pg];
      bk.state = INFLIGHT;
      bk.ud = ud;
      static const unsigned kOp[5] = {LABYRINTH_OP_READ_FIXED, LABYRINTH_OP_WRITE_FIXED,
                                      LABYRINTH_OP_SEND, LABYRINTH_OP_RECV, LABYRINTH_OP_SEND_ZC};
      ops[ud] = LiveOp{pg, kOp[kind]};
    }
  }

  void take(const labyrinth_completion &c) {
    ++completions_seen;
    ++g_total_completions;
    auto it = ops.find(c.user_data);
    CHECK(it != ops.end(), "completion for user_data %llu that is not in flight",
          (unsigned long long)c.user_data);
    LiveOp &o = it->second;
    CHECK(c.op == o.op, "completion op %u, submitted %u", c.op, o.op);
    CHECK(c.slice_gen == 0);  // no slices without incremental consumption
    CHECK(c.result > -4096, "result %d", c.result);
    bool final = !(c.flags & LABYRINTH_COMPLETION_MORE);
    if (o.op == LABYRINTH_OP_RECV_MULTISHOT) {
      if (c.flags & LABYRINTH_COMPLETION_STARVED) {
        CHECK(ropts.flags & LABYRINTH_RING_REPORT_STARVED, "STARVED completion without the flag");
        CHECK(c.result == -ENOBUFS && !c.page && !final, "STARVED completion: result %d, page %p",
              c.result, c.page);
      }
      if (c.page) {
        CHECK(!blocks.count(c.page), "multishot handed us page %p, which we already hold", c.page);
        auto a = static_cast<std::uint8_t *>(c.page);
        CHECK(a >= base && a < base + size && (a - base) % kPage == 0);
        labyrinth_owner own = 0;
        unsigned ord = 9;
        CHECK(labyrinth_page_info(pool, c.page, &own, &ord) == LABYRINTH_OK && own == me && ord == 0,
              "a received page is not an order-0 page of ours");
        CHECK(c.result > 0, "a page came with result %d", c.result);
        blocks[c.page] = Blk{0, true, MINE, 0};
      }
    } else if (o.op == LABYRINTH_OP_SEND_ZC) {
      if (c.flags & LABYRINTH_COMPLETION_NOTIF) {
        CHECK(o.zc_first_seen && c.page == o.page && final, "SEND_ZC notification out of order");
      } else {
        CHECK(!o.zc_first_seen, "two first completions for one SEND_ZC");
        o.zc_first_seen = true;
        CHECK((c.page == nullptr) == !final, "SEND_ZC first completion: page %p, MORE %d", c.page, !final);
      }
    } else {
      CHECK(final && c.page == o.page, "completion of op %u: page %p, submitted %p, MORE %d", o.op,
            c.page, o.page, !final);
    }
    if (c.page && o.page) {
      Blk &b = blocks.at(c.page);
      CHECK(b.state == INFLIGHT && b.ud == c.user_data);
      b.state = MINE;
      labyrinth_owner own = 0;
      CHECK(labyrinth_page_info(pool, c.page, &own, nullptr) == LABYRINTH_OK);
      CHECK(own == (b.excl ? me : LABYRINTH_OWNER_NONE), "page back with owner %llu",
            (unsigned long long)own);
    }
    if (final) ops.erase(it);
  }

  void op_complete() {
    std::uint8_t a = in.u8();
    labyrinth_completion out[8];
    std::memset(out, 0xEE, sizeof out);
    std::size_t max = 1 + a % 8, wait = (a & 0x80) ? 1 + (a >> 4) % 2 : 0, count = 99;
    labyrinth_status st = labyrinth_ring_complete(ring, out, max, wait, (a & 0x40) ? 2 : 0, &count);
    CHECK(st == LABYRINTH_OK, "complete: %s", labyrinth_status_name(st));
    CHECK(count <= max);
    for (std::size_t k = 0; k < count; ++k) take(out[k]);
    for (std::size_t k = count; k < 8; ++k)
      CHECK(reinterpret_cast<unsigned char *>(&out[k])[0] == 0xEE, "wrote past count");
  }

  void op_cancel() {
    std::uint8_t a = in.u8();
    if (!ops.empty() && (a & 1)) {
      auto it = ops.begin();
      std::advance(it, (a >> 1) % ops.size());
      labyrinth_status st = labyrinth_ring_cancel(ring, it->first);
      CHECK(st == LABYRINTH_OK || st == LABYRINTH_ERR_BUSY, "cancel: %s", labyrinth_status_name(st));
    } else {
      labyrinth_stats p = pstats();
      labyrinth_ring_stats r = rstats();
      expect_refused(labyrinth_ring_cancel(ring, next_ud + 1000 + a), LABYRINTH_ERR_INVALID,
                     "cancel of nothing", &r, p);
    }
  }

  void op_provide() {
    std::uint8_t a = in.u8();
    void *pg = pick_block(false, !(a & 1));
    if (!pg) return;
    Blk &b = blocks[pg];
    labyrinth_stats p = pstats();
    labyrinth_ring_stats r = rstats();
    labyrinth_status want = LABYRINTH_OK;
    if (!ropts.pbuf_entries) want = LABYRINTH_ERR_INVALID;
    else if (b.order != 0 || !b.excl) want = LABYRINTH_ERR_INVALID;
    else if (r.pbuf_pages == r.pbuf_entries) want = LABYRINTH_ERR_BUSY;
    else if (b.state == INFLIGHT) want = LABYRINTH_ERR_BUSY;
    labyrinth_status st = labyrinth_ring_provide(ring, pg);
    if (want != LABYRINTH_OK) {
      expect_refused(st, want, "a refused provide", &r, p);
      return;
    }
    CHECK(st == LABYRINTH_OK, "provide: %s", labyrinth_status_name(st));
    blocks.erase(pg);  // the kernel's now; it comes back (if ever) as a new page
  }

  void op_not_mine() {
    // A block exclusive to someone else: every submission is NOT_OWNER.
    void *pg = pick_block(true);
    if (!pg || !blocks[pg].excl) return;
    const labyrinth_owner fake = LABYRINTH_OWNER_MAX - 1;
    const unsigned blocks_order_before = blocks[pg].order;
    CHECK(labyrinth_page_transfer(pool, pg, fake) == LABYRINTH_OK);
    labyrinth_stats p = pstats();
    labyrinth_ring_stats r = rstats();
    const std::size_t max_inflight = ropts.max_inflight ? ropts.max_inflight : 2 * ropts.sq_entries;
    if (ops.size() < max_inflight)  // (else BUSY comes first)
      expect_refused(labyrinth_ring_send(ring, udp[0], pg, 10, 0, next_ud++), LABYRINTH_ERR_NOT_OWNER,
                     "send of another owner's page", &r, p);
    if (ropts.pbuf_entries && blocks_order_before == 0 && rstats().pbuf_pages < ropts.pbuf_entries)
      expect_refused(labyrinth_ring_provide(ring, pg), LABYRINTH_ERR_NOT_OWNER,
                     "provide of another owner's page", &r, p);
    // Only its owner could free it, and no thread has that id: it stays until
    // the pool is destroyed with FORCE.
    blocks.erase(pg);
    stranded += std::size_t{1} << blocks_order_before;
  }
  std::size_t stranded = 0;

  void op_freed_page() {
    // A page we freed: DOUBLE_FREE for every submission.
    void *pg = nullptr;
    if (labyrinth_alloc_pages(pool, 0, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &pg) != LABYRINTH_OK) return;
    CHECK(labyrinth_free_pages(pool, pg) == LABYRINTH_OK);
    labyrinth_stats p = pstats();
    labyrinth_ring_stats r = rstats();
    expect_refused(labyrinth_ring_recv(ring, udp[1], pg, 100, 0, next_ud++), LABYRINTH_ERR_DOUBLE_FREE,
                   "recv into a freed page", &r, p);
  }

  void op_null() {
    labyrinth_stats p = pstats();
    labyrinth_completion c;
    std::size_t n = 5;
    expect_refused(labyrinth_ring_send(nullptr, udp[0], base, 1, 0, 1), LABYRINTH_ERR_INVALID, "NULL ring", nullptr, p);
    expect_refused(labyrinth_ring_complete(nullptr, &c, 1, 0, 0, &n), LABYRINTH_ERR_INVALID, "complete NULL ring", nullptr, p);
    expect_refused(labyrinth_ring_complete(ring, nullptr, 1, 0, 0, &n), LABYRINTH_ERR_INVALID, "complete NULL out", nullptr, p);
    expect_refused(labyrinth_ring_complete(ring, &c, 0, 0, 0, &n), LABYRINTH_ERR_INVALID, "complete max 0", nullptr, p);
    expect_refused(labyrinth_ring_provide(nullptr, base), LABYRINTH_ERR_INVALID, "provide NULL ring", nullptr, p);
    expect_refused(labyrinth_ring_cancel(nullptr, 1), LABYRINTH_ERR_INVALID, "cancel NULL ring", nullptr, p);
    CHECK(n == 5, "count written on failure");
    CHECK(labyrinth_ring_fd(nullptr) == -1 && labyrinth_ring_fd(ring) >= 0);
    CHECK(labyrinth_ring_destroy(nullptr) == LABYRINTH_OK);
  }

  // Destroy the ring with whatever is in flight: our pages come back to us.
  void op_destroy_ring() {
    CHECK(labyrinth_ring_destroy(ring) == LABYRINTH_OK, "ring destroy: %s", labyrinth_last_error_message());
    ring = nullptr;
    for (auto &[p, b] : blocks) {
      if (b.state != INFLIGHT) continue;
      b.state = MINE;
      labyrinth_owner own = 0;
      CHECK(labyrinth_page_info(pool, p, &own, nullptr) == LABYRINTH_OK);
      CHECK(own == (b.excl ? me : LABYRINTH_OWNER_NONE));
    }
    ops.clear();
    completions_seen = 0;
    check();
  }

  void run() {
    if (!setup()) return;
    check();
    for (int n = 0; in.more() && n < 200; ++n) {
      std::uint8_t op = in.u8();
      if (trace) std::fprintf(stderr, "op %d: %u (ops %zu, blocks %zu)\n", n, op % 16, ops.size(), blocks.size());
      switch (op % 16) {
        case 0: case 1: case 2: op_alloc(); break;
        case 3: case 4: case 5: op_submit(); break;
        case 6: case 7: op_complete(); break;
        case 8: op_free(); break;
        case 9: op_cancel(); break;
        case 10: op_provide(); break;
        case 11: op_not_mine(); break;
        case 12: op_freed_page(); break;
        case 13: op_null(); break;
        case 14:
          op_destroy_ring();
          if (!make_ring()) return;
          break;
        default: op_submit(); break;
      }
      ++g_total_ops;
      check();
    }
    op_destroy_ring();
    for (auto &[p, b] : blocks) CHECK(labyrinth_free_pages(pool, p) == LABYRINTH_OK);
    blocks.clear();
    labyrinth_stats s = pstats();
    CHECK(s.allocated_pages == stranded, "%llu pages allocated after everything came back (%zu stranded)",
          (unsigned long long)s.allocated_pages, stranded);
    CHECK(s.inflight_pages == 0);
    if (stranded) {
      CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_ERR_BUSY);
      CHECK(labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE) == LABYRINTH_OK);
    } else {
      CHECK(labyrinth_pool_destroy(pool) == LABYRINTH_OK, "pool destroy: %s", labyrinth_last_error_message());
    }
    pool = nullptr;
  }

  ~Fuzz() {
    if (ring) labyrinth_ring_destroy(ring);
    if (pool) labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE);
    if (memfd >= 0) close(memfd);
    for (int fd : udp)
      if (fd >= 0) close(fd);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  std::atexit(print_totals);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 4 || !g_usable) return 0;
  ++g_total_inputs;
  Fuzz f(data, size);
  f.run();
  return 0;
}
