#!/usr/bin/env bash
# Benchmarks, smoke run only: build every benchmark executable and run each
# benchmark for a moment through the driver (one repetition, 10 ms each), so
# the suite, the peers' set-up (DPDK EAL, malloc interposition checks), the
# report and the plot are proven to work. No time is asserted: performance is
# measured by `bash scripts/bench.sh`, not tested.
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="${BENCH_BUILD_DIR:-build-bench}"
if ! pkg-config --exists benchmark 2>/dev/null && [ ! -e /usr/lib/x86_64-linux-gnu/cmake/benchmark ]; then
  echo "60-bench-smoke: SKIP: Google Benchmark (libbenchmark-dev) is not installed"
  exit 77
fi
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_BUILD_BENCH=ON \
  -DLABYRINTH_BUILD_TESTS=OFF -DLABYRINTH_BUILD_EXAMPLES=OFF --no-warn-unused-cli \
  -DPython_EXECUTABLE="$(command -v "${PYTHON:-python3}")" >/dev/null || { echo "60-bench-smoke: configure failed"; exit 1; }
cmake --build "$B" -j2 || { echo "60-bench-smoke: build failed"; exit 1; }

out=$(mktemp -d /tmp/labyrinth-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
# The driver exits non-zero if any executable fails or any benchmark reports
# an error (allocation failure, DPDK cache bypassed, wrong malloc in use...).
LABYRINTH_BENCH_COMMAND="60-bench-smoke" "${PYTHON:-python3}" bench/driver.py --build-dir "$B" \
  --smoke --out "$out" > "$out/driver.log" 2>&1
rc=$?
grep -E "^driver:" "$out/driver.log"
if [ "$rc" != 0 ]; then
  echo "60-bench-smoke: the driver failed (rc=$rc); its output:"
  cat "$out/driver.log"
  exit 1
fi
fail=0
for f in latest.json latest.md; do
  [ -s "$out/$f" ] || { echo "60-bench-smoke: $f was not written"; fail=1; }
done
if "${PYTHON:-python3}" -c "import matplotlib" 2>/dev/null; then
  [ -s "$out/latency.png" ] || { echo "60-bench-smoke: latency.png was not written"; fail=1; }
fi
# Every built allocator produced rows, and every Labyrinth pattern ran.
"${PYTHON:-python3}" - "$out/latest.json" "$B/bench/bench_manifest.json" <<'PYEOF' || fail=1
import json, sys
res = json.load(open(sys.argv[1]))
man = json.load(open(sys.argv[2]))
have = {(r["pattern"].split("/")[0], r["alloc"]) for r in res["rows"]}
allocs = {a for _, a in have}
expect = {"labyrinth": ["labyrinth", "labyrinth_call"], "system": ["glibc", "mmap", "bare_stack", "bare_stack_mem"],
          "mimalloc": ["mimalloc"], "jemalloc": ["jemalloc"], "tcmalloc": ["tcmalloc"],
          "dpdk": ["dpdk_mempool"]}
bad = []
for b in man["built"]:
    for a in expect.get(b["name"], []):
        if a not in allocs:
            bad.append(f"no results for {a} ({b['exe']})")
for p in ["pair", "burst256", "cross", "slow", "tail", "order", "pool16MiB_pair", "pool16GiB_pair", "metadata"]:
    if (p, "labyrinth") not in have:
        bad.append(f"no Labyrinth result for pattern {p}")
# The cross pattern's two threads ran on two CPUs of their own (the
# consumer never stays on the producer's CPU), and measured the line round
# trip between them.
import os
if len(os.sched_getaffinity(0)) >= 2 and not os.environ.get("LABYRINTH_BENCH_NO_PIN"):
    for r in res["rows"]:
        if r["pattern"] != "cross":
            continue
        if r.get("unpinned_runs", 1) != 0:
            bad.append(f"cross/{r['alloc']}: its two threads were not pinned to two CPUs")
        if not r.get("line_rtt_ns"):
            bad.append(f"cross/{r['alloc']}: no cache-line round trip measured")
for s in man["skipped"]:
    print(f"60-bench-smoke: note: {s['name']} not built: {s['why']}")
for b in bad:
    print("60-bench-smoke:", b)
print(f"60-bench-smoke: {len(res['rows'])} result rows from {len(man['built'])} executables")
sys.exit(1 if bad else 0)
PYEOF
# The anatomy program (bench/profile/anatomy.cpp), both ways, for a moment:
# every variant's fast path must hit (it stops with an error if one misses).
ANAT="$B/bench/labyrinth_bench_anatomy"
if [ -x "$ANAT" ]; then
  if ! "$ANAT" --benchmark_min_time=0.01 > "$out/anatomy.log" 2>&1 || grep -q "ERROR OCCURRED" "$out/anatomy.log"; then
    cat "$out/anatomy.log"; echo "60-bench-smoke: labyrinth_bench_anatomy failed"; fail=1
  fi
  if ! "$ANAT" --interleaved 3 > "$out/anatomy-interleaved.log" 2>&1; then
    cat "$out/anatomy-interleaved.log"; echo "60-bench-smoke: labyrinth_bench_anatomy --interleaved failed"; fail=1
  else
    echo "60-bench-smoke: anatomy ran ($(grep -c anatomy_ "$out/anatomy.log") benchmark lines, interleaved mode too)"
  fi
fi
# Labyrinth and DPDK in one process (bench/versus/), 4 rounds: every call succeeds.
VERSUS="$B/bench/labyrinth_bench_versus"
if [ -x "$VERSUS" ]; then
  if ! "$VERSUS" 4 > "$out/versus.log" 2>&1; then
    cat "$out/versus.log"; echo "60-bench-smoke: labyrinth_bench_versus failed"; fail=1
  else
    echo "60-bench-smoke: labyrinth_bench_versus ran ($(grep -cE '^\| (pair|burst|order|cross)' "$out/versus.log") patterns)"
  fi
fi
# The guard models (bench/profile/guard_models.c): they compile, and one
# short round of every variant runs (the rseq one skips itself where glibc
# did not register rseq).
if command -v cc >/dev/null; then
  if ! cc -O2 -Wall -Wextra -Werror bench/profile/guard_models.c -o "$out/guard_models" > "$out/guard_models.log" 2>&1 ||
     ! "$out/guard_models" 2 20000 >> "$out/guard_models.log" 2>&1; then
    cat "$out/guard_models.log"; echo "60-bench-smoke: guard_models failed"; fail=1
  else
    echo "60-bench-smoke: guard_models ran ($(grep -cE '^(as_shipped|count_in_record|xadd_guard|rseq_guard|no_guard) ' "$out/guard_models.log") variants)"
  fi
fi
# The header A/B tool (bench/profile/header_ab.sh), HEAD against the working
# tree, 4 rounds: it compiles, and every pattern's calls succeed.
if command -v git >/dev/null && git rev-parse -q --verify HEAD >/dev/null 2>&1; then
  if ! BENCH_BUILD_DIR="$B" bash bench/profile/header_ab.sh HEAD 4 > "$out/header_ab.log" 2>&1; then
    cat "$out/header_ab.log"; echo "60-bench-smoke: header_ab.sh failed"; fail=1
  else
    echo "60-bench-smoke: header_ab.sh ran ($(grep -cE '^(pair|burst256|order|cross)' "$out/header_ab.log") patterns)"
  fi
fi
exit $fail
