#!/usr/bin/env python3
"""roundtrip.py - the 1M-float64 round trip of issue 10: POST /v1/eval with an
input of N elements (default 2^20 random doubles, every one 15-17 significant
digits) and fetch it back, once as nested JSON and once with binary framing,
alternating for ROUNDS rounds (default 5), in one gradd started here. Prints
each round's wall time (request sent -> response read, client-side encoding
and decoding excluded) and the server's own total_us from the answer's
stats (last body byte -> answer encoded; less noisy on a loaded machine),
the medians, and nested / binary. Both answers are
checked once: the nested one must read back to the very same doubles, the
binary one byte for byte.

    GRADD_BIN=build/gradd python3 bench/roundtrip.py [--n N] [--rounds R]
"""
import argparse
import http.client
import json
import os
import random
import re
import struct
import sys
import time
from benchlib import start_gradd


def post(port, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.monotonic()
    c.request("POST", "/v1/eval", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    t1 = time.monotonic()
    hdr = dict((k.lower(), v) for k, v in r.getheaders())
    c.close()
    if r.status != 200:
        sys.exit("roundtrip: status %d: %s" % (r.status, data[:300]))
    return t1 - t0, data, hdr


def server_ms(data):
    """stats.total_us of an answer (its last bytes, or the JSON part's)."""
    m = re.search(rb'"total_us":\s*(\d+)', data[-400:]) or re.search(rb'"total_us":\s*(\d+)', data[:4096])
    return int(m.group(1)) / 1e3 if m else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradd", default=os.environ.get("GRADD_BIN", "gradd"))
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    rng = random.Random(10)
    xs = [rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-3, 3) for _ in range(a.n)]
    graph = {"nodes": [{"name": "x", "op": "input"}]}
    nested = json.dumps({"graph": graph, "values": {"x": xs}, "target": "x"}).encode()
    js = json.dumps({"graph": graph, "target": "x", "tensor_format": "binary",
                     "values": {"x": {"shape": [a.n], "dtype": "float64", "offset": 0, "nbytes": 8 * a.n}}}).encode()
    raw = struct.pack("<%dd" % a.n, *xs)
    framed = js + raw
    proc, port = start_gradd(a.gradd, "--workers", "1", "--blas-threads", "1", "--max-memory", "4G",
                             "--max-body", "256M")
    try:
        jh = {"Content-Type": "application/json"}
        bh = {"Content-Type": "application/vnd.gradd.v1+binary", "Gradd-Json-Length": str(len(js))}
        # correctness, once each
        _, data, _ = post(port, nested, jh)
        nested_reply = len(data)
        back = json.loads(data)["values"]["x"]
        if back != xs:
            sys.exit("roundtrip: the nested answer does not read back to the doubles sent")
        _, data, hdr = post(port, framed, bh)
        n = int(hdr["gradd-json-length"])
        t = json.loads(data[:n])["values"]["x"]
        if data[n + t["offset"]:n + t["offset"] + t["nbytes"]] != raw:
            sys.exit("roundtrip: the binary answer differs from the bytes sent")
        print("n = %d float64; nested: request %.1f MB, response %.1f MB; binary: request %.1f MB" %
              (a.n, len(nested) / 1e6, nested_reply / 1e6, len(framed) / 1e6))
        tn, tb, sn, sb = [], [], [], []
        for r in range(a.rounds):
            t, data, _ = post(port, nested, jh)
            tn.append(t)
            sn.append(server_ms(data))
            t, data, _ = post(port, framed, bh)
            tb.append(t)
            sb.append(server_ms(data))
            print("round %d: nested %8.1f ms (server %6.1f)   binary %7.1f ms (server %5.1f)   ratio %5.1f" %
                  (r + 1, tn[-1] * 1e3, sn[-1], tb[-1] * 1e3, sb[-1], tn[-1] / tb[-1]))
        for v in (tn, tb, sn, sb):
            v.sort()
        med = lambda v: v[len(v) // 2]
        print("median wall: nested %.1f ms (range %.1f-%.1f), binary %.1f ms (range %.1f-%.1f), nested/binary %.1f" %
              (med(tn) * 1e3, tn[0] * 1e3, tn[-1] * 1e3, med(tb) * 1e3, tb[0] * 1e3, tb[-1] * 1e3, med(tn) / med(tb)))
        print("median server total_us: nested %.1f ms (range %.1f-%.1f), binary %.1f ms (range %.1f-%.1f)" %
              (med(sn), sn[0], sn[-1], med(sb), sb[0], sb[-1]))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
