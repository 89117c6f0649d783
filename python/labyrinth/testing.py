"""Hypothesis strategies for Labyrinth workloads, traces and pools (needs
the ``hypothesis`` package).

For researchers who want to search for the workloads that make the
allocator misbehave (or just slow), and for Labyrinth's own tests::

    from hypothesis import given, settings
    from labyrinth import testing
    from labyrinth.workload import replay

    @given(testing.traces(max_threads=3, max_events=200))
    def test_valid_traces_never_fail(trace):
        result = replay(trace, pool_size=1 << 20)
        assert result.total_failures == 0      # only if the pool is big enough

Every strategy produces plain :mod:`labyrinth.workload` objects, so a
failing example prints as code you can paste.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from . import MAX_ORDER, PAGE_SIZE
from .workload import Distribution, Exponential, Fixed, Trace, TraceEvent, Uniform, Workload

__all__ = [
    "orders",
    "order_weights",
    "distributions",
    "workloads",
    "traces",
    "pool_options",
]


def orders(max_order: int = MAX_ORDER) -> st.SearchStrategy[int]:
    """A block order, 0..max_order, shrinking towards 0 (single pages)."""
    return st.integers(min_value=0, max_value=max_order)


def order_weights(max_order: int = 4, max_orders: int = 3) -> st.SearchStrategy[dict[int, float]]:
    """A Workload.orders mapping: a few orders with positive weights."""
    return st.dictionaries(
        orders(max_order),
        st.floats(min_value=0.01, max_value=1.0, allow_nan=False),
        min_size=1,
        max_size=max_orders,
    )


def distributions(max_value: int = 64) -> st.SearchStrategy[Distribution]:
    """Fixed, Uniform or Exponential with values up to max_value."""
    fixed = st.builds(Fixed, st.integers(0, max_value))
    uniform = st.integers(0, max_value).flatmap(
        lambda lo: st.builds(Uniform, st.just(lo), st.integers(lo, max_value))
    )
    expo = st.builds(Exponential, st.floats(min_value=0.0, max_value=float(max_value), allow_nan=False))
    return st.one_of(fixed, uniform, expo)


def workloads(
    max_threads: int = 4,
    max_steps: int = 2000,
    max_order: int = 4,
    max_burst: int = 16,
    max_lifetime: int = 256,
    duration_s: float = 2.0,
) -> st.SearchStrategy[Workload]:
    """Bounded synthetic workloads (``steps_per_thread`` at most max_steps,
    and never longer than duration_s seconds)."""
    share = st.sampled_from([0.0, 0.0, 0.05, 0.25, 0.5, 1.0])
    return st.builds(
        Workload,
        threads=st.integers(1, max_threads),
        duration_s=st.just(duration_s),
        steps_per_thread=st.integers(1, max_steps),
        orders=order_weights(max_order),
        lifetime=distributions(max_lifetime),
        burst=distributions(max_burst),
        transfer_share=share,
        wait_share=share,
        wait_timeout_ms=st.integers(0, 5),
        exclusive_share=st.sampled_from([1.0, 1.0, 0.5, 0.0]),
        zero_share=share,
        touch=st.booleans(),
        max_held_per_thread=st.integers(1, 512),
        seed=st.integers(0, 2**32 - 1),
        sample_interval_s=st.just(0.01),
        latency_every=st.sampled_from([1, 1, 7]),
    )


@st.composite
def traces(
    draw: st.DrawFn,
    max_threads: int = 3,
    max_events: int = 200,
    max_order: int = 3,
    misuse: bool = False,
    atomic: bool | None = True,
) -> Trace:
    """Traces of alloc/free/transfer events that are valid by construction:
    a block is freed or transferred only by its owner (exclusive blocks) or
    by anyone (shared blocks), transferred only if exclusive, and never used
    after it is freed. With ``misuse=True`` some events break those rules on
    purpose (the replay then counts NOT_OWNER / INVALID failures, and the
    allocator must change nothing for them).

    ``atomic``: True, allocations are GFP_ATOMIC (they never block, so under
    contention on the zones' mutexes an order > 0 one may fail with NOMEM
    even in a large pool); False, none is (they may take a mutex and so never
    fail in a large enough pool); None, each is drawn. No allocation waits
    (GFP_WAIT): a replay would wait on itself."""
    threads = draw(st.integers(1, max_threads))
    n = draw(st.integers(0, max_events))
    live: dict[int, tuple[int, bool]] = {}  # block -> (owner thread, exclusive)
    next_block = 0
    events: list[TraceEvent] = []
    for _ in range(n):
        kind = draw(st.sampled_from(["alloc", "alloc", "free", "transfer"] + (["misuse"] if misuse else [])))
        if kind == "alloc" or not live:
            t = draw(st.integers(0, threads - 1))
            excl = draw(st.booleans())
            zero = draw(st.booleans())
            atom = draw(st.booleans()) if atomic is None else atomic
            flags = "|".join(
                f for f, on in (("atomic", atom), ("exclusive", excl), ("zero", zero)) if on
            ) or "none"
            events.append(TraceEvent("alloc", t, next_block, draw(orders(max_order)), flags))
            live[next_block] = (t, excl)
            next_block += 1
        elif kind == "free":
            b = draw(st.sampled_from(sorted(live)))
            owner, excl = live.pop(b)
            t = owner if excl else draw(st.integers(0, threads - 1))
            events.append(TraceEvent("free", t, b))
        elif kind == "transfer":
            excl_blocks = sorted(b for b, (_, e) in live.items() if e)
            if not excl_blocks or threads < 2:
                continue
            b = draw(st.sampled_from(excl_blocks))
            owner, _ = live[b]
            to = draw(st.integers(0, threads - 1).filter(lambda x: x != owner))
            events.append(TraceEvent("transfer", owner, b, to=to))
            live[b] = (to, True)
        else:  # misuse: a call the allocator must refuse without changing anything
            b = draw(st.sampled_from(sorted(live)))
            owner, excl = live[b]
            others = [x for x in range(threads) if x != owner]
            choice = draw(st.sampled_from(["free_by_other", "transfer_by_other", "wait_atomic"]))
            if choice == "wait_atomic":
                t = draw(st.integers(0, threads - 1))
                events.append(TraceEvent("alloc", t, f"bad{len(events)}", 0, "atomic|wait"))
            elif excl and others:
                t = draw(st.sampled_from(others))
                if choice == "free_by_other":
                    events.append(TraceEvent("free", t, b))
                else:
                    events.append(TraceEvent("transfer", t, b, to=owner))
    return Trace(events)


def pool_options(
    min_pages: int = 16,
    max_pages: int = 512,
    pin: bool | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for a small :class:`labyrinth.Pool`: size (a
    multiple of 4 KiB), reserve, scrub, huge pages and, unless given, pin."""
    return st.fixed_dictionaries(
        {
            "size_bytes": st.integers(min_pages, max_pages).map(lambda n: n * PAGE_SIZE),
            "atomic_reserve_pages": st.one_of(st.none(), st.integers(0, 8)),
            "scrub": st.booleans(),
            "hugepages": st.booleans(),
            "pin": st.just(pin) if pin is not None else st.booleans(),
        }
    )
