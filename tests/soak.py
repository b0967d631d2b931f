#!/usr/bin/env python3
"""soak.py - gradd under a mixed load for a while: every answer right, nothing lost, memory flat.

Starts gradd (GRADD_BIN) and runs CLIENTS threads for SECONDS, each sending a random mix of
requests over keep-alive and fresh connections, and checks every answer against its expected
value computed here:
  - /v1/grad, JSON and binary framing (least squares: the gradient 2/n X^T (Xw - y) is known);
  - /v1/eval with fetch (exp of the values sent);
  - a diagnostic answer: 422 no_gradients naming the stop_gradient node;
  - errors: invalid_json, unknown_op with its suggestion, 404, 413 for a body over --max-body;
  - a deadline: 504 deadline_exceeded for a computation far longer than its deadline_ms;
  - GET /healthz, /v1/ops.
At the end: gradd still healthy, /metrics' gradd_requests_total adds up to the requests sent,
no 5xx other than the 504s asked for, gradd exits 0 on SIGTERM, and resident memory (VmRSS,
sampled every second) grows less than --max-growth (default 50 %) from the warm point (after
the first sixth of the run) to the end. The RSS curve is printed; the tight figure (5 %) is a
target to read, not to assert.

Usage: tests/soak.py [--seconds 60] [--clients 8] [--max-growth 0.5] [--seed 1]
Standard library only.
"""
import argparse
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GRADD = os.environ.get("GRADD_BIN", "./gradd")
SCALE = float(os.environ.get("GD_TEST_TIME_SCALE", "1") or 1)
MAX_BODY = 1 << 20
BINARY = "application/vnd.gradd.v1+binary"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# ---- the request kinds: each returns (method, path, body, headers, check(status, headers, body)) ----

def lsq(rng):
    n = rng.randint(2, 40)
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(n)]
    y = [rng.uniform(-2, 2) for _ in range(n)]
    w = [rng.uniform(-1, 1), rng.uniform(-1, 1)]
    r = [X[i][0] * w[0] + X[i][1] * w[1] - y[i] for i in range(n)]
    g = [2.0 / n * sum(X[i][j] * r[i] for i in range(n)) for j in range(2)]
    graph = {"nodes": [
        {"name": "X", "op": "input"}, {"name": "y", "op": "input"}, {"name": "w", "op": "variable"},
        {"name": "Xw", "op": "matmul", "inputs": ["X", "w"]}, {"name": "r", "op": "sub", "inputs": ["Xw", "y"]},
        {"name": "r2", "op": "square", "inputs": ["r"]}, {"name": "loss", "op": "mean", "inputs": ["r2"]}]}
    return n, X, y, w, g, graph


def grad_json(rng):
    n, X, y, w, g, graph = lsq(rng)
    body = json.dumps({"graph": graph, "values": {"X": X, "y": y, "w": w}, "target": "loss"}).encode()

    def check(st, hd, b):
        a = json.loads(b)
        return st == 200 and all(close(u, v) for u, v in zip(a["gradients"]["w"], g))
    return "POST", "/v1/grad", body, {"Content-Type": "application/json"}, check


def grad_binary(rng):
    n, X, y, w, g, graph = lsq(rng)
    sec = struct.pack(f"<{2 * n}d", *[v for row in X for v in row]) + struct.pack(f"<{n}d", *y) \
        + struct.pack("<2d", *w)
    req = {"graph": graph, "target": "loss", "tensor_format": "binary", "values": {
        "X": {"shape": [n, 2], "dtype": "float64", "offset": 0, "nbytes": 16 * n},
        "y": {"shape": [n], "dtype": "float64", "offset": 16 * n, "nbytes": 8 * n},
        "w": {"shape": [2], "dtype": "float64", "offset": 24 * n, "nbytes": 16}}}
    js = json.dumps(req).encode()

    def check(st, hd, b):
        if st != 200:
            return False
        k = int(hd["gradd-json-length"])
        t = json.loads(b[:k])["gradients"]["w"]
        got = struct.unpack("<2d", b[k + t["offset"]:k + t["offset"] + 16])
        return all(close(u, v) for u, v in zip(got, g))
    return "POST", "/v1/grad", js + sec, {"Content-Type": BINARY, "Gradd-Json-Length": str(len(js))}, check


