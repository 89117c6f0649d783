#!/usr/bin/env bash
# The README shows example programs verbatim: after a line
#   <!-- file: examples/hello.c -->
# comes (blank lines aside) a fenced block (```c, ```python, ...) whose content must equal that
# file. Fails, showing the difference, when a block differs from its file,
# when a marker is not followed by a fenced block or names a missing file,
# and when the README has no marker for examples/hello.c or examples/hello.py.
# Usage: bash scripts/check-readme-examples.sh [README]   (default README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
readme="${1:-README.md}"
[ -f "$readme" ] || { echo "check-readme-examples: $readme not found"; exit 1; }
required=(examples/hello.c examples/hello.py)
work=$(mktemp -d /tmp/labyrinth-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Writes each marked block to $work/<n> and lists "n<TAB>path<TAB>line" in
# $work/index; a marker without a block right after it is listed with n=-.
awk -v dir="$work" '
  function flush() { if (path != "") { print "-\t" path "\t" mline > (dir "/index"); path = "" } }
  inblock && /^```[[:space:]]*$/ { inblock = 0; close(out); next }
  inblock { print > out; next }
  match($0, /^<!-- file: [^ ]+ -->[[:space:]]*$/) {
    flush(); path = $3; mline = NR; next
  }
  path != "" && /^```[A-Za-z0-9_+-]*[[:space:]]*$/ {
    n++; out = dir "/" n; printf "" > out
    print n "\t" path "\t" mline > (dir "/index"); path = ""; inblock = 1; next
  }
  path != "" && /^[[:space:]]*$/ { next }
  { flush() }
  END { flush() }
' "$readme"

if [ ! -s "$work/index" ]; then
  echo "check-readme-examples: $readme has no '<!-- file: PATH -->' markers; it must show"
  echo "  ${required[*]} verbatim, each after its marker line and in a fenced block"
  exit 1
fi
fail=0
while IFS=$'\t' read -r n path line; do
  if [ "$n" = - ]; then
    echo "check-readme-examples: $readme:$line: the marker for $path is not followed by a fenced block"; fail=1
  elif [ ! -f "$path" ]; then
    echo "check-readme-examples: $readme:$line: $path does not exist"; fail=1
  elif ! diff -u --label "$path" --label "$readme:$line" "$path" "$work/$n"; then
    echo "check-readme-examples: $readme:$line: the block differs from $path (diff above)"; fail=1
  else
    echo "check-readme-examples: $path matches $readme:$line"
  fi
done < "$work/index"
for path in "${required[@]}"; do
  if ! cut -f2 "$work/index" | grep -qxF "$path"; then
    echo "check-readme-examples: $readme does not show $path (no '<!-- file: $path -->' marker)"; fail=1
  fi
done
exit $fail
