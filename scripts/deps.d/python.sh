#!/usr/bin/env bash
# Python SDK: what building (pip install .), typing, tests and notebooks need.
# The common list (scripts/deps.sh) has most of it; this adds pandas (the
# Result.to_pandas() conversions are tested) and checks the rest. Installs
# only what is missing, with python3 -m pip.
set -euo pipefail
PY="${PYTHON:-python3}"
need=$("$PY" - <<'PYEOF'
from importlib import metadata
want = ["pybind11", "scikit-build-core", "pytest", "hypothesis", "numpy", "matplotlib",
        "nbclient", "nbformat", "ipykernel", "mypy", "pandas"]
missing = []
for name in want:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(name)
print(" ".join(missing))
PYEOF
)
if [ -n "$need" ]; then
  echo "deps (python): installing $need"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --disable-pip-version-check $need
else
  echo "deps (python): present"
fi
