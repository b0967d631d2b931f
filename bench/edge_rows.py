#!/usr/bin/env python3
"""edge_rows.py - replay the attacks of issue 9's table against a gradd binary and print one line
per row: what was sent, what came back, how long it took (the "before/after" of the closing note).

Each row starts its own gradd (GRADD_BIN, or --gradd) with the flags the row needs, on a free
loopback port, and stops it afterwards. Nothing here asserts: the regression tests live in
tests/; this prints figures. Rows that need minutes on an unfixed gradd are bounded by timeouts
and say so.

Usage: bench/edge_rows.py [--gradd PATH] [--rows 1,2,...]
Standard library only.
"""
import argparse
import json
import os
import socket
import subprocess
import threading
import time
from benchlib import free_port

GRADD = os.environ.get("GRADD_BIN", "./gradd")


class Gradd:
    def __init__(self, *flags):
        self.port = free_port()
        self.proc = subprocess.Popen([GRADD, "--port", str(self.port), "--drain-ms", "0", *flags],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("gradd did not start")

    def rss_mib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def read_all(s, timeout):
    """Everything until close or timeout: (bytes, seconds, closed)."""
    s.settimeout(timeout)
    data, t0 = b"", time.time()
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return data, time.time() - t0, True
            data += c
    except (socket.timeout, ConnectionResetError):
        return data, time.time() - t0, False


def statuses(data):
    return [ln.split()[1] for ln in data.decode("latin-1").split("\r\n") if ln.startswith("HTTP/1.")]


def post(port, path, body, ctype="application/json", extra="", timeout=60):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        t0 = time.time()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n{extra}\r\n".encode() + body)
        data, _, _ = read_all(s, timeout)
        return data, time.time() - t0


def code(data):
    try:
        return json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"]
    except (ValueError, KeyError, IndexError):
        return ""


EVAL = json.dumps({"graph": {"nodes": [{"name": "x", "op": "input"}, {"name": "y", "op": "neg", "inputs": ["x"]}]},
                   "values": {"x": 1.0}, "target": "y"}).encode()


def row1():
    g = Gradd()
    try:
        out = []
        smuggled = b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"
        body = b"0\r\n\r\n" + smuggled
        for name, head in [("CL+TE", f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n"),
                           ("CL,CL", f"Content-Length: 5\r\nContent-Length: {len(body)}\r\n")]:
            with socket.create_connection(("127.0.0.1", g.port)) as s:
                s.sendall(f"POST /v1/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{head}\r\n"
                          .encode() + body)
                data, _, closed = read_all(s, 2)
            out.append(f"{name}: statuses {statuses(data)}{' closed' if closed else ' left open'}")
        return "; ".join(out)
    finally:
        g.stop()


def row2():
    g = Gradd("--max-body", "64M")
    socks = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", g.port))
            s.sendall(b"POST /v1/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 67108864\r\n\r\n" + b" " * 1024)
            socks.append(s)
        time.sleep(0.5)
        data, dt = post(g.port, "/v1/eval", EVAL, timeout=10)
        return f"honest POST beside 4 trickling 64M uploads: {statuses(data)} {code(data)} in {dt * 1000:.0f} ms"
    finally:
        for s in socks:
            s.close()
        g.stop()


def row3():
    g = Gradd("--max-connections", "128")
    socks = []
    try:
        for _ in range(128):
            try:
                s = socket.create_connection(("127.0.0.1", g.port), timeout=2, source_address=("127.0.0.2", 0))
                s.sendall(b"P")
                socks.append(s)
            except OSError:
                break
        time.sleep(3)
        for s in socks:
            try:
                s.sendall(b"O")
            except OSError:
                pass
        t0 = time.time()
        try:
            data, dt = post(g.port, "/v1/eval", EVAL, timeout=10)
            res = f"{statuses(data)} {code(data)} {data.split(b'Retry-After: ')[1][:1].decode() if b'Retry-After' in data else ''}"
        except OSError as e:
            res, dt = type(e).__name__, time.time() - t0
        return f"{len(socks)} trickling connections from 127.0.0.2 at a cap of 128: normal client got {res or 'nothing'} after {dt * 1000:.0f} ms"
    finally:
        for s in socks:
            s.close()
        g.stop()


def slow_eval(ms_target=3000):
    """A /v1/eval body that computes for a few seconds (chained 600x600 matmuls)."""
    nodes = [{"name": "a", "op": "input"}, {"name": "m0", "op": "broadcast_to", "inputs": ["a"], "shape": [600, 600]}]
    for i in range(1, 60):
        nodes.append({"name": f"m{i}", "op": "matmul", "inputs": [f"m{i - 1}", "m0"]})
    return json.dumps({"graph": {"nodes": nodes}, "values": {"a": 1e-3}, "target": "m59"}).encode()


def row4():
    g = Gradd("--workers", "1", "--blas-threads", "1")
    try:
        slow = slow_eval()
        t = threading.Thread(target=lambda: post(g.port, "/v1/eval", slow, timeout=120))
        t0 = time.time()
        t.start()
        time.sleep(0.2)
        req = json.loads(EVAL)
        req["deadline_ms"] = 200
        data, dt = post(g.port, "/v1/eval", json.dumps(req).encode(), timeout=120)
        t.join()
        job = time.time() - t0
        return f"deadline_ms 200 queued behind a {job:.1f} s job: {statuses(data)} {code(data)} after {dt * 1000:.0f} ms"
    finally:
        g.stop()


def row5():
    g = Gradd()
    try:
        out = []
        for path, extra in [("/nope", ""), ("/nope", "Expect: 100-continue\r\n")]:
            with socket.create_connection(("127.0.0.1", g.port)) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: 200000000\r\n{extra}\r\n".encode())
                s.settimeout(0.05)
                sent, first, t0 = 0, b"", time.time()
                chunk = b" " * 65536
                while time.time() - t0 < 3 and not first:
                    try:
                        sent += s.send(chunk)
                    except socket.timeout:
                        pass
                    except OSError:
                        break
                    try:
                        first = s.recv(4096)
                    except socket.timeout:
                        pass
                    except OSError:
                        break
            out.append(f"{'with Expect' if extra else 'plain'}: {statuses(first) or 'no answer'} after "
                       f"{sent / 1e6:.1f} MB sent")
        return "404 with a 200 MB body: " + "; ".join(out)
    finally:
        g.stop()


def row6():
    g = Gradd("--max-elements", "20000000")
    try:
        req = {"graph": {"nodes": [{"name": "a", "op": "input"},
                                   {"name": "b", "op": "broadcast_to", "inputs": ["a"], "shape": [16777216]},
                                   {"name": "s", "op": "sum", "inputs": ["b"]}]},
               "values": {"a": 1.0}, "target": "s", "deadline_ms": 1}
        data, dt = post(g.port, "/v1/eval", json.dumps(req).encode())
        req2 = {"graph": {"nodes": [{"name": "a", "op": "input"},
                                    {"name": "m", "op": "broadcast_to", "inputs": ["a"], "shape": [3000, 3000]},
                                    {"name": "p", "op": "matmul", "inputs": ["m", "m"]},
                                    {"name": "s", "op": "sum", "inputs": ["p"]}]},
                "values": {"a": 1.0}, "target": "s", "deadline_ms": 50}
        data2, dt2 = post(g.port, "/v1/eval", json.dumps(req2).encode())
        return (f"broadcast_to 16M, deadline 1 ms: {statuses(data)} after {dt * 1000:.0f} ms; "
                f"matmul 3000^2, deadline 50 ms: {statuses(data2)} after {dt2 * 1000:.0f} ms")
    finally:
        g.stop()


def row7():
    g = Gradd("--max-memory", "512M", "--max-elements", "20000000")
    try:
        req = {"graph": {"nodes": [{"name": "a", "op": "variable"},
                                   {"name": "m", "op": "broadcast_to", "inputs": ["a"], "shape": [4096, 4096]},
                                   {"name": "p", "op": "matmul", "inputs": ["m", "m"]},
                                   {"name": "q", "op": "matmul", "inputs": ["p", "m"]},
                                   {"name": "s", "op": "sum", "inputs": ["q"]}]},
               "values": {"a": 1.0}, "target": "s"}
        data, dt = post(g.port, "/v1/grad", json.dumps(req).encode(), timeout=120)
        return f"two 4096^2 matmuls + gradient under --max-memory 512M: {statuses(data)} {code(data)} after {dt:.2f} s"
    finally:
        g.stop()


def row8():
    g = Gradd()
    try:
        out = []
        for v in (10000000000000, 2 ** 53, 0):
            req = json.loads(EVAL)
            req["deadline_ms"] = v
            data, dt = post(g.port, "/v1/eval", json.dumps(req).encode())
            out.append(f"{v}: {statuses(data)} {code(data)}")
        return "deadline_ms " + "; ".join(out)
    finally:
        g.stop()


def row9():
    g = Gradd("--max-memory", "64M")
    try:
        body = b'{"pad":[' + b",".join([b"{}"] * 1300000) + b"]}"
        before = g.rss_mib()
        data, dt = post(g.port, "/v1/eval", body)
        time.sleep(0.5)
        soon = g.rss_mib()
        time.sleep(11)  # past the default --idle-trim-ms (10 s) where there is one
        return (f"{len(body) / 1e6:.1f} MB of {{}} under --max-memory 64M: {statuses(data)} {code(data)}; RSS "
                f"{before:.1f} -> peak {g.rss_mib('VmHWM'):.1f} MiB, {soon:.1f} MiB after, {g.rss_mib():.1f} MiB "
                f"11 s later")
    finally:
        g.stop()


def row10():
    g = Gradd("--max-memory", "64M")
    try:
        nodes = [{"name": "a", "op": "input"}]
        fetch = []
        for i in range(7):
            nodes.append({"name": f"b{i}", "op": "broadcast_to", "inputs": ["a"], "shape": [1000000]})
            fetch.append(f"b{i}")
        req = {"graph": {"nodes": nodes}, "values": {"a": 0.1234567890123}, "target": "b0", "fetch": fetch}
        body = json.dumps(req).encode()
        data, dt = post(g.port, "/v1/eval", body, timeout=120)
        return (f"{len(body)}-byte /v1/eval fetching 7 x 1e6 under --max-memory 64M: {statuses(data)} {code(data)}, "
                f"{len(data) / 1e6:.0f} MB answer, peak RSS {g.rss_mib('VmHWM'):.0f} MiB, {dt:.1f} s")
    finally:
        g.stop()


def row11():
    g = Gradd("--max-nodes", "20000")
    try:
        nodes = [{"name": f"node_{i:05d}", "op": "input"} for i in range(10000)]
        nodes.append({"name": "t", "op": "neg", "inputs": ["node_00000"]})
        pad = "x" * 1200
        values = {f"nodf_{i:05d}_{pad}": 1.0 for i in range(12000)}
        body = json.dumps({"graph": {"nodes": nodes}, "values": values, "target": "t"}).encode()
        data, dt = post(g.port, "/v1/eval", body, timeout=120)
        return f"{len(body) / 1e6:.0f} MB body, unknown value names on a 10,000-node graph: {statuses(data)} {code(data)} after {dt:.2f} s"
    finally:
        g.stop()


def row12():
    g = Gradd()
    try:
        nodes = [{"name": f"n{i:03d}", "op": "input"} for i in range(130)]
        nodes.append({"name": "t", "op": "neg", "inputs": ["n063x"]})
        data, _ = post(g.port, "/v1/eval", json.dumps({"graph": {"nodes": nodes}, "target": "t"}).encode())
        e = json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]
        return f"'n063x' among n000..n129: {e['code']}, suggestion {e.get('suggestion')!r} (want 'n063')"
    finally:
        g.stop()


def row13():
    g = Gradd("--max-nodes", "2000000")
    try:
        ins = ["a"] * 1000000
        body = json.dumps({"graph": {"nodes": [{"name": "a", "op": "input"},
                                               {"name": "c", "op": "concat", "inputs": ins}]},
                           "values": {"a": [1.0]}, "target": "c"}).encode()
        data, dt = post(g.port, "/v1/eval", body, timeout=120)
        return (f"concat of 10^6 inputs ({len(body) / 1e6:.0f} MB): {statuses(data)} {code(data)} after {dt:.2f} s, "
                f"peak RSS {g.rss_mib('VmHWM'):.0f} MiB")
    finally:
        g.stop()


def row14():
    g = Gradd("--conn-timeout", "5")
    try:
        with socket.create_connection(("127.0.0.1", g.port)) as s:
            t0 = time.time()
            s.sendall(b"POST /v1/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: xchunked\r\n\r\n" + EVAL)
            data, dt, closed = read_all(s, 8)
        return f"Transfer-Encoding: xchunked: {statuses(data) or 'nothing'} after {dt * 1000:.0f} ms{', closed' if closed else ''}"
    finally:
        g.stop()


def row15():
    g = Gradd()
    try:
        out = []
        for ctype, extra in [("application/x-www-form-urlencoded", ""), ("APPLICATION/JSON; charset=utf-8", ""),
                             ("text/csv", ""), ("application/json", "Content-Encoding: gzip\r\n")]:
            data, _ = post(g.port, "/v1/eval", EVAL, ctype, extra)
            out.append(f"{ctype}{' +gzip' if extra else ''}: {statuses(data)} {code(data)}")
        return "; ".join(out)
    finally:
        g.stop()


def row16():
    g = Gradd("--workers", "1", "--blas-threads", "1")
    try:
        slow = slow_eval()
        with socket.create_connection(("127.0.0.1", g.port)) as s:
            s.sendall(f"POST /v1/eval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(slow)}\r\n\r\n".encode() + slow)
            time.sleep(0.3)
        t0 = time.time()
        data, _ = post(g.port, "/v1/eval", EVAL, timeout=120)
        return f"next request after a client left a long job: {statuses(data)} after {(time.time() - t0) * 1000:.0f} ms"
    finally:
        g.stop()


ROWS = {i: globals()[f"row{i}"] for i in range(1, 17)}


def main():
    global GRADD
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradd", default=GRADD)
    ap.add_argument("--rows", default=",".join(map(str, ROWS)))
    a = ap.parse_args()
    GRADD = a.gradd
    for r in [int(x) for x in a.rows.split(",")]:
        t0 = time.time()
        try:
            res = ROWS[r]()
        except Exception as e:  # a row that breaks prints why and the run goes on
            res = f"row failed: {type(e).__name__}: {e}"
        print(f"{r:2d}  {res}  [{time.time() - t0:.1f} s]", flush=True)


if __name__ == "__main__":
    main()
