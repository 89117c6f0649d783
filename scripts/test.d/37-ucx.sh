#!/usr/bin/env bash
# UCX: the GoogleTest suite (also run by stage 10; here on its own so a
# machine without UCX shows as skipped, not passed), then a short run of
# labyrinth-remote over tcp and over shared memory, each of which must end
# with 0 pages lent and 0 leaked. Installs nothing (scripts/deps.d/ucx.sh
# does).
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="$BUILD_DIR"
T="$B/tests/ucx/labyrinth_ucx_tests"
R="$B/examples/labyrinth-remote"
if [ ! -x "$T" ]; then
  echo "37-ucx: SKIP: UCX support is not built (libucx-dev, pkg-config ucx, not found at configure time)"
  exit 77
fi
fail=0
echo "--- GoogleTest (tests/ucx)"
# UCX's own log lines (a dead peer's shared-memory segment) are noise here.
out=$("$T" --gtest_brief=1 2>&1); rc=$?
echo "$out" | grep -v "UCX  ERROR\|UCX  WARN"
[ "$rc" = 0 ] || fail=1
if [ -x "$R" ]; then
  for tls in tcp sm,tcp; do
    echo "--- labyrinth-remote, UCX_TLS=$tls, 20000 records"
    out=$(UCX_TLS=$tls timeout 60 "$R" --records 20000 2>&1); rc=$?
    echo "$out" | grep -v "UCX  ERROR\|UCX  WARN"
    if [ "$rc" != 0 ] || ! echo "$out" | grep -q "0 lent, 0 leaked"; then
      echo "37-ucx: labyrinth-remote (UCX_TLS=$tls) did not end with 0 lent and 0 leaked (rc=$rc)"
      fail=1
    fi
  done
fi
exit $fail
