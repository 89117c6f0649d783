#!/usr/bin/env bash
# The main job: install what building and running labyrinth-rx needs (no
# test, benchmark or Python packages: scripts/deps.sh core), build the
# library and labyrinth-rx only (tests and benchmarks configured off), and
# run it - UDP on loopback received with io_uring multishot receive into
# atomic exclusive pages, compared with recvmsg into malloc'd buffers (a few
# seconds). Safe to run again. Extra arguments go to labyrinth-rx (e.g.
# --duration 5). Environment: BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh core
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo --no-warn-unused-cli \
  -DLABYRINTH_BUILD_TESTS=OFF -DLABYRINTH_BUILD_BENCH=OFF -DLABYRINTH_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target labyrinth-rx
echo
exec "$BUILD_DIR/examples/labyrinth-rx" "$@"
