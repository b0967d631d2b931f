#!/usr/bin/env python3
"""pernode_ab.py - two gradd builds A and B, alternating, on issue 10's
per-node rows: 6 (a 10k-node scalar graph) and 7 (a 1000-node x 1k-element
chain), the very requests of bench/issue10.py (its rows 5 and 6), inline
(the graph in the body) and registered (graph_id).

Every round starts a fresh gradd per side (--workers 1 --blas-threads 1),
registers the graph, sends one request of each mode, then REPS requests of
each mode on one kept-alive connection, and prints per mode the median and
best wall time of a request and the server's CPU per request (utime +
stime of its process over the loop, /proc). The first side changes every
round. The answers of A and B are compared (stats aside): any difference
fails the run.

    pernode_ab.py [--rounds 7] [--reps6 40] [--reps7 100] A_GRADD B_GRADD

Standard library only."""
import argparse
import http.client
import importlib.util
import json
import os
import socket
import statistics
import sys
import time

from benchlib import start_gradd

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("issue10", os.path.join(HERE, "issue10.py"))
issue10 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(issue10)

ROWS = {6: (10000, 0, 10), 7: (1000, 1000, 11)}  # the issue's row: nodes, elements, issue10.py's seed


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def one_side(binary, row, reps):
    """{mode: (median s, best s, cpu s per request)} and the answers."""
    n_nodes, n_elems, seed = ROWS[row]
    graph, values, tgt = issue10.chain_graph(n_nodes, n_elems, seed, n_elems > 0)
    proc, port = start_gradd(binary, "--workers", "1", "--blas-threads", "1", "--drain-ms", "0")
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def post(path, body):
            c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status not in (200, 201):
                sys.exit("%s: %s answered %d: %r" % (binary, path, r.status, data[:300]))
            return data

        gid = json.loads(post("/v1/graphs", json.dumps({"graph": graph}).encode()))["graph_id"]
        bodies = {"inline": json.dumps({"graph": graph, "values": values, "target": tgt}).encode(),
                  "registered": json.dumps({"graph_id": gid, "values": values, "target": tgt}).encode()}
        answers = {}
        for m, b in bodies.items():
            a = json.loads(post("/v1/grad", b))
            a.pop("stats", None)
            answers[m] = a
        out = {}
        for m, b in bodies.items():
            ts = []
            c0 = cpu_s(proc.pid)
            for _ in range(reps):
                t0 = time.perf_counter()
                post("/v1/grad", b)
                ts.append(time.perf_counter() - t0)
            out[m] = (statistics.median(ts), min(ts), (cpu_s(proc.pid) - c0) / reps)
        c.close()
        return out, answers
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps6", type=int, default=40)
    ap.add_argument("--reps7", type=int, default=100)
    ap.add_argument("a")
    ap.add_argument("b")
    a = ap.parse_args()
    res = {}
    for r in range(1, a.rounds + 1):
        for row in (6, 7):
            sides = ["A", "B"] if r % 2 else ["B", "A"]
            got = {}
            for s in sides:
                out, answers = one_side(a.a if s == "A" else a.b, row, a.reps6 if row == 6 else a.reps7)
                got[s] = answers
                for m, (med, best, cpu) in out.items():
                    res.setdefault((row, m, s), []).append((med, best, cpu))
                    print("round %d %s row %d %s: median %.2f ms, best %.2f ms, cpu %.2f ms/request"
                          % (r, s, row, m, 1e3 * med, 1e3 * best, 1e3 * cpu))
                    sys.stdout.flush()
            if got["A"] != got["B"]:
                sys.exit("row %d: the answers of A and B differ" % row)
    print("| request | A: wall ms, median (best) | B: wall ms | A: CPU ms, median (best) | B: CPU ms | B/A CPU, median (best) |")
    print("|---|---|---|---|---|---|")
    for row in (6, 7):
        for m in ("inline", "registered"):
            v = {}
            for s in "AB":
                x = res[(row, m, s)]
                v[s] = (statistics.median(t[0] for t in x), min(t[1] for t in x),
                        statistics.median(t[2] for t in x), min(t[2] for t in x))
            A, B = v["A"], v["B"]
            print("| row %d %s | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) |"
                  % (row, m, 1e3 * A[0], 1e3 * A[1], 1e3 * B[0], 1e3 * B[1], 1e3 * A[2], 1e3 * A[3],
                     1e3 * B[2], 1e3 * B[3], B[2] / A[2], B[3] / A[3]))


if __name__ == "__main__":
    main()
