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
import ctypes
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import PAGE_SIZE, Pool, __version__, abi_version, owner_self
from .errors import LabyrinthError, Unsupported
from .workload import (
    Distribution,
    Exponential,
    Fixed,
    Result,
    Trace,
    Uniform,
    Workload,
    replay,
    run,
)

# --------------------------------------------------------------------------
# helpers


def parse_size(text: str) -> int:
    """'64M', '1G', '512K', '4096' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def parse_dist(text: str) -> Distribution:
    """'8' or 'fixed:8', 'uniform:1:16', 'exp:64' / 'exponential:64'."""
    parts = text.split(":")
    kind = parts[0].lower()
    try:
        if len(parts) == 1:
            return Fixed(int(kind))
        if kind == "fixed":
            return Fixed(int(parts[1]))
        if kind in ("uniform", "u"):
            return Uniform(int(parts[1]), int(parts[2]))
        if kind in ("exp", "exponential", "e"):
            return Exponential(float(parts[1]))
    except (ValueError, IndexError):
        pass
    raise argparse.ArgumentTypeError(f"bad distribution {text!r} (N, fixed:N, uniform:LO:HI, exp:MEAN)")


def parse_orders(text: str) -> dict[int, float]:
    """'0' or '0:0.9,2:0.1' -> {order: weight}."""
    out: dict[int, float] = {}
    try:
        for item in text.split(","):
            if ":" in item:
                o, w = item.split(":", 1)
                out[int(o)] = float(w)
            else:
                out[int(item)] = 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad orders {text!r} (e.g. 0:0.9,2:0.1)") from None
    return out


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, fraction: float, calls: int, elapsed: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and fraction < 1.0:
            return
        self.last = now
        width = 30
        filled = int(round(width * min(max(fraction, 0.0), 1.0)))
        rate = calls / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% "
            f"{calls:>12,} calls {rate / 1e6:7.2f} M/s {elapsed:6.1f}s"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain text table."""
    if not rows:
        return "(nothing)"
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for row in cells:
        out.append("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


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
        print("free blocks per order at the end: " + " ".join(str(x) for x in res.stats_after["free_blocks"]))
    print(f"latencies in ns, {res.clock} clock, timer overhead {res.timer_overhead_ns} ns included")


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1)
    sys.stdout.write("\n")


# --------------------------------------------------------------------------
# info


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_flags() -> set[str]:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _cap_ipc_lock() -> bool | None:
    text = _read("/proc/self/status") or ""
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 14))
    return None


def _pkey_alloc_works() -> str:
    if platform.machine() != "x86_64":
        return "unknown (not x86_64)"
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pkey_alloc, SYS_pkey_free = 330, 331
    key = libc.syscall(SYS_pkey_alloc, 0, 0)
    if key >= 0:
        libc.syscall(SYS_pkey_free, key)
        return "yes"
    return f"no ({os.strerror(ctypes.get_errno())})"


