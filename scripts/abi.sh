#!/usr/bin/env bash
# The ABI guard (docs/abi.md). `abi.sh check`:
#  1. symbols: the LABYRINTH_API declarations in the public headers, the
#     names in the version script cpp/src/labyrinth.map and the library's
#     exported labyrinth_* symbols must be the same set; beyond them only the
#     map's LABYRINTH_PRIVATE_* node (lab_private_* names, for the sibling
#     liblabyrinth_xdp) may be exported; the map's last node must be
#     LABYRINTH_<major>.<minor> and the SONAME liblabyrinth.so.<major> of
#     labyrinth.h's LABYRINTH_ABI_VERSION; the same for liblabyrinth_xdp.so
#     (labyrinth_xdp.h, cpp/src/xdp/labyrinth_xdp.map, LABYRINTH_XDP_<m>.<n>,
#     whose minor <n> is its own) where it is built;
#  2. types: compares the built liblabyrinth.so with the recorded baseline
#     abi/liblabyrinth.abi (and liblabyrinth_xdp.so, where built, with
#     abi/liblabyrinth_xdp.abi) and fails on an incompatible change (symbols
#     removed or changed, types changed other than growing the
#     struct_size-versioned structs at their end). Additions pass and are listed.
# `abi.sh record` checks the symbols and rewrites the baselines (only when
# releasing, or once after a change the release notes announce).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
lib="$BUILD_DIR/cpp/liblabyrinth.so"
map=cpp/src/labyrinth.map
[ -e "$lib" ] || { echo "abi: $lib not built"; exit 1; }
command -v abidw >/dev/null || { echo "abi: abidw missing (apt-get install abigail-tools)"; exit 1; }

# Names the given headers declare with LABYRINTH_API (functions and the TLS
# record), the declaration possibly spanning lines.
header_symbols() {
  perl -0777 -ne 'while (/LABYRINTH_API\s+([^;(]*?)\s*(?:\(|;|__attribute__)/g) {
      my @ids = ($1 =~ /\b(labyrinth_\w+)/g); print "$ids[-1]\n" if @ids; }' "$@" | sort -u
}
# "node name" for each name a version script lists as global.
map_entries() {
  perl -0777 -ne 's{/\*.*?\*/}{}gs; while (/([A-Z][\w.]*)\s*\{(.*?)\}/gs) {
      my ($node, $body) = ($1, $2); $body =~ s/local:.*//s;
      print "$node $1\n" while $body =~ /\b([a-z_]\w*)\s*;/g; }' "$1"
}
# The public names of a version script; its private ones (the node
# LABYRINTH_PRIVATE_<n>, for sibling libraries of the release: docs/abi.md).
map_symbols() { map_entries "$1" | awk '$1 !~ /^LABYRINTH_PRIVATE_/ { print $2 }' | sort -u; }
private_symbols() { map_entries "$1" | awk '$1 ~ /^LABYRINTH_PRIVATE_/ { print $2 }' | sort -u; }
lib_symbols() { nm -D --defined-only "$1" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u; }

# check_library LIB MAP NODE_PREFIX HEADER...: the headers' LABYRINTH_API
# names are the map's public names; the library exports those and the map's
# private names (lab_private_* only), nothing else; the map's last public
# node is <NODE_PREFIX><major>.<minor> and the SONAME <lib>.so.<major> of
# labyrinth.h's LABYRINTH_ABI_VERSION.
check_library() {
  local lib=$1 map=$2 prefix=$3; shift 3
  local bad=0 only
  only=$(comm -23 <(header_symbols "$@") <(map_symbols "$map"))
  [ -z "$only" ] || { echo "abi: declared LABYRINTH_API but missing from $map:" $only; bad=1; }
  only=$(comm -13 <(header_symbols "$@") <(map_symbols "$map"))
  [ -z "$only" ] || { echo "abi: named in $map but declared in no public header:" $only; bad=1; }
  only=$(private_symbols "$map" | grep -v '^lab_private_' || true)
  [ -z "$only" ] || { echo "abi: private node of $map lists names without lab_private_:" $only; bad=1; }
  local listed; listed=$(sort -u <(map_symbols "$map") <(private_symbols "$map"))
  only=$(comm -13 <(lib_symbols "$lib") <(echo "$listed"))
  [ -z "$only" ] || { echo "abi: named in $map but not exported by $lib:" $only; bad=1; }
  only=$(comm -23 <(lib_symbols "$lib") <(echo "$listed"))
  [ -z "$only" ] || { echo "abi: exported by $lib but not named in $map:" $only; bad=1; }
  local h=cpp/include/labyrinth/labyrinth.h major minor node soname want
  major=$(awk '/#define LABYRINTH_ABI_VERSION_MAJOR/ {print $3}' "$h")
  minor=$(awk '/#define LABYRINTH_ABI_VERSION_MINOR/ {print $3}' "$h")
  node=$(grep -oE "^${prefix}[0-9]+\.[0-9]+" "$map" | tail -n 1)
  # A sibling library (prefix other than LABYRINTH_) numbers its own minor
  # versions; only its major follows labyrinth.h's.
  if [ "$prefix" = LABYRINTH_ ]; then
    [ "$node" = "$prefix$major.$minor" ] ||
      { echo "abi: the last node of $map is '$node', labyrinth.h says ABI $major.$minor"; bad=1; }
  else
    [ "${node%.*}" = "$prefix$major" ] ||
      { echo "abi: the last node of $map is '$node', labyrinth.h says major $major"; bad=1; }
  fi
  soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  want="$(basename "$lib").$major"
  [ "$soname" = "$want" ] || { echo "abi: SONAME '$soname', labyrinth.h says major $major ($want)"; bad=1; }
  if ((bad)); then echo "abi: symbol check FAILED for $lib"; exit 1; fi
  echo "abi: $(map_symbols "$map" | wc -l) symbols (+$(private_symbols "$map" | wc -l) private):" \
       "headers, $map and $lib agree; $node, $soname"
}

