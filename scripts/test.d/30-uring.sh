#!/usr/bin/env bash
# io_uring: the GoogleTest suite (also run by stage 10; here on its own so a
# machine without io_uring shows as skipped, not passed), then short runs of
# the examples: labyrinth-rx must leak nothing, labyrinth-cp must verify its
# checksum, both with O_DIRECT and through the page cache; and the
# RLIMIT_MEMLOCK message as seen by an unprivileged user via setpriv/prlimit.
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="$BUILD_DIR"
T="$B/tests/uring/labyrinth_uring_tests"
RX="$B/examples/labyrinth-rx"
CP="$B/examples/labyrinth-cp"
for f in "$T" "$RX" "$CP"; do
  [ -x "$f" ] || { echo "30-uring: $f is not built (stage 10 builds it)"; exit 1; }
done

# Is io_uring usable at all? labyrinth-rx exits 77 with the reason if not.
out=$("$RX" --duration 0.3 --no-baseline 2>&1); rc=$?
if [ "$rc" = 77 ]; then
  echo "$out"
  echo "30-uring: SKIP: io_uring is not usable on this machine (reason above)"
  exit 77
fi
echo "$out" | tail -3
fail=0
[ "$rc" = 0 ] || { echo "30-uring: labyrinth-rx (short) failed rc=$rc"; echo "$out"; fail=1; }

echo "--- GoogleTest (tests/uring)"
"$T" --gtest_brief=1 || fail=1

echo "--- labyrinth-rx, 1 s per receiver"
out=$("$RX" --duration 1 2>&1); rc=$?
echo "$out"
if [ "$rc" != 0 ] || ! echo "$out" | grep -q "0 pages in flight, 0 leaked"; then
  echo "30-uring: labyrinth-rx did not end with 0 in flight and 0 leaked (rc=$rc)"; fail=1
fi

for mode in "" "--buffered"; do
  echo "--- labyrinth-cp --self-test 32 $mode"
  out=$(TMPDIR="${TMPDIR:-/var/tmp}" "$CP" --self-test 32 $mode 2>&1); rc=$?
  echo "$out"
  if [ "$rc" != 0 ] || ! echo "$out" | grep -q ": OK"; then
    echo "30-uring: labyrinth-cp $mode failed (rc=$rc)"; fail=1
  fi
done

echo "--- RLIMIT_MEMLOCK as an unprivileged user (setpriv + prlimit): the message; the pre-check and fallback"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! command -v prlimit >/dev/null; then
  echo "skipped: needs root, setpriv and prlimit"
else
  # The test binary must be reachable by 'nobody': run a copy from a fresh
  # world-readable directory.
  d=$(mktemp -d /tmp/labyrinth-memlock.XXXXXX); chmod 755 "$d"
  cp "$T" "$d/"; chmod 755 "$d/$(basename "$T")"
  for run in "65536:UringMemlockAsInvoked.*" "8388608:UringMemlockAsInvoked8MiB.*"; do
    out=$(cd "$d" && prlimit --memlock=${run%%:*}:${run%%:*} setpriv --reuid=nobody --regid=nogroup \
          --clear-groups --inh-caps=-all ./"$(basename "$T")" --gtest_filter="${run#*:}" 2>&1); rc=$?
    echo "$out" | grep -E "OK|FAILED|SKIPPED|RLIMIT" | head -5
    [ "$rc" = 0 ] || { echo "30-uring: memlock check ${run#*:} as nobody failed"; echo "$out" | tail -20; fail=1; }
  done
  rm -rf "$d"
fi
exit $fail
