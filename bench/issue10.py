#!/usr/bin/env python3
"""issue10.py - every figure of issue 10's targets table, each a ratio
measured in one run against its peer, over >= 5 rounds that alternate the
two sides (the first side changes every round), with the spread
(median, min-max over rounds) and the ratio against the peer at its best
(its best round). A peer that is a program of its own (bare_mhd, PyTorch,
triad) runs as a fresh process every round: on a shared machine one
PyTorch process may take 35 ms a step and the next 110 ms.

Rows (the table's order):
  1  5-node graph under wrk -c64: gradd req/s / bench/bare_mhd req/s (a bare
     libmicrohttpd server in gradd's threading mode), and gradd's req/s;
  2  the same with graph_id (POST /v1/graphs); "skipped: no graph
     registration" when the server does not answer it 200/201;
  3  MLP 256x784->H->H->10 float64, binary framing, end to end
     (bench/http_mlp) / PyTorch in process (bench/torch_mlp.py), H = 1024
     and 2048; the server time is measured from the client side (last
     request byte written to the socket -> last response byte read), since
     gradd's log stops when the response is queued; the log's figure (last
     body byte -> response queued) is printed beside it;
  4  1M float64 nested JSON round trip via /v1/eval (x -> neg) / the same
     with binary framing, and its absolute time;
  5  10k-node scalar graph end to end / PyTorch eager in process
     (bench/torch_graph.py on the same request), three ways: the same body
     again and again (gradd holds a graph sent inline more than once, so
     this is a training loop's steady state), the graph's text new to gradd
     every time (a run of spaces of another length: the full parse and
     checks, as a first request pays them), and with graph_id when the
     server registers graphs;
  6  1000-node x 1k-element chain end to end / PyTorch eager;
  7  10-op elementwise chain on 16M elements (/v1/eval, forward): its
     minimal memory traffic over gradd's forward time (stats.forward_us),
     as a fraction of the STREAM triad bandwidth (bench/triad) of the same
     round;
  8  parse + validate scaling exponent in nodes, 100 -> 100k: the log-log
     least-squares slope of stats.total_us - queue_us - forward_us -
     backward_us, every request's graph text new to gradd (see row 5), (decode, graph build and checks: the server's own figure;
     no stats field gives decode time alone) over a scalar chain, /v1/eval;
     the end-to-end slope beside it.
End to end (rows 4-6, 8) = one HTTP exchange on a kept-alive connection
with a body built beforehand: from the first request byte sent to the last
response byte read. The Python client's own JSON encoding and decoding are
not in it (a client in C would do them faster); the answers are decoded and
checked outside the timed part.

Every answer is checked (against PyTorch's to 1e-9 relative, or against a
closed form); a wrong answer fails the run (exit 1). No timing is asserted.

    issue10.py [--smoke] [--rows 1,3,5] [--rounds N]

--smoke: every row, one or two rounds, small sizes (MLP H=64, 10k -> 200
nodes, ...): what `make bench-smoke` (and CI) runs to check that the benches
work and answer right, in well under a minute. The figures printed then are
not the table's.

Environment: GRADD_BIN (required), BENCH_BINDIR (bare_mhd, http_mlp, triad;
default: bench/ beside GRADD_BIN), GD_SRCDIR (source tree; default: this
script's parent), TORCH_PYTHON (default /usr/bin/python3), BENCH_ROUNDS
(default 5), WRK_DURATION (default 5s), WRK_THREADS (default 2),
TORCH_OMP_WAIT_POLICY (default PASSIVE, as bench/run_mlp.sh).
"""
import argparse
import array
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from benchlib import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("GD_SRCDIR") or os.path.dirname(HERE)
PY = os.environ.get("TORCH_PYTHON", "/usr/bin/python3")
WAIT_POLICY = os.environ.get("TORCH_OMP_WAIT_POLICY", "PASSIVE")

FAILED = []   # wrong answers and failed runs: the exit status
TABLE = []    # (figure, measured, target) for the final table


def fail(msg):
    print("issue10.py: FAILED: %s" % msg, flush=True)
    FAILED.append(msg)


def log(msg=""):
    print(msg, flush=True)


def spread(v, fmt="%.3g"):
    """median (min-max) of a list."""
    if not v:
        return "-"
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(v), min(v), max(v))


# ---- processes ---------------------------------------------------------------------------------