def eval_fetch(rng):
    import math
    x = [rng.uniform(-3, 3) for _ in range(rng.randint(1, 50))]
    body = json.dumps({"graph": {"nodes": [{"name": "x", "op": "input"}, {"name": "e", "op": "exp", "inputs": ["x"]},
                                           {"name": "s", "op": "sum", "inputs": ["e"]}]},
                       "values": {"x": x}, "target": "s", "fetch": ["e"]}).encode()

    def check(st, hd, b):
        a = json.loads(b)
        return st == 200 and all(close(u, math.exp(v)) for u, v in zip(a["values"]["e"], x))
    return "POST", "/v1/eval", body, {"Content-Type": "application/json"}, check


def diagnostic(rng):
    body = json.dumps({"graph": {"nodes": [
        {"name": "b", "op": "variable"}, {"name": "sg", "op": "stop_gradient", "inputs": ["b"]},
        {"name": "loss", "op": "sum", "inputs": ["sg"]}]}, "values": {"b": [1.0, 2.0]}, "target": "loss"}).encode()

    def check(st, hd, b):
        a = json.loads(b)
        return st == 422 and a["error"]["code"] == "no_gradients" and "sg" in json.dumps(a)
    return "POST", "/v1/grad", body, {"Content-Type": "application/json"}, check


def bad_json(rng):
    return "POST", "/v1/grad", b'{"graph": [', {"Content-Type": "application/json"}, \
        lambda st, hd, b: st == 400 and json.loads(b)["error"]["code"] == "invalid_json"


def unknown_op(rng):
    body = json.dumps({"graph": {"nodes": [{"name": "x", "op": "variable"},
                                           {"name": "y", "op": "sqaure", "inputs": ["x"]}]},
                       "values": {"x": 1.0}, "target": "y"}).encode()

    def check(st, hd, b):
        e = json.loads(b)["error"]
        return st == 400 and e["code"] == "unknown_op" and e.get("suggestion") == "square"
    return "POST", "/v1/grad", body, {"Content-Type": "application/json"}, check


def not_found(rng):
    return "GET", "/v2/grad", None, {}, lambda st, hd, b: st == 404


