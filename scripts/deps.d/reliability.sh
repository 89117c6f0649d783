#!/usr/bin/env bash
# Reliability stages (70-sanitizers, 75-fuzz, 80-valgrind, 85-stress): clang
# with its runtime libraries (libFuzzer, ASan, UBSan: libclang-rt-14-dev),
# valgrind, and gdb for looking at a crash.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
apt_need clang libclang-rt-14-dev llvm valgrind gdb
