"""Results of labyrinth.workload: :class:`Histogram`, :class:`Samples` and
:class:`Result`, plain data that saves to JSON and converts to numpy and
pandas when installed. Import them from labyrinth.workload."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _core
from .errors import InvalidArgument

#: The timed calls, keys of :attr:`Result.latency`, ``calls`` and ``failures``.
OPS = ("alloc_atomic", "alloc_wait", "free", "transfer")


def _optional(module: str, what: str) -> Any:
    """Import an optional dependency, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs {module}, which is not installed: pip install {module} "
            f"(or the package's extra: pip install 'labyrinth-pages[{module}]')"
        ) from None



# --------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class Histogram:
    """An HDR-style latency histogram in nanoseconds.

    Values below ``2**sub_bucket_bits`` (2048 ns) are counted exactly; above,
    each power of two is split into 1024 buckets, so a bucket is at most
    1/1024 of its value wide. ``values[i]`` is the lower bound of a non-empty
    bucket and ``counts[i]`` its count; ``min``, ``max``, ``sum`` and
    ``count`` are exact. Latencies include the timer's own cost
    (``Result.timer_overhead_ns``).
    """

    values: list[int]
    counts: list[int]
    count: int
    sum: int
    min: int
    max: int
    sub_bucket_bits: int = 11

    def bucket_width(self, value: int) -> int:
        """Width of the bucket whose lower bound is ``value``."""
        sub = 1 << self.sub_bucket_bits
        if value < sub:
            return 1
        return 1 << (value.bit_length() - self.sub_bucket_bits)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def percentile(self, p: float) -> int:
        """The smallest recorded value v (a bucket's highest value, never
        above ``max``) such that at least p % of the calls took <= v. Exact
        for values below 2048 ns. ``percentile(0)`` is ``min``, ``percentile
        (100)`` is ``max``."""
        if not 0 <= p <= 100:
            raise InvalidArgument(f"percentile must be in [0, 100], got {p}")
        if self.count == 0:
            return 0
        if p == 0:
            return self.min
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for v, c in zip(self.values, self.counts):
            seen += c
            if seen >= rank:
                return max(self.min, min(v + self.bucket_width(v) - 1, self.max))
        return self.max

    @classmethod
    def from_values(cls, values: Iterable[int], sub_bucket_bits: int = 11) -> Histogram:
        """Bucket values (ns, >= 0) exactly as the C++ runner does: for
        latencies measured elsewhere, to compare them with a run's."""
        sub = 1 << sub_bucket_bits
        acc: dict[int, int] = {}
        n = total = 0
        lo, hi = None, 0
        for v in values:
            v = int(v)
            if v < 0:
                raise InvalidArgument("histogram values must be >= 0")
            if v < sub:
                b = v
            else:
                shift = v.bit_length() - sub_bucket_bits
                b = (v >> shift) << shift
            acc[b] = acc.get(b, 0) + 1
            n += 1
            total += v
            lo = v if lo is None or v < lo else lo
            hi = max(hi, v)
        keys = sorted(acc)
        return cls(values=keys, counts=[acc[k] for k in keys], count=n, sum=total,
                   min=lo or 0, max=hi, sub_bucket_bits=sub_bucket_bits)

    def percentiles(self, ps: Sequence[float] = (50, 90, 99, 99.9, 99.99)) -> dict[float, int]:
        return {p: self.percentile(p) for p in ps}

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram with both sets of counts."""
        acc: dict[int, int] = {}
        for v, c in zip(self.values + other.values, self.counts + other.counts):
            acc[v] = acc.get(v, 0) + c
        vs = sorted(acc)
        n = self.count + other.count
        return Histogram(
            values=vs,
            counts=[acc[v] for v in vs],
            count=n,
            sum=self.sum + other.sum,
            min=min(x.min for x in (self, other) if x.count) if n else 0,
            max=max(self.max, other.max),
            sub_bucket_bits=self.sub_bucket_bits,
        )

    def to_numpy(self) -> tuple[Any, Any]:
        """``(values, counts)`` as numpy int64 arrays (needs numpy)."""
        np = _optional("numpy", "to_numpy()")
        return np.asarray(self.values, dtype=np.int64), np.asarray(self.counts, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Histogram:
        return cls(
            values=[int(x) for x in d["values"]],
            counts=[int(x) for x in d["counts"]],
            count=int(d["count"]),
            sum=int(d["sum"]),
            min=int(d["min"]),
            max=int(d["max"]),
            sub_bucket_bits=int(d.get("sub_bucket_bits", 11)),
        )


@dataclasses.dataclass
class Samples:
    """The pool sampled over time: ``t[i]`` seconds after the start, the
    cumulative calls made by then, and the pool's page counts. ``free_blocks
    [i][o]`` is the number of free buddy blocks of order ``o``: few high-order
    blocks and many low-order ones means a fragmented pool. ``reserve_uses``
    counts allocations served from the atomic reserve since the start."""

    t: list[float]
    ops: list[int]
    free_pages: list[int]
    cached_pages: list[int]
    reserve_pages: list[int]
    allocated_pages: list[int]
    shared_free_pages: list[int]
    reserve_uses: list[int]
    free_blocks: list[list[int]]

    def __len__(self) -> int:
        return len(self.t)

    def throughput(self) -> tuple[list[float], list[float]]:
        """Calls per second between consecutive samples: (mid-times, rates)."""
        ts, rates = [], []
        for i in range(1, len(self.t)):
            dt = self.t[i] - self.t[i - 1]
            if dt > 0:
                ts.append((self.t[i] + self.t[i - 1]) / 2)
                rates.append((self.ops[i] - self.ops[i - 1]) / dt)
        return ts, rates

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Samples:
        return cls(**{f.name: list(d[f.name]) for f in dataclasses.fields(cls)})

    def to_pandas(self) -> Any:
        """A DataFrame indexed by time, one column per counter and
        ``free_blocks_0`` .. ``free_blocks_10`` (needs pandas)."""
        pd = _optional("pandas", "to_pandas()")

        data: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("ops", "free_pages", "cached_pages", "reserve_pages", "allocated_pages",
                      "shared_free_pages", "reserve_uses")
        }
        for o in range(_core.MAX_ORDER + 1):
            data[f"free_blocks_{o}"] = [fb[o] for fb in self.free_blocks]
        return pd.DataFrame(data, index=pd.Index(self.t, name="t"))

    def free_blocks_array(self) -> Any:
        """``free_blocks`` as a (samples, orders) numpy array (needs numpy)."""
        np = _optional("numpy", "free_blocks_array()")
        return np.asarray(self.free_blocks, dtype=np.int64).reshape(len(self.t), _core.MAX_ORDER + 1)


@dataclasses.dataclass
class Result:
    """What a run measured. Plain data: save()/load() round-trip it as JSON."""

    kind: str
    """"synthetic" or "replay"."""
    workload: dict[str, Any] | None
    """The workload description (Workload.to_dict()), or None for a replay."""
    threads: int
    duration_s: float
    clock: str
    """"tsc" (calibrated time-stamp counter) or "steady_clock"."""
    timer_overhead_ns: int
    """The smallest latency the timer can report (included in every value)."""
    latency_every: int
    cancelled: bool
    calls: dict[str, int]
    """Calls made, by op (see OPS)."""
    latency: dict[str, Histogram]
    failures: dict[str, dict[str, int]]
    """Failed calls by op and status name (LABYRINTH_ERR_NOMEM, ...)."""
    per_thread_ops: list[int]
    skipped_events: int
    """Replay: events on blocks whose allocation had failed."""
    drain_frees: int
    """Blocks still held at the end, freed untimed."""
    drain_failures: int
    transfers_skipped: int
    """Transfers not made because the receiver's queue was full (max_inbox)."""
    stats_before: dict[str, Any]
    stats_after: dict[str, Any]
    reserve_uses: int
    """Allocations served from the atomic reserve during the run."""
    samples: Samples
    pool: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The pool the run used (size, flags)."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def throughput(self) -> float:
        """Calls per second over the whole run."""
        return self.total_calls / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def total_failures(self) -> int:
        return sum(sum(f.values()) for f in self.failures.values())

    def failures_by_reason(self) -> dict[str, int]:
        """Failed calls by status, all ops together."""
        out: dict[str, int] = {}
        for f in self.failures.values():
            for k, v in f.items():
                out[k] = out.get(k, 0) + v
        return out

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per op that was called: calls, failures, latency percentiles (ns)."""
        rows = []
        for op in OPS:
            n = self.calls.get(op, 0)
            if not n:
                continue
            h = self.latency[op]
            rows.append(
                {
                    "op": op,
                    "calls": n,
                    "failed": sum(self.failures.get(op, {}).values()),
                    "mean_ns": round(h.mean, 1) if h.count else None,
                    "p50_ns": h.percentile(50),
                    "p99_ns": h.percentile(99),
                    "p99.9_ns": h.percentile(99.9),
                    "max_ns": h.max,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["format"] = "labyrinth.workload.Result/1"
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        kw["latency"] = {k: Histogram.from_dict(v) for k, v in d["latency"].items()}
        kw["samples"] = Samples.from_dict(d["samples"])
        return cls(**kw)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Result:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_pandas(self) -> dict[str, Any]:
        """{"samples": DataFrame over time, "summary": DataFrame per op,
        "latency": DataFrame (op, value_ns, count)} (needs pandas)."""
        pd = _optional("pandas", "to_pandas()")

        lat = [
            {"op": op, "value_ns": v, "count": c}
            for op, h in self.latency.items()
            for v, c in zip(h.values, h.counts)
        ]
        return {
            "samples": self.samples.to_pandas(),
            "summary": pd.DataFrame(self.summary_rows()).set_index("op"),
            "latency": pd.DataFrame(lat, columns=["op", "value_ns", "count"]),
        }
