#!/usr/bin/env bash
# Configure and build the library, tests and examples into build/ (or
# $BUILD_DIR): everything scripts/test.d/ needs. Extra arguments go to cmake's
# configure step. Python: $PYTHON, else .venv's python, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
py="${PYTHON:-}"
[ -n "$py" ] || { [ -x .venv/bin/python ] && py="$PWD/.venv/bin/python"; } || py=$(command -v python3)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo --no-warn-unused-cli \
  -DLABYRINTH_BUILD_TESTS=ON -DLABYRINTH_BUILD_EXAMPLES=ON -DPython_EXECUTABLE="$py" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
