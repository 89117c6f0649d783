#!/usr/bin/env bash
# A/B of a change that moves the library and the header together (a layout
# change: header_ab.sh cannot pair an old header with a new library). Each
# side is a labyrinth_bench_versus built from its own tree; each process
# times Labyrinth against DPDK's mempool in alternating rounds, so its
# Labyrinth / DPDK ratio is measured in one process, against the same
# yardstick. The two builds' processes alternate, PROCS of each, and the
# table gives, per pattern, the median over processes of each side's ratio
# and the after / before quotient of those medians, then Labyrinth's and
# DPDK's own times (medians over processes of each process's median). Read
# both: the DPDK loop is the same source in both builds, but the link moves
# its code, and its time can change with that alone.
#
# Usage: bash bench/profile/versus_ab.sh BEFORE_VERSUS AFTER_VERSUS [PROCS [ROUNDS [PATTERN]]]
#   e.g. BEFORE_VERSUS=/tmp/base/build-bench/bench/labyrinth_bench_versus
#   PATTERN as labyrinth_bench_versus takes it (a substring of a row's name).
set -euo pipefail
BEFORE="${1:?usage: versus_ab.sh BEFORE_VERSUS AFTER_VERSUS [PROCS [ROUNDS [PATTERN]]]}"
AFTER="${2:?usage: versus_ab.sh BEFORE_VERSUS AFTER_VERSUS [PROCS [ROUNDS [PATTERN]]]}"
PROCS="${3:-5}"
ROUNDS="${4:-60}"
ONLY="${5:-}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((i = 0; i < PROCS; i++)); do
  "$BEFORE" "$ROUNDS" $ONLY >"$out/before.$i" 2>&1 || { cat "$out/before.$i"; exit 1; }
  "$AFTER" "$ROUNDS" $ONLY >"$out/after.$i" 2>&1 || { cat "$out/after.$i"; exit 1; }
done
echo "versus_ab: $PROCS processes a side, alternating, $ROUNDS rounds each, $(nproc) CPUs," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
python3 - "$out" "$PROCS" <<'EOF'
import re, statistics, sys
out, procs = sys.argv[1], int(sys.argv[2])
row = re.compile(r"^\| (.+?) \| ([0-9.]+) \(([0-9.]+)\) \| ([0-9.]+) \(([0-9.]+)\) \| ([0-9.]+)x")
ratios = {}  # pattern -> side -> [ratio per process]
times = {}  # pattern -> side -> [(Labyrinth ns, DPDK ns) per process]
order = []
for side in ("before", "after"):
    for i in range(procs):
        section = 0
        for line in open(f"{out}/{side}.{i}"):
            if line.startswith("Pool size"):
                section = 1  # Labyrinth alone: not a ratio to DPDK
            m = row.match(line)
            if m and section == 0:
                name = m.group(1)
                if name not in ratios:
                    order.append(name)
                ratios.setdefault(name, {}).setdefault(side, []).append(float(m.group(6)))
                times.setdefault(name, {}).setdefault(side, []).append((float(m.group(2)), float(m.group(4))))
print("| pattern | before: Labyrinth / DPDK, median [range] | after | after / before |")
print("|---|---:|---:|---:|")
for name in order:
    b, a = ratios[name].get("before", []), ratios[name].get("after", [])
    if not b or not a:
        continue
    mb, ma = statistics.median(b), statistics.median(a)
    print(f"| {name} | {mb:.2f}x [{min(b):.2f}-{max(b):.2f}] | {ma:.2f}x [{min(a):.2f}-{max(a):.2f}] | {ma / mb:.2f} |")
print()
print("| pattern | Labyrinth ns: before | after | after / before | DPDK ns: before | after |")
print("|---|---:|---:|---:|---:|---:|")
for name in order:
    b, a = times[name].get("before", []), times[name].get("after", [])
    if not b or not a:
        continue
    lb, la = statistics.median(t[0] for t in b), statistics.median(t[0] for t in a)
    db, da = statistics.median(t[1] for t in b), statistics.median(t[1] for t in a)
    print(f"| {name} | {lb:.2f} | {la:.2f} | {la / lb:.2f} | {db:.2f} | {da:.2f} |")
EOF
