#!/usr/bin/env bash
# Build the libFuzzer targets with clang: the core sources are compiled
# straight into each target, with coverage instrumentation, ASan and UBSan.
# Usage: fuzz/build.sh OUT_DIR [TARGET...]   (targets: fuzz_pool fuzz_uring fuzz_slices)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=${1:?usage: fuzz/build.sh OUT_DIR [TARGET...]}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(fuzz_pool fuzz_uring fuzz_slices)
CXX=${FUZZ_CXX:-clang++}
mkdir -p "$out/obj"
FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
       -fno-sanitize-recover=all -pthread -DLABYRINTH_BUILDING_LIBRARY=1
       -fsanitize-coverage-ignorelist="$root/fuzz/coverage_ignore.txt"
       -I"$root/cpp/include" -I"$root/cpp/src")
core=("$root"/cpp/src/*.cpp)
uring=()
[ -d "$root/cpp/src/uring" ] && uring=("$root"/cpp/src/uring/*.cpp)
# Compile each source once (in parallel, two at a time); objects are reused.
compile() {  # src -> obj
  local src=$1 obj=$2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$root/fuzz/coverage_ignore.txt" -nt "$obj" ] || [ -n "$(find "$root/cpp/src" "$root/cpp/include" -newer "$obj" -name '*.h*' | head -1)" ]; then
    "$CXX" "${FLAGS[@]}" -c "$src" -o "$obj"
  fi
}
objs=()
pids=()
for src in "${core[@]}" "${uring[@]}"; do
  rel=${src#"$root"/cpp/src/}
  obj="$out/obj/${rel//\//_}.o"
  objs+=("$obj")
  compile "$src" "$obj" & pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
core_objs=(); uring_objs=()
for o in "${objs[@]}"; do
  case "$o" in *obj/uring_*) uring_objs+=("$o");; *) core_objs+=("$o");; esac
done
for t in "${targets[@]}"; do
  case $t in
    fuzz_pool)
      "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$root/fuzz/fuzz_pool.cpp" "${core_objs[@]}" -o "$out/fuzz_pool" ;;
    fuzz_uring|fuzz_slices)
      if [ ${#uring_objs[@]} -eq 0 ] || [ ! -f "$root/fuzz/$t.cpp" ]; then
        echo "fuzz/build.sh: no io_uring sources or target; $t not built"; continue
      fi
      "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "$root/fuzz/$t.cpp" "${core_objs[@]}" \
        "${uring_objs[@]}" -luring -o "$out/$t" ;;
    *) echo "fuzz/build.sh: unknown target $t"; exit 2 ;;
  esac
done
