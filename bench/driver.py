#!/usr/bin/env python3
"""Run every Labyrinth benchmark executable, alternating, a few times; print
ONE table of medians with ratios against Labyrinth (inline fast path and
exported flagship calls), check the 1.0 targets (issue 22), and write
bench/results/latest.{json,md} and latency.png.

Usage (scripts/bench.sh builds first and then runs this):
    python3 bench/driver.py [--build-dir build-bench] [--reps 5] [--min-time 0.3]
                            [--out bench/results] [--max-load 1.0] [--smoke]

Each allocator that replaces malloc runs in its own process (its own
executable); the executables run in turn, rotating the order each repetition,
so slow drifts of the machine (other work starting or stopping) hit every
allocator alike. The table shows the median over repetitions and the spread
(min-max) so the noise is visible. Times are the benchmark thread's CPU time
for single-thread patterns (robust to being descheduled by other work on a
shared machine) and wall time for the cross-thread pattern (two threads).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Display names, in table order.
ALLOCATORS = [
    ("labyrinth", "Labyrinth flagship, called by name (`..._gfp_atomic_exclusive` + `labyrinth_free_pages`; "
                  "common case inline)"),
    ("labyrinth_call", "Labyrinth flagship, out-of-line call through the PLT (dlsym, FFI)"),
    ("labyrinth_cache512", "Labyrinth flagship by name, thread caches of at most 512 pages "
                           "(a fixed high mark: every 64th allocation of a burst of 1024 refills)"),
    ("labyrinth_batch256", "Labyrinth flagship by name, `thread_cache_batch` 256 (refills and drains of 256 "
                           "pages instead of 64)"),
    ("labyrinth_cache512_batch256", "Labyrinth flagship by name, thread caches of at most 512 pages and "
                                    "`thread_cache_batch` 256 (every 256th allocation of a burst of 1024 refills)"),
    ("labyrinth_unsized", "Labyrinth by name, block freed with `labyrinth_free_pages` (order read from the side table)"),
    ("dpdk_mempool", "DPDK `rte_mempool` get/put, per-lcore cache"),
    ("tcmalloc", "tcmalloc (gperftools, minimal) `aligned_alloc`"),
    ("jemalloc", "jemalloc `aligned_alloc`"),
    ("mimalloc", "mimalloc `mi_malloc_aligned`"),
    ("glibc", "glibc `aligned_alloc(4096)`"),
    ("mmap", "`mmap`/`munmap` per page"),
    ("bare_stack", "bare per-thread pointer stack, count kept in a register (the limit)"),
    ("bare_stack_mem", "bare per-thread pointer stack, count in memory (floor of a signal-safe cache)"),
    ("queue_only", "the queue alone, no allocator (floor of the cross pattern)"),
]
ALLOC_ORDER = {a: i for i, (a, _) in enumerate(ALLOCATORS)}
ALLOC_NAME = dict(ALLOCATORS)
LAB = ("labyrinth", "labyrinth_call")
# Peers for "best peer" in the targets: real allocators, not the limit or floor.
PEERS = ("dpdk_mempool", "tcmalloc", "jemalloc", "mimalloc", "glibc", "mmap")

# Patterns, in table order: key -> (label, unit)
PATTERNS = [
    ("pair", "pair: alloc + touch + free one page", "ns"),
    ("burst256", "burst: 256 allocs (each touched), then 256 frees", "ns/page"),
    ("cross", "cross-thread: alloc + hand over on one thread, free on another (ring of 4096, published every 64)", "ns/page"),
    ("slow", "slow path: empty caches, 64 allocs (1 refill from the buddy), median iteration", "ns/page"),
    ("tail/256", "tail: p99.9 of one allocation, bursts of 256, other thread churning", "ns"),
    ("tail/1024", "tail: p99.9 of one allocation, bursts of 1024, other thread churning", "ns"),
] + [(f"order/{n}", f"order {n}: alloc + touch + free a block of {1 << n} pages ({4 << n} KiB); "
                   "Labyrinth by name: `labyrinth_alloc_pages` + `labyrinth_free_pages_order`", "ns")
     for n in range(2, 11)] + [
    ("pool16MiB_pair", "pair, unpinned 16 MiB pool", "ns"),
    ("pool16GiB_pair", "pair, unpinned 16 GiB pool", "ns"),
    ("pool16MiB_burst256", "burst of 256, unpinned 16 MiB pool", "ns/page"),
    ("pool16GiB_burst256", "burst of 256, unpinned 16 GiB pool", "ns/page"),
    ("metadata", "metadata: stats.metadata_bytes / total_pages", "bytes/page"),
]
PATTERN_ORDER = {p: i for i, (p, _, _) in enumerate(PATTERNS)}
PATTERN_LABEL = {p: (l, u) for p, l, u in PATTERNS}
TAIL_COUNTERS = [("p50_ns", "p50"), ("p99_ns", "p99"), ("p999_ns", "p99.9"),
                 ("p9999_ns", "p99.99"), ("max_ns", "max")]


# ---------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------

def read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(build_dir: Path) -> dict:
    # "AMD EPYC" alone names several generations (Zen 3 and Zen 5 VMs both
    # say just that): family, model and clock tell them apart.
    info: dict = {}
    for line in read("/proc/cpuinfo").splitlines():
        if not line.strip():
            break  # the first CPU is enough
        k, _, v = line.partition(":")
        info.setdefault(k.strip(), v.strip())
    cpu = info.get("model name", "")
    details = []
    if info.get("cpu family"):
        details.append(f"family {info['cpu family']} model {info.get('model', '?')}")
    if info.get("cpu MHz"):
        details.append(f"{float(info['cpu MHz']):.0f} MHz")
    if details:
        cpu += f" ({', '.join(details)})"
    vulns = {}
    for f in sorted(glob.glob("/sys/devices/system/cpu/vulnerabilities/*")):
        vulns[os.path.basename(f)] = read(f)
    pkgs = {}
    for p in ("libbenchmark-dev", "libmimalloc-dev", "libjemalloc-dev", "libgoogle-perftools-dev",
              "libdpdk-dev"):
        v = run_text(["dpkg-query", "-W", "-f=${Version}", p])
        pkgs[p] = v or "not installed"
    cache = read(str(build_dir / "CMakeCache.txt"))
    m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache, re.M)
    cxx = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache, re.M)
    compiler = run_text([cxx.group(1), "--version"]).splitlines()[0] if cxx else ""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "mitigations": vulns,
        "thp": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "hypervisor": "yes" if " hypervisor" in read("/proc/cpuinfo") else "no",
        "packages": pkgs,
        "build_type": m.group(1) if m else "",
        "compiler": compiler,
        "git_commit": run_text(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(run_text(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                    "cpp", "bench"])),
    }


_wait_budget = [0.0]


def wait_for_load(max_load: float | None) -> float:
    """Wait until the 1-minute load is below max_load, spending at most what
    is left of the run's waiting budget (--max-wait); returns the load."""
    load = os.getloadavg()[0]
    if max_load is None:
        return load
    while load > max_load and _wait_budget[0] > 0:
        print(f"driver: load {load:.2f} > {max_load}: waiting "
              f"({_wait_budget[0]:.0f} s of waiting left)", flush=True)
        time.sleep(15)
        _wait_budget[0] -= 15
        load = os.getloadavg()[0]
    return load


