#!/usr/bin/env bash
# AF_XDP: the GoogleTest suite (also run by stage 10; here on its own so a
# machine without AF_XDP, root or libxdp shows as skipped, not passed), then
# a short run of labyrinth-xdp, which must end with 0 frames in flight and 0
# leaked. Installs nothing (scripts/deps.d/xdp.sh does).
set -uo pipefail
cd "$LABYRINTH_ROOT"
B="$BUILD_DIR"
T="$B/tests/xdp/labyrinth_xdp_tests"
X="$B/examples/labyrinth-xdp"
if [ ! -x "$T" ]; then
  echo "35-xdp: SKIP: AF_XDP support is not built (libxdp-dev and libbpf-dev not found at configure time)"
  exit 77
fi
if [ "$(id -u)" != 0 ]; then
  echo "35-xdp: SKIP: AF_XDP tests need root (a private network namespace, CAP_NET_ADMIN)"
  exit 77
fi
fail=0
echo "--- GoogleTest (tests/xdp)"
out=$("$T" --gtest_brief=1 2>&1); rc=$?
echo "$out" | grep -v "^libbpf: \|^libxdp: "
[ "$rc" = 0 ] || fail=1
if echo "$out" | grep -q "SKIPPED" && ! echo "$out" | grep -q "PASSED  \] [1-9]"; then
  echo "35-xdp: SKIP: every AF_XDP test skipped (reason above)"
  exit 77
fi
echo "--- messages without the privileges: as nobody (no CAP_NET_RAW), as root without CAP_IPC_LOCK under a 64 KiB memlock limit"
if ! command -v setpriv >/dev/null || ! command -v prlimit >/dev/null; then
  echo "skipped: needs setpriv and prlimit (util-linux)"
else
  # The test binary must be reachable by 'nobody': run a copy from a fresh
  # world-readable directory.
  d=$(mktemp -d /tmp/labyrinth-xdp.XXXXXX); chmod 755 "$d"
  cp "$T" "$d/"; chmod 755 "$d/$(basename "$T")"
  f='--gtest_filter=XdpPrivileges.*'
  for how in "setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all" \
             "prlimit --memlock=65536:65536 setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock"; do
    out=$(cd "$d" && $how ./"$(basename "$T")" "$f" 2>&1); rc=$?
    echo "$out" | grep -E "^message:|OK \]|FAILED|SKIPPED \]" | head -3
    if [ "$rc" != 0 ] || ! echo "$out" | grep -q "OK \]"; then
      echo "35-xdp: privilege message check failed ($how)"; echo "$out" | tail -20; fail=1
    fi
  done
  rm -rf "$d"
fi
if [ -x "$X" ]; then
  echo "--- labyrinth-xdp, 1 s per receiver"
  out=$("$X" --duration 1 2>&1); rc=$?
  echo "$out"
  if [ "$rc" = 77 ]; then
    echo "35-xdp: labyrinth-xdp skipped (reason above)"
  elif [ "$rc" != 0 ] || ! echo "$out" | grep -q "0 frames in flight, 0 leaked"; then
    echo "35-xdp: labyrinth-xdp did not end with 0 in flight and 0 leaked (rc=$rc)"; fail=1
  fi
fi
exit $fail
