#!/usr/bin/env bash
# Run every Labyrinth test: installs what it needs (Python packages into
# .venv/, which every stage then uses as its python), then runs each
# stage in scripts/test.d/ in name order. A stage exits 0 (passed), 77
# (skipped: it prints why) or anything else (failed). Every stage runs even
# when an earlier one failed; the exit status is non-zero if any failed.
#
# Usage: bash scripts/test.sh [STAGE-NAME-SUBSTRING...]
set -uo pipefail
cd "$(dirname "$0")/.."
export LABYRINTH_ROOT="$PWD"
export BUILD_DIR="${BUILD_DIR:-build}"

bash scripts/deps.sh || { echo "test: installing dependencies failed"; exit 1; }
# Every stage's Python is the project's virtual environment (.venv/).
. scripts/lib.sh
PYTHON=$(venv_python) || { echo "test: no virtual environment"; exit 1; }
export PYTHON VIRTUAL_ENV="${PYTHON%/bin/python}"
export PATH="$VIRTUAL_ENV/bin:$PATH"

passed=0; failed=0; skipped=0; failed_names=()
start_all=$(date +%s)
for stage in scripts/test.d/*.sh; do
  name=$(basename "$stage" .sh)
  if [ "$#" -gt 0 ]; then
    keep=0; for want in "$@"; do [[ "$name" == *"$want"* ]] && keep=1; done
    [ "$keep" = 1 ] || continue
  fi
  echo "=== stage $name"
  t0=$(date +%s)
  bash "$stage"; rc=$?
  dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) passed=$((passed+1)); echo "=== stage $name: passed (${dt}s)";;
    77) skipped=$((skipped+1)); echo "=== stage $name: skipped (${dt}s)";;
    *) failed=$((failed+1)); failed_names+=("$name"); echo "=== stage $name: FAILED rc=$rc (${dt}s)";;
  esac
done
echo "=== all stages done in $(( $(date +%s) - start_all ))s"
[ "$failed" -eq 0 ] || echo "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
