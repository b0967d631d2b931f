#!/usr/bin/env python3
"""ops_md_check.py - docs/ops.md's reference is what GET /v1/ops renders to.

Starts gradd (GRADD_BIN, or the first argument), renders its GET /v1/ops with
scripts/gen_ops_md.py and fails with a unified diff, and the command that
regenerates the file, when the committed docs/ops.md differs.

Usage (make check runs it with GRADD_BIN set and no arguments):
  ops_md_check.py [GRADD]
"""
import os
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import gen_ops_md  # noqa: E402


def main(argv):
    gradd = argv[0] if argv else os.environ.get("GRADD_BIN")
    if not gradd:
        print(__doc__)
        return 2
    return gen_ops_md.main(["--gradd", gradd, "--check", os.path.join(ROOT, "docs", "ops.md")])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
