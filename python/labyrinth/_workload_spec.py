"""Workload descriptions of labyrinth.workload: the distributions (Fixed,
Uniform, Exponential) and :class:`Workload`. Import them from
labyrinth.workload."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Union

from .errors import InvalidArgument

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
