#!/usr/bin/env python3
"""scaleout.py - helpers of tests/scaleout_test.sh (standard library only).

  scaleout.py dns  --name gradd --addr-file FILE --port-file FILE
      A minimal authoritative DNS server on 127.0.0.1 (UDP): an A query for
      NAME answers one record per line of ADDR-FILE, read at every query, so
      the test can add or remove a replica the way Docker's embedded DNS does
      on `docker compose up --scale`.  Other types for NAME: no data; other
      names: NXDOMAIN.  It stands in for Docker's 127.0.0.11 so that the
      balancer runs with the very same server-template/resolvers config.

  scaleout.py render TEMPLATE OUTPUT NAME=VALUE...
      Replace ${NAME} in TEMPLATE for each NAME given, as envsubst does for
      the official nginx image's templates, leaving nginx's own $variables.

  scaleout.py load --url URL --clients N --requests N --progress FILE
      A bounded mixed load: N clients on keep-alive connections send
      /v1/grad and /v1/eval requests (small graphs, heavy matmul chains,
      misspelt ops, no-gradient cases), each with values unique to the
      request, and check every full response against the answer computed
      here.  Every request must get its correct answer: an HTTP error, a
      connection error or a wrong body is a failure.  Prints a summary;
      exit 0 only when every request succeeded.
"""

import argparse
import http.client
import json
import math
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse


# ---------------------------------------------------------------------------
# DNS
# ---------------------------------------------------------------------------

def parse_question(msg):
    """(id, flags, qname, qtype, end-offset, has-OPT) of a DNS query, or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd, _an, _ns, ar = struct.unpack("!HHHHHH", msg[:12])
    if qd != 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None
        labels.append(msg[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, pos + 4, ar > 0


def dns_answer(msg, name, addrs):
    """The response to query `msg`: A records of `addrs` for `name`."""
    q = parse_question(msg)
    if q is None:
        return None
    qid, qflags, qname, qtype, qend, has_opt = q
    question = msg[12:qend]
    known = qname.rstrip(".") == name
    answers = []
    if known and qtype == 1:
        for a in addrs:
            answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(a))
    rcode = 0 if known else 3
    # QR, AA, RD copied from the query, RA; NXDOMAIN for other names.
    flags = 0x8000 | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode
    extra = b""
    if has_opt:  # EDNS0: advertise a 4096-byte payload, as the query did
        extra = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0)
    header = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 1 if has_opt else 0)
    return header + question + b"".join(answers) + extra


def read_addrs(path):
    """The IPv4 addresses listed in `path`, one a line ('#' comments)."""
    try:
        with open(path) as f:
            return [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]
    except OSError:
        return []


def run_dns(args):
    """Serve DNS on 127.0.0.1 until --max-seconds pass; the port goes to --port-file."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % sock.getsockname()[1])
    os.rename(tmp, args.port_file)
    deadline = time.monotonic() + args.max_seconds
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            msg, peer = sock.recvfrom(4096)
        except socket.timeout:
            continue
        resp = dns_answer(msg, args.name, read_addrs(args.addr_file))
        if resp is not None:
            sock.sendto(resp, peer)
    return 0


# ---------------------------------------------------------------------------
# Template
# ---------------------------------------------------------------------------

def run_render(args):
    """Write the template with every ${NAME} replaced; a NAME without a value is an error."""
    values = {}
    for kv in args.values:
        name, sep, value = kv.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            raise SystemExit("render: expected NAME=VALUE, got %r" % kv)
        values[name] = value
    with open(args.template) as f:
        text = f.read()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", text))
    missing = sorted(used - set(values))
    if missing:
        raise SystemExit("render: no value for %s in %s" % (", ".join(missing), args.template))
    text = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lambda m: values[m.group(1)], text)
    with open(args.output, "w") as f:
        f.write(text)
    return 0


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------

HEAVY_N = 320  # B = broadcast_to(x, [N, N]); s = sum(B @ B @ B @ B)


