#!/usr/bin/env bash
# check_backward_coverage.sh - fails unless the test suite executed every
# backward (VJP) rule of the op table.
#
# Usage: tests/check_backward_coverage.sh COVERAGE_JSON PROBE
#
# COVERAGE_JSON: gcovr's JSON report over core/ with per-function execution
# counts (scripts/test.sh step 5 writes build-cov/coverage.json).
# PROBE: tests/backward_probe of the same (coverage) build. It prints the op
# table as compiled, gd_op_all(): each op with its backward function's address
# as an offset from main; nm on the probe names the function. Each rule must
# have execution_count > 0 in the report. Nothing here reads C sources.
# Exit status: 0 all rules executed; 1 a rule never executed, missing from the
# report, or the table could not be read; 2 usage error.
# Needs: bash, nm (binutils), python3 (standard library).
set -euo pipefail

if [ $# -ne 2 ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
fi
JSON=$1 PROBE=$2
die() { echo "check_backward_coverage: $*" >&2; exit 1; }
[ -f "$JSON" ] || die "coverage report '$JSON' not found (run scripts/test.sh, step 5)"
[ -x "$PROBE" ] || die "probe '$PROBE' not found (make check builds it)"

TABLE=$(OPENBLAS_NUM_THREADS=1 "$PROBE") || die "running $PROBE failed"
SYMBOLS=$(nm "$PROBE") || die "nm $PROBE failed"

python3 - "$JSON" 3<<<"$TABLE" 4<<<"$SYMBOLS" <<'PY'
import json, os, sys

def die(msg):
    sys.exit("check_backward_coverage: " + msg)

names = {}   # address -> function names there (text symbols)
for line in os.fdopen(4):
    p = line.split()
    if len(p) == 3 and p[1] in "tTwW":
        names.setdefault(int(p[0], 16), []).append(p[2])
main = [a for a, ns in names.items() if "main" in ns]
if len(main) != 1:
    die("nm found no single 'main' in the probe")

ops, diff_ops, rules = [], 0, []   # rules: (op, function)
for line in os.fdopen(3):
    op, diff, leaf, off = line.split()
    ops.append(op)
    diff_ops += diff == "1" and leaf == "0"
    if off == "none":
        if diff == "1" and leaf == "0":
            die("op '%s' is differentiable but has no backward rule" % op)
        continue
    fn = [n for n in names.get(main[0] + int(off, 16), []) if not n.startswith("__")]
    if len(fn) != 1:
        die("op '%s': backward at main%+d is named %s in the probe" % (op, int(off, 16), fn or "nothing"))
    rules.append((op, fn[0]))
if not rules:
    die("the probe listed no backward rule: gd_op_all looks broken")

calls = {}   # function -> [execution counts, one per core/ file defining it]
for f in json.load(open(sys.argv[1]))["files"]:
    for fn in f.get("functions", []):
        calls.setdefault(fn["name"], []).append(fn["execution_count"])

never = []
print("%-22s %-28s %s" % ("op", "backward function", "calls"))
for op, fn in rules:
    n = calls.get(fn, [])
    print("%-22s %-28s %s" % (op, fn, n[0] if len(n) == 1 else "?"))
    if len(n) != 1:
        never.append("%s: %s is in the report %d times" % (op, fn, len(n)))
    elif n[0] <= 0:
        never.append("%s: %s was never executed" % (op, fn))
print("%d ops in gd_op_all, %d differentiable non-leaf, %d backward rules (%d distinct functions)"
      % (len(ops), diff_ops, len(rules), len({fn for _, fn in rules})))
if never:
    print("FAIL: backward rules never executed by the tests:\n  - " + "\n  - ".join(never), file=sys.stderr)
    sys.exit(1)
print("OK: every backward rule was executed")
PY
