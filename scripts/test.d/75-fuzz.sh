#!/usr/bin/env bash
# Fuzzing with libFuzzer (clang, -fsanitize=fuzzer,address,undefined):
#   fuzz_pool   C ABI programs on small pools, checked against a shadow model
#   fuzz_uring  the managed ring's submission/completion bookkeeping
#   fuzz_slices incremental receive: slices, generations, owners, cut
#               datagrams, teardown
# Built by fuzz/build.sh into ${BUILD_DIR}-fuzz. Each target first replays its
# committed corpus (fuzz/seeds/<target>/: every input must still pass), then
# fuzzes for a bounded time from a scratch copy of it. Any crash, sanitizer
# report, leak, timeout or broken invariant (the harness aborts with the
# reason) fails the stage; the input that did it is left in
# ${BUILD_DIR}-fuzz/artifacts/ and printed in base64.
# Environment: LABYRINTH_FUZZ_SECONDS (default 60) for fuzz_pool,
# LABYRINTH_FUZZ_URING_SECONDS (default 40) for fuzz_uring,
# LABYRINTH_FUZZ_SLICES_SECONDS (default 30) for fuzz_slices.
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="${BUILD_DIR:-build}"
OUT="${B}-fuzz"
POOL_SECONDS="${LABYRINTH_FUZZ_SECONDS:-60}"
URING_SECONDS="${LABYRINTH_FUZZ_URING_SECONDS:-40}"
SLICES_SECONDS="${LABYRINTH_FUZZ_SLICES_SECONDS:-30}"
if ! command -v clang++ >/dev/null; then
  echo "75-fuzz: SKIP: clang++ is not installed (scripts/deps.sh installs clang)"; exit 77
fi
t0=$(date +%s)
mkdir -p "$OUT"  # logs stay inside the build dir (ignored by git)
if ! bash fuzz/build.sh "$OUT" fuzz_pool fuzz_uring fuzz_slices >"$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"; echo "75-fuzz: build failed"; exit 1
fi
cat "$OUT/build.log"
echo "75-fuzz: built in $(( $(date +%s) - t0 ))s"
mkdir -p "$OUT/artifacts"

fail=0
# fuzz_one TARGET SECONDS
fuzz_one() {
  local target=$1 seconds=$2 bin="$OUT/$1" seeds="fuzz/seeds/${1#fuzz_}"
  if [ ! -x "$bin" ]; then echo "75-fuzz: $target was not built"; fail=1; return; fi
  local opts=(-max_len=512 -timeout=30 -rss_limit_mb=3072 -print_final_stats=1
              -artifact_prefix="$OUT/artifacts/$target-")
  # 1. The committed corpus, once each.
  local out rc
  out=$("$bin" "${opts[@]}" -runs=0 "$seeds" 2>&1); rc=$?
  if echo "$out" | grep -q "io_uring is not usable here"; then
    echo "$out" | grep "io_uring is not usable here" | head -1
    echo "75-fuzz: $target: skipped (io_uring unavailable)"; return
  fi
  if [ "$rc" != 0 ]; then
    echo "$out" | grep -vE "^INFO|NEW_FUNC|^#" | tail -40
    echo "75-fuzz: $target: a committed corpus input fails (rc=$rc)"; fail=1; return
  fi
  echo "--- $target: $(ls "$seeds" | wc -l) committed inputs replayed: all pass"
  # 2. Fuzz from a scratch copy.
  local work="$OUT/corpus-$target"
  rm -rf "$work"; mkdir -p "$work"; cp "$seeds"/* "$work"/
  out=$("$bin" "${opts[@]}" -max_total_time="$seconds" "$work" 2>&1); rc=$?
  local execs rate cov peak
  execs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
  rate=$(echo "$out" | sed -n 's/^stat::average_exec_per_sec: *//p' | tail -1)
  peak=$(echo "$out" | sed -n 's/^stat::peak_rss_mb: *//p' | tail -1)
  cov=$(echo "$out" | grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" | tail -1)
  local totals; totals=$(echo "$out" | grep -E "^$target: [0-9]+ operations" | tail -1)
  if [ "$rc" != 0 ] || ls "$OUT/artifacts/$target-"* >/dev/null 2>&1; then
    echo "$out" | grep -vE "^INFO|NEW_FUNC|^#[0-9]+" | tail -60
    for a in "$OUT/artifacts/$target-"*; do
      [ -f "$a" ] && echo "75-fuzz: input $a (base64): $(base64 -w0 "$a")"
    done
    echo "75-fuzz: $target: FAILED (rc=$rc) after ${execs:-?} executions"; fail=1; return
  fi
  echo "--- $target: ${seconds}s, ${execs:-?} executions (${rate:-?}/s), $cov, peak RSS ${peak:-?} MB: no crash, no broken invariant"
  [ -n "$totals" ] && echo "--- $totals"
}

rm -f "$OUT/artifacts/"*
fuzz_one fuzz_pool "$POOL_SECONDS"
fuzz_one fuzz_uring "$URING_SECONDS"
fuzz_one fuzz_slices "$SLICES_SECONDS"
exit $fail