class Proc:
    """A server started here, on a free port; stop() ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, argv, name, tmp, health="/healthz", port_flag="--port"):
        self.port = free_port()
        self.log_path = os.path.join(tmp, "%s.%d.log" % (name, self.port))
        self.logf = open(self.log_path, "w")
        self.p = subprocess.Popen(argv + [port_flag, str(self.port)], stdout=self.logf, stderr=subprocess.STDOUT)
        self.name = name
        end = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", health)
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if self.p.poll() is not None or time.monotonic() > end:
                    self.stop()
                    raise SystemExit("issue10.py: %s did not start:\n%s" % (name, open(self.log_path).read()[-2000:]))
                time.sleep(0.05)

    def log_text(self):
        self.logf.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()


def gradd(args, tmp, name="gradd"):
    return Proc([os.environ["GRADD_BIN"], "--host", "127.0.0.1", "--drain-ms", "0"] + args, name, tmp)


class Client:
    """One kept-alive connection; post() returns (status, headers, body bytes, seconds of the exchange)."""

    def __init__(self, port):
        self.port = port
        self.connect()

    def connect(self):
        self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        for attempt in (0, 1):
            try:
                t0 = time.perf_counter()
                self.c.request("POST", path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                t = time.perf_counter() - t0
                return r.status, dict(r.getheaders()), data, t
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # gradd closes a kept-alive connection that waited longer than
                # --header-timeout-ms (10 s) for its next request, as it may
                # while the peer runs: a new connection, and the time again.
                if attempt:
                    raise
                self.close()
                self.connect()

    def close(self):
        self.c.close()


def post_json(cl, path, doc_or_bytes):
    body = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    st, _, data, t = cl.post(path, body)
    return st, data, t


def run(argv, env=None, timeout=900):
    """Runs a peer program; returns its stdout, or None (failure recorded)."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=timeout,
                           universal_newlines=True)
    except subprocess.TimeoutExpired:
        fail("%s timed out" % " ".join(argv[:3]))
        return None
    if p.returncode != 0:
        fail("%s exited %d:\n%s" % (" ".join(argv[:3]), p.returncode, p.stdout[-3000:]))
        return None
    return p.stdout


def result(out, prefix):
    """key=value fields of the first line of out that starts with prefix
    ("RESULT http format=binary e2e_ms=..." with the prefix "RESULT http")."""
    for line in (out or "").splitlines():
        if line.startswith(prefix + " "):
            return {k: v for k, v in (f.split("=", 1) for f in line[len(prefix):].split() if "=" in f)}
    return None


# ---- answers ------------------------------------------------------------------------------------

def close(a, b, rel=1e-9, path="$"):
    """None when a and b (numbers or nested lists, or dicts of them) agree to rel, else the path."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return path + " (keys %s vs %s)" % (sorted(a)[:5], sorted(b)[:5])
        for k in a:
            bad = close(a[k], b[k], rel, path + "." + k)
            if bad:
                return bad
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path + " (lengths)"
        for i, (x, y) in enumerate(zip(a, b)):
            bad = close(x, y, rel, "%s[%d]" % (path, i))
            if bad:
                return bad
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-300:
            return None
        return "%s (%r vs %r)" % (path, a, b)
    return None if a == b else "%s (%r vs %r)" % (path, a, b)


def answer_of(data):
    doc = json.loads(data)
    return {"target": doc.get("target"), "gradients": doc.get("gradients")}, doc.get("stats", {})


# ---- graphs -------------------------------------------------------------------------------------

def node(name, op, inputs=(), **attrs):
    d = {"name": name, "op": op}
    if inputs:
        d["inputs"] = list(inputs)
    d.update(attrs)
    return d


def chain_graph(n_nodes, n_elems, seed, reduce_to_scalar):
    """A chain of n_nodes nodes: leaves x (n_elems elements, a scalar when
    n_elems is 0), w0..w9, b0..b9 (scalars, broadcast against x), all
    variables, then the blocks h = tanh(h * w_k + b_k), and for vectors a
    final sum. Returns (graph, values, target)."""
    rng = random.Random(seed)
    shape = [] if n_elems == 0 else [n_elems]

    nodes = [node("x", "variable", shape=shape)]
    values = {"x": rng.uniform(-1, 1) if n_elems == 0 else [rng.uniform(-1, 1) for _ in range(n_elems)]}
    for k in range(10):
        nodes.append(node("w%d" % k, "variable", shape=[]))
        nodes.append(node("b%d" % k, "variable", shape=[]))
        values["w%d" % k] = rng.uniform(0.5, 1.0)
        values["b%d" % k] = rng.uniform(-0.2, 0.2)
    h, i = "x", 0
    last = n_nodes - (1 if reduce_to_scalar else 0)
    while len(nodes) < last:
        k = (i // 3) % 10
        name = "n%d" % len(nodes)
        if i % 3 == 0:
            nodes.append(node(name, "mul", [h, "w%d" % k]))
        elif i % 3 == 1:
            nodes.append(node(name, "add", [h, "b%d" % k]))
        else:
            nodes.append(node(name, "tanh", [h]))
        h, i = name, i + 1
    if reduce_to_scalar:
        nodes.append(node("loss", "sum", [h]))
        h = "loss"
    return {"nodes": nodes}, values, h


def chain_value(graph, values):
    """The chain's value computed here in floats (scalar chains only)."""
    env = dict(values)
    for n in graph["nodes"]:
        a = [env[i] for i in n.get("inputs", [])]
        if n["op"] == "mul":
            env[n["name"]] = a[0] * a[1]
        elif n["op"] == "add":
            env[n["name"]] = a[0] + a[1]
        elif n["op"] == "tanh":
            env[n["name"]] = math.tanh(a[0])
    return env


TINY_GRAPH = {"nodes": [
    node("x", "variable", shape=[4]), node("t", "input", shape=[4]), node("d", "sub", ["x", "t"]),
    node("p", "square", ["d"]), node("loss", "sum", ["p"])]}
