#!/usr/bin/env bash
# A program that knows only the installed libraries: installs the build
# into a scratch prefix, builds examples/labyrinth-xdp.c with
# `pkg-config labyrinth-xdp` (plus libxdp and libbpf, whose print hooks the
# example sets), checks that it loads liblabyrinth_xdp.so.1 and
# liblabyrinth.so.1 from that prefix, and runs its AF_XDP receive for a
# short while: it must end with 0 frames in flight and 0 leaked.
# Usage: installed_xdp.sh BUILD_DIR SOURCE_DIR. Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
build=$1 src=$2
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the AF_XDP receive needs root (a private network namespace, CAP_NET_ADMIN)"; exit 77
fi
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config missing"; exit 77; }
prefix=$(mktemp -d /tmp/labyrinth-installed.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >"$prefix/install.log" 2>&1 ||
  { cat "$prefix/install.log"; echo "FAIL: cmake --install"; exit 1; }
pcdir=$(dirname "$(find "$prefix" -name labyrinth-xdp.pc | head -n 1)")
[ -f "$pcdir/labyrinth-xdp.pc" ] || { echo "FAIL: labyrinth-xdp.pc not installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs labyrinth-xdp libxdp libbpf) ||
  { echo "FAIL: pkg-config labyrinth-xdp"; exit 1; }
echo "pkg-config labyrinth-xdp libxdp libbpf: $flags"
cc -std=c11 -O2 -o "$prefix/labyrinth-xdp" "$src/examples/labyrinth-xdp.c" $flags -lpthread ||
  { echo "FAIL: the example does not build against the installed libraries"; exit 1; }
for so in liblabyrinth_xdp.so.1 liblabyrinth.so.1; do
  where=$(ldd "$prefix/labyrinth-xdp" | awk -v so="$so" '$1 == so { print $3 }')
  case "$where" in
    "$prefix"/*) echo "$so => $where";;
    *) echo "FAIL: $so resolves to '$where', not under $prefix"; exit 1;;
  esac
done
out=$("$prefix/labyrinth-xdp" --duration 0.2 --sizes 64 --no-baseline 2>&1); rc=$?
echo "$out" | grep -v "^libxdp: \|^libbpf: "
[ "$rc" = 77 ] && { echo "SKIP: labyrinth-xdp cannot run here (reason above)"; exit 77; }
if [ "$rc" != 0 ] || ! echo "$out" | grep -q "0 frames in flight, 0 leaked"; then
  echo "FAIL: labyrinth-xdp (rc=$rc) did not end with 0 frames in flight and 0 leaked"; exit 1
fi
echo "PASS"
