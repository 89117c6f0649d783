#!/usr/bin/env bash
# The ABI guard. `abi.sh check` compares the built liblabyrinth.so with the
# recorded baseline abi/liblabyrinth.abi and fails on an incompatible change
# (symbols removed or changed, types changed other than growing the
# struct_size-versioned structs at their end). Additions pass and are listed.
# `abi.sh record` rewrites the baseline (do it only when releasing).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
lib="$BUILD_DIR/cpp/liblabyrinth.so"
[ -e "$lib" ] || { echo "abi: $lib not built"; exit 1; }
command -v abidw >/dev/null || { echo "abi: abidw missing (apt-get install abigail-tools)"; exit 1; }
current="$BUILD_DIR/liblabyrinth.abi"
abidw --headers-dir cpp/include/labyrinth --drop-private-types --no-corpus-path --out-file "$current" "$lib"
case "${1:-check}" in
  record) cp "$current" abi/liblabyrinth.abi; echo "abi: baseline recorded";;
  check)
    set +e
    abidiff --suppressions abi/labyrinth.abignore abi/liblabyrinth.abi "$current" > "$BUILD_DIR/abidiff.txt"
    rc=$?
    set -e
    cat "$BUILD_DIR/abidiff.txt"
    if (( rc & 3 )); then echo "abi: abidiff failed (rc=$rc)"; exit 1; fi
    if (( rc & 8 )); then echo "abi: INCOMPATIBLE change against abi/liblabyrinth.abi"; exit 1; fi
    # abidiff calls a changed C signature (a parameter added, a type changed)
    # merely a "change"; for a C ABI any change to an existing function or
    # variable breaks callers. Only additions are allowed.
    if grep -Eq "(Functions|Variables) changes summary: ([1-9][0-9]*) Removed|, ([1-9][0-9]*) Changed" "$BUILD_DIR/abidiff.txt"; then
      echo "abi: INCOMPATIBLE: an existing function or variable was removed or changed"; exit 1
    fi
    if (( rc & 4 )); then echo "abi: compatible additions only"; else echo "abi: no change"; fi;;
  *) echo "usage: abi.sh [check|record]"; exit 2;;
esac
