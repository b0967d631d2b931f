#!/usr/bin/env python3
"""dict_check.py - tests/fuzz/gradd.dict names every op, attribute and key.

Starts gradd (GRADD_BIN, or the first argument), regenerates the fuzzer's
dictionary from its GET /v1/ops and proto/*.c with tests/fuzz/make_corpus.py
and fails with a diff, and the command that rewrites it, when the committed
file differs (an op added without regenerating it).

Usage (make check runs it with GRADD_BIN set and no arguments):
  dict_check.py [GRADD]
"""
import os
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_corpus  # noqa: E402


def main(argv):
    gradd = argv[0] if argv else os.environ.get("GRADD_BIN")
    if not gradd:
        print(__doc__)
        return 2
    return make_corpus.main(["--gradd", gradd, "--check-dict"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
