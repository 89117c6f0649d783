#!/usr/bin/env bash
# Calls by name compile inline (labyrinth.h, LABYRINTH_INLINE_CALLS) with
# every compiler found: gcc and clang, as C and as C++, at -O0 and -O2. The
# object file of inline_calls.c must not refer to the first names of the
# inline calls, only to their second names, and must read the per-thread
# record the inline code uses; with LABYRINTH_NO_INLINE_CALLS it
# must refer to the first names (so the check can tell the two apart). Each
# program is also run against the build tree's library.
# Usage: inline_calls.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
out="$build/inline_calls"
mkdir -p "$out"
inc="$src/cpp/include"
lib="$build/cpp"
first='labyrinth_void_alloc_page_gfp_atomic_exclusive|labyrinth_free_pages|labyrinth_free_pages_order|labyrinth_alloc_pages|labyrinth_page_transfer'
fail=0 ran=0
for cc in gcc g++ clang clang++; do
  if ! command -v "$cc" >/dev/null; then echo "inline_calls: $cc not installed, not checked"; continue; fi
  case $cc in *++) lang=(-x c++ -std=c++17);; *) lang=(-x c -std=c99);; esac
  for opt in -O0 -O2; do
    for mode in inline out-of-line; do
      defs=(); [ $mode = out-of-line ] && defs=(-DLABYRINTH_NO_INLINE_CALLS)
      obj="$out/$cc$opt-$mode.o"
      if ! "$cc" "${lang[@]}" $opt -Wall -Wextra -pedantic -Werror "${defs[@]}" -I"$inc" \
          -c "$src/tests/c/inline_calls.c" -o "$obj"; then
        echo "inline_calls: FAIL: $cc $opt $mode does not compile"; fail=1; continue
      fi
      undef=$(nm -u "$obj" | awk '{print $NF}')
      refs=$(echo "$undef" | grep -Ex "$first" | tr '\n' ' ')
      if [ $mode = inline ] && [ -n "$refs" ]; then
        echo "inline_calls: FAIL: $cc $opt: calls by name were not inlined; the object calls $refs"; fail=1
      elif [ $mode = inline ] && ! echo "$undef" | grep -qx labyrinth_thread_fast; then
        echo "inline_calls: FAIL: $cc $opt: no inline code (the per-thread record is never read)"; fail=1
      elif [ $mode = out-of-line ] && [ -z "$refs" ]; then
        echo "inline_calls: FAIL: $cc $opt: with LABYRINTH_NO_INLINE_CALLS the object calls none of the first names"; fail=1
      fi
      link=gcc; case $cc in clang*) link=clang;; esac
      "$link" "$obj" -o "$obj.exe" -L"$lib" -llabyrinth -Wl,-rpath,"$lib" -lpthread -lstdc++ \
        && "$obj.exe" || { echo "inline_calls: FAIL: $cc $opt $mode: the program failed"; fail=1; }
      ran=$((ran + 1))
    done
  done
done
[ $fail = 0 ] && echo "inline_calls: $ran builds checked and run"
exit $fail
