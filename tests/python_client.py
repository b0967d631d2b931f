#!/usr/bin/env python3
"""python_client.py - the Python package clients/python (import name gradd) against a live gradd.

1. clients/python/gradd/ops.py is what scripts/gen_python_ops.py renders from
   this gradd's GET /v1/ops (one function per op; it cannot drift).
2. pytest runs clients/python/tests (every op through the builder vs the
   server and NumPy, every error, 200-step logistic regression and MLP
   training loops, binary framing vs JSON bit for bit, the answers without
   NumPy, keep-alive, registration, python -m gradd), importing the package
   from the source tree.

Needs pytest and NumPy (Debian's python3-pytest and python3-numpy): when the
first python3 lacks them, /usr/bin/python3 is used; without them the test is
skipped (exit 77), except under CI=true, where that fails.

Usage (make check runs it with GRADD_BIN set):
  python_client.py [GRADD] [pytest arguments...]
"""
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import gen_python_ops  # noqa: E402


def python_with(modules):
    """A python3 that imports every module, or None."""
    for py in (sys.executable, "/usr/bin/python3", "/bin/python3"):
        if os.path.exists(py) and subprocess.run([py, "-c", "import " + ", ".join(modules)],
                                                 capture_output=True).returncode == 0:
            return py
    return None


def main(argv):
    gradd_bin = argv[0] if argv and not argv[0].startswith("-") else os.environ.get("GRADD_BIN")
    rest = argv[1:] if argv and gradd_bin == argv[0] else argv
    if not gradd_bin:
        print(__doc__)
        return 2
    gradd_bin = os.path.abspath(gradd_bin)
    rc = gen_python_ops.main(["--gradd", gradd_bin, "--check", os.path.join(ROOT, "clients", "python", "gradd", "ops.py")])
    if rc:
        return rc
    py = python_with(["pytest", "numpy"])
    if not py:
        print("python_client: SKIP: no python3 with pytest and numpy (Debian's python3-pytest and python3-numpy: "
              "scripts/install-deps.sh)")
        return 1 if os.environ.get("CI") == "true" else 77
    env = dict(os.environ, GRADD_BIN=gradd_bin, PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory() as tmp:  # the source tree may be read-only (distcheck)
        return subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", tmp,
                               os.path.join(ROOT, "clients", "python", "tests")] + rest, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