def make_request(i):
    """(path, body bytes, checker) for request number i.  The checker takes
    (status, parsed JSON) and returns None when the answer is right, else a
    description of what is wrong."""
    kind = ("small", "small", "eval", "small", "heavy", "small", "typo", "small", "nograd", "eval")[i % 10]
    # Values unique to the request: exact in binary floating point.
    a = float(i) + 0.25
    if kind in ("small", "eval"):
        x = [a, -a, a / 2]
        t = [1.0, 2.0, -3.0]
        d = [xi - ti for xi, ti in zip(x, t)]
        nodes = [
            {"name": "x", "op": "variable", "shape": [3]},
            {"name": "t", "op": "input"},
            {"name": "two", "op": "constant", "value": 2.0},
            {"name": "d", "op": "sub", "inputs": ["x", "t"]},
            {"name": "p", "op": "pow", "inputs": ["d", "two"]},
            {"name": "loss", "op": "sum", "inputs": ["p"]},
        ]
        loss = sum(v * v for v in d)
        if kind == "small":
            body = {"graph": {"nodes": nodes}, "values": {"x": x, "t": t}, "target": "loss", "fetch": ["d"]}
            want = {"target": {"loss": loss}, "gradients": {"x": [2 * v for v in d]}, "values": {"d": d},
                    "diagnostics": []}
            path = "/v1/grad"
        else:
            body = {"graph": {"nodes": nodes}, "values": {"x": x, "t": t}, "target": "loss", "fetch": ["d", "loss"]}
            want = {"values": {"d": d, "loss": loss}, "diagnostics": []}
            path = "/v1/eval"

        def check(status, got):
            if status != 200:
                return "status %d" % status
            for k, v in want.items():
                if got.get(k) != v:
                    return "%s: got %r, want %r" % (k, got.get(k), v)
            return None
        return path, body, check
    if kind == "heavy":
        n = HEAVY_N
        xv = (i % 997 + 1) * 1e-3
        nodes = [
            {"name": "x", "op": "variable"},
            {"name": "B", "op": "broadcast_to", "shape": [n, n], "inputs": ["x"]},
            {"name": "C1", "op": "matmul", "inputs": ["B", "B"]},
            {"name": "C2", "op": "matmul", "inputs": ["C1", "B"]},
            {"name": "C3", "op": "matmul", "inputs": ["C2", "B"]},
            {"name": "s", "op": "sum", "inputs": ["C3"]},
        ]
        body = {"graph": {"nodes": nodes}, "values": {"x": xv}, "target": "s"}
        s_want = n ** 5 * xv ** 4
        g_want = 4 * n ** 5 * xv ** 3

        def check(status, got):
            if status != 200:
                return "status %d" % status
            s = got.get("target", {}).get("s")
            g = got.get("gradients", {}).get("x")
            if not isinstance(s, float) or not math.isclose(s, s_want, rel_tol=1e-9):
                return "s: got %r, want %r" % (s, s_want)
            if not isinstance(g, float) or not math.isclose(g, g_want, rel_tol=1e-9):
                return "grad x: got %r, want %r" % (g, g_want)
            return None
        return "/v1/grad", body, check
    if kind == "typo":
        # The misspelt node's index and name depend on i: a swapped answer fails.
        pad = i % 7
        nodes = [{"name": "x", "op": "variable"}]
        nodes += [{"name": "c%d_%d" % (i, k), "op": "constant", "value": a} for k in range(pad)]
        nodes.append({"name": "y%d" % i, "op": "sqaure", "inputs": ["x"]})
        body = {"graph": {"nodes": nodes}, "values": {"x": a}, "target": "y%d" % i}
        at = "$.graph.nodes[%d].op" % (pad + 1)

        def check(status, got):
            err = got.get("error", {})
            if status != 400 or err.get("code") != "unknown_op":
                return "status %d code %r" % (status, err.get("code"))
            if err.get("at") != at or err.get("suggestion") != "square" or ("y%d'" % i) not in err.get("message", ""):
                return "error %r, want at %s" % (err, at)
            return None
        return "/v1/grad", body, check
    # nograd: the only wrt is disconnected -> 422 no_gradients naming it.
    wname = "w%d" % i
    nodes = [{"name": "x", "op": "variable"}, {"name": wname, "op": "variable"},
             {"name": "y", "op": "square", "inputs": ["x"]}]
    body = {"graph": {"nodes": nodes}, "values": {"x": a, wname: a}, "target": "y", "wrt": [wname]}

    def check(status, got):
        err = got.get("error", {})
        if status != 422 or err.get("code") != "no_gradients":
            return "status %d code %r" % (status, err.get("code"))
        diags = err.get("diagnostics") or [{}]
        if diags[0].get("wrt") != wname or diags[0].get("code") != "disconnected":
            return "diagnostics %r, want disconnected %s" % (diags, wname)
        return None
    return "/v1/grad", body, check


