"""The ``labyrinth`` command (also ``python -m labyrinth``).

  labyrinth info                  what this machine and kernel support
  labyrinth demo                  a short guided tour of the API
  labyrinth stress [options]      run a synthetic workload on N threads
  labyrinth replay TRACE          replay a CSV/JSONL trace
  labyrinth bench                 standard scenarios: latency and throughput

Every command takes ``--json`` (machine-readable output on stdout); long runs
show a progress bar on stderr when it is a terminal, and end with a summary
table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import Pool, __version__, owner_self
from ._cli_info import cmd_info, gather_info
from ._cli_util import (
    Progress,
    nonneg_int,
    parse_dist,
    parse_orders,
    parse_size,
    positive_float,
    positive_int,
    share,
    table,
)
from .errors import LabyrinthError, MemlockLimitError
from .workload import (
    Exponential,
    Fixed,
    Interrupted,
    Result,
    Trace,
    Uniform,
    Workload,
    replay,
    run,
)

# --------------------------------------------------------------------------
# helpers


def print_result(res: Result, title: str) -> None:
    print(f"{title}: {res.threads} thread(s), {res.duration_s:.2f} s, {res.total_calls:,} calls, "
          f"{res.throughput / 1e6:.2f} M calls/s")
    print(table(res.summary_rows()))
    fails = res.failures_by_reason()
    extra = [f"reserve uses {res.reserve_uses:,}", f"drained at end {res.drain_frees:,}"]
    if res.skipped_events:
        extra.append(f"skipped events {res.skipped_events:,}")
    if res.transfers_skipped:
        extra.append(f"transfers skipped (receiver's queue full) {res.transfers_skipped:,}")
    print("failures: " + (", ".join(f"{k} {v:,}" for k, v in sorted(fails.items())) or "none")
          + "; " + "; ".join(extra))
    fb = res.samples.free_blocks
    if fb:
        after = res.stats_after
        print("free blocks per order 0..10 at the end: "
              + " ".join(str(x) for x in after["free_blocks"])
              + " (how the buddy allocator holds its free pages, as blocks of 2**order pages: "
              "few large blocks = little fragmentation. Not a leak: "
              f"{after['allocated_pages']} pages still allocated, {after['cached_pages']} in thread "
              f"caches, {after['reserve_pages']} in the atomic reserve)")
    print(f"latencies in ns, {res.clock} clock, timer overhead {res.timer_overhead_ns} ns included")


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1)
    sys.stdout.write("\n")


# --------------------------------------------------------------------------
# stress / replay


#: --pin choices and the Pool(pin=...) each one means.
PIN_CHOICES = ("auto", "strict", "off")
_PIN_MODES: dict[str, Any] = {"auto": "auto", "strict": True, "off": False}


def _pool_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"pin": _PIN_MODES[args.pin], "scrub": getattr(args, "scrub", False)}


def cmd_stress(args: argparse.Namespace) -> int:
    w = Workload(
        threads=args.threads,
        duration_s=args.duration,
        steps_per_thread=args.steps,
        orders=args.orders,
        lifetime=args.lifetime,
        burst=args.burst,
        transfer_share=args.transfer,
        wait_share=args.wait,
        wait_timeout_ms=args.wait_timeout_ms,
        seed=args.seed,
        latency_every=args.latency_every,
    )
    bar = Progress("stress", not args.json and not args.quiet)
    return _run_and_finish(args, bar, "stress",
                           lambda: run(w, pool_size=args.pool_size, pool_options=_pool_kwargs(args), progress=bar))


def cmd_replay(args: argparse.Namespace) -> int:
    show = not args.json and not args.quiet and sys.stderr.isatty()
    t0 = time.monotonic()

    def parsing(events: int) -> None:
        sys.stderr.write(f"\rparsing {args.trace}: {events:,} events, {time.monotonic() - t0:.1f}s")
        sys.stderr.flush()

    trace = Trace.load(args.trace, progress=parsing if show else None)
    if show:
        sys.stderr.write(f"\rparsed {args.trace}: {len(trace):,} events in {time.monotonic() - t0:.1f}s\n")
    bar = Progress("replay", not args.json and not args.quiet)
    return _run_and_finish(args, bar, f"replay of {args.trace} ({len(trace):,} events)",
                           lambda: replay(trace, pool_size=args.pool_size, pool_options=_pool_kwargs(args),
                                          progress=bar, latency_every=args.latency_every))


def _run_and_finish(args: argparse.Namespace, bar: Progress, title: str, call: Callable[[], Result]) -> int:
    """Run, then print (or save) the result; on Ctrl-C the result so far."""
    try:
        res = call()
    except Interrupted as exc:
        bar.done()
        _finish(args, exc.partial, f"{title}, INTERRUPTED (Ctrl-C): the result until then")
        return 130
    bar.done()
    return _finish(args, res, title)


def _finish(args: argparse.Namespace, res: Result, title: str) -> int:
    if args.save:
        res.save(args.save)
    if args.json:
        emit_json(res.to_dict() if args.full else _brief(res))
    else:
        print_result(res, title)
        if args.save:
            print(f"saved to {args.save}")
    return 0


def _brief(res: Result) -> dict[str, Any]:
    return {
        "kind": res.kind,
        "threads": res.threads,
        "duration_s": res.duration_s,
        "calls": res.calls,
        "throughput_calls_per_s": res.throughput,
        "failures": res.failures,
        "reserve_uses": res.reserve_uses,
        "latency_ns": {r["op"]: {k: v for k, v in r.items() if k != "op"} for r in res.summary_rows()},
        "clock": res.clock,
        "timer_overhead_ns": res.timer_overhead_ns,
        "free_blocks_after": res.stats_after.get("free_blocks"),
        "skipped_events": res.skipped_events,
    }


# --------------------------------------------------------------------------
# bench

SCENARIOS: list[tuple[str, str, Workload]] = [
    ("pair", "1 thread: alloc_page + touch + free, one at a time",
     Workload(threads=1, lifetime=Fixed(0), burst=Fixed(1))),
    ("burst256", "1 thread: 256 pages allocated, then freed",
     Workload(threads=1, lifetime=Fixed(0), burst=Fixed(256))),
    ("remote", "2 threads: every page freed by the other thread (transfer)",
     Workload(threads=2, lifetime=Fixed(0), burst=Fixed(16), transfer_share=1.0)),
    ("mixed", "2 threads: orders 0-3, exponential lifetimes, 5% WAIT",
     Workload(threads=2, orders={0: 0.85, 1: 0.08, 2: 0.05, 3: 0.02}, lifetime=Exponential(64),
              burst=Uniform(1, 8), wait_share=0.05)),
]


def cmd_bench(args: argparse.Namespace) -> int:
    import dataclasses

    rows = []
    results: dict[str, Any] = {}
    dur = args.duration
    interrupted = False
    with Pool(args.pool_size, **_pool_kwargs(args)) as pool:
        for name, desc, base in SCENARIOS:
            if args.only and name not in args.only:
                continue
            # Untimed run for throughput (one call in 4096 timed), then a timed run for latency.
            try:
                bar = Progress(f"{name} (throughput)", not args.json and not args.quiet)
                fast = run(dataclasses.replace(base, duration_s=dur, latency_every=4096), pool, progress=bar)
                bar.done()
                bar = Progress(f"{name} (latency)", not args.json and not args.quiet)
                timed = run(dataclasses.replace(base, duration_s=dur, latency_every=1), pool, progress=bar)
                bar.done()
            except Interrupted:
                bar.done()
                interrupted = True
                break
            calls = fast.total_calls
            per_thread_ns = fast.duration_s * 1e9 * fast.threads / calls if calls else None
            a = timed.latency["alloc_atomic"]
            f = timed.latency["free"]
            row = {
                "scenario": name,
                "M calls/s": fast.throughput / 1e6,
                "ns/call/thread": per_thread_ns,
                "alloc p50": a.percentile(50),
                "alloc p99": a.percentile(99),
                "alloc p99.9": a.percentile(99.9),
                "free p50": f.percentile(50),
                "free p99": f.percentile(99),
                "failed": fast.total_failures + timed.total_failures,
            }
            rows.append(row)
            results[name] = {"description": desc, "row": row, "throughput_run": fast.to_dict(),
                             "latency_run": timed.to_dict()}
    if args.json:
        emit_json({"scenarios": results, "interrupted": interrupted,
                   "info": {k: v for k, v in gather_info().items() if k in ("kernel", "cpus", "cpu_vulnerabilities")}})
        return 130 if interrupted else 0
    for name, desc, _ in SCENARIOS:
        if name in results:
            print(f"  {name:9s} {desc}")
    print(table(rows))
    clock = next(iter(results.values()))["latency_run"] if results else None
    if clock:
        print(f"latency percentiles in ns ({clock['clock']} clock; timer overhead {clock['timer_overhead_ns']} ns "
              f"included); throughput runs time 1 call in 4096. Python is not in these loops: "
              f"the C++ runner makes every call.")
    if interrupted:
        print("INTERRUPTED (Ctrl-C): the scenarios that finished before it")
        return 130
    return 0


# --------------------------------------------------------------------------
# demo


def cmd_demo(args: argparse.Namespace) -> int:
    out: list[str] = []

    def say(text: str) -> None:
        out.append(text)
        if not args.json:
            print(text)

    say("Labyrinth demo: a pool, the flagship page, views, ownership, misuse, a workload.\n")
    with Pool(4 << 20, atomic_reserve_pages=16, pin=_PIN_MODES[args.pin]) as pool:
        s = pool.stats()
        say(f"pool: {s.total_pages} pages of 4 KiB, {'pinned' if s.pinned else 'NOT pinned'}, "
            f"atomic reserve {s.reserve_target} pages")
        page = pool.alloc_page()
        say(f"alloc_page() -> {page!r}; owner {page.owner} (this thread: owner_self() = {owner_self()})")
        view = memoryview(page)
        view[:13] = b"hello, pages!"
        say(f"memoryview(page) is the page itself: wrote {bytes(view[:13])!r}; page.read(13) = {page.read(13)!r}")
        try:
            page.free()
        except LabyrinthError as exc:
            say(f"page.free() with the view alive -> {type(exc).__name__}: {exc.message}")
        view.release()
        box: list[int] = []
        ready = threading.Event()
        release = threading.Event()
        result: list[str] = []

        def other() -> None:
            box.append(owner_self())
            ready.set()
            release.wait(10)
            page.free()
            result.append("freed by its new owner")

        t = threading.Thread(target=other)
        t.start()
        ready.wait(10)
        page.transfer(box[0])
        say(f"page.transfer({box[0]}) -> owner is now {page.owner}")
        try:
            page.free()
        except LabyrinthError as exc:
            say(f"page.free() by the old owner -> {type(exc).__name__}: {exc.message}")
        release.set()
        t.join()
        say(f"the other thread: {result[0] if result else 'failed'}")
        for call, text in ((lambda: pool.alloc(11), "pool.alloc(11)"),
                           (lambda: pool.free_address(pool.base + 100), "pool.free_address(base + 100)"),
                           (lambda: pool.alloc(0, wait=True), "pool.alloc(wait=True) (atomic too)")):
            try:
                call()
            except LabyrinthError as exc:
                say(f"{text} -> {type(exc).__name__}: {exc.message}")
        say("\na workload: 2 C++ threads, 0.5 s, 10 % of blocks handed to the other thread")
        res = run(Workload(threads=2, duration_s=0.5, lifetime=Exponential(32), burst=Uniform(1, 8),
                           transfer_share=0.1), pool)
        if not args.json:
            print_result(res, "demo workload")
    if args.json:
        emit_json({"lines": out, "workload": _brief(res)})
    return 0


# --------------------------------------------------------------------------
# main


TRACE_FORMAT = """\
trace format: CSV with a header line, or JSON Lines (one object per line);
"#" lines are comments. Fields (CSV columns or JSON keys):
  op          alloc | free | transfer
  thread      the trace thread that makes the call (0, 1, ...; default 0)
  block       a name for the block, chosen by the trace (alloc defines it,
              free/transfer refer to it); "id" is accepted too
  order       alloc: log2 of the block's pages, 0..10 (default 0)
  flags       alloc: "|"-separated atomic, wait, zero, exclusive
              (default atomic|exclusive)
  timeout_ms  alloc with wait: how long to wait (default 0)
  to          transfer: the receiving trace thread
