// workload_threads.cpp - the worker threads of a workload run: a synthetic
// workload (seeded random bursts, lifetimes and hand-overs) or the replay of
// a trace, each call timed through Run::timed.
#include <algorithm>

#include "workload_run.hpp"

namespace labpy::workload {
namespace {

// cdf[o]: the probability of drawing an order <= o. Orders past the last one
// with a weight read 2.0, so rounding never draws an order without weight.
void order_cdf(const Spec &spec, double *cdf) {
  double acc = 0;
  int last = 0;
  for (int o = 0; o <= LABYRINTH_MAX_ORDER; ++o) {
    cdf[o] = (acc += spec.order_weights[o]);
    if (spec.order_weights[o] > 0) last = o;
  }
  for (int o = last; o <= LABYRINTH_MAX_ORDER; ++o) cdf[o] = 2.0;
}

}  // namespace

void Run::free_held(Worker &w, const Held &h) {
  labyrinth_pool *pool = pool_;
  timed(w, OP_FREE, [&] { return labyrinth_free_page_inline(pool, h.page); });
  w.ops.fetch_add(1, std::memory_order_relaxed);
}

void Run::synthetic_thread(unsigned idx) {
  Worker &w = *workers_[idx];
  w.owner = labyrinth_owner_self();
  Rng rng(spec_.seed * 0x100000001B3ull + idx + 1);
  HeldQueue held;
  std::vector<Held> incoming;
  double cdf[LABYRINTH_MAX_ORDER + 1];
  order_cdf(spec_, cdf);
  barrier_->wait();
  while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
  for (uint64_t step = 0;; ++step) {
    if (spec_.steps_per_thread && step >= spec_.steps_per_thread) break;
    if ((step & 15) == 0 && should_stop()) break;
    // Blocks other threads handed over.
    if (spec_.transfer_share > 0) {
      std::lock_guard<std::mutex> l(w.inbox_mu);
      incoming.swap(w.inbox);
    }
    for (auto &h : incoming) held.push(Held{step + h.expiry, h.page, h.order});
    incoming.clear();
    while (!held.empty() && held.top().expiry <= step) {
      free_held(w, held.top());
      held.pop();
    }
    synthetic_burst(w, idx, rng, cdf, step, held);
    done_work_.fetch_add(1, std::memory_order_relaxed);
  }
  // Free what this worker holds, then wait for every worker: after the
  // barrier no more transfers arrive.
  for (; !held.empty(); held.pop()) drain_free(w, held.top().page);
  end_barrier_->wait();
  {
    std::lock_guard<std::mutex> l(w.inbox_mu);
    incoming.swap(w.inbox);
  }
  for (auto &h : incoming) drain_free(w, h.page);
  finish_thread();
}

// One burst of allocations at `step`; each block is held, or handed over to
// another worker's inbox, until its lifetime ends.
void Run::synthetic_burst(Worker &w, unsigned idx, Rng &rng, const double *cdf, uint64_t step,
                          HeldQueue &held) {
  labyrinth_pool *pool = pool_;
  uint64_t burst = std::max<uint64_t>(1, spec_.burst.sample(rng));
  for (uint64_t b = 0; b < burst; ++b) {
    while (held.size() >= spec_.max_held_per_thread) {
      free_held(w, held.top());
      held.pop();
    }
    double u = rng.uniform();
    unsigned order = 0;
    while (order < LABYRINTH_MAX_ORDER && u >= cdf[order]) ++order;
    // Every random choice is drawn before the call, so the sequence of
    // requests depends only on the seed, not on which calls failed.
    bool waiting = spec_.wait_share > 0 && rng.uniform() < spec_.wait_share;
    bool excl = spec_.exclusive_share >= 1 || rng.uniform() < spec_.exclusive_share;
    bool zero = spec_.zero_share > 0 && rng.uniform() < spec_.zero_share;
    uint64_t life = spec_.lifetime.sample(rng);
    bool hand_over = excl && spec_.threads > 1 && spec_.transfer_share > 0 &&
                     rng.uniform() < spec_.transfer_share;
    unsigned to = hand_over ? static_cast<unsigned>(rng.below(spec_.threads - 1)) : 0;
    if (to >= idx) ++to;
    labyrinth_gfp gfp = (waiting ? LABYRINTH_GFP_WAIT : LABYRINTH_GFP_ATOMIC) |
                        (excl ? LABYRINTH_GFP_EXCLUSIVE : 0) | (zero ? LABYRINTH_GFP_ZERO : 0);
    void *page = nullptr;
    labyrinth_status st;
    if (!waiting && order == 0 && excl && !zero) {
      st = timed(w, OP_ALLOC_ATOMIC, [&] {
        page = labyrinth_alloc_page_inline(pool);
        return page ? LABYRINTH_OK : labyrinth_last_status();
      });
    } else {
      st = timed(w, waiting ? OP_ALLOC_WAIT : OP_ALLOC_ATOMIC, [&] {
        return labyrinth_alloc_pages(pool, order, gfp, spec_.wait_timeout_ms, &page);
      });
    }
    w.ops.fetch_add(1, std::memory_order_relaxed);
    if (st != LABYRINTH_OK) continue;
    touch(page, order, step + b);
    if (hand_over && hand_over_to(w, *workers_[to], Held{life, page, order})) continue;
    held.push(Held{step + life, page, order});
  }
}

// Transfers the block to dst and queues it in dst's inbox; false (the sender
// keeps the block) when dst's inbox is full or the transfer failed.
bool Run::hand_over_to(Worker &w, Worker &dst, const Held &h) {
  std::lock_guard<std::mutex> l(dst.inbox_mu);
  if (dst.inbox.size() >= spec_.max_inbox) {
    ++w.transfers_skipped;
    return false;
  }
  labyrinth_pool *pool = pool_;
  labyrinth_status st = timed(w, OP_TRANSFER, [&] { return labyrinth_page_transfer(pool, h.page, dst.owner); });
  w.ops.fetch_add(1, std::memory_order_relaxed);
  if (st != LABYRINTH_OK) return false;
  dst.inbox.push_back(h);
  return true;
}

void Run::drain_free(Worker &w, void *page) {
  if (labyrinth_free_pages(pool_, page) == LABYRINTH_OK)
    ++w.drain_frees;
  else
    ++w.drain_failures;
}

void Run::replay_thread(unsigned idx) {
  Worker &w = *workers_[idx];
  w.owner = labyrinth_owner_self();
  barrier_->wait();
  while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
  bool stopped = false;
  for (size_t e : per_thread_[idx]) {
    // Wait until the block's previous event (in trace order) has run.
    int64_t p = prev_[e];
    if (p >= 0) {
      unsigned spins = 0;
      while (!done_[static_cast<size_t>(p)].load(std::memory_order_acquire)) {
        if (++spins > 64) std::this_thread::yield();
        if ((spins & 1023) == 0 && should_stop()) {
          stopped = true;
          break;
        }
      }
    }
    if (stopped || ((e & 63) == 0 && should_stop())) {
      stopped = true;
      break;
    }
    replay_event(w, e);
    w.ops.fetch_add(1, std::memory_order_relaxed);
    done_work_.fetch_add(1, std::memory_order_relaxed);
    done_[e].store(1, std::memory_order_release);
  }
  if (stopped) cancel_.store(true);  // the others must not wait for our events
  end_barrier_->wait();
  replay_cleanup(w, idx);
  finish_thread();
}

// Runs trace event e: op 0 allocates, 1 frees, 2 transfers the event's block.
void Run::replay_event(Worker &w, size_t e) {
  labyrinth_pool *pool = pool_;
  auto &slot = blocks_[static_cast<size_t>(spec_.ev_block[e])];
  void *page = slot.load(std::memory_order_relaxed);
  if (spec_.ev_op[e] == 0) {
    if (page) {  // id reused before it was freed: keep the old block for cleanup
      std::lock_guard<std::mutex> l(mu_);
      leaked_.push_back(page);
    }
    auto gfp = static_cast<labyrinth_gfp>(spec_.ev_gfp[e]);
    auto order = static_cast<unsigned>(spec_.ev_order[e]);
    bool waiting = gfp & LABYRINTH_GFP_WAIT;
    void *np = nullptr;
    labyrinth_status st = timed(w, waiting ? OP_ALLOC_WAIT : OP_ALLOC_ATOMIC, [&] {
      return labyrinth_alloc_pages(pool, order, gfp, static_cast<uint32_t>(spec_.ev_timeout[e]), &np);
    });
    if (st == LABYRINTH_OK) touch(np, order, e);
    slot.store(st == LABYRINTH_OK ? np : nullptr, std::memory_order_relaxed);
  } else if (!page) {
    ++w.skipped;  // the block's allocation failed
  } else if (spec_.ev_op[e] == 1) {
    labyrinth_status st = timed(w, OP_FREE, [&] { return labyrinth_free_pages(pool, page); });
    if (st == LABYRINTH_OK) slot.store(nullptr, std::memory_order_relaxed);
  } else {
    labyrinth_owner to = workers_[static_cast<size_t>(spec_.ev_to[e])]->owner;
    timed(w, OP_TRANSFER, [&] { return labyrinth_page_transfer(pool, page, to); });
  }
}

// After the run each thread frees the blocks it owns; thread 0 the shared
// (non-exclusive) ones.
void Run::replay_cleanup(Worker &w, unsigned idx) {
  auto cleanup = [&](void *page) {
    labyrinth_owner o = 0;
    if (labyrinth_page_info(pool_, page, &o, nullptr) != LABYRINTH_OK) return;
    if (o == w.owner || (o == LABYRINTH_OWNER_NONE && idx == 0)) drain_free(w, page);
  };
  for (int64_t b = 0; b < spec_.nblocks; ++b)
    if (void *page = blocks_[b].load(std::memory_order_relaxed)) cleanup(page);
  for (void *page : leaked_) cleanup(page);
}

}  // namespace labpy::workload
