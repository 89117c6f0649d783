#!/usr/bin/env bash
# Configure and build the library, tests and examples into build/ (or $BUILD_DIR).
# Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo --no-warn-unused-cli \
  -DPython_EXECUTABLE="$(command -v "${PYTHON:-python3}")" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
