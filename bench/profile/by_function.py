#!/usr/bin/env python3
"""Instructions, data reads and data writes per operation, by source function,
from a callgrind output file: inline functions included (callgrind itself
charges inlined code to the function it was inlined into; here each source
line is charged to the function whose definition encloses it).

Usage: by_function.py CALLGRIND_OUT UNITS LABEL
  UNITS: operations the collected code made (pages, pairs); prints markdown
  rows "| LABEL | function | Ir | Dr | Dw |" per unit, largest first, and a
  total row. Needs callgrind_annotate and the sources on this machine.
"""
import re
import subprocess
import sys

DEF = re.compile(r"^(?=[A-Za-z_])[^;#=]*?\b([A-Za-z_]\w*)\s*\(")
SKIP = ("typedef", "struct", "return", "extern \"C\"", "namespace")
ATTRIBUTE = re.compile(r"__attribute__\s*\(\(.*?\)\)\s*")


def function_starts(path):
    """Line number (1-based) -> name of each function definition in `path`."""
    try:
        lines = open(path, errors="replace").read().split("\n")
    except OSError:
        return {}
    starts = {}
    for i, line in enumerate(lines):
        m = DEF.match(ATTRIBUTE.sub("", line))
        if not m or line.startswith(SKIP):
            continue
        # A definition: the text up to the next ';' or '{' reaches '{' first.
        rest = "\n".join(lines[i:i + 6])
        brace, semi = rest.find("{"), rest.find(";")
        if brace >= 0 and (semi < 0 or brace < semi):
            starts[i + 1] = m.group(1)
    return starts


def enclosing(starts, line):
    best = None
    for s in starts:
        if s <= line and (best is None or s > best):
            best = s
    return starts[best] if best is not None else "?"


def main():
    out, units, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    text = subprocess.run(["callgrind_annotate", "--auto=yes", "--show-percs=no", "--threshold=100", out],
                          capture_output=True, text=True, check=True).stdout
    events = None
    cost = {}  # (file, function) -> [Ir, Dr, Dw]
    path, starts, line = None, {}, 0
    for raw in text.split("\n"):
        if raw.startswith("Events shown:"):
            events = raw.split(":", 1)[1].split()
        m = re.match(r"^-- Auto-annotated source: (.+)$", raw)
        if m:
            path, starts, line = m.group(1).strip(), function_starts(m.group(1).strip()), 0
            continue
        if path is None:
            continue
        m = re.match(r"^-- line (\d+) -+", raw)
        if m:
            line = int(m.group(1)) - 1
            continue
        # "=> callee" lines repeat a call's inclusive cost: counted where it is spent.
        if raw.startswith("-----") or raw.startswith("-- ") or "events annotated" in raw or "=>" in raw:
            continue
        cols = raw.split()
        if not cols or not re.match(r"^[\d,.]+$", cols[0]):
            continue
        line += 1
        n = len(events) if events else 3
        vals = [0 if c == "." else int(c.replace(",", "")) for c in cols[:n]]
        if len(vals) < 3 or not any(vals[:3]):
            continue
        key = (path.rsplit("/", 1)[-1], enclosing(starts, line))
        acc = cost.setdefault(key, [0, 0, 0])
        for k in range(3):
            acc[k] += vals[k]
    total = [sum(v[k] for v in cost.values()) for k in range(3)]
    for (f, fn), v in sorted(cost.items(), key=lambda kv: -kv[1][0]):
        if v[0] / units < 0.05:
            continue
        print(f"| {label} | `{fn}` ({f}) | {v[0] / units:.1f} | {v[1] / units:.1f} | {v[2] / units:.1f} |")
    print(f"| {label} | **total** | **{total[0] / units:.1f}** | **{total[1] / units:.1f}** | **{total[2] / units:.1f}** |")


if __name__ == "__main__":
    main()
