#!/usr/bin/env bash
# The main job: install what is needed, build, and run labyrinth-rx - UDP on
# loopback received with io_uring multishot receive into atomic exclusive
# pages, compared with recvmsg into malloc'd buffers (a few seconds).
# Safe to run again. Extra arguments go to labyrinth-rx (e.g. --duration 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
BUILD_DIR="${BUILD_DIR:-build}"
echo
exec "$BUILD_DIR/examples/labyrinth-rx" "$@"
