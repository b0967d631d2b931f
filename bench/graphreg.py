#!/usr/bin/env python3
"""graphreg.py - what graph registration (A3) saves, inline graph against
graph_id, on one gradd started here (its defaults, a free loopback port).

1. A 10,000-node scalar graph (a chain of mul/add/sin on scalars: one
   variable, every node a scalar), POST /v1/grad with the graph inline and
   with "graph_id": milliseconds per request over one keep-alive connection,
   ROUNDS alternating rounds (inline first in odd rounds) of REQUESTS requests
   each; the median and the spread (min..max of the rounds' medians).
2. The 5-node graph of bench/http_bench.sh under wrk (-t2 -c64, WRK_DURATION
   per run, bench/http_post.lua), inline and by graph_id, ROUNDS alternating
   rounds: requests/s, median and spread. Skipped without wrk.

Before measuring, the two forms' answers are compared (same target and
gradients), and a wrk run with any error or non-2xx answer is rejected.

Environment: GRADD_BIN (required), ROUNDS (5), REQUESTS (20), NODES (10000),
WRK_DURATION (5s), WRK_THREADS (2), WRK_CONNECTIONS (64).
Standard library only.
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from benchlib import free_port

HERE = os.path.dirname(os.path.abspath(__file__))


def scalar_graph(n):
    """x -> (mul c, add c, sin) repeated: n nodes, all scalars."""
    nodes = [{"name": "x", "op": "variable"}, {"name": "c", "op": "constant", "value": 0.999}]
    prev = "x"
    ops = ["mul", "add", "sin"]
    for i in range(n - 3):
        op = ops[i % 3]
        name = f"n{i}"
        nodes.append({"name": name, "op": op, "inputs": [prev] if op == "sin" else [prev, "c"]})
        prev = name
    nodes.append({"name": "loss", "op": "sum", "inputs": [prev]})
    return nodes


TINY = [{"name": "x", "op": "variable", "shape": [4]},
        {"name": "t", "op": "input", "shape": [4]},
        {"name": "d", "op": "sub", "inputs": ["x", "t"]},
        {"name": "p", "op": "square", "inputs": ["d"]},
        {"name": "loss", "op": "sum", "inputs": ["p"]}]
TINY_VALUES = {"x": [1.0, 2.0, 3.0, 4.0], "t": [0.5, 1.5, 2.0, 5.0]}


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def same_answer(a, b):
    ja, jb = json.loads(a), json.loads(b)
    ja.pop("stats", None)
    jb.pop("stats", None)
    return ja == jb


def time_requests(port, body, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            st, data = post(conn, "/v1/grad", body)
            times.append(time.perf_counter() - t0)
            if st != 200:
                raise SystemExit(f"graphreg bench: status {st}: {data[:300]!r}")
    finally:
        conn.close()
    return statistics.median(times) * 1000


def register(port, nodes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        st, data = post(conn, "/v1/graphs", json.dumps({"graph": {"nodes": nodes}}).encode())
    finally:
        conn.close()
    if st not in (200, 201):
        raise SystemExit(f"graphreg bench: registration {st}: {data[:300]!r}")
    return json.loads(data)["graph_id"]


def wrk_rps(port, body, tmp, dur, threads, conns):
    path = os.path.join(tmp, "body.json")
    with open(path, "wb") as f:
        f.write(body)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{dur}", "-s", os.path.join(HERE, "http_post.lua"),
                          f"http://127.0.0.1:{port}/v1/grad", "--", path], capture_output=True, text=True).stdout
    m = re.search(r"WRK rps=([\d.]+) .*err_connect=(\d+) err_read=(\d+) err_write=(\d+) err_status=(\d+) "
                  r"err_timeout=(\d+)", out)
    if not m or any(int(x) for x in m.groups()[1:]):
        raise SystemExit(f"graphreg bench: wrk run rejected (errors or no summary):\n{out}")
    return float(m.group(1))


def spread(xs, fmt):
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}..{fmt(max(xs))})"


def main():
    gradd = os.environ.get("GRADD_BIN")
    if not gradd:
        print("graphreg bench: set GRADD_BIN", file=sys.stderr)
        return 2
    rounds = int(os.environ.get("ROUNDS", "5"))
    nreq = int(os.environ.get("REQUESTS", "20"))
    nnodes = int(os.environ.get("NODES", "10000"))
    dur = os.environ.get("WRK_DURATION", "5s")
    wthreads = os.environ.get("WRK_THREADS", "2")
    wconns = os.environ.get("WRK_CONNECTIONS", "64")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="graphreg_bench.")
    log = open(os.path.join(tmp, "gradd.log"), "wb")
    proc = subprocess.Popen([gradd, "--port", str(port), "--max-nodes", str(max(nnodes, 10000))], stdout=log,
                            stderr=log)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        print(f"gradd {gradd} (commit {rev.stdout.strip() or '?'}), {os.cpu_count()} CPUs, {rounds} rounds")

        # 1. the 10k-node scalar graph
        nodes = scalar_graph(nnodes)
        gid = register(port, nodes)
        rest = {"values": {"x": 0.5}, "target": "loss"}
        inline = json.dumps(dict({"graph": {"nodes": nodes}}, **rest)).encode()
        byid = json.dumps(dict({"graph_id": gid}, **rest)).encode()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        a, b = post(c, "/v1/grad", inline), post(c, "/v1/grad", byid)
        c.close()
        if a[0] != 200 or b[0] != 200 or not same_answer(a[1], b[1]):
            raise SystemExit(f"graphreg bench: answers differ:\n{a[1][:300]!r}\n{b[1][:300]!r}")
        ms = {"inline": [], "graph_id": []}
        for r in range(rounds):
            order = ["inline", "graph_id"] if r % 2 == 0 else ["graph_id", "inline"]
            for k in order:
                ms[k].append(time_requests(port, inline if k == "inline" else byid, nreq))
        print(f"{nnodes}-node scalar graph, POST /v1/grad ({len(inline)} bytes inline, {len(byid)} by id), "
              f"ms per request, median of {nreq} per round; median of rounds (min..max):")
        fmt = lambda x: f"{x:.2f}"  # noqa: E731
        print(f"  inline   {spread(ms['inline'], fmt)}")
        print(f"  graph_id {spread(ms['graph_id'], fmt)}")
        ratios = [i / g for i, g in zip(ms["inline"], ms["graph_id"])]
        print(f"  inline / graph_id: {spread(ratios, lambda x: f'{x:.1f}x')}")

        # 2. the 5-node graph under wrk
        if not shutil.which("wrk"):
            print("wrk not found: the 5-node comparison is skipped")
            return 0
        gid = register(port, TINY)
        inline = json.dumps({"graph": {"nodes": TINY}, "values": TINY_VALUES, "target": "loss"}).encode()
        byid = json.dumps({"graph_id": gid, "values": TINY_VALUES, "target": "loss"}).encode()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        a, b = post(c, "/v1/grad", inline), post(c, "/v1/grad", byid)
        c.close()
        if not same_answer(a[1], b[1]):
            raise SystemExit("graphreg bench: 5-node answers differ")
        rps = {"inline": [], "graph_id": []}
        for r in range(rounds):
            order = ["inline", "graph_id"] if r % 2 == 0 else ["graph_id", "inline"]
            for k in order:
                rps[k].append(wrk_rps(port, inline if k == "inline" else byid, tmp, dur, wthreads, wconns))
        print(f"5-node graph (bench/http_bench.sh's), wrk -t{wthreads} -c{wconns} -d{dur}, requests/s; median of "
              f"rounds (min..max):")
        fmt = lambda x: f"{x:,.0f}"  # noqa: E731
        print(f"  inline   {spread(rps['inline'], fmt)}  ({len(inline)} bytes)")
        print(f"  graph_id {spread(rps['graph_id'], fmt)}  ({len(byid)} bytes)")
        ratios = [g / i for i, g in zip(rps["inline"], rps["graph_id"])]
        print(f"  graph_id / inline: {spread(ratios, lambda x: f'{x:.2f}x')}")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
