#!/usr/bin/env python3
"""js_client.py - the TypeScript client (clients/js) against a live gradd.

make check builds the package into the build directory first (tests/build_js.sh,
check_DATA). This test then
  1. checks that clients/js/ops.json is what this gradd answers to GET /v1/ops
     and that src/ops.ts and src/ops_table.ts are what clients/js/gen_ops.py
     makes of it (so the op functions cannot drift from the server's table);
  2. starts two gradd on free loopback ports: a default one, and a strict one
     (--token-file, --max-nodes 16) for the unauthorized and too_large errors;
  3. runs clients/js/test/*.test.mjs with node's own test runner (node --test),
     the built package's path in GRADD_JS.

Exit 77 (skip) when node or the built package (tsc) is missing, except under
CI=true, where that is a failure. Standard library only.
Usage (make check sets GRADD_BIN and GD_BUILDDIR): js_client.py [GRADD]
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SCALE = float(os.environ.get("GD_TEST_TIME_SCALE", "1") or 1)
TOKEN = "js-s3cret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(gradd, flags, log):
    """A gradd on a free port with `flags`, once it answers /healthz: (process, url)."""
    port = free_port()
    p = subprocess.Popen([gradd, "--port", str(port), "--workers", "2"] + flags, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 10 * SCALE
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            return p, url
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    p.kill()
    log.seek(0)
    raise SystemExit("js_client: gradd did not start:\n" + log.read().decode(errors="replace")[-2000:])


def skip(why):
    if os.environ.get("CI") == "true":
        print(f"js_client: FAIL: {why}; under CI the TypeScript client must be tested")
        return 1
    print(f"js_client: SKIP: {why}")
    return 77


def check_ops(url):
    """Problems with the committed op list, against the live server."""
    with urllib.request.urlopen(url + "/v1/ops", timeout=10 * SCALE) as r:
        live = json.load(r)
    with open(os.path.join(ROOT, "clients", "js", "ops.json"), encoding="utf-8") as f:
        committed = json.load(f)
    problems = []
    if live != committed:
        names = lambda d: [o["name"] for o in d["ops"]]
        problems.append("clients/js/ops.json differs from GET /v1/ops (ops: committed "
                        f"{len(committed['ops'])}, live {len(live['ops'])}; added {sorted(set(names(live)) - set(names(committed)))}); "
                        "run clients/js/gen_ops.py --fetch URL")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "clients", "js", "gen_ops.py"), "--check"],
                       capture_output=True, text=True)
    if r.returncode:
        problems.append(r.stdout.strip() or r.stderr.strip())
    return problems


def main(argv):
    gradd = os.path.abspath(argv[0] if argv else os.environ.get("GRADD_BIN", ""))
    builddir = os.environ.get("GD_BUILDDIR") or os.path.dirname(gradd)
    dist = os.path.join(builddir, "clients", "js", "dist", "index.js")
    node = shutil.which("node")
    if not node:
        return skip("no node on PATH (Debian package 'nodejs')")
    if not os.path.isfile(dist):
        return skip(f"{dist} not built (tsc, Debian package 'node-typescript'; make check builds it)")
    tmp = tempfile.mkdtemp(prefix="js_client.")
    procs = []
    try:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        log = open(os.path.join(tmp, "gradd.log"), "w+b")
        p, url = start(gradd, [], log)
        procs.append(p)
        p, strict = start(gradd, ["--token-file", token, "--max-nodes", "16"], log)
        procs.append(p)
        problems = check_ops(url)
        for m in problems:
            print(f"js_client: FAIL {m}")
        tests = sorted(glob.glob(os.path.join(ROOT, "clients", "js", "test", "*.test.mjs")))
        env = dict(os.environ, GRADD_URL=url, GRADD_STRICT_URL=strict, GRADD_TOKEN=TOKEN,
                   GRADD_JS=dist)
        try:
            r = subprocess.run([node, "--test"] + tests, env=env, timeout=300 * SCALE)
            rc = r.returncode
        except subprocess.TimeoutExpired:
            print(f"js_client: FAIL node --test did not finish in {300 * SCALE:.0f} s")
            rc = 1
        for p in procs:
            if p.poll() is not None:
                print(f"js_client: FAIL gradd exited with {p.returncode} during the tests")
                rc = 1
        if rc or problems:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:])
            return 1
        print(f"js_client: {len(tests)} test files passed")
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10 * SCALE)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
