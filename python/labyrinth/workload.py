"""Allocation workloads for researchers: describe one or replay a trace, run
it on N threads *in C++* against a real pool, and get plain data back.

Describe a workload::

    from labyrinth.workload import Workload, Exponential, Uniform, run

    w = Workload(threads=2, duration_s=1.0,
                 orders={0: 0.9, 2: 0.1},          # 90 % single pages, 10 % 16 KiB
                 lifetime=Exponential(mean=64),    # steps a block lives
                 burst=Uniform(1, 8),              # blocks allocated per step
                 transfer_share=0.2,               # handed to another thread
                 wait_share=0.05)                  # GFP_WAIT instead of ATOMIC
    result = run(w, pool_size=64 << 20)
    print(result.latency["alloc_atomic"].percentile(99.9))
    result.save("run.json")

Each worker thread repeats *steps*: take the blocks other threads handed it,
free its blocks whose lifetime (in its own steps) has expired, then allocate
a burst. Every call is timed (HDR-style histogram: exact below 2048 ns,
within 1/1024 above); a sampler thread records the pool's state every
``sample_interval_s`` (free blocks per order: fragmentation; reserve use;
cumulative calls: throughput over time).

Replay a trace (CSV or JSONL of alloc/free/transfer events, see
:class:`Trace`)::

    result = replay(Trace.load("trace.csv"))

Results (:class:`Result`) are dataclasses of plain numbers and lists; they
save to and load from JSON and convert to numpy / pandas when installed.
"""

from __future__ import annotations

import csv
import importlib
import dataclasses
import io
import json
import math
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from . import _core
from ._trace_csv import NO_TARGET, OP_CODES, CsvTrace, read_csv
from .errors import InvalidArgument

__all__ = [
    "Fixed",
    "Uniform",
    "Exponential",
    "Distribution",
    "Workload",
    "TraceEvent",
    "Trace",
    "Histogram",
    "Samples",
    "Result",
    "run",
    "replay",
    "Interrupted",
    "OPS",
]

#: The timed calls, keys of :attr:`Result.latency`, ``calls`` and ``failures``.
OPS = ("alloc_atomic", "alloc_wait", "free", "transfer")

ProgressFn = Callable[[float, int, float], None]


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
# Distributions


@dataclasses.dataclass(frozen=True)
class Fixed:
    """Always ``value``."""

    value: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "fixed", "value": self.value}

    @property
    def mean(self) -> float:
        return float(self.value)


@dataclasses.dataclass(frozen=True)
class Uniform:
    """An integer uniformly in ``[low, high]``."""

    low: int
    high: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "uniform", "low": self.low, "high": self.high}

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@dataclasses.dataclass(frozen=True)
class Exponential:
    """``floor`` of an exponential variate of the given mean (memoryless)."""

    mean: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "exponential", "mean": self.mean}


Distribution = Union[Fixed, Uniform, Exponential]


def _dist_from_dict(d: Mapping[str, Any]) -> Distribution:
    kind = d.get("kind")
    if kind == "fixed":
        return Fixed(int(d["value"]))
    if kind == "uniform":
        return Uniform(int(d["low"]), int(d["high"]))
    if kind == "exponential":
        return Exponential(float(d["mean"]))
    raise InvalidArgument(f"unknown distribution {d!r}")


# --------------------------------------------------------------------------
# Workload description


