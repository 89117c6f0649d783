#!/usr/bin/env bash
# Benchmarks: Google Benchmark and every peer allocator the suite compares
# with (mimalloc, jemalloc, tcmalloc from gperftools, DPDK), valgrind and
# binutils for the profile, matplotlib for the latency plot. Installs only
# what is missing; safe to run again.
set -euo pipefail
need=()
for p in libbenchmark-dev libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libdpdk-dev \
         valgrind binutils pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "deps (bench): installing Debian packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
PY="${PYTHON:-python3}"
if ! "$PY" -c "import matplotlib" 2>/dev/null; then
  echo "deps (bench): installing matplotlib with $PY -m pip"
  "$PY" -m pip install -q --disable-pip-version-check matplotlib
fi