# ---------------------------------------------------------------------------
# Running and parsing
# ---------------------------------------------------------------------------

def parse_name(name: str) -> tuple[str, str]:
    """'order/labyrinth/4' -> ('order/4', 'labyrinth'); strips /real_time etc."""
    parts = [p for p in name.split("/") if p not in ("real_time", "manual_time")]
    pattern, alloc, rest = parts[0], parts[1], parts[2:]
    if pattern == "metadata":  # metadata/labyrinth_16MiB: the size is the variant
        return f"metadata/{alloc.split('_', 1)[1]}", "labyrinth"
    return "/".join([pattern] + rest), alloc


def value_of(b: dict, pattern: str) -> float | None:
    """The number a row shows: ns (per page where it applies), or bytes/page."""
    if pattern.startswith("metadata"):
        return b.get("bytes_per_page")
    if pattern.startswith("tail"):
        return b.get("p999_ns")
    if pattern == "slow" and b.get("median_ns_per_page"):
        return b["median_ns_per_page"]  # median iteration: robust to preemption
    unit = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    # Single-thread patterns: the thread's CPU time. Cross-thread: wall time.
    # Slow path: manual time (reported as real_time).
    key = "real_time" if pattern in ("cross", "slow") else "cpu_time"
    t = b[key] * unit
    return t / float(b.get("pages", 1) or 1)


