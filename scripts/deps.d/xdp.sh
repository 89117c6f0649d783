#!/usr/bin/env bash
# AF_XDP support (test stage 35-xdp only; the demo does not need it):
# libxdp-dev and libbpf-dev (headers, pkg-config, libxdp's default XDP
# program), iproute2 for the veth pair in a private network namespace.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
apt_need libxdp-dev libbpf-dev iproute2