def gather_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "labyrinth": {"version": __version__, "abi": f"{abi_version() >> 16}.{(abi_version() >> 8) & 0xFF}."
                      f"{abi_version() & 0xFF}"},
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)

    def lim(v: int) -> str | int:
        return "unlimited" if v == resource.RLIM_INFINITY else v

    info["memlock"] = {"soft_bytes": lim(soft), "hard_bytes": lim(hard), "cap_ipc_lock": _cap_ipc_lock(),
                       "uid": os.getuid()}
    info["thp"] = {
        "enabled": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "defrag": _read("/sys/kernel/mm/transparent_hugepage/defrag"),
    }
    flags = _cpu_flags()
    info["pkeys"] = {"cpu_pku": "pku" in flags, "os_pke": "ospke" in flags, "pkey_alloc": _pkey_alloc_works()}
    nodes = sorted(p.name for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    info["numa_nodes"] = len(nodes)
    vdir = Path("/sys/devices/system/cpu/vulnerabilities")
    info["cpu_vulnerabilities"] = {p.name: _read(str(p)) for p in sorted(vdir.glob("*"))} if vdir.is_dir() else {}

    # What the library itself can do here: a small pool, pinned, then a ring.
    uring: dict[str, Any] = {"io_uring_disabled_sysctl": _read("/proc/sys/kernel/io_uring_disabled")}
    try:
        with Pool(64 * PAGE_SIZE) as pool:
            s = pool.stats()
            info["pool"] = {"pinned": True, "huge_pages_accepted": bool(s.huge_pages)}
            try:
                with pool.ring(sq_entries=8) as ring:
                    uring["available"] = True
                    uring["fixed_buffers"] = ring.stats().fixed_buffers
            except LabyrinthError as exc:
                uring["available"] = False
                uring["reason"] = str(exc)
            if uring.get("available"):
                try:
                    with pool.ring(sq_entries=8, pbuf_entries=8):
                        uring["provided_buffer_rings"] = True
                except LabyrinthError as exc:
                    uring["provided_buffer_rings"] = False
                    uring["provided_buffer_rings_reason"] = str(exc)
    except LabyrinthError as exc:
        info["pool"] = {"pinned": False, "error": str(exc)}
    info["io_uring"] = uring
    try:
        Pool(16 * PAGE_SIZE, pkeys=True, pin=False).close(force=True)
        info["pkeys"]["library"] = "supported"
    except Unsupported as exc:
        info["pkeys"]["library"] = f"unsupported: {exc.message}"
    return info


def cmd_info(args: argparse.Namespace) -> int:
    info = gather_info()
    if args.json:
        emit_json(info)
        return 0
    lab = info["labyrinth"]
    print(f"labyrinth {lab['version']} (ABI {lab['abi']}), Python {info['python']}, "
          f"Linux {info['kernel']} {info['machine']}, {info['cpus']} CPUs, {info['numa_nodes']} NUMA node(s)")
    ml = info["memlock"]
    print(f"memlock limit: soft {ml['soft_bytes']}, hard {ml['hard_bytes']} bytes; "
          f"CAP_IPC_LOCK {'yes' if ml['cap_ipc_lock'] else 'no'} (uid {ml['uid']})")
    pool = info.get("pool", {})
    if pool.get("pinned"):
        print(f"pinned pool: yes; transparent huge pages accepted: {'yes' if pool['huge_pages_accepted'] else 'no'}")
    else:
        print(f"pinned pool: NO: {pool.get('error')}")
    print(f"THP: enabled {info['thp']['enabled']}; defrag {info['thp']['defrag']}")
    u = info["io_uring"]
    if u.get("available"):
        pb = u.get("provided_buffer_rings")
        print(f"io_uring: available (arena registered as {u.get('fixed_buffers')} fixed buffer(s)); "
              f"provided-buffer rings: {'yes' if pb else 'no: ' + str(u.get('provided_buffer_rings_reason'))}")
    else:
        print(f"io_uring: NOT available: {u.get('reason')} (sysctl io_uring_disabled={u.get('io_uring_disabled_sysctl')})")
    pk = info["pkeys"]
    print(f"memory protection keys: CPU {'yes' if pk['cpu_pku'] else 'no'}, OS {'yes' if pk['os_pke'] else 'no'}, "
          f"pkey_alloc {pk['pkey_alloc']}; library: {pk['library']}")
    vul = info["cpu_vulnerabilities"]
    if vul:
        affected = {k: v for k, v in vul.items() if v and not v.startswith("Not affected")}
        print("CPU side-channel mitigations (they change timings): "
              + ("; ".join(f"{k}: {v}" for k, v in affected.items()) or "none reported"))
    return 0


# --------------------------------------------------------------------------
# stress / replay


def _pool_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"pin": not args.no_pin, "scrub": args.scrub}


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
    res = run(w, pool_size=args.pool_size, pool_options=_pool_kwargs(args), progress=bar)
    bar.done()
    return _finish(args, res, "stress")


