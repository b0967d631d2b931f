#!/usr/bin/env bash
# check_backward_coverage.sh - fails unless the test suite executed every
# backward (VJP) rule of the op table (issue #2).
#
# Usage: tests/check_backward_coverage.sh COVERAGE_TXT
#
# COVERAGE_TXT is gcovr's text report over core/ (scripts/test.sh step 5
# writes build-cov/coverage.txt); its JSON twin, with per-function execution
# counts, is $COVERAGE_JSON or else coverage.json beside COVERAGE_TXT.
#
# The rules come from the source of truth, never from a hand-kept list:
#   1. core/op.c and core/ops_*.c are run through the C preprocessor (so rows
#      written with macros such as UNARY(neg, ...) are expanded) and every
#      `const gd_op_def NAME[] = { ... }` table is parsed: each row's `name`
#      and `backward` initializer, designated or positional (the positional
#      field order is read from struct gd_op_def itself).
#   2. A probe linked against core/*.c (built in a temporary directory, no
#      coverage instrumentation) walks gd_op_all() and prints every op with its
#      differentiable flag, leaf flag and backward pointer; `nm` maps each
#      pointer back to a function name. The parsed table must match the probe
#      exactly, and every differentiable non-leaf op must have a rule, so a
#      parsing regression cannot make this check vacuous.
# Then each rule's function must have execution_count > 0 in the JSON report.
# Prints a table (op, file, backward function, calls) and, for information,
# the core/ line total and the core functions never executed.
# Exit status: 0 all rules executed, 1 a rule never executed or missing from
# the report, or the rule list could not be trusted; 2 usage error.
# Needs: bash, /usr/bin/python3 (standard library), cc/gcc, nm, pkg-config.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
    if [ $# -eq 1 ]; then usage; exit 0; fi
    usage >&2
    exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPORT=$1
JSON=${COVERAGE_JSON:-$(dirname "$REPORT")/coverage.json}
CC_BIN=${CC:-cc}
PY=/usr/bin/python3

die() {
    echo "check_backward_coverage: $*" >&2
    exit 1
}

[ -f "$REPORT" ] || die "coverage report '$REPORT' not found (run scripts/test.sh, step 5)"
[ -f "$JSON" ] || die "JSON coverage report '$JSON' not found (set COVERAGE_JSON)"
[ -x "$PY" ] || die "$PY not found"
command -v "$CC_BIN" >/dev/null || die "C compiler '$CC_BIN' not found"
command -v nm >/dev/null || die "nm not found (binutils)"
OPENBLAS_CFLAGS=$(pkg-config --cflags openblas) || die "pkg-config openblas failed"
OPENBLAS_LIBS=$(pkg-config --libs openblas) || die "pkg-config openblas failed"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gd_bwcov.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 1. Preprocessed table sources, one .i per file.
# shellcheck disable=SC2206  # pkg-config output is a word list
CPP=("$CC_BIN" -E -P -std=c11 -D_GNU_SOURCE -I"$ROOT" -I"$ROOT/core" $OPENBLAS_CFLAGS)
TABLE_FILES=()
for src in "$ROOT"/core/op.c "$ROOT"/core/ops_*.c; do
    [ -f "$src" ] || continue
    rel=core/$(basename "$src")
    "${CPP[@]}" "$src" -o "$TMP/$(basename "$src").i" || die "preprocessing $rel failed"
    TABLE_FILES+=("$rel=$TMP/$(basename "$src").i")
done

# 2. The probe: gd_op_all() as compiled. Backward pointers are printed as
# offsets from main so that they match nm's addresses even in a PIE.
cat >"$TMP/probe.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>

#include "op.h"

/* Prints one line per op of gd_op_all(): name, differentiable, leaf,
 * has-backward and the backward pointer's offset from main. */
int main(void) {
    int n;
    const gd_op_def *const *ops = gd_op_all(&n);
    printf("count %d\n", n);
    for (int i = 0; i < n; i++) {
        const gd_op_def *d = ops[i];
        long long off = d->backward ? (long long)((uintptr_t)d->backward - (uintptr_t)main) : 0;
        printf("op %s %d %d %d %lld\n", d->name, d->differentiable != 0, (d->flags & GD_OPF_LEAF) != 0,
               d->backward != NULL, off);
    }
    return 0;
}
EOF
# shellcheck disable=SC2086
"$CC_BIN" -std=gnu11 -O0 -D_GNU_SOURCE -pthread -I"$ROOT" -I"$ROOT/core" $OPENBLAS_CFLAGS \
    -o "$TMP/probe" "$TMP/probe.c" "$ROOT"/core/*.c $OPENBLAS_LIBS -lm \
    || die "building the gd_op_all probe failed"
OPENBLAS_NUM_THREADS=1 "$TMP/probe" >"$TMP/probe.out" || die "running the gd_op_all probe failed"
nm "$TMP/probe" >"$TMP/probe.nm" || die "nm on the probe failed"

"$PY" - "$REPORT" "$JSON" "$TMP/probe.out" "$TMP/probe.nm" "${TABLE_FILES[@]}" <<'PY'
import json
import re
import sys

report_txt, json_path, probe_out, probe_nm = sys.argv[1:5]
table_files = [a.split("=", 1) for a in sys.argv[5:]]
problems = []          # reasons the rule list itself is not trustworthy
NULLS = {"0", "((void *)0)", "((void*)0)", "(void *)0", "(void*)0", "NULL"}


def die(msg):
    print("check_backward_coverage: " + msg, file=sys.stderr)
    sys.exit(1)


def strip_comments(text):
    """Removes C comments (cpp -P keeps none, but be safe), keeping literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = skip_literal(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def skip_literal(text, i):
    """Index just past the string or char literal starting at text[i]."""
    q, j = text[i], i + 1
    while j < len(text) and text[j] != q:
        j += 2 if text[j] == "\\" else 1
    return j + 1


def match_close(text, i):
    """Index of the bracket closing the one at text[i]; literals skipped."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack, j = [], i
    while j < len(text):
        c = text[j]
        if c in "\"'":
            j = skip_literal(text, j)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                die("unbalanced brackets in preprocessed source")
            if not stack:
                return j
        j += 1
    die("unterminated bracket in preprocessed source")


def split_top(text):
    """Splits at commas outside brackets and literals; drops empty tail."""
    parts, depth, start, j = [], 0, 0, 0
    while j < len(text):
        c = text[j]
        if c in "\"'":
            j = skip_literal(text, j)
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:j].strip())
            start = j + 1
        j += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def struct_fields(text):
    """Member names of struct gd_op_def, in declaration order."""
    m = re.search(r"\bstruct\s+gd_op_def\s*\{", text)
    if not m:
        return None
    body = text[m.end():match_close(text, m.end() - 1)]
    fields = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        for k, part in enumerate(split_top(decl)):
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", part)
            name = fp.group(1) if fp else re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*$", part).group(1)
            fields.append(name)
    return fields


def string_value(expr):
    lits = re.findall(r'"((?:[^"\\]|\\.)*)"', expr)
    return "".join(lits) if lits and re.fullmatch(r'\s*("(?:[^"\\]|\\.)*"\s*)+', expr) else None


def ident_value(expr):
    e = re.sub(r"\s+", " ", expr.strip())
    if e in NULLS:
        return None
    m = re.fullmatch(r"\(*\s*&?\s*(\w+)\s*\)*", e)
    if not m or not re.fullmatch(r"[A-Za-z_]\w*", m.group(1)):
        return False
    return m.group(1)


# --- 1. the tables, from the preprocessed sources -------------------------
rows = []   # (op, family file, table, backward function or None)
fields = None
for rel, ipath in table_files:
    text = strip_comments(open(ipath, encoding="utf-8", errors="replace").read())
    fields = fields or struct_fields(text)
    for m in re.finditer(r"\bgd_op_def\s+(\w+)\s*\[\s*\w*\s*\]\s*=\s*\{", text):
        table = m.group(1)
        if fields is None:
            die("struct gd_op_def not found in the preprocessed %s" % rel)
        for fld in ("name", "backward"):
            if fld not in fields:
                die("struct gd_op_def has no '%s' member (fields: %s)" % (fld, ", ".join(fields)))
        open_at = m.end() - 1
        body = text[open_at + 1:match_close(text, open_at)]
        n_rows = 0
        for elem in split_top(body):
            if not (elem.startswith("{") and elem.endswith("}")):
                die("%s %s: row is not a brace initializer: %.80s" % (rel, table, elem))
            vals, cursor = {}, 0
            for init in split_top(elem[1:-1]):
                d = re.match(r"\.(\w+)\s*=\s*(.*)\Z", init, re.S)
                if d:
                    if d.group(1) not in fields:
                        die("%s %s: unknown field .%s" % (rel, table, d.group(1)))
                    cursor = fields.index(d.group(1))
                    init = d.group(2)
                if cursor >= len(fields):
                    die("%s %s: too many initializers in row %.80s" % (rel, table, elem))
                vals[fields[cursor]] = init.strip()
                cursor += 1
            name_expr = vals.get("name", "0")
            if ident_value(name_expr) is None:     # {0}: the terminator
                continue
            op = string_value(name_expr)
            if op is None:
                die("%s %s: cannot read the name of row %.80s" % (rel, table, elem))
            bw = ident_value(vals.get("backward", "0"))
            if bw is False:
                die("%s %s: op '%s': cannot read backward initializer '%s'" % (rel, table, op, vals["backward"]))
            rows.append((op, rel, table, bw))
            n_rows += 1
        if n_rows == 0:
            problems.append("table %s in %s has no rows" % (table, rel))

rules = [r for r in rows if r[3]]

# --- 2. the probe: gd_op_all() as compiled, names via nm ------------------
addr = {}
main_addr = None
for line in open(probe_nm):
    p = line.split()
    if len(p) == 3 and p[1] in "tTwW":
        addr.setdefault(int(p[0], 16), []).append(p[2])
        if p[2] == "main":
            main_addr = int(p[0], 16)
if main_addr is None:
    die("nm found no 'main' in the probe")
probe, probe_count = {}, None
for line in open(probe_out):
    p = line.split()
    if p[0] == "count":
        probe_count = int(p[1])
    elif p[0] == "op":
        op, diff, leaf, has_bw, off = p[1], int(p[2]), int(p[3]), int(p[4]), int(p[5])
        fn = None
        if has_bw:
            names = [n for n in addr.get(main_addr + off, []) if not n.startswith("__")]
            fn = names[0] if names else "<address %#x>" % (main_addr + off)
        probe[op] = (diff, leaf, fn)
if not probe_count or probe_count != len(probe):
    die("the probe listed %s ops (%d parsed lines): gd_op_all looks broken" % (probe_count, len(probe)))

diff_ops = sorted(op for op, (diff, leaf, _) in probe.items() if diff and not leaf)
for op in diff_ops:
    if not probe[op][2]:
        problems.append("op '%s' is differentiable but has no backward rule" % op)
parsed = {}
for op, rel, table, bw in rows:
    if op in parsed:
        problems.append("op '%s' appears twice in the tables" % op)
    parsed[op] = bw
for op in sorted(set(probe) - set(parsed)):
    problems.append("op '%s' is in gd_op_all but no table row for it was parsed" % op)
for op in sorted(set(parsed) - set(probe)):
    problems.append("op '%s' was parsed from a table but is not in gd_op_all" % op)
for op in sorted(set(parsed) & set(probe)):
    if parsed[op] != probe[op][2]:
        problems.append("op '%s': parsed backward %s, compiled table has %s" % (op, parsed[op], probe[op][2]))
if len(rules) < len(diff_ops):
    problems.append("only %d backward rules parsed for %d differentiable ops in gd_op_all"
                    % (len(rules), len(diff_ops)))

# --- 3. execution counts from gcovr's JSON ---------------------------------
try:
    cov = json.load(open(json_path))
except (OSError, ValueError) as e:
    die("cannot read %s: %s" % (json_path, e))
counts = {}   # file (as in the report) -> function -> calls
if not isinstance(cov, dict) or not isinstance(cov.get("files"), list):
    die("%s is not a gcovr JSON report (no 'files' list)" % json_path)
for f in cov["files"]:
    fns = counts.setdefault(f.get("file", ""), {})
    for fn in f.get("functions", []):
        name = fn.get("demangled_name") or fn.get("name")
        fns[name] = fns.get(name, 0) + int(fn.get("execution_count", 0))
if not any(counts.values()):
    die("%s has no per-function counts (gcovr 5+ JSON with 'functions' expected)" % json_path)


def calls(rel, fn):
    """Calls of fn: in the file of its table, else in the one core file defining it."""
    for f, fns in counts.items():
        if (f == rel or f.endswith("/" + rel)) and fn in fns:
            return fns[fn]
    hits = [fns[fn] for f, fns in counts.items() if fn in fns and "core/" in f]
    return hits[0] if len(hits) == 1 else None


shared = {}
for op, rel, table, bw in rules:
    shared.setdefault((rel, bw), []).append(op)

never = []
w_op = max([len(r[0]) for r in rules] + [2])
w_fn = max([len(r[3]) for r in rules] + [17])
w_f = max([len(r[1]) for r in rules] + [4])
print("%-*s  %-*s  %-*s  %s" % (w_op, "op", w_f, "file", w_fn, "backward function", "calls"))
print("-" * (w_op + w_f + w_fn + 14))
for op, rel, table, bw in rules:
    n = calls(rel, bw)
    note = ""
    if len(shared[(rel, bw)]) > 1:
        note = "  (shared: %s)" % ", ".join(shared[(rel, bw)])
    print("%-*s  %-*s  %-*s  %s%s" % (w_op, op, w_f, rel, w_fn, bw, "missing" if n is None else n, note))
    if n is None:
        never.append("%s (%s): %s is not in the coverage report" % (op, rel, bw))
    elif n <= 0:
        never.append("%s (%s): %s was never executed" % (op, rel, bw))
print("-" * (w_op + w_f + w_fn + 14))
print("%d ops in gd_op_all, %d differentiable non-leaf, %d backward rules (%d distinct functions)"
      % (len(probe), len(diff_ops), len(rules), len(shared)))

# Information only: the line total and the core functions never run.
for line in open(report_txt, errors="replace"):
    if line.startswith("TOTAL"):
        print("core/ line coverage (gcovr TOTAL: lines, executed, cover): " + " ".join(line.split()[1:]))
dead = ["%s:%s" % (f, fn) for f, fns in sorted(counts.items()) for fn, n in sorted(fns.items()) if n == 0]
print("core functions never executed (information): " + (", ".join(dead) if dead else "none"))

status = 0
if problems:
    print("\nFAIL: the backward-rule list cannot be trusted:", file=sys.stderr)
    for p in problems:
        print("  - " + p, file=sys.stderr)
    status = 1
if never:
    print("\nFAIL: backward rules never executed by the tests:", file=sys.stderr)
    for p in never:
        print("  - " + p, file=sys.stderr)
    status = 1
if status == 0:
    print("OK: every backward rule was executed")
sys.exit(status)
PY