def run_exe(exe: Path, min_time: float, hist_dir: Path, bench_filter: str | None,
            timeout: float) -> tuple[list[dict], dict, str]:
    """Run one benchmark executable; returns (benchmarks, context, error)."""
    hist_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [str(exe), f"--benchmark_min_time={min_time}", "--benchmark_format=console",
           f"--benchmark_out={out}", "--benchmark_out_format=json"]
    if bench_filter:
        cmd.append(f"--benchmark_filter={bench_filter}")
    env = dict(os.environ, LABYRINTH_BENCH_HIST_DIR=str(hist_dir))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], {}, f"timed out after {timeout:.0f} s"
    try:
        data = json.loads(Path(out).read_text())
    except (OSError, json.JSONDecodeError):
        data = {}
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
    err = ""
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        err = f"exit status {p.returncode}: " + " | ".join(tail)
    return data.get("benchmarks", []), data.get("context", {}), err


# ---------------------------------------------------------------------------
# Histograms and the plot
# ---------------------------------------------------------------------------

def load_hist(path: Path) -> dict[int, tuple[float, float, int]]:
    rows = {}
    with open(path) as f:
        lines = [l for l in f if not l.startswith("#")]
    for r in csv.DictReader(lines):
        rows[int(r["bucket"])] = (float(r["lo_ns"]), float(r["hi_ns"]), int(r["count"]))
    return rows


def merge_hists(paths: list[Path]) -> list[tuple[float, float, int]]:
    total: dict[int, list] = {}
    for p in paths:
        for b, (lo, hi, n) in load_hist(p).items():
            if b in total:
                total[b][2] += n
            else:
                total[b] = [lo, hi, n]
    return [tuple(total[b]) for b in sorted(total)]