def cmd_replay(args: argparse.Namespace) -> int:
    trace = Trace.load(args.trace)
    bar = Progress("replay", not args.json and not args.quiet)
    res = replay(trace, pool_size=args.pool_size, pool_options=_pool_kwargs(args), progress=bar,
                 latency_every=args.latency_every)
    bar.done()
    return _finish(args, res, f"replay of {args.trace} ({len(trace):,} events)")


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
    with Pool(args.pool_size, **_pool_kwargs(args)) as pool:
        for name, desc, base in SCENARIOS:
            if args.only and name not in args.only:
                continue
            bar = Progress(name, not args.json and not args.quiet)
            # Untimed run for throughput (one call in 4096 timed), then a timed run for latency.
            fast = run(dataclasses.replace(base, duration_s=dur, latency_every=4096), pool, progress=bar)
            timed = run(dataclasses.replace(base, duration_s=dur, latency_every=1), pool, progress=bar)
            bar.done()
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
        emit_json({"scenarios": results, "info": {k: v for k, v in gather_info().items()
                                                  if k in ("kernel", "cpus", "cpu_vulnerabilities")}})
        return 0
    for name, desc, _ in SCENARIOS:
        if name in results:
            print(f"  {name:9s} {desc}")
    print(table(rows))
    clock = next(iter(results.values()))["latency_run"] if results else None
    if clock:
        print(f"latency percentiles in ns ({clock['clock']} clock; timer overhead {clock['timer_overhead_ns']} ns "
              f"included); throughput runs time 1 call in 4096. Python is not in these loops: "
              f"the C++ runner makes every call.")
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
    with Pool(4 << 20, atomic_reserve_pages=16) as pool:
        s = pool.stats()
        say(f"pool: {s.total_pages} pages of 4 KiB, pinned, atomic reserve {s.reserve_target} pages")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labyrinth", description="Labyrinth page allocator: tools for researchers.")
    p.add_argument("--version", action="version", version=f"labyrinth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, pool_default: str = "64M") -> None:
        sp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        sp.add_argument("--pool-size", type=parse_size, default=parse_size(pool_default),
                        help=f"arena size (default {pool_default})")
        sp.add_argument("--no-pin", action="store_true", help="do not mlock the arena")
        sp.add_argument("--scrub", action="store_true", help="zero blocks when freed")

    sp = sub.add_parser("info", help="what this machine and kernel support")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("demo", help="a short guided tour")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("stress", help="run a synthetic workload")
    common(sp)
    sp.add_argument("--threads", "-t", type=int, default=2)
    sp.add_argument("--duration", "-d", type=float, default=5.0, help="seconds (default 5)")
    sp.add_argument("--steps", type=int, default=None, help="stop after this many steps per thread")
    sp.add_argument("--orders", type=parse_orders, default={0: 1.0}, help="e.g. 0:0.9,2:0.1 (default 0)")
    sp.add_argument("--lifetime", type=parse_dist, default=Exponential(32.0), help="steps; default exp:32")
    sp.add_argument("--burst", type=parse_dist, default=Fixed(1), help="blocks per step; default 1")
    sp.add_argument("--transfer", type=float, default=0.0, help="share handed to another thread")
    sp.add_argument("--wait", type=float, default=0.0, help="share of GFP_WAIT allocations")
    sp.add_argument("--wait-timeout-ms", type=int, default=10)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--latency-every", type=int, default=1, help="time one call in N (default 1)")
    sp.add_argument("--save", help="save the full result as JSON to this file")
    sp.add_argument("--full", action="store_true", help="with --json: the full result, histograms included")
    sp.set_defaults(func=cmd_stress)

    sp = sub.add_parser("replay", help="replay a CSV or JSONL trace")
    common(sp)
    sp.add_argument("trace")
    sp.add_argument("--latency-every", type=int, default=1)
    sp.add_argument("--save")
    sp.add_argument("--full", action="store_true")
    sp.set_defaults(func=cmd_replay)

    sp = sub.add_parser("bench", help="standard scenarios: throughput and latency")
    common(sp)
    sp.add_argument("--duration", "-d", type=float, default=1.0, help="seconds per run (default 1)")
    sp.add_argument("--only", nargs="*", choices=[s[0] for s in SCENARIOS])
    sp.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
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