@dataclasses.dataclass(frozen=True)
class Workload:
    """A synthetic workload. Lifetimes and bursts are counted in *steps* of
    the worker thread (see the module documentation), so a run is the same
    sequence of requests on any machine for a given ``seed`` (timing, and
    so the interleaving between threads, varies).

    The run ends after ``duration_s`` seconds or ``steps_per_thread`` steps,
    whichever comes first (give at least one); then every block still held
    is freed (untimed, counted in ``Result.drain_frees``).
    """

    threads: int = 2
    duration_s: float | None = 1.0
    steps_per_thread: int | None = None
    orders: Mapping[int, float] = dataclasses.field(default_factory=lambda: {0: 1.0})
    """Relative weight of each order (0: 4 KiB ... 10: 4 MiB)."""
    lifetime: Distribution = Exponential(32.0)
    """Steps a block lives before its holder frees it (0: the next step)."""
    burst: Distribution = Fixed(1)
    """Blocks allocated per step (at least 1)."""
    transfer_share: float = 0.0
    """Share of exclusive blocks handed to another (random) thread, which
    frees them when their lifetime ends."""
    wait_share: float = 0.0
    """Share of allocations made with GFP_WAIT (may sleep up to
    ``wait_timeout_ms``) instead of GFP_ATOMIC."""
    wait_timeout_ms: int = 10
    exclusive_share: float = 1.0
    """Share of allocations that are exclusive (only those can be transferred)."""
    zero_share: float = 0.0
    """Share of allocations with GFP_ZERO."""
    touch: bool = True
    """Write one byte of every block allocated (at a varying offset)."""
    max_held_per_thread: int = 1 << 20
    """A thread holding this many blocks frees its oldest before allocating."""
    max_inbox: int = 256
    """Blocks handed to a thread wait in a bounded queue of this size (like a
    real ring between threads); when it is full the sender keeps the block
    (counted in ``Result.transfers_skipped``). A thread that is descheduled
    stops freeing, so without a bound a busy sender would drain the pool."""
    seed: int = 0
    sample_interval_s: float = 0.01
    """Period of the pool-state sampler."""
    latency_every: int = 1
    """Time one call in this many (1: every call; larger: less timer overhead)."""

    def to_dict(self) -> dict[str, Any]:
        """The description as JSON-ready data (see :meth:`from_dict`)."""
        return {
            "kind": "synthetic",
            "threads": self.threads,
            "duration_s": self.duration_s,
            "steps_per_thread": self.steps_per_thread,
            "orders": {int(k): float(v) for k, v in self.orders.items()},
            "lifetime": self.lifetime.to_dict(),
            "burst": self.burst.to_dict(),
            "transfer_share": self.transfer_share,
            "wait_share": self.wait_share,
            "wait_timeout_ms": self.wait_timeout_ms,
            "exclusive_share": self.exclusive_share,
            "zero_share": self.zero_share,
            "touch": self.touch,
            "max_held_per_thread": self.max_held_per_thread,
            "max_inbox": self.max_inbox,
            "seed": self.seed,
            "sample_interval_s": self.sample_interval_s,
            "latency_every": self.latency_every,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Workload:
        kw = {k: v for k, v in d.items() if k != "kind"}
        kw["orders"] = {int(k): float(v) for k, v in kw.get("orders", {0: 1.0}).items()}
        for k in ("lifetime", "burst"):
            if k in kw:
                kw[k] = _dist_from_dict(kw[k])
        return cls(**kw)


# --------------------------------------------------------------------------
# Traces

_FLAG_BITS = {
    "atomic": _core.GFP_ATOMIC,
    "wait": _core.GFP_WAIT,
    "zero": _core.GFP_ZERO,
    "exclusive": _core.GFP_EXCLUSIVE,
}


def _parse_flags(flags: str | int | None) -> int:
    if flags is None or flags == "":
        return _core.GFP_ATOMIC | _core.GFP_EXCLUSIVE
    if isinstance(flags, int):
        return flags
    if flags.strip().lower() in ("none", "0"):
        return 0
    bits = 0
    for tok in flags.replace("+", "|").replace(",", "|").replace(" ", "|").split("|"):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok.startswith("gfp_"):
            tok = tok[4:]
        if tok not in _FLAG_BITS:
            raise InvalidArgument(f"unknown allocation flag {tok!r} (atomic, wait, zero, exclusive)")
        bits |= _FLAG_BITS[tok]
    return bits


def _flags_str(bits: int) -> str:
    return "|".join(name for name, b in _FLAG_BITS.items() if bits & b) or "none"


@dataclasses.dataclass(frozen=True)
class TraceEvent:
    """One event of a trace.

    * ``op``: ``"alloc"``, ``"free"`` or ``"transfer"``;
    * ``thread``: the trace thread (0..N-1) that makes the call;
    * ``block``: the block's name in the trace (any int or string; an alloc
      binds it, later events refer to it, a free unbinds it);
    * ``order``, ``flags`` (``"atomic|exclusive"``, ``"wait"``, ...; ATOMIC
      and WAIT together are refused by the allocator, as in C; ``"none"``: no
      flag; empty or missing: ``"atomic|exclusive"``) and
      ``timeout_ms`` (for WAIT): alloc only;
    * ``to``: the receiving trace thread of a transfer.
    """

    op: str
    thread: int
    block: int | str
    order: int = 0
    flags: str = "atomic|exclusive"
    timeout_ms: int = 0
    to: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "thread": self.thread, "block": self.block}
        if self.op == "alloc":
            d.update(order=self.order, flags=self.flags)
            if self.timeout_ms:
                d["timeout_ms"] = self.timeout_ms
        if self.op == "transfer":
            d["to"] = self.to
        return d


