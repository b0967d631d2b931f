#!/usr/bin/env python3
"""json_stages.py - issue 10 row 5's nested JSON round trip, stage by stage:
bench/issue10.py's 1000 x 1000 float64 request (x -> neg x through /v1/eval)
sent over one raw kept-alive socket, each request timed in three parts: the
client's sendall (returns once the kernel holds the body: it waits for the
server to read), waiting for the answer's first byte (the rest of the
body's reading, decoding, the run, encoding), and reading the rest of the
answer into a buffer allocated once. The client does no JSON work, so the
figures are the server's and the socket's. The answer is checked once.

    GRADD_BIN=build/gradd python3 bench/json_stages.py [--requests N] [--port P]

With --port, an already running gradd is used (to profile it meanwhile);
else one is started here. Standard library only.
"""
import argparse
import array
import json
import os
import random
import socket
import sys
import time

from benchlib import start_gradd


def request_body():
    side = 1000
    rng = random.Random(4)  # the values of bench/issue10.py's row
    flat = [rng.uniform(-1, 1) * 10.0 ** rng.randint(-5, 5) for _ in range(side * side)]
    nested = [flat[i * side:(i + 1) * side] for i in range(side)]
    graph = {"nodes": [{"name": "x", "op": "input", "shape": [side, side]},
                       {"name": "y", "op": "neg", "inputs": ["x"]}]}
    return json.dumps({"graph": graph, "values": {"x": nested}, "target": "y"}).encode(), flat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradd", default=os.environ.get("GRADD_BIN", "gradd"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--requests", type=int, default=6)
    a = ap.parse_args()
    body, flat = request_body()
    proc = None
    port = a.port
    if not port:
        proc, port = start_gradd(a.gradd, "--workers", "1")
    head = ("POST /v1/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    msg = head + body
    buf = bytearray(64 << 20)
    view = memoryview(buf)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print("request %.1f MB" % (len(msg) / 1e6))
        for i in range(a.requests):
            t0 = time.perf_counter()
            s.sendall(msg)
            t1 = time.perf_counter()
            n = s.recv_into(view)
            t2 = time.perf_counter()
            while b"\r\n\r\n" not in buf[:n]:
                n += s.recv_into(view[n:])
            hdr, _, _ = bytes(buf[:min(n, 4096)]).partition(b"\r\n\r\n")
            lines = hdr.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1.1 200"):
                sys.exit("json_stages: %r" % bytes(buf[:300]))
            length = [int(v) for k, _, v in (l.partition(b":") for l in lines[1:]) if k.lower() == b"content-length"]
            total = len(hdr) + 4 + length[0]
            while n < total:
                n += s.recv_into(view[n:])
            t3 = time.perf_counter()
            if i == 0:
                got = json.loads(bytes(buf[len(hdr) + 4:total]))["values"]["y"]
                if array.array("d", [v for row in got for v in row]) != array.array("d", [-v for v in flat]):
                    sys.exit("json_stages: the answer is not exactly -x")
            print("request %d: send %.1f ms, wait for the first byte %.1f ms, read the rest %.1f ms, total %.1f ms"
                  % (i + 1, 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2), 1e3 * (t3 - t0)))
        s.close()
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
