"""labyrinth.workload: the C++ runner, traces, histograms, results."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import labyrinth
from labyrinth import _core, testing
from labyrinth.workload import (
    OPS,
    Exponential,
    Fixed,
    Histogram,
    Result,
    Trace,
    TraceEvent,
    Uniform,
    Workload,
    replay,
    run,
)


@pytest.fixture(scope="module")
def big_pool() -> Iterator[labyrinth.Pool]:
    with labyrinth.Pool(16 << 20) as p:
        yield p


# ------------------------------------------------------------ histograms

def test_histogram_buckets_match_the_core() -> None:
    rng = random.Random(1)
    values = list(range(0, 5000)) + [rng.randrange(1, 1 << 37) for _ in range(3000)]
    values += [(1 << k) + d for k in range(11, 37) for d in (-1, 0, 1)]
    for v in values:
        lo, width = _core._hist_bucket(v)
        h = Histogram.from_values([v])
        assert h.values == [lo], v
        assert h.bucket_width(lo) == width, v
        assert lo <= v < lo + width
        assert width == 1 if v < 2048 else width <= v / 1024


def test_percentiles_are_exact_below_2048() -> None:
    rng = random.Random(2)
    vals = [rng.randrange(0, 2048) for _ in range(10007)]
    h = Histogram.from_values(vals)
    s = sorted(vals)
    for p in (0.01, 1, 25, 50, 90, 99, 99.9, 99.99, 100):
        assert h.percentile(p) == s[max(1, math.ceil(p / 100 * len(s))) - 1], p
    assert h.percentile(0) == s[0] and h.percentile(100) == s[-1]
    assert h.mean == pytest.approx(sum(vals) / len(vals))


def test_percentiles_within_a_bucket_above_2048() -> None:
    rng = random.Random(3)
    vals = [int(rng.lognormvariate(9, 2)) for _ in range(20000)]
    h = Histogram.from_values(vals)
    s = sorted(vals)
    for p in (50, 90, 99, 99.9):
        exact = s[math.ceil(p / 100 * len(s)) - 1]
        got = h.percentile(p)
        assert exact <= got <= exact + max(1, exact // 1024), (p, exact, got)
    merged = h.merge(Histogram.from_values(vals))
    assert merged.count == 2 * h.count and merged.percentile(50) == h.percentile(50)
    with pytest.raises(labyrinth.InvalidArgument):
        h.percentile(101)


# ------------------------------------------------------------ synthetic runs

def check_result(res: Result, timed_every_call: bool) -> None:
    """What must hold for any run: calls add up, nothing leaks."""
    ok_allocs = sum(res.calls[op] - sum(res.failures[op].values()) for op in ("alloc_atomic", "alloc_wait"))
    ok_frees = res.calls["free"] - sum(res.failures["free"].values())
    assert sum(res.failures["free"].values()) == 0 and sum(res.failures["transfer"].values()) == 0
    assert ok_frees + res.drain_frees == ok_allocs, "every block allocated is freed exactly once"
    assert res.drain_failures == 0
    assert res.calls["transfer"] <= ok_allocs
    assert sum(res.per_thread_ops) == res.total_calls
    assert res.stats_after["allocated_pages"] == 0
    for op in OPS:
        h = res.latency[op]
        assert sum(h.counts) == h.count
        if timed_every_call:
            assert h.count == res.calls[op]
        else:
            assert h.count <= res.calls[op]
    s = res.samples
    assert len(s) >= 2 and all(b >= a for a, b in zip(s.t, s.t[1:]))
    assert all(b >= a for a, b in zip(s.ops, s.ops[1:])) and s.ops[-1] == res.total_calls
    assert all(len(fb) == labyrinth.MAX_ORDER + 1 for fb in s.free_blocks)
    for i in range(len(s)):  # pages add up in every sample (taken while threads ran: not one
        # snapshot, so only bounds hold)
        assert s.allocated_pages[i] <= res.stats_after["total_pages"]


def test_run_steps_and_invariants(big_pool: labyrinth.Pool) -> None:
    w = Workload(threads=2, duration_s=30, steps_per_thread=20000, orders={0: 0.8, 1: 0.1, 3: 0.1},
                 lifetime=Exponential(16), burst=Uniform(1, 4), transfer_share=0.3, wait_share=0.1,
                 zero_share=0.1, exclusive_share=0.8)
    res = run(w, big_pool)
    assert res.kind == "synthetic" and res.threads == 2 and not res.cancelled
    check_result(res, True)
    assert res.calls["transfer"] > 0 and res.calls["alloc_wait"] > 0
    assert res.workload is not None and res.workload["steps_per_thread"] == 20000
    assert res.pool["size_bytes"] == 16 << 20


def test_one_thread_runs_are_deterministic(big_pool: labyrinth.Pool) -> None:
    w = Workload(threads=1, duration_s=30, steps_per_thread=5000, orders={0: 0.7, 2: 0.3},
                 lifetime=Exponential(20), burst=Uniform(1, 6), seed=42)
    a, b = run(w, big_pool), run(w, big_pool)
    # The requests depend only on the seed. (An atomic order-2 request may
    # fail when the sampler thread holds the pool mutex: atomic callers only
    # try it. Then that block is not freed later, so compare allocations.)
    assert a.calls["alloc_atomic"] == b.calls["alloc_atomic"]
    if not a.total_failures and not b.total_failures:
        assert a.calls == b.calls
    c = run(dataclasses.replace(w, seed=43), big_pool)
    assert c.calls["alloc_atomic"] != a.calls["alloc_atomic"]


def test_latency_every(big_pool: labyrinth.Pool) -> None:
    res = run(Workload(threads=1, duration_s=30, steps_per_thread=10000, latency_every=10), big_pool)
    check_result(res, False)
    assert 0 < res.latency["alloc_atomic"].count < res.calls["alloc_atomic"]


def test_exhaustion_counts_failures_and_reserve() -> None:
    with labyrinth.Pool(64 * labyrinth.PAGE_SIZE, atomic_reserve_pages=8) as pool:
        res = run(Workload(threads=1, duration_s=30, steps_per_thread=2000, lifetime=Fixed(1000),
                           burst=Fixed(1)), pool)
        check_result(res, True)
        assert res.failures["alloc_atomic"].get("LABYRINTH_ERR_NOMEM", 0) > 0
        # Freed pages refill the reserve first, so it is used again and again.
        assert res.reserve_uses >= 8
        assert res.samples.reserve_uses[-1] == res.reserve_uses


def test_result_json_round_trip(tmp_path: Path, big_pool: labyrinth.Pool) -> None:
    res = run(Workload(threads=2, duration_s=0.05), big_pool)
    path = tmp_path / "r.json"
    res.save(path)
    assert json.loads(path.read_text())["format"] == "labyrinth.workload.Result/1"
    again = Result.load(path)
    assert again == res
    assert again.latency["free"].percentile(99) == res.latency["free"].percentile(99)
    values, counts = res.latency["alloc_atomic"].to_numpy()
    assert values.dtype == np.int64 and int(counts.sum()) == res.latency["alloc_atomic"].count
    fb = res.samples.free_blocks_array()
    assert fb.shape == (len(res.samples), labyrinth.MAX_ORDER + 1)
    ts, rates = res.samples.throughput()
    assert len(ts) == len(rates) == len(res.samples) - 1


def test_to_pandas(big_pool: labyrinth.Pool) -> None:
    pytest.importorskip("pandas", reason="pandas is optional and not installed")
    res = run(Workload(threads=1, duration_s=0.05), big_pool)
    frames = res.to_pandas()
    assert list(frames["samples"].columns)[:2] == ["ops", "free_pages"]
    assert set(frames["summary"].index) >= {"alloc_atomic", "free"}


def test_to_pandas_without_pandas_names_the_extra(big_pool: labyrinth.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    res = run(Workload(threads=1, duration_s=0.05), big_pool)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"labyrinth-pages\[pandas\]"):
        res.to_pandas()


@pytest.mark.parametrize(
    "kw, text",
    [
        (dict(orders={11: 1.0}), "order 11"),
        (dict(orders={0: 0.0}), "weight"),
        (dict(transfer_share=1.5), "transfer_share"),
        (dict(duration_s=None, steps_per_thread=None), "duration_s or steps_per_thread"),
        (dict(threads=0), "threads"),
        (dict(lifetime=Uniform(5, 2)), "low <= high"),
    ],
)
def test_workload_validation(big_pool: labyrinth.Pool, kw: dict[str, object], text: str) -> None:
    with pytest.raises(labyrinth.InvalidArgument, match=text):
        run(dataclasses.replace(Workload(), **kw), big_pool)  # type: ignore[arg-type]


def test_workload_dict_round_trip() -> None:
    w = Workload(threads=3, orders={0: 0.5, 4: 0.5}, lifetime=Uniform(1, 9), burst=Exponential(2.5))
    assert Workload.from_dict(json.loads(json.dumps(w.to_dict()))) == w


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=testing.workloads(max_threads=3, max_steps=400, duration_s=2.0))
def test_generated_workloads_keep_the_books(big_pool: labyrinth.Pool, w: Workload) -> None:
    res = run(w, big_pool)
    check_result(res, w.latency_every == 1)


# ------------------------------------------------------------ traces

TRACE = [
    TraceEvent("alloc", 0, "a"),
    TraceEvent("transfer", 0, "a", to=1),
    TraceEvent("free", 0, "a"),  # misuse: 0 no longer owns it -> NOT_OWNER
    TraceEvent("free", 1, "a"),
    TraceEvent("alloc", 1, "b", order=3, flags="atomic"),  # shared: anyone may free
    TraceEvent("free", 0, "b"),
    TraceEvent("alloc", 0, "c", flags="atomic|wait"),  # INVALID, c never exists
    TraceEvent("free", 0, "c"),  # skipped
    TraceEvent("alloc", 1, "d", order=2, flags="wait|exclusive", timeout_ms=5),
    TraceEvent("transfer", 1, "d", to=0),  # d left allocated: freed by its owner at the end
]


def test_replay_with_misuse() -> None:
    res = replay(Trace(TRACE), pool_size=1 << 20)
    assert res.kind == "replay" and res.threads == 2
    # Calls with GFP_WAIT count as alloc_wait (the refused atomic|wait one too).
    assert res.calls == {"alloc_atomic": 2, "alloc_wait": 2, "free": 3, "transfer": 2}
    assert res.failures["free"] == {"LABYRINTH_ERR_NOT_OWNER": 1}
    assert res.failures["alloc_wait"] == {"LABYRINTH_ERR_INVALID": 1}
    assert res.skipped_events == 1 and res.drain_frees == 1 and res.drain_failures == 0
    assert res.stats_after["allocated_pages"] == 0


def test_trace_files(tmp_path: Path) -> None:
    tr = Trace(TRACE)
    for name in ("t.csv", "t.jsonl"):
        tr.save(tmp_path / name)
        assert Trace.load(tmp_path / name).events == tr.events
    (tmp_path / "x.txt").write_text("# a comment\nthread,op,id,order,flags\n0,alloc,7,1,atomic|exclusive\n0,free,7,,\n")
    t2 = Trace.load(tmp_path / "x.txt")
    assert [e.op for e in t2] == ["alloc", "free"] and t2.events[0].block == 7 and t2.events[0].order == 1
    (tmp_path / "y").write_text('{"op":"alloc","thread":2,"block":"q","flags":9}\n')
    t3 = Trace.load(tmp_path / "y")
    assert t3.threads == 3 and t3.events[0].flags == "atomic|exclusive"
    cols = Trace([TraceEvent("alloc", 0, 1, flags="none"), TraceEvent("alloc", 0, 2, flags=""),
                  TraceEvent("alloc", 0, 3, flags="wait+zero")]).columns()
    assert list(cols["gfp"]) == [0, _core.GFP_ATOMIC | _core.GFP_EXCLUSIVE, _core.GFP_WAIT | _core.GFP_ZERO]
    for bad, text in (('{"op":"steal","thread":0,"block":1}', "op must be"),
                      ('{"op":"transfer","thread":0,"block":1}', "needs 'to'"),
                      ('{"op":"alloc","thread":0,"block":1,"flags":"sleepy"}', "unknown allocation flag"),
                      ('{"op":"alloc","thread":0}', "no block"),
                      ("not json", "not JSON")):
        (tmp_path / "bad.jsonl").write_text(bad + "\n")
        with pytest.raises(labyrinth.InvalidArgument, match=text):
            Trace.load(tmp_path / "bad.jsonl")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tr=testing.traces(max_threads=3, max_events=150, atomic=False))
def test_valid_traces_replay_without_failures(big_pool: labyrinth.Pool, tr: Trace) -> None:
    """Non-atomic allocations may take the pool mutex: in a pool large
    enough for the whole trace none may fail."""
    before = big_pool.stats()
    res = replay(tr, big_pool)
    assert res.total_failures == 0 and res.skipped_events == 0, (res.failures, big_pool.stats())
    assert sum(res.calls.values()) == len(tr)
    assert big_pool.stats().allocated_pages == before.allocated_pages == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tr=testing.traces(max_threads=3, max_events=150, atomic=True))
def test_atomic_traces_fail_only_for_lack_of_pages(big_pool: labyrinth.Pool, tr: Trace) -> None:
    """Atomic allocations never block: one that finds the pool mutex taken
    (another replay thread) may fail with NOMEM, never otherwise."""
    res = replay(tr, big_pool)
    assert set(res.failures_by_reason()) <= {"LABYRINTH_ERR_NOMEM"}
    assert not res.failures["free"] and not res.failures["transfer"]
    assert big_pool.stats().allocated_pages == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tr=testing.traces(max_threads=3, max_events=150, misuse=True, atomic=False))
def test_misuse_in_traces_is_refused_and_changes_nothing(big_pool: labyrinth.Pool, tr: Trace) -> None:
    res = replay(tr, big_pool)
    reasons = set(res.failures_by_reason())
    assert reasons <= {"LABYRINTH_ERR_NOT_OWNER", "LABYRINTH_ERR_INVALID"}
    # Misuse changed nothing: the valid events all succeeded and every block
    # was freed exactly once (by the trace or, if the trace left it, at the end).
    assert res.drain_failures == 0
    assert big_pool.stats().allocated_pages == 0


def test_csv_traces_quoted_short_rows_and_errors() -> None:
    t = Trace.from_csv('# a comment\nthread,op,id,flags\n0,alloc,"x",atomic|exclusive\n0,free,x\n')
    assert [e.op for e in t] == ["alloc", "free"] and t.events[0].block == "x" and len(t) == 2
    assert t.columns()["block"].tolist() == [0, 0]
    same = Trace.from_csv("op,block\nalloc,7\nfree, 7\n")
    assert same.columns()["block"].tolist() == [0, 0]  # " 7" and "7" name one block
    for text, words in (("op,block\nallocate,1\n", "event 0: op"), ("op,block,thread\nalloc,1,x\n", "thread"),
                        ("op,thread\nalloc,0\n", "no 'block' column"), ("op,block,to\nalloc,1,\ntransfer,1,\n",
                                                                          "event 1: a transfer needs")):
        with pytest.raises(labyrinth.InvalidArgument, match=words):
            Trace.from_csv(text)
