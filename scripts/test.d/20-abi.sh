#!/usr/bin/env bash
# The exported symbols and types must stay compatible with abi/liblabyrinth.abi.
set -euo pipefail
cd "$LABYRINTH_ROOT"
bash scripts/abi.sh check
