"""A Hypothesis state machine that drives a real pool and checks it against
a reference model after every step.

The model knows every allocated block (address, order, exclusive, owner)
and the pool's page count. Two threads make calls: the test's own ("main")
and a worker thread with its own owner id, so transfers go to a real other
owner and the worker's thread cache is in play. Checked:

* no block is ever handed out twice, blocks never overlap, are aligned to
  their size and lie in the arena; the binding hands out fresh addresses;
* free + reserve + cached + allocated == total, and allocated == the model;
* every block's owner and order (labyrinth_page_info) match the model;
  transfers move ownership; only the owner may free or transfer;
* the reserve is only used by atomic callers (reserve_uses never moves on a
  non-atomic allocation);
* every misuse raises its exception and changes nothing (stats and every
  block's owner and order are unchanged);
* with SCRUB (or GFP_ZERO) a block comes zero-filled; data written to a
  block stays there until it is freed;
* a buffer export of a page makes free() raise Busy;
* freeing everything and trimming brings the pool back to a fresh pool's
  free blocks per order.

It runs on small pools (16-96 pages, one zone) and, with an eighth of the
examples, on pools of 2,048-3,100 pages (two or three zones, each with its
own mutex: cpp/src/zones.hpp). A page freed into the wrong zone fails the
second within its first examples; the first cannot see it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

import labyrinth
from labyrinth import PAGE_SIZE, testing

from conftest import MACHINE_EXAMPLES, Worker

MAIN, WORKER = "main", "worker"


@dataclasses.dataclass(eq=False)
class Block:
    page: labyrinth.Page
    addr: int
    order: int
    exclusive: bool
    owner: int  # owner id, 0 if not exclusive
    holder: str  # thread whose Page object it is: MAIN or WORKER (frees it)
    pattern: int
    live: bool = True

    @property
    def size(self) -> int:
        return PAGE_SIZE << self.order


@dataclasses.dataclass(eq=False)
class Freed:
    page: labyrinth.Page
    addr: int


def _quiet_state(s: labyrinth.Stats) -> tuple[Any, ...]:
    """The part of the stats a refused (misused) call must not change."""
    return (s.free_pages, s.reserve_pages, s.cached_pages, s.allocated_pages,
            s.free_blocks, s.shared_free_pages, s.reserve_uses, s.orphaned_pages)


def _owned_state(s: labyrinth.Stats) -> tuple[Any, ...]:
    """What a failed allocation (no page available) must not change. The
    allocator may reorganise its free pages while it looks for a block (a
    failed order-1 request drains the depot into the buddy allocator
    to coalesce), so only the free total is compared, not where they sit."""
    return (s.allocated_pages, s.free_pages + s.reserve_pages + s.cached_pages,
            s.reserve_uses, s.orphaned_pages)


class PoolMachine(RuleBasedStateMachine):
    """See the module documentation."""

    blocks = Bundle("blocks")
    freed = Bundle("freed")

    def __init__(self) -> None:
        super().__init__()
        self.pool: labyrinth.Pool | None = None
        self.worker: Worker | None = None
        self.model: dict[int, Block] = {}  # live blocks by address
        self.me = labyrinth.owner_self()
        self.fresh_free_blocks: tuple[int, ...] = ()
        self.scrub = False
        self.counter = 0

    # ------------------------------------------------------------ setup
    @initialize(
        opts=testing.pool_options(min_pages=16, max_pages=96, pin=True),
        small_caches=st.booleans(),
    )
    def make_pool(self, opts: dict[str, Any], small_caches: bool) -> None:
        if small_caches:
            opts = dict(opts, thread_cache_pages=8, thread_cache_batch=4)
        note(f"Pool({opts})")
        self.pool = labyrinth.Pool(**opts)
        self.scrub = bool(opts["scrub"])
        self.worker = Worker()
        self.fresh_free_blocks = self.pool.stats().free_blocks

    def teardown(self) -> None:
        try:
            if self.pool is not None and not self.pool.closed:
                self.free_everything()
                self.check_fresh()
        finally:
            if self.worker is not None:
                self.worker.stop()
            if self.pool is not None:
                self.pool.close(force=True)

    # ------------------------------------------------------------ helpers
    @property
    def p(self) -> labyrinth.Pool:
        assert self.pool is not None
        return self.pool

    @property
    def w(self) -> Worker:
        assert self.worker is not None
        return self.worker

    def on(self, thread: str, fn: Any) -> Any:
        return fn() if thread == MAIN else self.w.call(fn)

    def owner_of(self, thread: str) -> int:
        return self.me if thread == MAIN else self.w.owner

    def snapshot(self) -> tuple[Any, ...]:
        infos = tuple(sorted((a, self.p.page_info(a)) for a in self.model))
        return _quiet_state(self.p.stats()), infos

    def expect_refused(self, exc: type[BaseException], thread: str, fn: Any) -> None:
        before = self.snapshot()
        with pytest.raises(exc) as info:
            self.on(thread, fn)
        err = info.value
        assert isinstance(err, labyrinth.LabyrinthError)
        assert err.message, "every refusal carries a message"
        assert self.snapshot() == before, f"refused call changed the pool: {err}"

    def adopt(self, page: labyrinth.Page, order: int, exclusive: bool, thread: str, zeroed: bool) -> Block:
        addr = page.address
        size = PAGE_SIZE << order
        base, end = self.p.base, self.p.base + self.p.size_bytes
        assert page.order == order and page.size == size
        assert base <= addr and addr + size <= end, "block outside the arena"
        assert (addr - base) % size == 0, "block not aligned to its size"
        for b in self.model.values():
            assert addr + size <= b.addr or b.addr + b.size <= addr, (
                f"block {addr:#x}+{size} overlaps live block {b.addr:#x}+{b.size} (handed out twice)"
            )
        if zeroed or self.scrub:
            data = self.on(thread, lambda: page.read())
            assert data == bytes(size), "block should be zero-filled"
        self.counter = (self.counter + 1) % 255
        pattern = self.counter + 1
        self.on(thread, lambda: page.write(bytes([pattern]) * size))
        blk = Block(page, addr, order, exclusive, self.owner_of(thread) if exclusive else 0, thread, pattern)
        self.model[addr] = blk
        return blk

    def alloc_on(self, thread: str, fn: Any, order: int, exclusive: bool, zero: bool,
                 atomic: bool, expected_fail: type[BaseException]) -> Any:
        before = self.p.stats()
        try:
            page = self.on(thread, fn)
        except expected_fail:
            after = self.p.stats()
            assert _owned_state(after) == _owned_state(before), "a failed allocation changed the pool"
            event(f"{expected_fail.__name__} (order {order})")
            return multiple()
        after = self.p.stats()
        if not atomic:
            assert after.reserve_uses == before.reserve_uses, "a non-atomic allocation used the reserve"
        return self.adopt(page, order, exclusive, thread, zero)

    def free_block(self, b: Block) -> None:
        self.on(b.holder if not b.exclusive else self.thread_of(b.owner), b.page.free)
        b.live = False
        del self.model[b.addr]

    def thread_of(self, owner: int) -> str:
        return MAIN if owner == self.me else WORKER

    def free_everything(self) -> None:
        for b in list(self.model.values()):
            assert b.page.read(1)[0] == b.pattern, "block content changed while allocated"
            self.free_block(b)
        self.p.trim()
        self.w.call(self.p.trim)

    def check_fresh(self) -> None:
        s = self.p.stats()
        assert s.allocated_pages == 0
        assert s.cached_pages == 0 and s.shared_free_pages == 0
        assert s.free_blocks == self.fresh_free_blocks, (
            f"after freeing everything and trimming: {s.free_blocks}, fresh: {self.fresh_free_blocks}"
        )

    # ------------------------------------------------------------ allocation rules
    @rule(target=blocks)
    def alloc_page(self) -> Any:
        return self.alloc_on(MAIN, self.p.alloc_page, 0, True, False, True, labyrinth.OutOfPages)

    @rule(
        target=blocks,
        order=testing.orders(max_order=4),
        atomic=st.booleans(),
        wait=st.booleans(),
        zero=st.booleans(),
        exclusive=st.booleans(),
        thread=st.sampled_from([MAIN, WORKER]),
    )
    def alloc(self, order: int, atomic: bool, wait: bool, zero: bool, exclusive: bool, thread: str) -> Any:
        def call() -> labyrinth.Page:
            return self.p.alloc(order, atomic=atomic, wait=wait, zero=zero, exclusive=exclusive, timeout=0)

        if atomic and wait:
            self.expect_refused(labyrinth.InvalidArgument, thread, call)
            return multiple()
        # WAIT with timeout 0 reports an empty pool as Timeout, else OutOfPages.
        fail = labyrinth.Timeout if wait else labyrinth.OutOfPages
        return self.alloc_on(thread, call, order, exclusive, zero, atomic, fail)

    @rule(target=blocks, n=st.integers(1, 80), atomic=st.booleans(), thread=st.sampled_from([MAIN, WORKER]))
    def alloc_burst(self, n: int, atomic: bool, thread: str) -> Any:
        """Order-0 exclusive pages until n or the pool runs dry: exhausts the
        pool and its reserve."""
        got = []
        for _ in range(n):
            def call() -> labyrinth.Page:
                return self.p.alloc(0, atomic=atomic)

            before = self.p.stats()
            try:
                page = self.on(thread, call)
            except labyrinth.OutOfPages:
                s = self.p.stats()
                assert _owned_state(s) == _owned_state(before)
                if atomic:
                    # An atomic caller fails only once the reserve and every
                    # page outside other threads' caches are gone.
                    assert s.reserve_pages == 0, f"atomic allocation failed with the reserve not empty: {s}"
                    assert s.free_pages == 0, f"atomic allocation failed with free pages: {s}"
                event(f"burst ran dry ({'atomic' if atomic else 'not atomic'})")
                break
            if not atomic:
                assert self.p.stats().reserve_uses == before.reserve_uses, "a non-atomic allocation used the reserve"
            got.append(self.adopt(page, 0, True, thread, False))
        return multiple(*got)

    # ------------------------------------------------------------ freeing
    @rule(target=freed, b=consumes(blocks))
    def free(self, b: Block) -> Any:
        if not b.live:  # freed by free_everything_and_trim
            return multiple()
        addr = b.addr
        self.free_block(b)
        return Freed(b.page, addr)

    @rule(b=blocks)
    def free_or_transfer_by_non_owner(self, b: Block) -> None:
        if not (b.live and b.exclusive):
            return
        other = WORKER if self.thread_of(b.owner) == MAIN else MAIN
        self.expect_refused(labyrinth.NotOwner, other, b.page.free)
        target = self.owner_of(other)
        self.expect_refused(labyrinth.NotOwner, other, lambda: b.page.transfer(target))

    @rule(f=freed)
    def double_free(self, f: Freed) -> None:
        # Through the Page object: the binding knows it was freed.
        self.expect_refused(labyrinth.DoubleFree, MAIN, f.page.free)
        # Through the raw address: the core must tell.
        for b in self.model.values():
            if b.addr <= f.addr < b.addr + b.size:
                if b.addr == f.addr:
                    return  # reallocated: a raw free would free the new block
                self.expect_refused(labyrinth.InvalidArgument, MAIN, lambda: self.p.free_address(f.addr))
                return
        self.expect_refused(labyrinth.DoubleFree, MAIN, lambda: self.p.free_address(f.addr))

    # ------------------------------------------------------------ ownership
    @rule(b=blocks, to=st.sampled_from([MAIN, WORKER]))
    def transfer(self, b: Block, to: str) -> None:
        if not (b.live):
            return
        target = self.owner_of(to)
        if not b.exclusive:
            self.expect_refused(labyrinth.InvalidArgument, MAIN, lambda: b.page.transfer(target))
            return
        self.on(self.thread_of(b.owner), lambda: b.page.transfer(target))
        b.owner = target
        b.holder = to

    @rule(b=blocks, bad=st.sampled_from([0, labyrinth.OWNER_MAX + 1, 2**64 - 1]))
    def transfer_to_invalid_owner(self, b: Block, bad: int) -> None:
        if not (b.live and b.exclusive):
            return
        self.expect_refused(labyrinth.InvalidArgument, self.thread_of(b.owner), lambda: b.page.transfer(bad))

    # ------------------------------------------------------------ misuse
    @rule(where=st.sampled_from(["below", "end", "far"]))
    def free_foreign(self, where: str) -> None:
        addr = {"below": self.p.base - PAGE_SIZE, "end": self.p.base + self.p.size_bytes,
                "far": PAGE_SIZE}[where]
        self.expect_refused(labyrinth.ForeignPage, MAIN, lambda: self.p.free_address(addr))

    @rule(b=blocks, offset=st.integers(1, 2 * PAGE_SIZE))
    def free_interior(self, b: Block, offset: int) -> None:
        if not (b.live and offset < b.size):
            return
        self.expect_refused(labyrinth.InvalidArgument, MAIN, lambda: self.p.free_address(b.addr + offset))

    @rule(order=st.sampled_from([-1, labyrinth.MAX_ORDER + 1, 63]))
    def alloc_bad_order(self, order: int) -> None:
        self.expect_refused(labyrinth.InvalidArgument, MAIN, lambda: self.p.alloc(order))

    # ------------------------------------------------------------ buffers
    @rule(b=blocks)
    def view_blocks_free(self, b: Block) -> None:
        if not (b.live):
            return
        page = b.page
        view = memoryview(page)
        arr = np.frombuffer(page, dtype=np.uint8)
        assert arr.__array_interface__["data"][0] == b.addr, "numpy must see the block itself"
        assert len(view) == b.size and view[0] == b.pattern and arr[-1] == b.pattern
        owner_thread = self.thread_of(b.owner) if b.exclusive else b.holder
        self.expect_refused(labyrinth.Busy, owner_thread, page.free)
        del arr
        view.release()
        assert page.exports == 0

    # ------------------------------------------------------------ maintenance
    @rule(thread=st.sampled_from([MAIN, WORKER]))
    def trim(self, thread: str) -> None:
        self.on(thread, self.p.trim)

    @rule()
    def reclaim_orphans(self) -> None:
        assert self.p.reclaim_orphans() == 0  # both threads are alive

    @precondition(lambda self: self.pool is not None and len(self.model) > 0)
    @rule()
    def free_everything_and_trim(self) -> None:
        self.free_everything()
        self.check_fresh()

    # ------------------------------------------------------------ invariants
    @invariant()
    def pages_add_up(self) -> None:
        if self.pool is None:
            return
        s = self.p.stats()
        assert s.free_pages + s.reserve_pages + s.cached_pages + s.allocated_pages == s.total_pages, s
        assert s.allocated_pages == sum(1 << b.order for b in self.model.values()), s
        assert s.reserve_pages <= s.reserve_target
        assert s.orphaned_pages == 0
        assert s.inflight_pages == 0

    @invariant()
    def owners_and_orders_match(self) -> None:
        if self.pool is None:
            return
        for b in self.model.values():
            assert self.p.page_info(b.addr) == (b.owner, b.order), (hex(b.addr), b)
            assert b.page.owner == b.owner and not b.page.freed

    @invariant()
    def binding_registry_matches(self) -> None:
        if self.pool is None:
            return
        assert self.p.live_pages == len(self.model)
        assert self.p.exports == 0


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(
    settings.default,
    max_examples=MACHINE_EXAMPLES,
    stateful_step_count=max(settings.default.stateful_step_count, 60),
)


class ZonedPoolMachine(PoolMachine):
    """The same machine on pools of 2,048 to 3,100 pages (8 to 12 MiB): two
    or three zones, each a buddy allocator with its own mutex (see
    cpp/src/zones.hpp), so allocation, the reserve, trim and "back to a fresh
    pool" cross zone boundaries. Unpinned: RLIMIT_MEMLOCK may be 8 MiB."""

    @initialize(
        opts=testing.pool_options(min_pages=2048, max_pages=3100, pin=False),
        small_caches=st.booleans(),
    )
    def make_pool(self, opts: dict[str, Any], small_caches: bool) -> None:
        super().make_pool(opts, small_caches)


TestZonedPoolMachine = ZonedPoolMachine.TestCase
TestZonedPoolMachine.settings = settings(
    settings.default,
    max_examples=max(MACHINE_EXAMPLES // 8, 10),
    stateful_step_count=max(settings.default.stateful_step_count, 60),
)