TINY_VALUES = {"x": [1.0, 2.0, 3.0, 4.0], "t": [0.5, 1.5, 2.0, 5.0]}
TINY_ANSWER = {"target": {"loss": 2.5}, "gradients": {"x": [1.0, 1.0, 2.0, -2.0]}}


COLD = [0]


def cold(body):
    """body (bytes of {"graph": {...}, ...}) with its graph's text made unique by
    a run of spaces after the graph's opening brace: gradd holds a graph sent
    inline again (server/compute.c), so a request that must pay the graph's
    parse and checks, as a first request does, needs a text it has not seen."""
    COLD[0] += 1
    i = body.index(b'{', body.index(b'"graph"')) + 1
    return body[:i] + b" " * COLD[0] + body[i:]


def register(cl, graph):
    """graph_id when the server registers graphs (A3), else None."""
    try:
        st, data, _ = post_json(cl, "/v1/graphs", {"graph": graph})
    except (OSError, http.client.HTTPException):
        # A server without the route may answer 404 before the body's end
        # and close the connection.
        cl.close()
        cl.connect()
        return None
    if st in (200, 201):
        gid = json.loads(data).get("graph_id")
        if isinstance(gid, str):
            return gid
        fail("POST /v1/graphs answered %d without a graph_id: %r" % (st, data[:200]))
    return None


# ---- row 1 and 2: wrk against a bare libmicrohttpd server ----------------------------------------

def wrk(port, body_file, dur, threads, conns=64):
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%s" % dur, "-s",
                          os.path.join(SRCDIR, "bench", "http_post.lua"),
                          "http://127.0.0.1:%d/v1/grad" % port, "--", body_file],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True).stdout
    r = result(out, "WRK")
    if not r:
        fail("wrk printed no result:\n" + out[-1000:])
        return None
    errs = sum(int(r[k]) for k in r if k.startswith("err_"))
    if errs:
        fail("wrk saw %d errors or non-2xx answers: %s" % (errs, out[-500:]))
        return None
    return float(r["rps"])


def row_wrk(a, tmp):
    log("== rows 1-2: 5-node graph under wrk -t%d -c64 -d%s vs a bare libmicrohttpd server (bench/bare_mhd), "
        "%d round(s), bare_mhd restarted every round" % (a.wrk_threads, a.wrk_dur, a.rounds))
    g = gradd([], tmp)
    try:
        cl = Client(g.port)
        plain = {"graph": TINY_GRAPH, "values": TINY_VALUES, "target": "loss"}
        bodies = {"gradd": plain}
        st, data, _ = post_json(cl, "/v1/grad", plain)
        bad = close(answer_of(data)[0], TINY_ANSWER, 0) if st == 200 else "status %d" % st
        if bad:
            fail("row 1: gradd's answer to the 5-node graph: %s" % bad)
        gid = register(cl, TINY_GRAPH)
        if gid:
            bodies["gradd+graph_id"] = {"graph_id": gid, "values": TINY_VALUES, "target": "loss"}
            st, data, _ = post_json(cl, "/v1/grad", bodies["gradd+graph_id"])
            bad = close(answer_of(data)[0], TINY_ANSWER, 0) if st == 200 else "status %d: %r" % (st, data[:200])
            if bad:
                fail("row 2: gradd's answer with graph_id: %s" % bad)
        else:
            log("row 2: skipped: no graph registration (POST /v1/graphs is not answered 200/201)")
        cl.close()
        files = {}
        for k, doc in bodies.items():
            files[k] = os.path.join(tmp, "tiny.%s.json" % k.replace("+", "_"))
            with open(files[k], "w") as f:
                json.dump(doc, f)
        for k in bodies:  # warm-up
            wrk(g.port, files[k], "1s", a.wrk_threads)
        rps = {k: [] for k in list(bodies) + ["bare"]}
        ratio = {k: [] for k in bodies}
        for r in range(1, a.rounds + 1):
            bare = Proc([os.path.join(a.bindir, "bare_mhd")], "bare_mhd", tmp, health="/")
            try:
                bc = Client(bare.port)
                st, data, _ = post_json(bc, "/v1/grad", plain)
                bc.close()
                if st != 200 or close(answer_of(data)[0], TINY_ANSWER, 0):
                    fail("row 1: bare_mhd's answer: %d %r" % (st, data[:200]))
                wrk(bare.port, files["gradd"], "1s", a.wrk_threads)
                sides = list(bodies) + ["bare"]
                if r % 2 == 0:
                    sides.reverse()
                got = {}
                for s in sides:
                    got[s] = wrk(bare.port if s == "bare" else g.port, files["gradd" if s == "bare" else s],
                                 a.wrk_dur, a.wrk_threads)
            finally:
                bare.stop()
            if any(v is None for v in got.values()):
                continue
            for s in got:
                rps[s].append(got[s])
            for k in bodies:
                ratio[k].append(got[k] / got["bare"])
            log("round %d: %s" % (r, ", ".join("%s %.0f req/s" % (s, got[s]) for s in sides)))
        best = max(rps["bare"]) if rps["bare"] else 0
        for k, label, target in (("gradd", "1. 5-node graph, wrk 64 conns, vs bare libmicrohttpd",
                                  ">= 0.6x (stretch 0.8x) and >= 40k req/s"),
                                 ("gradd+graph_id", "2. same with graph_id", ">= 0.7x")):
            if k not in bodies:
                TABLE.append((label, "skipped: no graph registration", target))
                continue
            if not ratio[k]:
                TABLE.append((label, "no valid round", target))
                continue
            m = "%s x; %s req/s (bare %s req/s); vs bare at its best %.2fx" % (
                spread(ratio[k], "%.2f"), spread(rps[k], "%.0f"), spread(rps["bare"], "%.0f"),
                statistics.median(rps[k]) / best)
            log("ROW %s: gradd / bare req/s %s" % (label.split(".")[0], m))
            TABLE.append((label, m, target))
    finally:
        g.stop()


