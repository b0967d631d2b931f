#!/usr/bin/env python3
"""same_value.py - what A2's same_value_as search costs on the MLP of bench/issue10.py row 3.

The mistake: the client computed the MLP's logits outside the graph and sent
them back as the input 'logits_np', so every weight is disconnected. gradd
then evaluates the MLP forward that the target never needed (256x784 ->
H -> H -> 10, float64) and compares its [256, 10] nodes with the input.
Three requests of the same graph and body size, timed by gradd itself (the
compute_us of its access log line: decode, run, search, encode; median of
--rounds, the three alternating, after a warm-up; the minimum is the
figure least disturbed by a loaded machine):

  match     logits_np equals the MLP's logits: the search evaluates the MLP
            and compares every element (same_value_as is reported);
  differ    logits_np differs from the first element on: the MLP is
            evaluated, the comparison exits at once;
  no-shape  the last layer gives [256, 11], so no node has the input's shape:
            the search evaluates nothing (the cost of the answer without A2).

Usage: GRADD_BIN=build/gradd /usr/bin/python3 bench/same_value.py [--hidden 1024] [--rounds 7]
Standard library and NumPy (Debian python3-numpy: run it with /usr/bin/python3).
"""
import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np


def b64(a):
    a = np.ascontiguousarray(a)
    dt = "int64" if a.dtype == np.int64 else "float64"
    return {"shape": list(a.shape), "dtype": dt, "b64": base64.b64encode(a.astype("<" + ("i8" if dt == "int64" else "f8")).tobytes()).decode()}


def request(h, out, mode, rng):
    X = rng.standard_normal((256, 784))
    W1, b1 = rng.standard_normal((784, h)) * 0.05, np.zeros(h)
    W2, b2 = rng.standard_normal((h, h)) * 0.05, np.zeros(h)
    W3, b3 = rng.standard_normal((h, out)) * 0.05, np.zeros(out)
    labels = rng.integers(0, 10, 256).astype(np.int64)
    h1 = np.maximum(X @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    logits = (h2 @ W3 + b3)[:, :10]
    if mode == "differ":
        logits = logits + 1.0
    n = lambda name, op, inputs=None: {"name": name, "op": op, **({"inputs": inputs} if inputs else {})}
    nodes = [n("X", "input"), n("W1", "variable"), n("b1", "variable"), n("W2", "variable"), n("b2", "variable"),
             n("W3", "variable"), n("b3", "variable"), n("labels", "input"),
             n("z1", "matmul", ["X", "W1"]), n("a1", "add", ["z1", "b1"]), n("h1", "relu", ["a1"]),
             n("z2", "matmul", ["h1", "W2"]), n("a2", "add", ["z2", "b2"]), n("h2", "relu", ["a2"]),
             n("z3", "matmul", ["h2", "W3"]), n("logits", "add", ["z3", "b3"]),
             n("logits_np", "input"), n("loss", "softmax_cross_entropy", ["logits_np", "labels"])]
    values = {"X": b64(X), "W1": b64(W1), "b1": b64(b1), "W2": b64(W2), "b2": b64(b2), "W3": b64(W3),
              "b3": b64(b3), "labels": b64(labels), "logits_np": b64(logits)}
    return json.dumps({"graph": {"nodes": nodes}, "values": values, "target": "loss"}).encode()


def compute_ms(log, rid):
    """compute_us of request rid's access log line, in ms (waits for the line)."""
    for _ in range(200):
        log.seek(0)
        for line in log.read().decode().splitlines():
            j = json.loads(line)
            if j.get("id") == rid:
                return j["compute_us"] / 1000
        time.sleep(0.01)
    raise RuntimeError("no log line for " + rid)


def post(port, body, rid="warm-up"):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/grad" % port, data=body,
                                 headers={"Content-Type": "application/json", "X-Request-Id": rid})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req) as r:
            status, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    return time.perf_counter() - t0, status, json.loads(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([os.environ["GRADD_BIN"], "--port", str(port), "--workers", "1", "--blas-threads", "2",
                             "--log-format", "json"], stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port).read()
                break
            except OSError:
                time.sleep(0.05)
        rng = np.random.default_rng(1)
        bodies = {m: request(a.hidden, 11 if m == "no-shape" else 10, m, rng) for m in ("match", "differ", "no-shape")}
        times = {m: [] for m in bodies}
        for m, body in bodies.items():
            st, ans = post(port, body)[1:]  # warm-up, and the answer checked
            d = ans["error"]["diagnostics"]
            found = [x.get("same_value_as") for x in d if x.get("same_value_as")]
            assert st == 422 and (bool(found) == (m == "match")), (m, st, found)
            print("%-9s %d disconnected diagnostics, same_value_as: %s; body %.1f MB"
                  % (m, len(d), found[0] if found else None, len(body) / 1e6))
        for k in range(a.rounds):  # the modes alternate, so that the machine's load falls on each alike
            for m, body in bodies.items():
                rid = "%s-%d" % (m, k)
                post(port, body, rid)
                times[m].append(compute_ms(log, rid))
        med = {m: min(t) for m, t in times.items()}
        for m, t in times.items():
            print("%-9s min %8.1f ms  median %8.1f ms" % (m, min(t), statistics.median(t)))
        print("search cost (min): match %+.1f ms, differ %+.1f ms over no-shape"
              % (med["match"] - med["no-shape"], med["differ"] - med["no-shape"]))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
