#!/usr/bin/env bash
# The Python SDK on the oldest and the newest CPython it supports
# (pyproject.toml: requires-python >= 3.9; newest tried: 3.13). Stage 40 tests
# the PATH python3 (3.11 here) in depth: typing, notebooks, pandas. This one
# checks that the package builds from source and that its tests pass on the
# other ends of the range: for each interpreter, a throw-away virtual
# environment, pip install . (a real build: scikit-build-core, pybind11),
# pytest, Hypothesis in its "ci" profile.
#
# Where an interpreter comes from: python3.X on PATH, else pyenv's
# $PYENV_ROOT/versions/3.X.*. One that is not on the machine is skipped with a
# line that says so; the stage is skipped (exit 77) if none is. More versions:
# LABYRINTH_PY_VERSIONS="3.9 3.10 3.12 3.13".
set -uo pipefail
cd "$LABYRINTH_ROOT"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export LABYRINTH_HYPOTHESIS_PROFILE="${LABYRINTH_HYPOTHESIS_PROFILE:-ci}"
versions="${LABYRINTH_PY_VERSIONS:-3.9 3.13}"
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"

find_python() {  # prints the interpreter for version $1 (e.g. 3.9), or nothing
  # Each candidate must run: pyenv's shims are on PATH for every version
  # and fail for the ones that are not selected.
  local v="$1" cand
  for cand in "$(command -v "python$v" 2>/dev/null)" \
              $(ls -d "$pyenv_root"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -V -r); do
    if [ -n "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then
      echo "$cand"
      return
    fi
  done
}

work=$(mktemp -d /tmp/labyrinth-pyversions.XXXXXX)
trap 'rm -rf "$work"' EXIT
tested=0; fail=0
for v in $versions; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "--- Python $v: not on this machine (neither python$v on PATH nor $pyenv_root/versions/$v.*); skipped"
    continue
  fi
  echo "--- Python $v: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
  venv="$work/venv-$v"
  if ! "$py" -m venv "$venv"; then
    echo "45-python-versions: cannot make a venv with $py"; fail=1; continue
  fi
  t0=$(date +%s)
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      "pytest>=7" "hypothesis>=6.80" numpy; then
    echo "45-python-versions: installing the test dependencies for Python $v failed"; fail=1; continue
  fi
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check . ; then
    echo "45-python-versions: pip install . failed on Python $v"; fail=1; continue
  fi
  echo "installed in $(( $(date +%s) - t0 ))s"
  # The venv's bin first, so the console-script test finds this labyrinth.
  if ! (cd "$work" && PATH="$venv/bin:$PATH" timeout 900 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        -W error::pytest.PytestUnraisableExceptionWarning -rs "$LABYRINTH_ROOT/tests/python"); then
    echo "45-python-versions: tests failed on Python $v"; fail=1
  fi
  tested=$((tested + 1))
done

if [ "$fail" -ne 0 ]; then exit 1; fi
if [ "$tested" -eq 0 ]; then
  echo "45-python-versions: none of Python $versions is on this machine; skipped"
  exit 77
fi
exit 0
