#!/usr/bin/env python3
"""pernode_ir.py - instructions per request of issue 10's per-node rows,
counted by callgrind: a figure that a shared, loaded machine does not blur
(wall and CPU time on it varied by 2x between identical runs).

For each gradd binary given, the issue's rows 6 (a 10k-node scalar graph)
and 7 (a 1000-node x 1k-element chain), the very requests of
bench/issue10.py (its rows 5 and 6), each inline (the graph in the body)
and registered (graph_id): gradd runs under valgrind --tool=callgrind
collecting inside gd_compute only (decode, run, encode; not HTTP), once
with LO and once with HI requests after its registration and a first
request; (Ir(HI) - Ir(LO)) / (HI - LO) is printed per request.

    pernode_ir.py [--lo 2] [--hi 6] GRADD_BIN [GRADD_BIN ...]

Needs valgrind. Standard library only. Each request under callgrind takes
about 50 times its usual time (1 s for the 10k-node inline one)."""
import argparse
import http.client
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("issue10", os.path.join(HERE, "issue10.py"))
issue10 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(issue10)

ROWS = {6: (10000, 0), 7: (1000, 1000)}  # the issue's row: (nodes, elements)


def instructions(binary, row, mode, count):
    """Ir inside gd_compute over registration + (count + 1) requests."""
    n_nodes, n_elems = ROWS[row]
    graph, values, tgt = issue10.chain_graph(n_nodes, n_elems, 10 if row == 6 else 11, n_elems > 0)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                 "--toggle-collect=gd_compute", binary, "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--blas-threads", "1", "--drain-ms", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, GRADD_LOG_FORMAT="text"))
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

            def post(path, doc):
                c.request("POST", path, body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                if r.status not in (200, 201):
                    sys.exit("%s answered %d: %r" % (path, r.status, data[:300]))
                return data

            gid = json.loads(post("/v1/graphs", {"graph": graph}))["graph_id"]
            req = {"values": values, "target": tgt}
            req.update({"graph": graph} if mode == "inline" else {"graph_id": gid})
            for _ in range(count + 1):
                post("/v1/grad", req)
            c.close()
        finally:
            proc.terminate()
            proc.wait()
        with open(out) as f:
            for line in f:
                m = re.match(r"(summary|totals): (\d+)", line)
                if m:
                    return int(m.group(2))
    sys.exit("no callgrind totals for %s" % binary)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lo", type=int, default=2)
    ap.add_argument("--hi", type=int, default=6)
    ap.add_argument("gradd", nargs="+")
    a = ap.parse_args()
    for b in a.gradd:
        rev = subprocess.run([b, "--version"], capture_output=True, text=True).stdout.strip()
        for row in (6, 7):
            for mode in ("inline", "registered"):
                lo, hi = instructions(b, row, mode, a.lo), instructions(b, row, mode, a.hi)
                print("%s: row %d %s: %.2f M instructions per request" % (rev, row, mode,
                                                                          (hi - lo) / (a.hi - a.lo) / 1e6))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
