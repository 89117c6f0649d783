#!/usr/bin/env bash
# Stress (tests/reliability/stress_test.cpp): twice as many threads as cores
# on one pool cycling between plenty and exhaustion, every kind of
# allocation (ATOMIC, WAIT with timeouts, plain; all orders), remote frees,
# transfers, trims, threads exiting with pages; afterwards every page must
# be back and the pool equal to a fresh one. Prints operations, ATOMIC
# latency (p99.9 and max, served and refused) and WAIT timeout overshoot.
# LABYRINTH_STRESS_SECONDS (default 60 here) sets the main run; the POISON +
# SCRUB run takes a quarter of it. LABYRINTH_STRESS_THREADS overrides the
# thread count, LABYRINTH_STRESS_WAIT_SLACK_MS the WAIT bound (1000 ms).
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="${BUILD_DIR:-build}"
T="$B/tests/reliability/stress_test"
[ -x "$T" ] || { echo "85-stress: $T is not built (stage 10 builds it)"; exit 1; }
export LABYRINTH_STRESS_SECONDS="${LABYRINTH_STRESS_SECONDS:-60}"
echo "85-stress: ${LABYRINTH_STRESS_SECONDS}s (+ a quarter of it with POISON|SCRUB), $(nproc) cores"
out=$("$T" 2>&1); rc=$?
echo "$out" | grep -E "^\[stress\]|^\[ +(OK|FAILED) +\]"
if [ "$rc" != 0 ]; then
  echo "$out" | grep -vE "^\[stress\]" | tail -40
  echo "85-stress: FAILED (rc=$rc)"; exit 1
fi
echo "85-stress: passed"
