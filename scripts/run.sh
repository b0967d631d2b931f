#!/usr/bin/env bash
# run.sh - the quick start's first command: install the Debian 12 build
# dependencies, build gradd out of tree in build/ (reusing an earlier build),
# then start it in the foreground. Arguments go to gradd, e.g.
#   bash scripts/run.sh --port 9000 --workers 2
# Stop it with Ctrl-C (SIGINT drains and exits 0).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/install-deps.sh
if [ -f "$ROOT/config.status" ]; then
    echo "run.sh: the source directory is configured in-tree; run 'make distclean' first." >&2
    exit 1
fi
[ -x configure ] || autoreconf -fi
mkdir -p build
cd build
[ -f config.status ] || ../configure
make -j"${JOBS:-2}" gradd
exec ./gradd "$@"
