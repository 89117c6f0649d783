#!/usr/bin/env bash
# Install the built library into a scratch prefix, then build tests/c/abi_test.c
# against the installed copy twice: with pkg-config and plain cc, and as a
# CMake project using find_package(labyrinth). Run both.
# Usage: run_installed.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
prefix="$build/test-install"
rm -rf "$prefix" "$build/consumer"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'liblabyrinth.so' | head -1)")
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -pedantic -Werror "$src/tests/c/abi_test.c" -o "$build/abi_test_pc" \
  $(pkg-config --cflags --libs labyrinth) -lpthread -Wl,-rpath,"$libdir"
"$build/abi_test_pc"
cmake -S "$src/tests/c/consumer" -B "$build/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$build/consumer" >/dev/null
"$build/consumer/abi_test_cmake"
# The header also compiles as strict C++.
echo '#include <labyrinth/labyrinth.h>
#include <labyrinth/labyrinth.hpp>
int main() { return labyrinth_abi_version() == LABYRINTH_ABI_VERSION ? 0 : 1; }' > "$build/header_cxx.cpp"
c++ -std=c++17 -Wall -Wextra -pedantic -Werror -I"$prefix/include" "$build/header_cxx.cpp" \
  -o "$build/header_cxx" -L"$libdir" -llabyrinth -Wl,-rpath,"$libdir"
"$build/header_cxx"
echo "run_installed: pkg-config, find_package and C++ header checks passed"
