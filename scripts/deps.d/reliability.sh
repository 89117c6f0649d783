#!/usr/bin/env bash
# Reliability stages (70-sanitizers, 75-fuzz, 80-valgrind, 85-stress): clang
# with its runtime libraries (libFuzzer, ASan, UBSan: libclang-rt-14-dev),
# valgrind, and gdb for looking at a crash. Installs only what is missing.
set -euo pipefail
need=()
for p in clang libclang-rt-14-dev llvm valgrind gdb; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
