"""The GIL is released around calls that may wait and around workload runs,
so Python threads really run the allocator at the same time."""

from __future__ import annotations

import threading
import time

import labyrinth
from labyrinth import PAGE_SIZE
from labyrinth.workload import Exponential, Workload, run


def test_wait_allocation_releases_the_gil() -> None:
    with labyrinth.Pool(16 * PAGE_SIZE, atomic_reserve_pages=0) as pool:
        held = []
        while True:
            try:
                held.append(pool.alloc_page())
            except labyrinth.OutOfPages:
                break
        got: list[labyrinth.Page] = []
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                page = pool.alloc(0, atomic=False, wait=True, timeout=30)
                got.append(page)
                page.free()  # exclusive to this thread: only it may free it
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        # The waiter sleeps inside the C call. If it held the GIL this loop
        # could not run: it must see the waiter registered as waiting.
        deadline = time.monotonic() + 20
        while pool.stats().waits == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert pool.stats().waits == 1, "the waiting thread never went to sleep"
        assert t.is_alive() and not got
        # Closing is refused while the waiter is inside.
        try:
            pool.close(force=True)
            raise AssertionError("close() should have been refused")
        except labyrinth.Busy as exc:
            assert "running in other threads" in exc.message
        held.pop().free()  # wakes the waiter, which needs nothing from us but the page
        t.join(timeout=20)
        assert not errors and len(got) == 1 and got[0].freed
        for p in held:
            p.free()


def test_two_python_threads_run_workloads_at_once() -> None:
    """Two Python threads each run a C++ workload; both make progress while
    the other's is running (checked through each run's progress counters, not
    through timing)."""
    from labyrinth import _core

    with labyrinth.Pool(8 << 20) as pool:
        w = Workload(threads=1, duration_s=30.0, lifetime=Exponential(8.0)).to_dict()
        runs = [_core.Run(pool, w), _core.Run(pool, w)]
        done = [threading.Event(), threading.Event()]

        def body(i: int) -> None:
            runs[i].start()
            runs[i].wait()  # blocks in C++ with the GIL released
            done[i].set()

        threads = [threading.Thread(target=body, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20

        def calls(i: int) -> int:
            return int(runs[i].progress()[1])

        while min(calls(0), calls(1)) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        first = (calls(0), calls(1))
        # Both threads are inside wait(); both runs keep advancing, and this
        # (third) Python thread keeps running too.
        while (calls(0) <= first[0] or calls(1) <= first[1]) and time.monotonic() < deadline:
            time.sleep(0.005)
        second = (calls(0), calls(1))
        assert not done[0].is_set() and not done[1].is_set()
        assert second[0] > first[0] > 0 and second[1] > first[1] > 0
        for r in runs:
            r.cancel()
        for t in threads:
            t.join(timeout=20)
        assert done[0].is_set() and done[1].is_set()
        res = [r.result() for r in runs]
        assert all(x["cancelled"] for x in res)
        assert pool.stats().allocated_pages == 0  # each run freed what it held


def test_run_from_thread_while_main_allocates() -> None:
    with labyrinth.Pool(8 << 20) as pool:
        out: list[object] = []
        t = threading.Thread(
            target=lambda: out.append(run(Workload(threads=2, duration_s=0.3), pool))
        )
        t.start()
        n = 0
        while t.is_alive():
            with pool.alloc_page():
                n += 1
        t.join()
        assert n > 100 and len(out) == 1


def test_an_idle_threads_cache_comes_back_to_a_call_that_may_block() -> None:
    """A thread that freed pages into its cache and went idle: an allocation
    without ``atomic`` that would fail takes them back (``reclaim=True``, the
    default); with ``reclaim=False`` it fails and the pages stay cached."""
    for reclaim in (True, False):
        with labyrinth.Pool(256 * PAGE_SIZE, atomic_reserve_pages=0, reclaim=reclaim) as pool:
            cached = threading.Event()
            leave = threading.Event()

            def idle() -> None:
                pages = [pool.alloc_page() for _ in range(100)]
                for page in pages:
                    page.free()
                cached.set()
                leave.wait(30)

            t = threading.Thread(target=idle)
            t.start()
            assert cached.wait(30)
            theirs = pool.stats().cached_pages
            assert theirs >= 100
            held = []
            while True:
                try:
                    held.append(pool.alloc(0, atomic=False))
                except labyrinth.OutOfPages:
                    break
            stats = pool.stats()
            if reclaim:
                assert len(held) == stats.total_pages
                assert stats.cache_reclaims == 1 and stats.reclaimed_pages == theirs
            else:
                assert len(held) == stats.total_pages - theirs
                assert stats.cache_reclaims == 0 and stats.cached_pages == theirs
            leave.set()
            t.join(timeout=30)
            for page in held:
                page.free()
