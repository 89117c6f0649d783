#!/usr/bin/env bash
# io_uring support: liburing-dev (headers, pkg-config), fio for the reference
# benchmark, util-linux for setpriv/prlimit. Installs only what is missing.
set -euo pipefail
need=()
for p in liburing-dev fio util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
