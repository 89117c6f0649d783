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

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from . import _core
from ._workload_result import OPS, Histogram, Result, Samples
from ._workload_spec import Distribution, Exponential, Fixed, Uniform, Workload
from ._workload_trace import Trace, TraceEvent

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

ProgressFn = Callable[[float, int, float], None]


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

