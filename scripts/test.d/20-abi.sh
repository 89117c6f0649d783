#!/usr/bin/env bash
# The exported symbols (headers, version script and library agree) and the
# types must stay compatible with abi/liblabyrinth.abi (docs/abi.md).
set -euo pipefail
cd "$LABYRINTH_ROOT"
bash scripts/abi.sh check
