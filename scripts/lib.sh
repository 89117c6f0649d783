# Shell functions the scripts share; source it (". scripts/lib.sh") from the
# repository root. Each installs only what is missing, so every script that
# uses them is safe to run again.
#
#   apt_need PKG...   the missing Debian packages: as root with apt-get; as
#                     another user with sudo, or, without sudo, fails naming
#                     the packages and the command to run as root
#   venv_python       prints the python of the project's virtual environment
#                     (.venv at the repository root, or $LABYRINTH_VENV),
#                     creating it with the first python3 on PATH if needed;
#                     Python packages never go into a system interpreter
#   pip_need SPEC...  the missing Python packages, into that environment

apt_need() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "deps: missing Debian packages: ${missing[*]}"
      echo "deps: install them as root:  apt-get install -y ${missing[*]}"
      return 1
    fi
    sudo=(sudo)
  fi
  echo "deps: installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

venv_python() {
  local venv="${LABYRINTH_VENV:-$PWD/.venv}"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "$venv/bin/python"; return 0
  fi
  local base
  base=$(command -v python3) || { apt_need python3 >&2 || return 1; base=python3; }
  # Debian's python3 has no ensurepip (so no venv) without python3-venv.
  if ! "$base" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(readlink -f "$base")" = "$(readlink -f /usr/bin/python3)" ]; then
      apt_need python3-venv >&2 || return 1
    else
      echo "deps: $base cannot make a virtual environment (no ensurepip); put one that can first on PATH" >&2
      return 1
    fi
  fi
  echo "deps: creating the virtual environment $venv with $base ($("$base" -V 2>&1))" >&2
  "$base" -m venv --clear "$venv" >&2 || return 1
  echo "$venv/bin/python"
}

pip_need() {
  local py missing
  py=$(venv_python) || return 1
  missing=$("$py" - "$@" <<'PYEOF'
import re, sys
from importlib import metadata
missing = []
for spec in sys.argv[1:]:
    try:
        metadata.version(re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0])
    except metadata.PackageNotFoundError:
        missing.append(spec)
print("\n".join(missing))
PYEOF
) || return 1
  [ -z "$missing" ] && return 0
  echo "deps: installing Python packages into $(dirname "$(dirname "$py")"): $(echo $missing)"
  local specs=()
  mapfile -t specs <<< "$missing"
  "$py" -m pip install -q --disable-pip-version-check "${specs[@]}"
}