# ---- row 3: the MLP ------------------------------------------------------------------------------

def check_lines(out):
    for line in (out or "").splitlines():
        if line.startswith("CHECK "):
            return {k: float(v) for k, v in (f.split("=", 1) for f in line.split()[2:]) if not k.startswith("sum_")}
    return None


def row_mlp(a, tmp):
    widths = [64] if a.smoke else [1024, 2048]
    mt = "0" if a.smoke else "2"
    tmt = "0" if a.smoke else "1"
    runs = ["--min-runs", "2", "--warmup", "1"] if a.smoke else ["--min-runs", "5", "--warmup", "2"]
    log("== row 3: MLP 256x784->H->H->10 float64, binary framing, end to end (bench/http_mlp; gradd --workers 1 "
        "--blas-threads 2) vs PyTorch in process (bench/torch_mlp.py --threads 2, OMP_WAIT_POLICY=%s, a fresh "
        "process every round), %d round(s)" % (WAIT_POLICY, a.rounds))
    g = gradd(["--workers", "1", "--blas-threads", "2"], tmp)
    tenv = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "OMP_WAIT_POLICY": WAIT_POLICY}
    try:
        for h in widths:
            e2e, srv, logsrv, torch_ms, r_e2e, r_srv = [], [], [], [], [], []
            for r in range(1, a.rounds + 1):
                sides = ["gradd", "torch"] if r % 2 else ["torch", "gradd"]
                got = {}
                for s in sides:
                    if s == "gradd":
                        before = len(g.log_text())
                        out = run([os.path.join(a.bindir, "http_mlp"), "--url",
                                   "http://127.0.0.1:%d/v1/grad" % g.port, "--format", "binary", "--hidden", str(h),
                                   "--min-time", mt] + runs)
                        res = result(out, "RESULT http")
                        if res:
                            got["gradd"] = res
                            got["gradd_check"] = check_lines(out)
                            # gradd's log: queue_us + compute_us = last body byte -> response queued.
                            lines = [m for m in re.finditer(r"status=200 bytes_in=%s .*queue_us=(\d+) compute_us=(\d+)"
                                                            % res["req_bytes"], g.log_text()[before:])]
                            if lines:
                                got["log_ms"] = statistics.median(
                                    (int(m.group(1)) + int(m.group(2))) / 1e3 for m in lines)
                    else:
                        out = run([PY, os.path.join(SRCDIR, "bench", "torch_mlp.py"), "--threads", "2",
                                   "--hidden", str(h), "--min-time", tmt] + runs, env=tenv)
                        res = result(out, "RESULT torch")
                        if res:
                            got["torch"] = res
                            got["torch_check"] = check_lines(out)
                if "gradd" not in got or "torch" not in got:
                    continue
                bad = close(got["gradd_check"], got["torch_check"], 1e-9)
                if bad:
                    fail("row 3, H=%d: gradd's loss/gradient norms differ from PyTorch's: %s" % (h, bad))
                t = float(got["torch"]["step_ms"])
                e, sv = float(got["gradd"]["e2e_ms"]), float(got["gradd"]["sent_to_last_ms"])
                e2e.append(e), srv.append(sv), torch_ms.append(t), r_e2e.append(e / t), r_srv.append(sv / t)
                if "log_ms" in got:
                    logsrv.append(got["log_ms"])
                log("round %d (H=%d): gradd end to end %.1f ms, server (last byte sent -> last byte received) %.1f ms, "
                    "gradd log (last body byte -> response queued) %s ms; torch step %.1f ms: %.2fx, server %.2fx"
                    % (r, h, e, sv, "%.1f" % got["log_ms"] if "log_ms" in got else "-", t, e / t, sv / t))
            label = "3. MLP %s f64, binary, end to end vs PyTorch" % ("256x784->%d->%d->10" % (h, h))
            target = {1024: "<= 1.2x; server time <= 1.05x", 2048: "<= 1.6x"}.get(h, "(smoke size)")
            if not r_e2e:
                TABLE.append((label, "no valid round", target))
                continue
            best = min(torch_ms)
            m = ("%s x (gradd %s ms, torch %s ms; vs torch at its best %.2fx); server time %s x "
                 "(client-side: last request byte sent -> last response byte received, %s ms; "
                 "gradd log, last body byte -> response queued: %s ms)"
                 % (spread(r_e2e, "%.2f"), spread(e2e, "%.1f"), spread(torch_ms, "%.1f"),
                    statistics.median(e2e) / best, spread(r_srv, "%.2f"), spread(srv, "%.1f"), spread(logsrv, "%.1f")))
            log("ROW 3 (H=%d): %s" % (h, m))
            TABLE.append((label, m, target))
    finally:
        g.stop()