class Load:
    """Shared state of the load run: the next request number, the results."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures = []
        self.by_status = {}
        self.latencies = []
        url = urllib.parse.urlsplit(args.url)
        self.host, self.port = url.hostname, url.port or 80

    def take(self):
        """The next request number to send (counted in flight), or None when all are taken."""
        with self.lock:
            if self.next >= self.args.requests:
                return None
            self.next += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.next - 1

    def finish(self, i, status, error, seconds):
        """Record request i's outcome; every 50 answers, publish the progress file."""
        with self.lock:
            self.in_flight -= 1
            self.done += 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.latencies.append(seconds)
            if error:
                self.failures.append("request %d (X-Request-Id sc-%d): %s" % (i, i, error))
            if self.done % 50 == 0 or self.done == self.args.requests:
                tmp = self.args.progress + ".tmp"
                with open(tmp, "w") as f:
                    f.write("%d %d\n" % (self.done, self.args.requests))
                os.rename(tmp, self.args.progress)

    def client(self):
        """One client: a keep-alive connection, requests until none are left."""
        conn = None
        while True:
            i = self.take()
            if i is None:
                break
            path, body, check = make_request(i)
            data = json.dumps(body).encode()
            t0 = time.monotonic()
            status, error = 0, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.timeout)
                conn.request("POST", path, body=data,
                             headers={"Content-Type": "application/json", "X-Request-Id": "sc-%d" % i})
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                if resp.getheader("X-Request-Id") != "sc-%d" % i:
                    error = "X-Request-Id %r" % resp.getheader("X-Request-Id")
                else:
                    error = check(status, json.loads(raw))
                if error:
                    error += " [body %s]" % raw[:300]
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ValueError) as e:
                error = "%s: %s" % (type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            self.finish(i, status, error, time.monotonic() - t0)
        if conn is not None:
            conn.close()


def run_load(args):
    """Run the clients, print a JSON summary and the first failures; 0 when all succeeded."""
    load = Load(args)
    t0 = time.monotonic()
    threads = [threading.Thread(target=load.client, daemon=True) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, args.max_seconds - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    stuck = sum(t.is_alive() for t in threads)
    lat = sorted(load.latencies)
    summary = {
        "requests": args.requests,
        "answered": load.done,
        "failures": len(load.failures),
        "by_status": {str(k): v for k, v in sorted(load.by_status.items())},
        "max_client_in_flight": load.max_in_flight,
        "seconds": round(elapsed, 2),
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
    }
    print("scaleout load: " + json.dumps(summary))
    for f in load.failures[:20]:
        print("FAIL: " + f)
    if stuck:
        print("FAIL: %d clients still running after %ds" % (stuck, args.max_seconds))
    ok = not load.failures and not stuck and load.done == args.requests
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dns")
    d.add_argument("--name", required=True)
    d.add_argument("--addr-file", required=True)
    d.add_argument("--port-file", required=True)
    d.add_argument("--port", type=int, default=0)
    d.add_argument("--max-seconds", type=float, default=600)
    r = sub.add_parser("render")
    r.add_argument("template")
    r.add_argument("output")
    r.add_argument("values", nargs="*", metavar="NAME=VALUE")
    ld = sub.add_parser("load")
    ld.add_argument("--url", required=True)
    ld.add_argument("--clients", type=int, default=16)
    ld.add_argument("--requests", type=int, default=4000)
    ld.add_argument("--progress", required=True)
    ld.add_argument("--timeout", type=float, default=60)
    ld.add_argument("--max-seconds", type=float, default=300)
    args = p.parse_args()
    return {"dns": run_dns, "render": run_render, "load": run_load}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