_CSV_FIELDS = ("thread", "op", "block", "order", "flags", "timeout_ms", "to")


class Trace:
    """A sequence of :class:`TraceEvent`, replayed in order with the same
    cross-thread dependencies: an event on a block runs after the previous
    event on that block (and after the previous event of its own thread).

    Files: CSV with a header naming (some of) ``thread,op,block,order,flags,
    timeout_ms,to`` (``id`` is accepted for ``block``), or JSON Lines with the
    same keys. Lines starting with ``#`` are comments.
    """

    def __init__(self, events: Iterable[TraceEvent]) -> None:
        self._events: list[TraceEvent] | None = list(events)
        self._csv: CsvTrace | None = None
        for i, e in enumerate(self._events):
            if e.op not in OP_CODES:
                raise InvalidArgument(f"trace event {i}: op must be alloc, free or transfer, got {e.op!r}")
            if e.thread < 0:
                raise InvalidArgument(f"trace event {i}: thread must be >= 0")
            if e.op == "transfer" and (e.to is None or e.to < 0):
                raise InvalidArgument(f"trace event {i}: a transfer needs 'to' (a trace thread)")
            if e.op == "alloc":
                _parse_flags(e.flags)

    @classmethod
    def _of_csv(cls, parsed: CsvTrace) -> Trace:
        t = cls.__new__(cls)
        t._events, t._csv = None, parsed
        return t

    @property
    def events(self) -> list[TraceEvent]:
        """The events (built on first use for a trace read from CSV)."""
        if self._events is None:
            assert self._csv is not None
            self._events = _csv_events(self._csv)
        return self._events

    def __len__(self) -> int:
        return len(self._csv) if self._events is None and self._csv is not None else len(self.events)

    def __repr__(self) -> str:
        return f"Trace({self.events!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trace) and self.events == other.events

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    @property
    def threads(self) -> int:
        """Trace threads (1 + the largest thread index named)."""
        if self._events is None and self._csv is not None:
            c = self._csv
            return max(1, max(c.cols["thread"], default=0) + 1, max(c.to_given, default=-1) + 1)
        n = 0
        for e in self.events:
            n = max(n, e.thread + 1, (e.to + 1) if e.to is not None else 0)
        return max(n, 1)

    # -- files
    @classmethod
    def load(cls, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> Trace:
        """Read a ``.csv`` or ``.jsonl`` / ``.ndjson`` file (else sniffed).
        ``progress(events_read)`` is called now and then while a CSV file is
        parsed."""
        text = Path(path).read_text()
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            return cls.from_csv(text, progress)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return cls.from_jsonl(text)
        first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
        return cls.from_jsonl(text) if first.lstrip().startswith("{") else cls.from_csv(text, progress)

    @classmethod
    def from_csv(cls, text: str, progress: Callable[[int], None] | None = None) -> Trace:
        """Parse CSV text (see the class for the columns) straight into
        columns; ``progress(events_read)`` as in :meth:`load`."""
        return cls._of_csv(read_csv(text.splitlines(), _parse_flags, _core.TIMEOUT_INFINITE, progress))

    @classmethod
    def from_jsonl(cls, text: str) -> Trace:
        events = []
        for i, line in enumerate(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"trace line {i + 1}: not JSON: {exc}") from None
            events.append(_event_from_mapping(obj, i))
        return cls(events)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write CSV (``.csv``) or JSON Lines (anything else)."""
        p = Path(path)
        p.write_text(self.to_csv() if p.suffix.lower() == ".csv" else self.to_jsonl())

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(_CSV_FIELDS)
        for e in self.events:
            w.writerow(
                [
                    e.thread,
                    e.op,
                    e.block,
                    e.order if e.op == "alloc" else "",
                    e.flags if e.op == "alloc" else "",
                    e.timeout_ms if e.op == "alloc" and e.timeout_ms else "",
                    e.to if e.op == "transfer" else "",
                ]
            )
        return out.getvalue()

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e.to_dict()) + "\n" for e in self.events)

    def columns(self) -> dict[str, array[int]]:
        """The events as int64 columns (what the C++ runner reads)."""
        if self._events is None and self._csv is not None:
            return self._csv.cols
        names: dict[int | str, int] = {}
        cols = {k: array("q") for k in ("op", "thread", "block", "order", "gfp", "timeout_ms", "to")}
        for e in self.events:
            b = names.setdefault(e.block, len(names))
            cols["op"].append(OP_CODES[e.op])
            cols["thread"].append(e.thread)
            cols["block"].append(b)
            cols["order"].append(e.order if e.op == "alloc" else 0)
            cols["gfp"].append(_parse_flags(e.flags) if e.op == "alloc" else 0)
            cols["timeout_ms"].append(min(max(e.timeout_ms, 0), _core.TIMEOUT_INFINITE))
            cols["to"].append(e.to if (e.op == "transfer" and e.to is not None) else 0)
        return cols


def _csv_events(c: CsvTrace) -> list[TraceEvent]:
    ops = {code: name for name, code in OP_CODES.items()}
    cols = c.cols
    return [
        TraceEvent(
            op=ops[cols["op"][i]],
            thread=cols["thread"][i],
            block=c.names[cols["block"][i]],
            order=cols["order"][i],
            flags=c.flag_texts[c.flags[i]],
            timeout_ms=cols["timeout_ms"][i],
            to=None if c.to_given[i] == NO_TARGET else c.to_given[i],
        )
        for i in range(len(c))
    ]


def _event_from_mapping(m: Mapping[str, Any], i: int) -> TraceEvent:
    def get(key: str, default: Any = None) -> Any:
        v = m.get(key, default)
        return default if v in (None, "") else v

    try:
        op = str(get("op", "")).strip().lower()
        block = get("block", get("id"))
        if block is None:
            raise InvalidArgument(f"trace event {i}: no block (or id)")
        if isinstance(block, str) and block.strip().lstrip("-").isdigit():
            block = int(block)
        to = get("to")
        flags = get("flags", "atomic|exclusive")
        if isinstance(flags, int):
            flags = _flags_str(flags)
        return TraceEvent(
            op=op,
            thread=int(get("thread", 0)),
            block=block,
            order=int(get("order", 0)),
            flags=str(flags),
            timeout_ms=int(get("timeout_ms", 0)),
            to=int(to) if to is not None else None,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(f"trace event {i}: {exc}") from None


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


# --------------------------------------------------------------------------
# Running


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) during :func:`run` or :func:`replay`: the
    C++ threads were stopped cleanly and :attr:`partial` holds what they
    measured until then (its ``cancelled`` is True)."""

    def __init__(self, partial: Result) -> None:
        super().__init__("interrupted")
        self.partial = partial


def _execute(
    pool: Any,
    spec: dict[str, Any],
    progress: ProgressFn | None,
    poll_s: float,
    finish: Callable[[dict[str, Any]], Result],
) -> Result:
    r = _core.Run(pool, spec)
    r.start()
    try:
        while not r.wait(poll_s):
            if progress is not None:
                progress(*r.progress())
    except KeyboardInterrupt:
        r.cancel()
        r.wait()
        raise Interrupted(finish(r.result())) from None
    except BaseException:  # stop the threads cleanly
        r.cancel()
        r.wait()
        raise
    if progress is not None:
        progress(*r.progress())
    return finish(r.result())


def _pool_info(pool: Any) -> dict[str, Any]:
    s = pool.stats()
    return {"size_bytes": pool.size_bytes, "flags": s.flags, "huge_pages": s.huge_pages,
            "reserve_target": s.reserve_target}


def _with_pool(
    pool: Any,
    pool_size: int,
    pool_options: Mapping[str, Any] | None,
    body: Callable[[Any], Result],
) -> Result:
    from . import Pool

    if pool is not None:
        return body(pool)
    with Pool(pool_size, **dict(pool_options or {})) as own:
        return body(own)


def _result(raw: dict[str, Any], workload: dict[str, Any] | None, pool: Any) -> Result:
    raw = dict(raw)
    # As JSON has it (order keys become strings), so save/load round-trips.
    raw["workload"] = json.loads(json.dumps(workload)) if workload is not None else None
    raw["pool"] = _pool_info(pool)
    return Result.from_dict(raw)


def run(
    workload: Workload,
    pool: Any = None,
    *,
    pool_size: int = 64 << 20,
    pool_options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    poll_s: float = 0.1,
) -> Result:
    """Run ``workload`` on ``workload.threads`` C++ threads and return what
    was measured. Uses ``pool`` if given (it must stay open; closing it is
    refused while the run goes on), else a new ``Pool(pool_size,
    **pool_options)`` closed afterwards. The GIL is released while the
    threads run; ``progress(fraction, calls, elapsed_s)`` is called about
    every ``poll_s`` seconds from the calling thread. Ctrl-C stops the
    threads cleanly and raises :class:`Interrupted` with the partial result.
    """
    spec = workload.to_dict()

    def body(p: Any) -> Result:
        return _execute(p, spec, progress, poll_s, lambda raw: _result(raw, spec, p))

    return _with_pool(pool, pool_size, pool_options, body)


def replay(
    trace: Trace | str | os.PathLike[str],
    pool: Any = None,
    *,
    pool_size: int = 64 << 20,
    pool_options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    poll_s: float = 0.1,
    sample_interval_s: float = 0.01,
    latency_every: int = 1,
    touch: bool = True,
) -> Result:
    """Replay a trace (a :class:`Trace` or a file) on one C++ thread per trace
    thread, as fast as the dependencies allow. Failed calls are counted by
    status (a trace may contain misuse on purpose: a free by a non-owner is
    NOT_OWNER and changes nothing); events on a block whose allocation
    failed are skipped and counted. Blocks still allocated at the end are
    freed by their owners (untimed)."""
    if not isinstance(trace, Trace):
        trace = Trace.load(trace)
    tr = trace
    spec: dict[str, Any] = {
        "kind": "replay",
        "threads": tr.threads,
        "events": tr.columns(),
        "sample_interval_s": sample_interval_s,
        "latency_every": latency_every,
        "touch": touch,
    }

    def body(p: Any) -> Result:
        return _execute(p, spec, progress, poll_s, lambda raw: _result(raw, None, p))

    return _with_pool(pool, pool_size, pool_options, body)


def run_in_thread(workload: Workload, pool: Any) -> tuple[threading.Thread, list[Result]]:
    """Start :func:`run` on a Python thread; returns the thread and a list
    that holds the Result once the thread has ended (for notebooks and
    tests that want to do something else meanwhile)."""
    out: list[Result] = []
    t = threading.Thread(target=lambda: out.append(run(workload, pool)), daemon=True)
    t.start()
    return t, out
