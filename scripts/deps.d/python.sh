#!/usr/bin/env bash
# Python SDK: what building (pip install .), typing, tests and notebooks need,
# in .venv. The common list (scripts/deps.sh) has most of it; this adds pandas
# (the Result.to_pandas() conversions are tested).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
pip_need pybind11 scikit-build-core pytest hypothesis numpy matplotlib \
         nbclient nbformat ipykernel mypy pandas
