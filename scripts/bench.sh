#!/usr/bin/env bash
# Run the benchmark suite: Labyrinth against glibc, mimalloc, jemalloc,
# tcmalloc, DPDK rte_mempool, mmap and a bare pointer stack, alternating
# processes, several repetitions; prints one table of medians and ratios and
# writes bench/results/latest.{json,md} and latency.png; then Labyrinth and
# DPDK in one process, alternating rounds, into bench/results/versus.md.
#
# Usage: bash scripts/bench.sh [driver options]   (see .venv/bin/python bench/driver.py --help)
#   e.g. bash scripts/bench.sh --reps 7 --min-time 0.5 --max-load 1.0
# Environment: BENCH_BUILD_DIR (default build-bench), BENCH_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
B="${BENCH_BUILD_DIR:-build-bench}"
bash scripts/deps.sh
. scripts/lib.sh
PYTHON="${PYTHON:-$(venv_python)}"  # the driver and its plot run in .venv
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_BUILD_BENCH=ON \
  -DLABYRINTH_BUILD_TESTS=OFF -DLABYRINTH_BUILD_EXAMPLES=OFF --no-warn-unused-cli \
  -DPython_EXECUTABLE="$PYTHON" >/dev/null
cmake --build "$B" -j"${BENCH_JOBS:-2}"
LABYRINTH_BENCH_COMMAND="bash scripts/bench.sh $*" "$PYTHON" bench/driver.py --build-dir "$B" "$@"
# Then Labyrinth and DPDK in one process, alternating rounds
# (bench/versus/versus.hpp says why): bench/results/versus.md, or $VERSUS_OUT.
if [ -x "$B/bench/labyrinth_bench_versus" ]; then
  out="${VERSUS_OUT:-bench/results/versus.md}"
  if ! {
    echo "# Labyrinth and DPDK in one process"
    echo
    echo "Written by \`bash scripts/bench.sh\` ($B/bench/labyrinth_bench_versus ${VERSUS_ROUNDS:-200}) on $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, kernel $(uname -r)."
    echo
    "$B/bench/labyrinth_bench_versus" "${VERSUS_ROUNDS:-200}"
  } > "$out.tmp"; then
    cat "$out.tmp"; rm -f "$out.tmp"
    echo "bench: labyrinth_bench_versus failed"; exit 1
  fi
  mv "$out.tmp" "$out"
  echo "bench: wrote $out"
  cat "$out"
fi
