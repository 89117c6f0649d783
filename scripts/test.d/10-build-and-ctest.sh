#!/usr/bin/env bash
# Build the library, the GoogleTest suite and the C ABI test; run them with ctest.
set -euo pipefail
cd "$LABYRINTH_ROOT"
bash scripts/build.sh
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 300