def too_large(rng):
    """A Content-Length over --max-body: 413 at the headers, before any body byte (sent over a raw
    socket: gradd closes the connection without reading the body, which http.client would still
    be writing)."""
    return "RAW", "/v1/grad", None, {"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1000)}, \
        lambda st, hd, b: st == 413 and json.loads(b)["error"]["code"] == "too_large"


def raw_request(port, method, path, headers):
    """Headers only, then the whole answer (gradd closes the connection after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30 * SCALE) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + \
            "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hd = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), hd, body


def deadline(rng):
    nodes = [{"name": "a", "op": "input"}, {"name": "m0", "op": "broadcast_to", "inputs": ["a"], "shape": [300, 300]}]
    for i in range(1, 30):
        nodes.append({"name": f"m{i}", "op": "matmul", "inputs": [f"m{i - 1}", "m0"]})
    body = json.dumps({"graph": {"nodes": nodes}, "values": {"a": 1e-3}, "target": "m29",
                       "deadline_ms": 1}).encode()
    return "POST", "/v1/eval", body, {"Content-Type": "application/json"}, \
        lambda st, hd, b: st == 504 and json.loads(b)["error"]["code"] == "deadline_exceeded"


def healthz(rng):
    return "GET", "/healthz", None, {}, lambda st, hd, b: st == 200


def ops(rng):
    return "GET", "/v1/ops", None, {}, lambda st, hd, b: st == 200 and len(json.loads(b)["ops"]) > 40


KINDS = [(grad_json, 30), (grad_binary, 20), (eval_fetch, 15), (diagnostic, 8), (bad_json, 5), (unknown_op, 5),
         (not_found, 4), (too_large, 2), (deadline, 3), (healthz, 4), (ops, 4)]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.by_kind = {}
        self.wrong = []

    def record(self, kind, ok, detail):
        with self.lock:
            self.sent += 1
            c = self.by_kind.setdefault(kind, [0, 0])
            c[0] += 1
            if not ok:
                c[1] += 1
                if len(self.wrong) < 10:
                    self.wrong.append(f"{kind}: {detail}")


def client(port, seed, stop, stats):
    rng = random.Random(seed)
    names, weights = zip(*KINDS)
    conn = None
    while not stop.is_set():
        make = rng.choices(names, weights)[0]
        method, path, body, headers, check = make(rng)
        if method == "RAW":
            try:
                st, hd, data = raw_request(port, "POST", path, headers)
                stats.record(make.__name__, check(st, hd, data), f"status {st}: {data[:200]!r}")
            except (OSError, ValueError, KeyError, IndexError) as e:
                stats.record(make.__name__, False, f"{type(e).__name__}: {e}")
            continue
        if conn is None or rng.random() < 0.2:
            if conn:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SCALE)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            hd = {k.lower(): v for k, v in r.getheaders()}
            ok = check(r.status, hd, data)
            stats.record(make.__name__, ok, f"status {r.status}: {data[:200]!r}")
            if r.getheader("Connection", "").lower() == "close" or r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            stats.record(make.__name__, False, f"{type(e).__name__}: {e}")
            conn.close()
            conn = None
    if conn:
        conn.close()


def metrics_total(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SCALE)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    total, fives = 0, 0
    for line in text.splitlines():
        if line.startswith("gradd_requests_total{"):
            n = int(float(line.rsplit(" ", 1)[1]))
            total += n
            if 'status="5' in line and 'status="504"' not in line:
                fives += n
    return total, fives


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--max-growth", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([GRADD, "--port", str(port), "--max-body", str(MAX_BODY), "--drain-ms", "0",
                             "--log-format", "text"], stdout=log, stderr=log)

    def logtail():
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]
    for _ in range(int(200 * SCALE)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    else:
        proc.kill()
        raise SystemExit("soak: gradd did not start:\n" + logtail())
    if proc.poll() is not None:
        raise SystemExit("soak: gradd exited at startup:\n" + logtail())

    stats, stop = Stats(), threading.Event()
    threads = [threading.Thread(target=client, args=(port, a.seed * 1000 + i, stop, stats)) for i in range(a.clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    curve = []
    while time.time() - t0 < a.seconds and proc.poll() is None:
        time.sleep(1)
        curve.append((time.time() - t0, rss_kib(proc.pid), stats.sent))
    stop.set()
    for t in threads:
        t.join(60 * SCALE)
    fails = []
    if proc.poll() is not None:
        fails.append(f"gradd died during the soak (status {proc.returncode}):\n{logtail()}")
    else:
        total, fives = metrics_total(port)
        if total != stats.sent:
            fails.append(f"/metrics counts {total} requests, the clients sent {stats.sent}")
        if fives:
            fails.append(f"/metrics counts {fives} 5xx answers other than 504")
    print(f"soak: {a.clients} clients, {a.seconds:g} s, {stats.sent} requests ({stats.sent / a.seconds:.0f}/s)")
    for k, (n, bad) in sorted(stats.by_kind.items()):
        print(f"  {k:12s} {n:7d} sent, {bad} wrong")
    if any(bad for _, bad in stats.by_kind.values()):
        fails.append("wrong answers: " + "; ".join(stats.wrong))
    print("  RSS curve (s, MiB, requests so far):")
    for t, kib, n in curve[::max(1, len(curve) // 12)] + curve[-1:]:
        print(f"    {t:6.1f}  {kib / 1024:7.1f}  {n:7d}")
    if curve:
        warm_i = max(0, len(curve) // 6 - 1)
        warm = curve[warm_i][1]
        end = max(k for _, k, _ in curve[-5:])
        growth = (end - warm) / warm if warm else 0
        print(f"  RSS at the warm point ({curve[warm_i][0]:.0f} s) {warm / 1024:.1f} MiB, at the end "
              f"{end / 1024:.1f} MiB: growth {100 * growth:+.1f} % (limit {100 * a.max_growth:.0f} %, target 5 %)")
        if growth > a.max_growth:
            fails.append(f"RSS grew {100 * growth:.1f} % (limit {100 * a.max_growth:.0f} %)")
    if proc.poll() is None:
        proc.terminate()
        try:
            rc = proc.wait(30 * SCALE)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if rc != 0:
            fails.append(f"gradd exited {rc} after SIGTERM:\n{logtail()}")
    for f in fails:
        print("soak: FAIL: " + f)
    print("soak: " + ("FAILED" if fails else "passed"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
