#!/usr/bin/env bash
# Blocks the order cache cannot hold (issue 22, defect 4): the order-2, -6
# and -10 pair (alloc ATOMIC|EXCLUSIVE + touch + free_pages_order) on a
# 64 MiB pool (order cache budget 2 MiB: an order-10 block takes the buddy
# allocator's path every time) and on a 1 GiB one (budget 32 MiB: cached).
#  1. The library at REV (OLD), the working tree's (NEW) and DPDK's mempool
#     of each order's object size in one process, rotating rounds, thread CPU
#     time (labyrinth_bench_library_ab; exported calls); then OLD and NEW on
#     a 64 MiB pool without thread caches, orders 0, 2, 6 and 10.
#  2. Each library next to DPDK's mempool of that object size in one process
#     (labyrinth_bench_versus, the inline path; the same binary run with each
#     library through LD_LIBRARY_PATH: for changes inside the library only,
#     labyrinth.h the same at REV and in the working tree).
#
# Usage: bash bench/versus/blocks_ab.sh REV [ROUNDS]
#   Builds REV's library in build-ab/ and the working tree's bench in
#   $BENCH_BUILD_DIR (default build-bench; configured with
#   -DLABYRINTH_BUILD_BENCH=ON). Default 40 rounds (~1-2 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
REV="${1:?usage: blocks_ab.sh REV [ROUNDS]}"
ROUNDS="${2:-40}"
B="${BENCH_BUILD_DIR:-build-bench}"
if ! git diff --quiet "$REV" -- cpp/include/labyrinth/labyrinth.h; then
  echo "blocks_ab: labyrinth.h differs from $REV: part 2 would mix headers; use bench/profile/header_ab.sh" >&2
  exit 1
fi
[ -d "$B" ] || cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_BUILD_BENCH=ON \
  -DLABYRINTH_BUILD_TESTS=OFF -DLABYRINTH_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$B" -j2 --target labyrinth labyrinth_bench_library_ab >/dev/null
# labyrinth_bench_versus exists only where libdpdk was found (part 2).
cmake --build "$B" -j2 --target labyrinth_bench_versus >/dev/null 2>&1 || echo "blocks_ab: no labyrinth_bench_versus (libdpdk missing?): part 2 left out"
OLD=build-ab/old
rm -rf "$OLD/src" && mkdir -p "$OLD/src"
git archive "$REV" | tar -x -C "$OLD/src"
cmake -S "$OLD/src" -B "$OLD/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABYRINTH_BUILD_TESTS=OFF \
  -DLABYRINTH_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$OLD/build" -j2 --target labyrinth >/dev/null
old_so=$(readlink -f "$OLD/build/cpp/liblabyrinth.so.1")
new_so=$(readlink -f "$B/cpp/liblabyrinth.so.1")

echo "blocks_ab: OLD = $REV ($(git rev-parse --short "$REV")), NEW = working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- cpp || echo ' + changes')"
lscpu | head -20
grep -r . /sys/devices/system/cpu/vulnerabilities/ | sed 's|^/sys/devices/system/cpu/vulnerabilities/||'
echo
echo "## 1. OLD, NEW and DPDK in one process"
export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096
"$B/bench/labyrinth_bench_library_ab" "$old_so" "$new_so" "$ROUNDS" 64,1024 2,6,10
echo
echo "Without thread caches (every pair through the buddy allocator):"
"$B/bench/labyrinth_bench_library_ab" "$old_so" "$new_so" "$ROUNDS" 64u 0,2,6,10 | grep '^| [0-9]'
unset GLIBC_TUNABLES
[ -x "$B/bench/labyrinth_bench_versus" ] || exit 0
for side in OLD NEW; do
  libdir=$([ $side = OLD ] && dirname "$old_so" || dirname "$new_so")
  for mib in 64 1024; do
    echo
    echo "## 2. $side next to DPDK, ${mib} MiB pool ($(LD_LIBRARY_PATH=$libdir ldd "$B/bench/labyrinth_bench_versus" | grep -o '/[^ ]*liblabyrinth[^ ]*'))"
    for order in "order 2," "order 6," "order 10,"; do
      LD_LIBRARY_PATH=$libdir LABYRINTH_VERSUS_POOL_MIB=$mib "$B/bench/labyrinth_bench_versus" "$ROUNDS" "$order" 2>/dev/null |
        grep '^| order' || echo "| $order: versus failed |"
    done
  done
done
