#!/usr/bin/env bash
# Install what Labyrinth needs on a Debian machine. Safe to run again: it
# installs only what is missing (scripts/lib.sh: apt_need, pip_need).
#
#   bash scripts/deps.sh core   what the main job (scripts/demo.sh) needs to
#                               build and run labyrinth-rx: compiler, cmake,
#                               ninja, pkg-config, liburing. No Python.
#   bash scripts/deps.sh        everything: core, the test and benchmark tools,
#                               and the Python packages, which go into the
#                               virtual environment .venv/ at the repository
#                               root (never into a system interpreter).
#
# Each concern may add scripts/deps.d/NAME.sh (run after the lists below, for
# "everything" only) for what only it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

CORE_APT=(build-essential cmake ninja-build pkg-config liburing-dev)
TEST_APT=(
  git python3-venv libgtest-dev libgmock-dev libbenchmark-dev libnuma-dev
  abigail-tools clang libclang-rt-14-dev llvm valgrind fio util-linux
  libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libdpdk-dev
)
PIP_PACKAGES=(
  "pybind11>=2.11" "scikit-build-core>=0.8" "pytest>=7" "hypothesis>=6.80"
  numpy matplotlib nbclient nbformat ipykernel "mypy>=1.5"
)

case "${1:-all}" in
  core)
    apt_need "${CORE_APT[@]}"
    echo "deps: core packages present"
    exit 0;;
  all) ;;
  *) echo "usage: deps.sh [core|all]"; exit 2;;
esac

apt_need "${CORE_APT[@]}" "${TEST_APT[@]}"
echo "deps: Debian packages present"
pip_need "${PIP_PACKAGES[@]}"
echo "deps: Python packages present in $(dirname "$(dirname "$(venv_python)")")"

for extra in scripts/deps.d/*.sh; do
  [ -e "$extra" ] || continue
  echo "deps: $extra"
  bash "$extra"
done