Each trace thread runs on its own C++ thread, in order; an event on a block
waits for the event before it on that block (e.g. a free for its alloc).
Example (CSV):
  op,thread,block,order,flags,to
  alloc,0,a,0,atomic|exclusive,
  transfer,0,a,,,1
  free,1,a,,,
"""


def _stress_options(sp: argparse.ArgumentParser) -> None:
    """The workload options of ``labyrinth stress``."""
    sp.add_argument("--threads", "-t", type=positive_int, default=2,
                    help="C++ threads allocating and freeing (default 2)")
    sp.add_argument("--duration", "-d", type=positive_float, default=5.0, help="seconds (default 5)")
    sp.add_argument("--steps", type=positive_int, default=None,
                    help="stop after this many steps per thread instead of after --duration")
    sp.add_argument("--orders", type=parse_orders, default={0: 1.0}, help="e.g. 0:0.9,2:0.1 (default 0)")
    sp.add_argument("--lifetime", type=parse_dist, default=Exponential(32.0),
                    help="steps a block stays allocated (N, fixed:N, uniform:LO:HI, exp:MEAN); default exp:32")
    sp.add_argument("--burst", type=parse_dist, default=Fixed(1), help="blocks allocated per step; default 1")
    sp.add_argument("--transfer", type=share, default=0.0,
                    help="share of blocks handed to another thread, which frees them (0..1)")
    sp.add_argument("--wait", type=share, default=0.0,
                    help="share of allocations that may sleep (GFP_WAIT) instead of atomic (0..1)")
    sp.add_argument("--wait-timeout-ms", type=nonneg_int, default=10,
                    help="how long a --wait allocation may sleep for a page before it fails with "
                         "TIMEOUT (ms, default 10)")
    sp.add_argument("--seed", type=nonneg_int, default=0,
                    help="random seed of the workload (same seed, same sequence per thread; default 0)")
    sp.add_argument("--latency-every", type=positive_int, default=1,
                    help="time one call in N of each kind (default 1: every call)")
    sp.add_argument("--save", help="save the full result as JSON to this file")
    sp.add_argument("--full", action="store_true", help="with --json: the full result, histograms included")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labyrinth", description="Labyrinth page allocator: tools for researchers.")
    p.add_argument("--version", action="version", version=f"labyrinth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    json_help = "machine-readable output (JSON) on stdout instead of text"

    def common(sp: argparse.ArgumentParser, pool_default: str = "64M") -> None:
        sp.add_argument("--json", action="store_true", help=json_help)
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        sp.add_argument("--pool-size", type=parse_size, default=parse_size(pool_default),
                        help=f"arena size, e.g. 64M, 1G (default {pool_default})")
        sp.add_argument("--pin", choices=PIN_CHOICES, default="auto",
                        help="mlock the arena: auto (default) pins when the memlock limit allows and "
                             "otherwise runs unpinned with a warning; strict pins or fails; off never pins")
        sp.add_argument("--scrub", action="store_true", help="zero blocks when freed")

    sp = sub.add_parser("info", help="what this machine and kernel support",
                        description="What this machine, kernel and user allow: the memlock limit and the "
                                    "largest pool it pins, transparent huge pages, io_uring, memory "
                                    "protection keys, NUMA, CPU side-channel mitigations.")
    sp.add_argument("--json", action="store_true", help=json_help)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("demo", help="a short guided tour of the API",
                        description="A guided tour: a pool, the flagship page, zero-copy views, ownership "
                                    "and transfer, misuse and its errors, a short workload.")
    sp.add_argument("--json", action="store_true", help=json_help)
    sp.add_argument("--pin", choices=PIN_CHOICES, default="auto", help="mlock the arena (see stress --help)")
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("stress", help="run a synthetic workload",
                        description="Run a synthetic workload on C++ threads (Python is not in the loop) "
                                    "and print call latencies, throughput and failures. Ctrl-C stops it "
                                    "and prints the result so far.")
    common(sp)
    _stress_options(sp)
    sp.set_defaults(func=cmd_stress)

    sp = sub.add_parser("replay", help="replay a CSV or JSONL trace", epilog=TRACE_FORMAT,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Replay a trace of allocations, frees and transfers as fast as its "
                                    "order allows, one C++ thread per trace thread.")
    common(sp)
    sp.add_argument("trace", help="the trace file (.csv, or .jsonl/.ndjson; see the format below)")
    sp.add_argument("--latency-every", type=positive_int, default=1,
                    help="time one call in N of each kind (default 1: every call)")
    sp.add_argument("--save", help="save the full result as JSON to this file")
    sp.add_argument("--full", action="store_true", help="with --json: the full result, histograms included")
    sp.set_defaults(func=cmd_replay)

    sp = sub.add_parser("bench", help="standard scenarios: throughput and latency",
                        description="Each scenario runs twice: untimed for throughput (1 call in 4096 "
                                    "timed), then timed for latency percentiles; one row per scenario.")
    common(sp)
    sp.add_argument("--duration", "-d", type=positive_float, default=1.0, help="seconds per run (default 1)")
    sp.add_argument("--only", nargs="*", choices=[s[0] for s in SCENARIOS], help="run only these scenarios")
    sp.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except MemlockLimitError as exc:  # its message names the Python fix: give the CLI's
        why = exc.message.split(";")[0]
        print(f"labyrinth: {why}; use --pin auto (the default: run unpinned when the limit refuses) "
              f"or --pin off, or raise the limit (ulimit -l)", file=sys.stderr)
        return 1
    except LabyrinthError as exc:
        print(f"labyrinth: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labyrinth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
