#!/usr/bin/env bash
# Install everything Labyrinth needs to build, test, benchmark and run its
# demo on a Debian machine. Safe to run again: it installs only what is missing.
#
# Each concern may add scripts/deps.d/NAME.sh (sourced after the common
# packages below) for what only it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  liburing-dev libgtest-dev libgmock-dev libbenchmark-dev libnuma-dev
  abigail-tools clang libclang-rt-14-dev llvm valgrind fio util-linux
  libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libdpdk-dev
)
PIP_PACKAGES=(
  "pybind11>=2.11" "scikit-build-core>=0.8" "pytest>=7" "hypothesis>=6.80"
  numpy matplotlib nbclient nbformat ipykernel "mypy>=1.5"
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
else
  echo "deps: Debian packages present"
fi

PY="${PYTHON:-python3}"
if ! "$PY" - "${PIP_PACKAGES[@]}" <<'PYEOF'
import sys
from importlib import metadata
import re
missing = []
for spec in sys.argv[1:]:
    name = re.split(r"[<>=!~ ]", spec, 1)[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(spec)
sys.exit(1 if missing else 0)
PYEOF
then
  echo "deps: installing Python packages with $PY -m pip"
  "$PY" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
else
  echo "deps: Python packages present"
fi

for extra in scripts/deps.d/*.sh; do
  [ -e "$extra" ] || continue
  echo "deps: $extra"
  bash "$extra"
done
