#!/usr/bin/env bash
# The Rust crates (bindings/rust): labyrinth-sys checked against labyrinth.h
# (struct layouts, constants, function list), the safe labyrinth crate's
# tests, doc example and compile-fail checks, linked to the library built by
# stage 10.
set -euo pipefail
cd "$LABYRINTH_ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "50-rust: cargo is not installed (install Rust with rustup); skipping"
  exit 77
fi
[ -e "$BUILD_DIR/cpp/liblabyrinth.so" ] || bash scripts/build.sh
export LABYRINTH_LIB_DIR="$PWD/$BUILD_DIR/cpp"
cd bindings/rust
CARGO_BUILD_JOBS=2 cargo test --workspace 2>&1
