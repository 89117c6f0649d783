#!/usr/bin/env bash
# io_uring support: liburing-dev (headers, pkg-config), fio for the reference
# benchmark, util-linux for setpriv/prlimit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
apt_need liburing-dev fio util-linux
