#!/bin/sh
# man_check.sh - man/gradd.1 documents exactly the options of `gradd --help`,
# docs/operations.md's flag table names exactly those flags, and
# `gradd --version` prints the man page's version (and the git revision of
# the checkout, when built from one).
#
# Usage: tests/man_check.sh [path/to/gradd]   (make check runs it with
#        GRADD_BIN and srcdir set; POSIX sh, sed and awk only)
#
# From both sides it extracts one record per option,
#   flag, argument, environment variable, default (tab-separated)
# and compares the two sorted lists: an option missing from either side, or
# a different argument name, variable or default, fails with the difference.
set -eu

GRADD=${1:-${GRADD_BIN:-./gradd}}
MAN=${srcdir:-$(dirname "$0")/..}/man/gradd.1
[ -x "$GRADD" ] || { echo "man_check: no gradd binary at $GRADD" >&2; exit 1; }
[ -f "$MAN" ] || { echo "man_check: no man page at $MAN" >&2; exit 1; }

TMP=${TMPDIR:-/tmp}/man_check.$$
mkdir "$TMP"
trap 'rm -rf "$TMP"' EXIT INT TERM

# --help: "  --flag ARG" in a 28-column left field, the help text after it;
# a following "[GRADD_X; default: D]" line belongs to that flag.
"$GRADD" --help >"$TMP/help.txt"
awk '
function flush() { if (flag != "") print flag "\t" arg "\t" env "\t" dflt; flag = "" }
/^  --/ {
    flush()
    left = substr($0, 3, 28); sub(/ +$/, "", left)
    n = split(left, w, " ")
    flag = w[1]; arg = (n > 1) ? w[2] : ""; env = ""; dflt = ""
    next
}
/^ +\[GRADD_[A-Z_]+; default: .*\]$/ {
    line = $0; sub(/^ +\[/, "", line); sub(/\]$/, "", line)
    env = line; sub(/;.*/, "", env)
    dflt = line; sub(/^[^;]*; default: /, "", dflt)
    next
}
END { flush() }
' "$TMP/help.txt" | sort >"$TMP/from_help"

# gradd.1: ".B \-\-flag \fIARG\fR" after ".TP" in OPTIONS, then a line
# "Environment: \fBGRADD_X\fR. Default: D."
awk '
function flush() { if (flag != "") print flag "\t" arg "\t" env "\t" dflt; flag = "" }
function unesc(s) { gsub(/\\-/, "-", s); gsub(/\\f[BIRP]/, "", s); return s }
/^\.SH / { flush(); in_opts = ($0 == ".SH OPTIONS"); next }
!in_opts { prev = $0; next }
prev == ".TP" && /^\.B \\-\\-/ {
    prev = $0
    flush()
    line = unesc(substr($0, 4))
    n = split(line, w, " ")
    flag = w[1]; arg = (n > 1) ? w[2] : ""; env = ""; dflt = ""
    next
}
{ prev = $0 }
/^Environment: / {
    line = unesc($0)
    env = line; sub(/^Environment: /, "", env); sub(/\. Default: .*/, "", env)
    dflt = line; sub(/^.*\. Default: /, "", dflt); sub(/\.$/, "", dflt)
    next
}
END { flush() }
' "$MAN" | sort >"$TMP/from_man"

n_help=$(wc -l <"$TMP/from_help")
n_man=$(wc -l <"$TMP/from_man")
if [ "$n_help" -lt 10 ]; then
    echo "man_check: only $n_help options read from '$GRADD --help': has its format changed?" >&2
    cat "$TMP/help.txt" >&2
    exit 1
fi
if ! diff -u "$TMP/from_help" "$TMP/from_man" >"$TMP/diff"; then
    echo "man_check: man/gradd.1 and 'gradd --help' disagree (- help, + man page):" >&2
    cat "$TMP/diff" >&2
    exit 1
fi

# docs/operations.md's flag table (rows "| `--flag` | ...") names the same
# flags as --help.
DOC=${srcdir:-$(dirname "$0")/..}/docs/operations.md
[ -f "$DOC" ] || { echo "man_check: no $DOC" >&2; exit 1; }
cut -f1 "$TMP/from_help" | sort >"$TMP/help_flags"
sed -n 's/^| `\(--[a-z-]*\)`.*/\1/p' "$DOC" | sort >"$TMP/doc_flags"
if ! diff -u "$TMP/help_flags" "$TMP/doc_flags" >"$TMP/diff"; then
    echo "man_check: docs/operations.md's flag table and 'gradd --help' disagree (- help, + doc):" >&2
    cat "$TMP/diff" >&2
    exit 1
fi

# --version: "gradd VERSION" with the version of the man page's .TH line,
# then " (git REV)" exactly when built from a git checkout, REV being the
# checkout's HEAD (plus "-dirty" for uncommitted changes).
version=$("$GRADD" --version)
man_version=$(sed -n 's/^\.TH GRADD 1 "[^"]*" "gradd \([^"]*\)".*/\1/p' "$MAN")
srcdir_top=${srcdir:-$(dirname "$0")/..}
rev=
if [ -e "$srcdir_top/.git" ] && command -v git >/dev/null 2>&1; then
    rev=$(git -C "$srcdir_top" rev-parse --short HEAD 2>/dev/null || true)
fi
case "$version" in
    "gradd $man_version") got_rev= ;;
    "gradd $man_version (git "*")") got_rev=${version#"gradd $man_version (git "}; got_rev=${got_rev%)}; got_rev=${got_rev%-dirty} ;;
    *) echo "man_check: 'gradd --version' printed '$version'; the man page says version '$man_version'" >&2; exit 1 ;;
esac
if [ "$got_rev" != "$rev" ]; then
    echo "man_check: 'gradd --version' printed '$version' but the source tree's git revision is '${rev:-none}'" >&2
    exit 1
fi
echo "man_check: $n_man options agree between gradd --help, man/gradd.1 and docs/operations.md; --version: $version"