check_library "$lib" "$map" LABYRINTH_ $(ls cpp/include/labyrinth/*.h | grep -v '/labyrinth_\(xdp\|ucx\)\.h$')
# types LIB BASELINE MODE: record LIB's types as BASELINE, or check LIB
# against it (additions pass; removals, changes, incompatible types fail).
types() {
  local lib=$1 baseline=$2 current out
  current="$BUILD_DIR/$(basename "$baseline")"
  out="$BUILD_DIR/abidiff-$(basename "$baseline" .abi).txt"
  abidw --headers-dir cpp/include/labyrinth --drop-private-types --no-corpus-path --out-file "$current" "$lib"
  case "$3" in
    record) cp "$current" "$baseline"; echo "abi: baseline $baseline recorded";;
    check)
      set +e
      abidiff --suppressions abi/labyrinth.abignore "$baseline" "$current" > "$out"
      local rc=$?
      set -e
      cat "$out"
      if (( rc & 3 )); then echo "abi: abidiff failed (rc=$rc)"; exit 1; fi
      if (( rc & 8 )); then echo "abi: INCOMPATIBLE change against $baseline"; exit 1; fi
      # abidiff calls a changed C signature (a parameter added, a type changed)
      # merely a "change"; for a C ABI any change to an existing function or
      # variable breaks callers. Only additions are allowed.
      if grep -Eq "(Functions|Variables) changes summary: ([1-9][0-9]*) Removed|, ([1-9][0-9]*) Changed" "$out"; then
        echo "abi: INCOMPATIBLE against $baseline: an existing function or variable was removed or changed"; exit 1
      fi
      if (( rc & 4 )); then echo "abi: $lib: compatible additions only"; else echo "abi: $lib: no change"; fi;;
    *) echo "usage: abi.sh [check|record]"; exit 2;;
  esac
}

# AF_XDP's library is checked where it is built.
xdp_lib="$BUILD_DIR/cpp/liblabyrinth_xdp.so"
if [ -e "$xdp_lib" ]; then
  check_library "$xdp_lib" cpp/src/xdp/labyrinth_xdp.map LABYRINTH_XDP_ cpp/include/labyrinth/labyrinth_xdp.h
fi
# UCX's library likewise; its types from the first baseline recorded for it.
ucx_lib="$BUILD_DIR/cpp/liblabyrinth_ucx.so"
if [ -e "$ucx_lib" ]; then
  check_library "$ucx_lib" cpp/src/ucx/labyrinth_ucx.map LABYRINTH_UCX_ cpp/include/labyrinth/labyrinth_ucx.h
fi
types "$lib" abi/liblabyrinth.abi "${1:-check}"
if [ -e "$xdp_lib" ]; then types "$xdp_lib" abi/liblabyrinth_xdp.abi "${1:-check}"; fi
if [ -e "$ucx_lib" ] && { [ -e abi/liblabyrinth_ucx.abi ] || [ "${1:-check}" = record ]; }; then
  types "$ucx_lib" abi/liblabyrinth_ucx.abi "${1:-check}"
fi