# ---- row 4: 1M float64 as nested JSON, and binary -------------------------------------------------

def row_numbers(a, tmp):
    side = 100 if a.smoke else 1000
    n = side * side
    reps_bin = 3 if a.smoke else 5
    log("== row 4: %d float64 as nested JSON through /v1/eval (x -> neg x) vs the same with binary framing, "
        "%d round(s); JSON: 1 request per round, binary: median of %d" % (n, a.rounds, reps_bin))
    rng = random.Random(4)
    flat = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-5, 5) for _ in range(n)]
    nested = [flat[i * side:(i + 1) * side] for i in range(side)]
    graph = {"nodes": [node("x", "input", shape=[side, side]), node("y", "neg", ["x"])]}
    jbody = json.dumps({"graph": graph, "values": {"x": nested}, "target": "y"}).encode()
    raw = array.array("d", flat).tobytes()
    want = array.array("d", [-v for v in flat]).tobytes()
    bjson = json.dumps({"graph": graph, "target": "y", "tensor_format": "binary",
                        "values": {"x": {"shape": [side, side], "dtype": "float64", "offset": 0,
                                         "nbytes": len(raw)}}}).encode()
    bbody = bjson + raw
    bhdr = {"Content-Type": "application/vnd.gradd.v1+binary", "Gradd-Json-Length": str(len(bjson))}
    log("request: JSON %d bytes, binary %d bytes" % (len(jbody), len(bbody)))
    g = gradd([], tmp)
    try:
        cl = Client(g.port)

        def one_json():
            st, _, data, t = cl.post("/v1/eval", jbody)
            if st != 200:
                fail("row 4: JSON answered %d: %r" % (st, data[:300]))
                return None
            got = json.loads(data)["values"]["y"]
            if array.array("d", [v for row in got for v in row]).tobytes() != want:
                fail("row 4: the JSON answer is not exactly -x")
                return None
            return t

        def one_bin():
            st, hdr, data, t = cl.post("/v1/eval", bbody, bhdr)
            if st != 200:
                fail("row 4: binary answered %d: %r" % (st, data[:300]))
                return None
            jl = int({k.lower(): v for k, v in hdr.items()}["gradd-json-length"])
            y = json.loads(data[:jl])["values"]["y"]
            o = jl + y["offset"]
            if y.get("nbytes") != len(want) or data[o:o + len(want)] != want:
                fail("row 4: the binary answer is not exactly -x")
                return None
            return t

        one_json(), one_bin()  # warm-up
        js, bs, ratio = [], [], []
        for r in range(1, a.rounds + 1):
            got = {}
            for s in (["json", "binary"] if r % 2 else ["binary", "json"]):
                if s == "json":
                    got[s] = one_json()
                else:
                    v = [one_bin() for _ in range(reps_bin)]
                    got[s] = None if None in v else statistics.median(v)
            if None in got.values():
                continue
            js.append(got["json"]), bs.append(got["binary"]), ratio.append(got["json"] / got["binary"])
            log("round %d: nested JSON %.3f s, binary %.1f ms: %.0fx" % (r, got["json"], 1e3 * got["binary"],
                                                                          ratio[-1]))
        cl.close()
        label = "4. %s float64 nested JSON round trip (/v1/eval)" % ("1M" if n == 10 ** 6 else str(n))
        target = "<= 0.5 s (<= 30x binary, same run)"
        if ratio:
            m = "%s s, %s x binary (binary %s ms; vs binary at its best %.0fx)" % (
                spread(js, "%.3f"), spread(ratio, "%.0f"), spread([1e3 * b for b in bs], "%.1f"),
                statistics.median(js) / min(bs))
            log("ROW 4: " + m)
            TABLE.append((label, m, target))
        else:
            TABLE.append((label, "no valid round", target))
    finally:
        g.stop()


# ---- rows 5 and 6: graphs end to end vs PyTorch eager ----------------------------------------------

