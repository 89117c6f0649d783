#!/usr/bin/env bash
# Benchmarks: Google Benchmark and every peer allocator the suite compares
# with (mimalloc, jemalloc, tcmalloc from gperftools, DPDK), valgrind and
# binutils for the profile, matplotlib (in .venv) for the latency plot.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
apt_need libbenchmark-dev libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libdpdk-dev \
         valgrind binutils pkg-config
pip_need matplotlib
