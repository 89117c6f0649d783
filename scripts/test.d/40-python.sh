#!/usr/bin/env bash
# Python SDK: install the package from this checkout (non-editable, exactly
# what a user's `pip install .` in a virtual environment does), then check
# the typing (mypy --strict on the package and its _core stubs), run the tests
# (pytest tests/python, Hypothesis in its "ci" profile) and execute every
# notebook on a small workload. A few minutes on 2 cores.
#
# Where it installs: the project's virtual environment, $PYTHON (scripts/test.sh
# sets it to .venv/bin/python; each checkout has its own, so the run neither
# changes nor is changed by another checkout's `labyrinth`).
set -uo pipefail
cd "$LABYRINTH_ROOT"
. scripts/lib.sh
PY="${PYTHON:-$(venv_python)}" || { echo "40-python: no virtual environment (scripts/deps.sh makes it)"; exit 1; }
export PATH="$(dirname "$PY"):$PATH"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export LABYRINTH_HYPOTHESIS_PROFILE="${LABYRINTH_HYPOTHESIS_PROFILE:-ci}"
fail=0
step() { echo "--- $*"; }

work=$(mktemp -d /tmp/labyrinth-python.XXXXXX)
trap 'rm -rf "$work"' EXIT

step "pip install . (scikit-build-core builds the core and labyrinth._core)"
t0=$(date +%s)
if ! "$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps . ; then
  echo "40-python: pip install . failed"; exit 1
fi
echo "installed in $(( $(date +%s) - t0 ))s"

# Everything below imports the installed package (not python/labyrinth/).

step "import and console script"
(cd "$work" && "$PY" -c "import labyrinth, sys; print('labyrinth', labyrinth.__version__, 'from', labyrinth.__file__)") || fail=1
if [ "$(command -v labyrinth)" != "$(dirname "$PY")/labyrinth" ]; then
  echo "40-python: the labyrinth console script on PATH is not the one just installed"; fail=1
fi
(cd "$work" && labyrinth --version) || { echo "40-python: the labyrinth console script does not run"; fail=1; }

step "mypy --strict on the package (with the _core stubs)"
(cd python && "$PY" -m mypy --strict --no-incremental -p labyrinth) || fail=1

step "pytest tests/python (Hypothesis profile $LABYRINTH_HYPOTHESIS_PROFILE)"
timeout 900 "$PY" -m pytest -q -p no:cacheprovider tests/python -W error::pytest.PytestUnraisableExceptionWarning \
  || fail=1

step "notebooks (nbclient, small workload)"
LABYRINTH_NOTEBOOK_SMALL=1 timeout 600 "$PY" - notebooks/*.ipynb <<'PYEOF' || fail=1
import sys, time
import nbformat
from nbclient import NotebookClient

paths = sys.argv[1:]
if not paths:
    sys.exit("no notebooks found")
bad = 0
for path in paths:
    t0 = time.time()
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
        print(f"{path}: ran {sum(c.cell_type == 'code' for c in nb.cells)} code cells in {time.time() - t0:.1f}s")
    except Exception as exc:  # the cell's traceback says what broke
        bad += 1
        print(f"{path}: FAILED: {exc}")
sys.exit(1 if bad else 0)
PYEOF

exit $fail