def row_graph(a, tmp, rowno, n_nodes, n_elems, label, target):
    graph, values, tgt = chain_graph(n_nodes, n_elems, 5 + rowno, n_elems > 0)
    req = {"graph": graph, "values": values, "target": tgt}
    body = json.dumps(req).encode()
    body_file = os.path.join(tmp, "row%d.json" % rowno)
    with open(body_file, "wb") as f:
        f.write(body)
    reps = 3 if a.smoke else 7
    log("== row %d: %d-node %s graph (h = tanh(h * w_k + b_k) over 10 scalar weight/bias pairs%s), /v1/grad end to end "
        "(gradd --workers 1 --blas-threads 1, median of %d requests; JSON, tensor_format nested) vs PyTorch eager in process "
        "(bench/torch_graph.py --threads 1 on the same request, a fresh process every round), %d round(s); "
        "request %d bytes" % (rowno, n_nodes, "scalar" if n_elems == 0 else "%d-element" % n_elems,
                              ", then sum" if n_elems else "", reps, a.rounds, len(body)))
    g = gradd(["--workers", "1", "--blas-threads", "1"], tmp)
    try:
        cl = Client(g.port)
        gid = register(cl, graph)
        bodies = {"gradd": body, "gradd cold": body}
        if gid:
            bodies["gradd+graph_id"] = json.dumps({"graph_id": gid, "values": values, "target": tgt}).encode()
        else:
            log("row %d, registered: skipped: no graph registration" % rowno)
        answers = {}

        def one(k):
            st, data, t = post_json(cl, "/v1/grad", cold(bodies[k]) if k == "gradd cold" else bodies[k])
            if st != 200:
                fail("row %d (%s): answered %d: %r" % (rowno, k, st, data[:300]))
                return None
            answers[k] = answer_of(data)[0]
            return t

        for k in bodies:
            one(k)
        if n_elems == 0:
            want = chain_value(graph, values)[tgt]
            bad = close(answers["gradd"]["target"][tgt], want, 1e-9)
            if bad:
                fail("row %d: gradd's value differs from the chain's closed form: %s" % (rowno, bad))
        t_g = {k: [] for k in bodies}
        t_p, ratio = [], {k: [] for k in bodies}
        for r in range(1, a.rounds + 1):
            got = {}
            sides = list(bodies) + ["torch"]
            if r % 2 == 0:
                sides.reverse()
            for s in sides:
                if s == "torch":
                    ans = os.path.join(tmp, "torch.%d.json" % rowno)
                    out = run([PY, os.path.join(SRCDIR, "bench", "torch_graph.py"), "--body", body_file,
                               "--threads", "1", "--min-time", "0" if a.smoke else "1", "--answer", ans],
                              env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
                    res = result(out, "RESULT torch_graph")
                    if res:
                        got["torch"] = float(res["step_ms"]) / 1e3
                        with open(ans) as f:
                            torch_answer = json.load(f)
                        for k in bodies:
                            bad = close(answers.get(k), torch_answer, 1e-9)
                            if bad:
                                fail("row %d: gradd's answer (%s) differs from PyTorch's at %s" % (rowno, k, bad))
                else:
                    v = [one(s) for _ in range(reps)]
                    if None not in v:
                        got[s] = statistics.median(v)
            if len(got) != len(sides):
                continue
            t_p.append(got["torch"])
            for k in bodies:
                t_g[k].append(got[k])
                ratio[k].append(got[k] / got["torch"])
            log("round %d: %s" % (r, ", ".join("%s %.2f ms" % (s, 1e3 * got[s]) for s in sides)))
        cl.close()
        suffix = {"gradd": "", "gradd cold": " (graph inline, its text new to gradd every time)",
                  "gradd+graph_id": " (graph_id)"}
        for k in bodies:
            lab = label + suffix[k]
            if not ratio[k]:
                TABLE.append((lab, "no valid round", target))
                continue
            m = "%s x (gradd %s ms, torch %s ms; vs torch at its best %.2fx)" % (
                spread(ratio[k], "%.3f"), spread([1e3 * x for x in t_g[k]], "%.2f"),
                spread([1e3 * x for x in t_p], "%.2f"), statistics.median(t_g[k]) / min(t_p))
            log("ROW %d%s: %s" % (rowno, suffix[k], m))
            TABLE.append((lab, m, target))
        if not gid:
            TABLE.append((label + " (graph_id)", "skipped: no graph registration", target))
    finally:
        g.stop()


# ---- row 7: elementwise chain vs STREAM triad ------------------------------------------------------

CHAIN_OPS = ["square", "sqrt", "neg", "abs", "square", "sqrt", "neg", "abs", "square", "sqrt"]


def row_triad(a, tmp):
    side = 256 if a.smoke else 4096
    n = side * side
    reps = 2 if a.smoke else 3
    rng = random.Random(7)
    xs = [rng.uniform(-1, 1) for _ in range(side)]
    ys = [rng.uniform(-1, 1) for _ in range(side)]
    nodes = [node("x", "input", shape=[side]), node("y", "input", shape=[side, 1]), node("b", "add", ["x", "y"])]
    prev = "b"
    for k, op in enumerate(CHAIN_OPS):
        nodes.append(node("e%d" % k, op, [prev]))
        prev = "e%d" % k
    nodes.append(node("s", "sum", [prev]))
    body = json.dumps({"graph": {"nodes": nodes}, "values": {"x": xs, "y": [[v] for v in ys]},
                       "target": "s"}).encode()
    # The chain's least memory traffic: add writes n, each op reads and writes n, sum reads n (float64).
    traffic = 8.0 * n * (1 + 2 * len(CHAIN_OPS) + 1)
    try:
        import numpy as np
        want = float(np.abs(np.array(xs)[None, :] + np.array(ys)[:, None]).sum())
    except ImportError:
        want = math.fsum(abs(x + y) for x in xs for y in ys)
    log("== row 7: 10-op elementwise chain (%s) on %d float64 (x[%d] + y[%d,1] broadcast, then the chain, then sum), "
        "/v1/eval forward (gradd --workers 1 --blas-threads 1 --max-memory 4G, median of %d) vs the STREAM triad "
        "(bench/triad --n %d, a fresh process every round), %d round(s). Ratio = (chain's least traffic %.0f MB / "
        "stats.forward_us) / triad GB/s" % (" ".join(CHAIN_OPS), n, side, side, reps, n, a.rounds, traffic / 1e6))
    g = gradd(["--workers", "1", "--blas-threads", "1", "--max-memory", "4G"], tmp)
    try:
        cl = Client(g.port)

        def one():
            st, data, t = post_json(cl, "/v1/eval", body)
            if st != 200:
                fail("row 7: answered %d: %r" % (st, data[:300]))
                return None
            doc = json.loads(data)
            bad = close(doc["values"]["s"], want, 1e-9)
            if bad:
                fail("row 7: the chain's sum differs from numpy's: %s" % bad)
                return None
            return doc["stats"]["forward_us"] / 1e6, t

        one()
        ratio, gbs_g, gbs_t, e2e = [], [], [], []
        for r in range(1, a.rounds + 1):
            got = {}
            for s in (["gradd", "triad"] if r % 2 else ["triad", "gradd"]):
                if s == "triad":
                    res = result(run([os.path.join(a.bindir, "triad"), "--n", str(n), "--reps", "5"]),
                                 "RESULT triad")
                    if res and res["check"] == "ok":
                        got[s] = float(res["best_gbs"])
                    elif res:
                        fail("row 7: triad's check failed")
                else:
                    v = [one() for _ in range(reps)]
                    if None not in v:
                        got[s] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            if len(got) != 2:
                continue
            gb = traffic / got["gradd"][0] / 1e9
            gbs_g.append(gb), gbs_t.append(got["triad"]), ratio.append(gb / got["triad"]), e2e.append(got["gradd"][1])
            log("round %d: gradd forward %.1f ms (%.2f GB/s of least traffic; end to end %.1f ms), triad %.2f GB/s: "
                "%.3fx" % (r, 1e3 * got["gradd"][0], gb, 1e3 * got["gradd"][1], got["triad"], ratio[-1]))
        cl.close()
        label = "7. 10-op elementwise chain on %s elements vs STREAM triad" % ("16M" if n == 1 << 24 else str(n))
        if ratio:
            m = "%s x (gradd %s GB/s, triad %s GB/s; vs triad at its best %.3fx; end to end %s ms)" % (
                spread(ratio, "%.3f"), spread(gbs_g, "%.2f"), spread(gbs_t, "%.1f"),
                statistics.median(gbs_g) / max(gbs_t), spread([1e3 * x for x in e2e], "%.0f"))
            log("ROW 7: " + m)
            TABLE.append((label, m, ">= 0.3x"))
        else:
            TABLE.append((label, "no valid round", ">= 0.3x"))
    finally:
        g.stop()


# ---- row 8: parse + validate scaling -----------------------------------------------------------------

def slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def row_scaling(a, tmp):
    sizes = [100, 300, 1000] if a.smoke else [100, 300, 1000, 3000, 10000, 30000, 100000]
    reps = 3 if a.smoke else 5
    log("== row 8: parse + validate vs nodes, scalar chains of %s nodes, /v1/eval (gradd --workers 1 "
        "--blas-threads 1 --max-nodes 100000 --max-edges 1000000), median of %d requests per size, %d round(s). "
        "Figure: stats.total_us - queue_us - forward_us - backward_us (the server's decode: JSON parse, graph "
        "build, name resolution, order and checks, before the forward sweep; no stats field gives it alone); "
        "the end-to-end slope beside it" % (", ".join(map(str, sizes)), reps, a.rounds))
    reqs = {}
    for n in sizes:
        graph, values, tgt = chain_graph(n, 0, 8, False)
        reqs[n] = (json.dumps({"graph": graph, "values": values, "target": tgt}).encode(),
                   chain_value(graph, values)[tgt], tgt)
    g = gradd(["--workers", "1", "--blas-threads", "1", "--max-nodes", "100000", "--max-edges", "1000000"], tmp)
    try:
        cl = Client(g.port)

        def one(n):
            body, want, tgt = reqs[n]
            st, data, t = post_json(cl, "/v1/eval", cold(body))  # the parse is what is measured
            if st != 200:
                fail("row 8: %d nodes: answered %d: %r" % (n, st, data[:300]))
                return None
            doc = json.loads(data)
            bad = close(doc["values"][tgt], want, 1e-9)
            if bad:
                fail("row 8: %d nodes: value differs from the closed form: %s" % (n, bad))
                return None
            s = doc["stats"]
            return (s["total_us"] - s["queue_us"] - s["forward_us"] - s.get("backward_us", 0)) / 1e6, t

        for n in sizes:
            one(n)
        sl, sl_e2e, per = [], [], {n: [] for n in sizes}
        for r in range(1, a.rounds + 1):
            dec, e2e = [], []
            order = sizes if r % 2 else list(reversed(sizes))
            got = {}
            for n in order:
                v = [one(n) for _ in range(reps)]
                if None in v:
                    break
                got[n] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            if len(got) != len(sizes):
                continue
            dec = [got[n][0] for n in sizes]
            e2e = [got[n][1] for n in sizes]
            for n in sizes:
                per[n].append(got[n][0])
            sl.append(slope(sizes, dec)), sl_e2e.append(slope(sizes, e2e))
            log("round %d: decode %s; end to end %s; slope %.3f (end to end %.3f)" % (
                r, ", ".join("%d: %.3f ms" % (n, 1e3 * d) for n, d in zip(sizes, dec)),
                ", ".join("%.3f ms" % (1e3 * e) for e in e2e), sl[-1], sl_e2e[-1]))
        cl.close()
        label = "8. parse + validate scaling exponent in nodes (%d -> %d)" % (sizes[0], sizes[-1])
        if sl:
            m = "%s (server decode time; end to end %s); decode ms per size, median over rounds: %s" % (
                spread(sl, "%.3f"), spread(sl_e2e, "%.3f"),
                ", ".join("%d: %.3f" % (n, 1e3 * statistics.median(per[n])) for n in sizes))
            log("ROW 8: " + m)
            TABLE.append((label, m, "<= 1.05"))
        else:
            TABLE.append((label, "no valid round", "<= 1.05"))
    finally:
        g.stop()


# ---- main -------------------------------------------------------------------------------------------

def busy_pct():
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = read()
    time.sleep(1)
    t1, i1 = read()
    return 100.0 * ((t1 - t0) - (i1 - i0)) / max(1, t1 - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="every row briefly, small sizes, answers checked")
    ap.add_argument("--rows", default="1,3,4,5,6,7,8", help="rows to run (2 runs with 1)")
    ap.add_argument("--rounds", type=int, default=None)
    a = ap.parse_args()
    if not os.environ.get("GRADD_BIN"):
        raise SystemExit("issue10.py: set GRADD_BIN (make bench-http / bench-smoke do)")
    a.bindir = os.environ.get("BENCH_BINDIR") or os.path.join(os.path.dirname(os.environ["GRADD_BIN"]), "bench")
    a.rounds = a.rounds or (1 if a.smoke else int(os.environ.get("BENCH_ROUNDS", "5")))
    a.wrk_dur = "1s" if a.smoke else os.environ.get("WRK_DURATION", "5s")
    a.wrk_threads = int(os.environ.get("WRK_THREADS", "2"))
    rows = {int(x) for x in a.rows.split(",") if x.strip()}
    need = [os.path.join(a.bindir, p) for p in ("bare_mhd", "http_mlp", "triad")]
    missing = [p for p in need if not os.access(p, os.X_OK)]
    if missing:
        raise SystemExit("issue10.py: missing %s (make bench-http / bench-smoke build them)" % ", ".join(missing))
    if 1 in rows and not shutil.which("wrk"):
        raise SystemExit("issue10.py: wrk not found (scripts/install-deps.sh installs it)")
    if subprocess.run([PY, "-c", "import torch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        raise SystemExit("issue10.py: %s cannot import torch (scripts/install-deps.sh installs python3-torch)" % PY)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    t_start = time.monotonic()
    ver = subprocess.run([os.environ["GRADD_BIN"], "--version"], stdout=subprocess.PIPE,
                         universal_newlines=True).stdout.strip()
    log("== issue 10 targets%s: %s" % (" (smoke: small sizes, figures not comparable)" if a.smoke else "",
                                      time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())))
    log("machine: nproc %d; %s; load average %s; CPUs busy with other work over 1 s: %.0f%%"
        % (os.cpu_count(), " ".join(os.uname()[2:5:2]), open("/proc/loadavg").read().split(" ", 3)[:3],
           busy_pct()))
    log("gradd: %s (%s); rounds %d" % (os.environ["GRADD_BIN"], ver, a.rounds))
    tmp = tempfile.mkdtemp(prefix="issue10.")
    try:
        for k, fn in ((1, row_wrk), (3, row_mlp), (4, row_numbers)):
            if k in rows:
                fn(a, tmp)
                log()
        if 5 in rows:
            row_graph(a, tmp, 5, 200 if a.smoke else 10000, 0, "5. %s-node scalar graph, end to end vs PyTorch eager"
                      % ("200" if a.smoke else "10k"), "<= 0.1x (registered: <= 0.02x)")
            log()
        if 6 in rows:
            row_graph(a, tmp, 6, 60 if a.smoke else 1000, 100 if a.smoke else 1000,
                      "6. %s-node x %s-element chain, end to end vs PyTorch eager"
                      % (("60", "100") if a.smoke else ("1000", "1k")), "<= 0.6x")
            log()
        if 7 in rows:
            row_triad(a, tmp)
            log()
        if 8 in rows:
            row_scaling(a, tmp)
            log()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("load average after: %s; CPUs busy with other work over 1 s: %.0f%%"
        % (open("/proc/loadavg").read().split(" ", 3)[:3], busy_pct()))
    log()
    log("| figure | now: median (min-max) over rounds | target |")
    log("|---|---|---|")
    for f, m, t in TABLE:
        log("| %s | %s | %s |" % (f, m, t))
    log()
    log("issue10.py: %d row(s) in %.0f s; %s" % (len(TABLE), time.monotonic() - t_start,
                                                 "every answer checked: ok" if not FAILED else
                                                 "%d FAILURE(S): %s" % (len(FAILED), "; ".join(
                                                     f.splitlines()[0] for f in FAILED))))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