def plot_latency(hists: dict[str, dict[str, list]], path: Path, title: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("driver: matplotlib is not installed: no latency plot")
        return False
    bursts = sorted(hists, key=int)
    if not bursts:
        return False
    fig, axes = plt.subplots(2, len(bursts), figsize=(7 * len(bursts), 9), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for col, burst in enumerate(bursts):
        ax_h, ax_c = axes[0][col], axes[1][col]
        for alloc in sorted(hists[burst], key=lambda a: ALLOC_ORDER.get(a, 99)):
            rows = hists[burst][alloc]
            n = sum(r[2] for r in rows)
            if not n:
                continue
            color = cmap(ALLOC_ORDER.get(alloc, 9) % 10)
            # Histogram: fraction of allocations per bucket, at the bucket's
            # middle (buckets are exact below ~50 ns, then 3 % wide).
            xs = [max(0.5 * (lo + hi), 0.5) for lo, hi, _ in rows]
            ys = [c / n for _, _, c in rows]
            ax_h.plot(xs, ys, color=color, label=alloc, lw=0.7, marker=".", ms=3)
            # CCDF: fraction of allocations slower than x.
            cx, cy, seen = [], [], 0
            for lo, hi, c in rows:
                seen += c
                if n - seen > 0:
                    cx.append(max(hi, 0.5))
                    cy.append((n - seen) / n)
            ax_c.plot(cx, cy, drawstyle="steps-post", color=color, label=alloc, lw=1.2)
        for ax in (ax_h, ax_c):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.axvline(100, color="grey", ls="--", lw=0.8)
            ax.grid(True, which="both", alpha=0.25)
            ax.set_xlabel("latency of one allocation (ns, timer overhead subtracted)")
        ax_h.set_title(f"histogram, bursts of {burst}, another thread churning")
        ax_h.set_ylabel("fraction of allocations")
        ax_c.set_title(f"fraction slower than x, bursts of {burst}")
        ax_c.set_ylabel("fraction of allocations slower")
        ax_h.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio_cell(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def build_rows(results: dict) -> list[dict]:
    rows = []
    for (pattern, alloc), r in results.items():
        vals = [v for v in r["values"] if v is not None]
        if not vals:
            continue
        rows.append({"pattern": pattern, "alloc": alloc, "median": statistics.median(vals),
                     "min": min(vals), "max": max(vals), "n": len(vals),
                     "values": r["values"]})  # by repetition (None: missing), for paired checks
        if r.get("line_rtt"):
            rows[-1]["line_rtt_ns"] = statistics.median(r["line_rtt"])
        if r.get("pinned"):
            rows[-1]["unpinned_runs"] = r["pinned"].count(False)

    def sort_key(row):
        p = row["pattern"]
        base = p if p in PATTERN_ORDER else p.split("/")[0]
        return (PATTERN_ORDER.get(base, 999), p, ALLOC_ORDER.get(row["alloc"], 99))
    rows.sort(key=sort_key)
    med = {(r["pattern"], r["alloc"]): r["median"] for r in rows}
    for r in rows:
        p = r["pattern"]
        if p.startswith("metadata"):
            r["vs_inline"] = r["vs_exported"] = None
            continue
        # The pool-size rows compare with the same loop on the default pool.
        ref_p = p.replace("pool16MiB_", "").replace("pool16GiB_", "")
        r["vs_inline"] = (r["median"] / med[(ref_p, "labyrinth")]
                          if med.get((ref_p, "labyrinth")) else None)
        r["vs_exported"] = (r["median"] / med[(ref_p, "labyrinth_call")]
                            if med.get((ref_p, "labyrinth_call")) else None)
    return rows


def label(pattern: str) -> tuple[str, str]:
    if pattern in PATTERN_LABEL:
        return PATTERN_LABEL[pattern]
    if pattern.startswith("metadata/"):
        return (f"metadata per page, {pattern.split('/')[1]} pool", "bytes/page")
    return pattern, ""


def targets(rows: list[dict]) -> list[dict]:
    med = {(r["pattern"], r["alloc"]): r["median"] for r in rows}
    out = []

    def add(what, measured, target, ok, note=""):
        out.append({"target": what, "measured": measured, "goal": target,
                    "met": None if ok is None else bool(ok), "note": note})

    for pat, name in (("pair", "pair"), ("burst256", "burst of 256")):
        peers = {a: med[(pat, a)] for a in PEERS if (pat, a) in med}
        if not peers:
            continue
        best = min(peers, key=peers.get)
        for lab in LAB:
            v = med.get((pat, lab))
            if v is None:
                continue
            add(f"{name}: {lab} <= 0.65 x best peer ({best})",
                f"{fmt(v)} ns vs {fmt(peers[best])} ns = {v / peers[best]:.2f}x",
                "<= 0.65x", v <= 0.65 * peers[best])
            bare = med.get((pat, "bare_stack"))
            if bare:
                add(f"{name}: {lab} within 8x of the bare stack",
                    f"{fmt(v)} ns vs {fmt(bare)} ns = {v / bare:.1f}x", "<= 8x", v <= 8 * bare)
            mem = med.get((pat, "bare_stack_mem"))
            if mem and lab == "labyrinth":
                add(f"{name}: {lab} vs the bare stack with its count in memory (for reference)",
                    f"{fmt(v)} ns vs {fmt(mem)} ns = {v / mem:.1f}x; 0.65x the best peer is "
                    f"{fmt(0.65 * peers[best])} ns", "-", None)
    for lab in LAB:
        v = med.get(("cross", lab))
        if v is not None:
            q = med.get(("cross", "queue_only"))
            notes = [f"the queue alone costs {fmt(q)} ns/page of it"] if q else []
            row = next((r for r in rows if r["pattern"] == "cross" and r["alloc"] == lab), {})
            rtt = row.get("line_rtt_ns")
            if row.get("unpinned_runs"):
                notes.append(f"in {row['unpinned_runs']} of {row['n']} runs the two threads were NOT "
                             "pinned to two CPUs (fewer than 2 CPUs, or LABYRINTH_BENCH_NO_PIN)")
            if rtt:
                notes.append(f"a cache line's round trip between the two CPUs took {rtt:.0f} ns "
                             "(median of its runs; ~50 or 260-480 ns on our VMs, see bench_patterns.hpp)")
            note = "; ".join(notes)
            dpdk = med.get(("cross", "dpdk_mempool"))
            if dpdk:  # at the same CPU placement: both rows pin their two threads alike
                add(f"cross-thread: {lab} <= DPDK mempool", f"{fmt(v)} ns/page vs {fmt(dpdk)} ns/page = "
                    f"{v / dpdk:.2f}x", "<= 1.00x", v <= dpdk, note)
            else:
                add(f"cross-thread: {lab} (no DPDK row to compare with)", f"{fmt(v)} ns/page", "-", None, note)
    # For reference, not a target: the same with batches of 256 (the trade-off
    # against one allocation's worst case, in the cache512 tail rows below).
    v = med.get(("cross", "labyrinth_batch256"))
    if v is not None:
        base = med.get(("cross", "labyrinth"))
        rel = f" = {v / base:.2f}x the default batch of 64" if base else ""
        # Both rows come from one process per repetition: the paired ratio
        # is the fairer one (the host's placement differs between processes).
        vals = {r["alloc"]: r["values"] for r in rows if r["pattern"] == "cross"}
        pairs = [b / a for a, b in zip(vals.get("labyrinth", []), vals.get("labyrinth_batch256", []))
                 if a and b]
        if pairs:
            rel += f" (ratio of medians; paired by repetition, median {statistics.median(pairs):.2f}x)"
        add("cross-thread: labyrinth with thread_cache_batch 256 (for reference)", f"{fmt(v)} ns/page{rel}",
            "-", None)
    for lab in LAB:
        v = med.get(("slow", lab))
        if v is not None:
            add(f"slow path (refill from the buddy): {lab} <= 30 ns/page", f"{fmt(v)} ns/page",
                "<= 30", v <= 30)
    for burst in ("256", "1024"):
        for lab in LAB + (("labyrinth_cache512", "labyrinth_cache512_batch256") if burst == "1024" else ()):
            v = med.get((f"tail/{burst}", lab))
            if v is not None:
                add(f"tail, bursts of {burst}: {lab} p99.9 <= 100 ns", f"{fmt(v)} ns", "<= 100",
                    v <= 100)
    # Pool size: both pools' loops run in the same process in each repetition,
    # back to back, so the verdict is the median of the per-repetition
    # ratios: that cancels the process-to-process swings (20-40 % on our VMs)
    # that a ratio of two medians keeps. Without paired values, the medians.
    values = {(r["pattern"], r["alloc"]): r.get("values") or [] for r in rows}
    for pat in ("pair", "burst256"):
        for lab in LAB:
            a, b = med.get((f"pool16MiB_{pat}", lab)), med.get((f"pool16GiB_{pat}", lab))
            if a and b:
                d_med = (b - a) / a
                paired = [y / x - 1 for x, y in zip(values[(f"pool16MiB_{pat}", lab)],
                                                    values[(f"pool16GiB_{pat}", lab)]) if x and y]
                d = statistics.median(paired) if paired else d_med
                how = (f"paired by repetition, median of {len(paired)}: {d * 100:+.1f} %; "
                       "ratio of medians " if paired else "")
                add(f"pool size: {lab} {pat}, 16 GiB vs 16 MiB within 10 %",
                    f"{fmt(a)} vs {fmt(b)} ns ({how}{d_med * 100:+.1f} %)", "|d| <= 10 %", abs(d) <= 0.10)
    metas = [(p, v) for (p, a), v in med.items() if p.startswith("metadata/")]
    for p, v in sorted(metas):
        add(f"metadata, {p.split('/')[1]} pool <= 8 bytes/page", f"{fmt(v)} bytes/page", "<= 8",
            v <= 8)
    for n in range(2, 11):
        pat = f"order/{n}"
        v = med.get((pat, "labyrinth"))
        peers = {a: med[(pat, a)] for a in PEERS if (pat, a) in med}
        if v is None or not peers:
            continue
        best = min(peers, key=peers.get)
        add(f"order {n}: labyrinth <= best peer ({best})",
            f"{fmt(v)} ns vs {fmt(peers[best])} ns = {v / peers[best]:.2f}x", "<= 1.00x",
            v <= peers[best])
    return out


def markdown(rows, tails, tgt, machine, meta) -> str:
    L = []
    L.append(f"# Labyrinth benchmarks: latest run\n")
    L.append(f"Run {machine['date']} with `{meta['command']}` ({meta['reps']} repetitions per "
             f"benchmark, alternating processes, `--benchmark_min_time={meta['min_time']}`), "
             f"commit {machine['git_commit']}{' + local changes' if machine['git_dirty'] else ''}, "
             f"{machine['build_type']} build, {machine['compiler']}.\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {machine['cpu_model']}, {machine['cpus']} CPUs"
             f"{' (virtual machine)' if machine['hypervisor'] == 'yes' else ''}")
    L.append(f"- kernel: {machine['kernel']}; transparent huge pages: {machine['thp']}")
    L.append(f"- load average (1 min) before each run: {meta['load_min']:.2f} to "
             f"{meta['load_max']:.2f} (median {meta['load_median']:.2f}); the machine was "
             f"shared with other work")
    L.append(f"- median spread of a row (max-min over repetitions, relative to the median): "
             f"{meta['median_spread'] * 100:.0f} %")
    L.append("- packages: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()))
    L.append("- CPU side-channel mitigations (`/sys/devices/system/cpu/vulnerabilities/`):")
    for k, v in machine["mitigations"].items():
        L.append(f"  - {k}: {v}")
    L.append("")
    L.append("## Results\n")
    L.append("Median over repetitions; spread = min-max. Ratios are this row / the Labyrinth row "
             "of the same pattern: above 1 means Labyrinth is faster. Every page is touched once "
             "at an offset that varies across cache lines. CPU time of the benchmark thread for "
             "single-thread patterns, wall time for cross-thread, the median iteration's wall "
             "time for the slow path.\n")
    L.append("| pattern | allocator | median | unit | spread | vs Labyrinth by name | "
             "vs Labyrinth out-of-line |")
    L.append("|---|---|---:|---|---|---:|---:|")
    for r in rows:
        lab, unit = label(r["pattern"])
        L.append(f"| {lab} | {ALLOC_NAME.get(r['alloc'], r['alloc'])} | **{fmt(r['median'])}** | "
                 f"{unit} | {fmt(r['min'])}-{fmt(r['max'])} | "
                 f"{ratio_cell(r['vs_inline'])} | {ratio_cell(r['vs_exported'])} |")
    L.append("")
    if tails:
        L.append("## Tail latency of one allocation (another thread churning)\n")
        L.append("Each allocation timed alone with `rdtsc` (fenced); the timer's own cost "
                 "(median of an empty timed region) is subtracted, so values resolve to about "
                 "the cost of one `rdtsc` (some tens of cycles). Median over repetitions "
                 "of each percentile. Histograms: `latency.png`, `hist/*.csv`.\n")
        L.append("| bursts of | allocator | p50 | p99 | p99.9 | p99.99 | max | samples |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|")
        for t in tails:
            L.append(f"| {t['burst']} | {ALLOC_NAME.get(t['alloc'], t['alloc'])} | " +
                     " | ".join(fmt(t[k]) for k, _ in TAIL_COUNTERS) + f" | {t['samples']:,.0f} |")
        L.append("")
    L.append("## Targets of issue 22 (ratios measured side by side in this run)\n")
    L.append("| target | measured | goal | met? |")
    L.append("|---|---|---|---|")
    for t in tgt:
        met = "-" if t["met"] is None else "yes" if t["met"] else "**no**"
        note = f" ({t['note']})" if t["note"] else ""
        L.append(f"| {t['target']} | {t['measured']}{note} | {t['goal']} | {met} |")
    L.append("")
    if meta["skipped"] or meta["errors"]:
        L.append("## Not measured\n")
        for s in meta["skipped"]:
            L.append(f"- {s}")
        for e in meta["errors"]:
            L.append(f"- error: {e}")
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=str(ROOT / "build-bench"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="seconds per benchmark per repetition (Google Benchmark's min_time)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--filter", default=None, help="Google Benchmark --benchmark_filter regex")
    ap.add_argument("--only", default=None, help="comma-separated executables (manifest names)")
    ap.add_argument("--max-load", type=float, default=None,
                    help="before each run, wait until the 1-minute load is below this")
    ap.add_argument("--max-wait", type=float, default=1800,
                    help="seconds of waiting for --max-load in the whole run (then runs go ahead)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per executable run")
    ap.add_argument("--smoke", action="store_true",
                    help="one repetition, --min-time 0.01 unless given: proves everything runs")
    args = ap.parse_args()
    if args.smoke:
        args.reps = 1
        if "--min-time" not in " ".join(sys.argv):
            args.min_time = 0.01

    _wait_budget[0] = args.max_wait
    build = Path(args.build_dir).resolve()
    bench_dir = build / "bench"
    manifest_path = bench_dir / "bench_manifest.json"
    if not manifest_path.exists():
        print(f"driver: {manifest_path} not found: configure with -DLABYRINTH_BUILD_BENCH=ON "
              f"and build first (bash scripts/bench.sh does both)")
        return 2
    manifest = json.loads(manifest_path.read_text())
    skipped = [f"{s['name']}: skipped, not built ({s['why']})" for s in manifest["skipped"]]
    exes = []
    for b in manifest["built"]:
        if args.only and b["name"] not in args.only.split(","):
            continue
        exe = bench_dir / b["exe"]
        if exe.exists():
            exes.append((b["name"], exe))
        else:
            skipped.append(f"{b['name']}: skipped, {exe} is missing (build it)")
    for s in skipped:
        print(f"driver: {s}")
    if not exes:
        print("driver: nothing to run")
        return 2

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="labbench-"))
    machine = machine_info(build)
    results: dict[tuple[str, str], dict] = {}
    tail_raw: dict[tuple[str, str], dict[str, list]] = {}
    hist_files: dict[tuple[str, str], list[Path]] = {}
    errors, loads, contexts = [], [], {}
    t_start = time.time()
    for rep in range(args.reps):
        order = exes[rep % len(exes):] + exes[:rep % len(exes)]
        for name, exe in order:
            load = wait_for_load(args.max_load)
            loads.append(load)
            hdir = work / f"rep{rep}" / name
            t0 = time.time()
            benches, ctx, err = run_exe(exe, args.min_time, hdir, args.filter, args.timeout)
            print(f"driver: rep {rep + 1}/{args.reps} {name}: {len(benches)} benchmarks in "
                  f"{time.time() - t0:.0f} s (load {load:.2f}){' ERROR ' + err if err else ''}",
                  flush=True)
            if err:
                errors.append(f"{name} (rep {rep + 1}): {err}")
            contexts[name] = {k: v for k, v in ctx.items() if k.startswith("labbench_")}
            for b in benches:
                if b.get("run_type", "iteration") != "iteration":
                    continue
                pattern, alloc = parse_name(b["name"])
                if b.get("error_occurred"):
                    errors.append(f"{b['name']} (rep {rep + 1}): {b.get('error_message', '')}")
                    continue
                key = (pattern, alloc)
                results.setdefault(key, {"values": []})["values"].append(value_of(b, pattern))
                if b.get("line_rtt_ns"):  # cross: the two CPUs' cache-line round trip
                    results[key].setdefault("line_rtt", []).append(b["line_rtt_ns"])
                if pattern == "cross" and "pinned" in b:  # both threads on CPUs of their own
                    results[key].setdefault("pinned", []).append(bool(b["pinned"]))
                if pattern.startswith("tail/"):
                    t = tail_raw.setdefault(key, {})
                    for c, _ in TAIL_COUNTERS + [("samples", "")]:
                        t.setdefault(c, []).append(b.get(c))
            for f in hdir.glob("*.csv"):
                parts = f.stem.split("_")  # tail_<alloc>_<burst>
                alloc = "_".join(parts[1:-1])
                hist_files.setdefault((parts[-1], alloc), []).append(f)

    rows = build_rows(results)
    tails = []
    for (pattern, alloc), t in tail_raw.items():
        entry = {"burst": int(pattern.split("/")[1]), "alloc": alloc}
        for c, _ in TAIL_COUNTERS:
            vals = [v for v in t[c] if v is not None]
            entry[c] = statistics.median(vals) if vals else None
        entry["samples"] = sum(v for v in t["samples"] if v)
        tails.append(entry)
    tails.sort(key=lambda e: (e["burst"], ALLOC_ORDER.get(e["alloc"], 99)))
    tgt = targets(rows)
    spreads = [(r["max"] - r["min"]) / r["median"] for r in rows if r["median"] and r["n"] > 1]
    meta = {
        "reps": args.reps, "min_time": args.min_time, "skipped": skipped, "errors": errors,
        "load_min": min(loads), "load_max": max(loads), "load_median": statistics.median(loads),
        "median_spread": statistics.median(spreads) if spreads else 0.0,
        "duration_s": round(time.time() - t_start), "contexts": contexts,
        "smoke": args.smoke,
        "command": os.environ.get("LABYRINTH_BENCH_COMMAND",
                                  "python3 bench/driver.py " + " ".join(sys.argv[1:])).strip(),
    }

    # Histograms, summed over repetitions.
    hists: dict[str, dict[str, list]] = {}
    hist_out = out / "hist"
    if hist_out.exists():
        shutil.rmtree(hist_out)
    hist_out.mkdir(parents=True)
    for (burst, alloc), files in hist_files.items():
        merged = merge_hists(files)
        hists.setdefault(burst, {})[alloc] = merged
        with open(hist_out / f"tail_{alloc}_{burst}.csv", "w") as f:
            f.write(f"# {alloc}, bursts of {burst}: latency of one allocation, summed over "
                    f"{len(files)} runs, timer overhead subtracted\nlo_ns,hi_ns,count\n")
            for lo, hi, n in merged:
                f.write(f"{lo:.2f},{hi:.2f},{n}\n")
    plotted = plot_latency(hists, out / "latency.png",
                           f"Labyrinth tail latency: {machine['cpu_model']}, kernel "
                           f"{machine['kernel']}, {machine['date']}")

    md = markdown(rows, tails, tgt, machine, meta)
    if plotted:
        md += "\n![latency histograms](latency.png)\n"
    (out / "latest.md").write_text(md)
    (out / "latest.json").write_text(json.dumps({
        "machine": machine, "meta": meta, "rows": rows, "tail": tails, "targets": tgt,
        "raw": [{"pattern": p, "alloc": a, "values": r["values"]} for (p, a), r in results.items()],
    }, indent=1))
    shutil.rmtree(work, ignore_errors=True)

    print()
    print(md)
    print(f"driver: wrote {out / 'latest.md'}, {out / 'latest.json'}"
          f"{', ' + str(out / 'latency.png') if plotted else ''} in {meta['duration_s']} s")
    if errors:
        print(f"driver: {len(errors)} error(s):")
        for e in errors:
            print(f"  {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
