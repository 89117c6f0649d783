#!/usr/bin/env bash
# UCX support (liblabyrinth_ucx, test stage 37-ucx, examples/labyrinth-remote):
# Debian's libucx-dev (headers, pkg-config ucx; pulls libucx0).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
apt_need libucx-dev
