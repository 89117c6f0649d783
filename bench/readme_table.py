#!/usr/bin/env python3
"""Print (or write into docs/performance.md) the short results table from
bench/results/latest.json: Labyrinth against the best peer of each pattern,
with the machine it ran on. The full table is bench/results/latest.md.

    python3 bench/readme_table.py                  # print
    python3 bench/readme_table.py --update docs/performance.md
replaces the text between <!-- bench-table:begin --> and <!-- bench-table:end -->.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from driver import PEERS, fmt  # the driver's peers and number format, not copies

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"dpdk_mempool": "DPDK mempool", "tcmalloc": "tcmalloc", "jemalloc": "jemalloc",
         "mimalloc": "mimalloc", "glibc": "glibc", "mmap": "mmap"}
ROWS = [("pair", "pair: alloc + touch + free (ns)"),
        ("burst256", "burst of 256 (ns/page)"),
        ("order/2", "order 2, 16 KiB block (ns)"),
        ("order/6", "order 6, 256 KiB block (ns)"),
        ("order/10", "order 10, 4 MiB block (ns)"),
        ("cross", "cross-thread, threads on 2 CPUs (ns/page)"),
        ("slow", "slow path: refill from the buddy (ns/page)"),
        ("tail/256", "tail p99.9, bursts of 256, other thread churning (ns)"),
        ("tail/1024", "tail p99.9, bursts of 1024 (ns)")]


def table(d: dict) -> str:
    med = {(r["pattern"], r["alloc"]): r for r in d["rows"]}
    m, meta = d["machine"], d["meta"]
    out = [f"Measured on {m['cpu_model']}, {m['cpus']} vCPUs"
           f"{' (VM)' if m.get('hypervisor') == 'yes' else ''}, kernel {m['kernel']}, "
           f"{m['compiler'].split(' (')[0]} {m['build_type']}; {meta['reps']} alternating repetitions, "
           f"medians (the spread is in the full table). Mitigations: "
           + "; ".join(f"{k} = {v}" for k, v in m["mitigations"].items()
                       if not v.startswith("Not affected")) + ".\n",
           "| pattern | Labyrinth by name | out-of-line call | best peer | Labyrinth / best peer |",
           "|---|---:|---:|---|---:|"]
    for key, label in ROWS:
        lab = med.get((key, "labyrinth"))
        call = med.get((key, "labyrinth_call"))
        peers = [(med[(key, p)]["median"], p) for p in PEERS if (key, p) in med]
        best = min(peers) if peers else None
        if key == "cross" and ("cross", "queue_only") in med:
            label += f"; the queue alone: {fmt(med[('cross', 'queue_only')]['median'])}"
        ratio = f"{lab['median'] / best[0]:.2f}x" if lab and best else "-"
        out.append(f"| {label} | {fmt(lab['median'] if lab else None)} | "
                   f"{fmt(call['median'] if call else None)} | "
                   f"{(NAMES[best[1]] + ' ' + fmt(best[0])) if best else '-'} | {ratio} |")
    big = med.get(("tail/1024", "labyrinth_cache512"))
    if big:
        out.append(f"| tail p99.9, bursts of 1024, thread caches of at most 512 pages: a refill (ns) | "
                   f"{fmt(big['median'])} | - | - | - |")
    # The cross-thread trade-off: batches of 256 instead of 64.
    b256 = med.get(("cross", "labyrinth_batch256"))
    if b256:
        out.append(f"| cross-thread with `thread_cache_batch` 256 (ns/page) | {fmt(b256['median'])} | - | - | - |")
    big256 = med.get(("tail/1024", "labyrinth_cache512_batch256"))
    if big256:
        out.append(f"| the same tail as two rows up, `thread_cache_batch` 256: a refill of 256 (ns) | "
                   f"{fmt(big256['median'])} | - | - | - |")
    for sz in ("16MiB", "16GiB"):
        r = med.get((f"pool{sz}_pair", "labyrinth"))
        if r:
            out.append(f"| pair on an unpinned {sz.replace('MiB', ' MiB').replace('GiB', ' GiB')} "
                       f"pool (ns) | {fmt(r['median'])} | "
                       f"{fmt(med.get((f'pool{sz}_pair', 'labyrinth_call'), {}).get('median'))} | - | - |")
    meta_rows = [r for (p, a), r in med.items() if p.startswith("metadata/")]
    if meta_rows:
        out.append(f"| side-table metadata (bytes per page) | {fmt(max(r['median'] for r in meta_rows))}"
                   f" | - | - | - |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(ROOT / "bench/results/latest.json"))
    ap.add_argument("--update", metavar="MARKDOWN_FILE")
    a = ap.parse_args()
    text = table(json.load(open(a.results)))
    if not a.update:
        print(text)
        return
    readme = Path(a.update).read_text()
    new, n = re.subn(r"(<!-- bench-table:begin -->\n).*?(<!-- bench-table:end -->)",
                     lambda mo: mo.group(1) + text + mo.group(2), readme, flags=re.S)
    if n != 1:
        raise SystemExit(f"{a.update}: no <!-- bench-table:begin/end --> markers")
    Path(a.update).write_text(new)


if __name__ == "__main__":
    main()
