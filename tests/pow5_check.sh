#!/bin/sh
# pow5_check.sh - core/pow5.c is exactly what scripts/gen_pow5.py writes (the
# script computes the tables with exact integers and asserts the C code's
# logarithm shortcuts over their ranges): an edited or stale table fails.
set -eu
SRC=${srcdir:-$(dirname "$0")/..}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
python3 "$SRC/scripts/gen_pow5.py" >"$out"
if ! cmp -s "$out" "$SRC/core/pow5.c"; then
    echo "pow5_check: core/pow5.c differs from scripts/gen_pow5.py's output:" >&2
    diff "$out" "$SRC/core/pow5.c" | head -20 >&2
    exit 1
fi
echo "pow5_check: core/pow5.c matches scripts/gen_pow5.py"
