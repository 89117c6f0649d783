#!/usr/bin/env bash
# A/B of the inline fast path: the working tree's labyrinth.h against the one
# at REV, both compiled into one program (bench/profile/header_ab/) that
# times them in alternating rounds on one pool of the library built in
# build-bench. For header-only changes (the library is the working tree's
# on both sides). Single-thread patterns run on the last CPU; with two CPUs
# or more, a cross pattern (alloc + touch + transfer on the last CPU, free
# on CPU 0) runs as well.
#
# Usage: bash bench/profile/header_ab.sh REV [ROUNDS [PATTERN]]
#   default 200 rounds of every pattern (~15 s); PATTERN: pair, burst256,
#   order2 ... order10 or cross
set -euo pipefail
cd "$(dirname "$0")/../.."
REV="${1:?usage: header_ab.sh REV [ROUNDS [PATTERN]]}"
ROUNDS="${2:-200}"
ONLY="${3:-}"
B="${BENCH_BUILD_DIR:-build-bench}"
LIBDIR="$(readlink -f "$B/cpp")"
[ -e "$LIBDIR/liblabyrinth.so" ] || { echo "header_ab: $LIBDIR/liblabyrinth.so not built (build $B first)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/old/labyrinth"
# Every public header at $REV (labyrinth.h includes some of the others).
for h in $(git ls-tree --name-only "$REV" cpp/include/labyrinth/); do
  git show "$REV:$h" >"$tmp/old/labyrinth/$(basename "$h")"
done
[ -s "$tmp/old/labyrinth/labyrinth.h" ] || { echo "header_ab: no cpp/include/labyrinth/labyrinth.h at $REV"; exit 1; }
# The old header's inline code must read the library's layout (ABI 1.0's
# structs); for a change of the layout itself, bench/profile/versus_ab.sh.
grep -qs 'labyrinth_fast_record' "$tmp"/old/labyrinth/labyrinth*.h ||
  { echo "header_ab: labyrinth.h at $REV predates the ABI 1.0 layout the library has; use versus_ab.sh"; exit 1; }
S=bench/profile/header_ab
CC="${CC:-cc}"
flags=(-O2 -std=gnu99 -Wall -Wextra)
"$CC" "${flags[@]}" -I"$tmp/old" -I$S -c $S/old.c -o "$tmp/old.o"
"$CC" "${flags[@]}" -Icpp/include -I$S -c $S/new.c -o "$tmp/new.o"
"$CC" "${flags[@]}" -Icpp/include $S/main.c "$tmp/old.o" "$tmp/new.o" -L"$LIBDIR" -llabyrinth \
  -Wl,-rpath,"$LIBDIR" -pthread -o "$tmp/header_ab"
echo "header_ab: labyrinth.h at $REV (old) vs the working tree (new), $ROUNDS rounds, $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$tmp/header_ab" "$ROUNDS" $ONLY
