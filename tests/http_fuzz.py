#!/usr/bin/env python3
"""http_fuzz.py - gradd's HTTP edge under mutated requests, over raw sockets.

Starts GRADD (meant to be the ASan/UBSan build) on a free loopback port and,
for SECONDS, sends it requests built from valid ones (GET /healthz, /v1/ops,
/metrics, OPTIONS, POST /v1/grad and /v1/eval with JSON, chunked and binary-
framed bodies) and then mutated: request lines (methods, targets, versions,
spacing), headers (duplicated, dropped, folded, bare LF, NUL, huge, every
framing header with odd values: Content-Length, Transfer-Encoding, Expect,
Content-Type, Gradd-Json-Length, Connection), chunked framing (sizes,
extensions, trailers, missing terminator), bodies (flips, truncation,
extension), pipelining, sending in small pieces, half-closing, and plain byte
mutations of the whole request. Several client threads run at once.

What it asserts, and nothing more (other parts of the HTTP rules are being
changed, and have their own tests):
  - no crash: gradd is alive throughout, and exits 0 on SIGTERM at the end;
  - no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan's "runtime
    error:") in gradd's output;
  - no hang: every connection is answered or closed within a timeout
    (gradd's --conn-timeout plus a margin, stretched by GD_TEST_TIME_SCALE);
  - what gradd sends first on a connection is a well-formed status line
    (HTTP/1.x, a 3-digit status 100-599, a reason, CRLF);
  - GET /healthz answers 200 every few seconds and at the end.
A failure prints the request that exposed it (repr of the bytes) and the seed.

Usage: http_fuzz.py GRADD [--seconds N] [--seed S] [--threads T]
(scripts/test.sh runs it against build-asan/gradd for 60 s). Standard library
only.
"""
import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9] [^\r\n]*\r\n")
SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: \w+Sanitizer")
CONN_TIMEOUT = 2  # gradd's --conn-timeout, seconds
BINARY = b"application/vnd.gradd.v1+binary"

GRAD = (b'{"graph":{"nodes":[{"name":"x","op":"variable","shape":[3]},{"name":"t","op":"input"},'
        b'{"name":"d","op":"sub","inputs":["x","t"]},{"name":"p","op":"mul","inputs":["d","d"]},'
        b'{"name":"loss","op":"sum","inputs":["p"]}]},"values":{"x":[1,2,3],"t":[0,1,0]},"target":"loss"}')
EVAL = (b'{"graph":{"nodes":[{"name":"a","op":"input"},{"name":"b","op":"exp","inputs":["a"]}]},'
        b'"values":{"a":[[0,1],[2,3]]},"target":"b","tensor_format":"flat"}')
BIN_JSON = (b'{"graph":{"nodes":[{"name":"x","op":"variable"},{"name":"s","op":"sum","inputs":["x"]}]},'
            b'"values":{"x":{"shape":[2],"dtype":"float64","offset":0,"nbytes":16}},"target":"s",'
            b'"tensor_format":"binary"}')
BIN_SEC = b"\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x40"

METHODS = [b"GET", b"POST", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"PATCH", b"TRACE", b"CONNECT",
           b"get", b"P0ST", b"", b"GET GET", b"\x00", b"A" * 300]
TARGETS = [b"/v1/grad", b"/v1/eval", b"/v1/ops", b"/healthz", b"/readyz", b"/metrics", b"/", b"*",
           b"/v1/grad?x=1", b"/v1/grad#f", b"/v1//grad", b"/v1/grad/", b"/%00", b"/v1/%67rad",
           b"http://localhost/v1/grad", b"/" + b"a" * 9000, b"/../../etc/passwd", b"", b"/\xff\xfe"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/1.10", b"http/1.1",
            b"HTTP/1", b"", b"HTTP/1.1\x00", b"HTTP/9.9"]
NAMES = [b"Content-Length", b"Transfer-Encoding", b"Content-Type", b"Gradd-Json-Length", b"Expect",
         b"Connection", b"Authorization", b"Host", b"Origin", b"Accept", b"Content-Encoding",
         b"Access-Control-Request-Method", b"X-Request-Id", b"Upgrade", b"TE", b"Trailer"]
VALUES = {
    b"Content-Length": [b"0", b"-1", b"+5", b"5 ", b" 5", b"0x10", b"1e3", b"18446744073709551616",
                        b"99999999999", b"4294967297", b"", b"1,1", b"abc", b"67108865"],
    b"Transfer-Encoding": [b"chunked", b"xchunked", b"chunked, identity", b"identity", b"gzip, chunked",
                           b"CHUNKED", b" chunked", b"chunked\x0b", b"", b"compress"],
    b"Content-Type": [b"application/json", BINARY, BINARY + b"; x=1", b"text/csv",
                      b"application/x-www-form-urlencoded", b"", b"application/json; charset=utf-8",
                      b"multipart/form-data; boundary=x", b"application/vnd.gradd.v1+binaryX"],
    b"Gradd-Json-Length": [b"0", b"-1", b"+1", b"99999999999999999999", b"abc", b"", b"1 ", b"5"],
    b"Expect": [b"100-continue", b"100-Continue", b"200-ok", b""],
    b"Connection": [b"close", b"keep-alive", b"upgrade", b"", b"close, close"],
    b"Authorization": [b"Bearer x", b"Bearer", b"Basic Zm9vOmJhcg==", b"Bearer " + b"t" * 5000],
}


def build(method, target, version, headers, body):
    head = method + b" " + target + (b" " + version if version else b"") + b"\r\n"
    head += b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    return head + b"\r\n" + body


def chunked(body, rng):
    out, i = b"", 0
    while i < len(body):
        n = rng.randint(1, max(1, len(body) - i))
        out += b"%x\r\n" % n + body[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


def base_request(rng):
    """A valid request: (method, target, version, headers, body)."""
    kind = rng.randrange(7)
    host = [(b"Host", b"127.0.0.1")]
    if kind == 0:
        return b"GET", rng.choice([b"/healthz", b"/readyz", b"/v1/ops", b"/metrics"]), b"HTTP/1.1", host, b""
    if kind == 1:
        return b"OPTIONS", b"/v1/grad", b"HTTP/1.1", host + [(b"Origin", b"https://a.example")], b""
    body, path, ct = (GRAD, b"/v1/grad", b"application/json") if kind in (2, 5) else (EVAL, b"/v1/eval", b"application/json")
    if kind == 4:
        hs = host + [(b"Content-Type", BINARY), (b"Gradd-Json-Length", b"%d" % len(BIN_JSON)),
                     (b"Content-Length", b"%d" % (len(BIN_JSON) + len(BIN_SEC)))]
        return b"POST", b"/v1/grad", b"HTTP/1.1", hs, BIN_JSON + BIN_SEC
    if kind == 5:
        return b"POST", path, b"HTTP/1.1", host + [(b"Content-Type", ct), (b"Transfer-Encoding", b"chunked")], chunked(body, rng)
    if kind == 6:
        return b"POST", path, b"HTTP/1.0", [(b"Content-Length", b"%d" % len(body))], body
    return b"POST", path, b"HTTP/1.1", host + [(b"Content-Type", ct), (b"Content-Length", b"%d" % len(body))], body


def mutate_bytes(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(i, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[i:i] = bytes([rng.choice([0, 9, 10, 13, 32, 58, 0x7f, 0xff, rng.randrange(256)])])
        elif op == 2 and data:
            del data[i:i + rng.randint(1, 16)]
        elif op == 3 and data:
            j = rng.randrange(len(data))
            data[i:i] = data[j:j + rng.randint(1, 64)]
        elif op == 4:
            data[i:i] = rng.choice([b"\r\n", b"\n", b"\r", b"\r\n\r\n", b": ", b"0\r\n\r\n", b"GET / HTTP/1.1\r\n"])
        else:
            del data[i:]
    return bytes(data)


def make_request(rng):
    """Bytes to send and whether to half-close the connection after them."""
    method, target, version, headers, body = base_request(rng)
    headers = list(headers)
    how = rng.randrange(10)
    if how == 0:
        method, target, version = rng.choice(METHODS), rng.choice(TARGETS), rng.choice(VERSIONS)
    elif how == 1:
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(NAMES)
            headers.insert(rng.randrange(len(headers) + 1),
                           (rng.choice([name, name.lower(), name.upper(), name + b" ", b" " + name]),
                            rng.choice(VALUES.get(name, [b"x", b""]))))
    elif how == 2 and headers:
        del headers[rng.randrange(len(headers))]
    elif how == 3:
        fold = rng.choice([(b"X-A", b"1\r\n folded"), (b"X-B", b"1\r\n\tfolded"), (b"No colon here", b""),
                           (b"X-Nul", b"a\x00b"), (b"X-Big", b"v" * rng.choice([100, 8000, 70000])),
                           (b"", b"empty name"), (b"X-Bare", b"1\nX-C: 2")])
        headers.insert(rng.randrange(len(headers) + 1), fold)
    elif how == 4:
        # Framing: both lengths, or a chunked body with odd chunks.
        body = rng.choice([body, body[:len(body) // 2], body + b"GET /healthz HTTP/1.1\r\n\r\n"])
        if rng.random() < 0.5:
            headers.append((b"Transfer-Encoding", rng.choice(VALUES[b"Transfer-Encoding"])))
            body = rng.choice([b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"ffffffffffffffffff\r\n",
                               b"5\r\nhel", b"0\r\nTrailer: x\r\n\r\n", b"-1\r\n", b"5\r\nhello\r\n",
                               b"\r\n0\r\n\r\n", chunked(GRAD, rng)])
        else:
            headers.append((b"Content-Length", rng.choice(VALUES[b"Content-Length"])))
    elif how == 5:
        headers.append((b"Expect", b"100-continue"))
    data = build(method, target, version, headers, body)
    if how == 6:
        data = data + build(*base_request(rng))  # pipelined
    elif how >= 7:
        data = mutate_bytes(data, rng)
    return data, rng.random() < 0.5


class Failure(Exception):
    pass


def exchange(port, data, half_close, rng, limit):
    """Send data (maybe in pieces), then read until a status line, EOF or an error.
    Returns the first bytes received; raises Failure on a hang."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    try:
        s.settimeout(limit)
        try:
            if rng.random() < 0.2:
                i = 0
                while i < len(data):
                    n = rng.randint(1, 64)
                    s.sendall(data[i:i + n])
                    i += n
                    time.sleep(0.001)
            else:
                s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # gradd may answer and close before reading everything
        got, start = b"", time.monotonic()
        while b"\r\n" not in got and len(got) < 4096:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                raise Failure(f"no answer and no close within {limit:.0f}s "
                              f"({time.monotonic() - start:.1f}s waited, got {got[:200]!r})")
            except OSError:
                break  # reset: closed
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def healthz(port, limit):
    got = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False,
                   random.Random(0), limit)
    return got.startswith(b"HTTP/1.1 200 ")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gradd")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    scale = max(1.0, float(os.environ.get("GD_TEST_TIME_SCALE", "1") or 1))
    limit = (CONN_TIMEOUT + 10) * scale
    print(f"http_fuzz: seed {seed}, {args.seconds:.0f}s, {args.threads} threads, answer-or-close limit {limit:.0f}s")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.NamedTemporaryFile(prefix="http_fuzz-", suffix=".log", delete=False)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    proc = subprocess.Popen([args.gradd, "--port", str(port), "--workers", "2", "--conn-timeout", str(CONN_TIMEOUT),
                             "--max-body", "1M", "--max-memory", "64M", "--deadline-ms", "2000",
                             "--drain-ms", "0", "--grace-ms", "5000"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    failures = []
    counts = {"sent": 0, "answered": 0, "closed": 0}
    lock = threading.Lock()

    def log_text():
        with open(log.name, errors="replace") as f:
            return f.read()

    def fail(msg):
        with lock:
            failures.append(msg)

    try:
        for _ in range(int(200 * scale)):
            try:
                if healthz(port, limit):
                    break
            except (OSError, Failure):
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            raise Failure("gradd did not answer /healthz at start")
        end = time.monotonic() + args.seconds

        def worker(k):
            rng = random.Random(seed * 1000 + k)
            while time.monotonic() < end and not failures:
                data, half = make_request(rng)
                try:
                    got = exchange(port, data, half, rng, limit)
                except Failure as e:
                    fail(f"{e}\n  request: {data[:600]!r}")
                    return
                except OSError as e:
                    if proc.poll() is not None:
                        fail(f"gradd died (exit {proc.returncode}) after request: {data[:600]!r}")
                        return
                    if isinstance(e, ConnectionRefusedError):
                        fail(f"connection refused: {e}")
                        return
                    continue
                with lock:
                    counts["sent"] += 1
                    counts["answered" if got else "closed"] += 1
                if got and not STATUS_LINE.match(got):
                    fail(f"not a status line: {got[:200]!r}\n  request: {data[:600]!r}")
                    return

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.threads)]
        for t in threads:
            t.start()
        next_probe = time.monotonic() + 5
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if proc.poll() is not None:
                fail(f"gradd died (exit {proc.returncode})")
                break
            if time.monotonic() >= next_probe and not failures:
                next_probe = time.monotonic() + 5
                try:
                    if not healthz(port, limit):
                        fail("GET /healthz did not answer 200 during the run")
                except (OSError, Failure) as e:
                    fail(f"GET /healthz failed during the run: {e}")
        for t in threads:
            t.join(limit + 5)
        if not failures:
            try:
                if not healthz(port, limit):
                    fail("GET /healthz did not answer 200 at the end")
            except (OSError, Failure) as e:
                fail(f"GET /healthz failed at the end: {e}")
    except Failure as e:
        fail(str(e))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60 * scale)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                fail("gradd did not exit within 60s of SIGTERM")
        if proc.returncode != 0 and not any("died" in f for f in failures):
            fail(f"gradd exited with status {proc.returncode} after SIGTERM")
    text = log_text()
    m = SANITIZER.search(text)
    if m:
        i = max(0, m.start() - 200)
        fail("sanitizer report in gradd's output:\n" + text[i:i + 6000])
    print(f"http_fuzz: {counts['sent']} connections: {counts['answered']} answered, {counts['closed']} closed unanswered")
    if failures:
        for f in failures:
            print("http_fuzz: FAIL: " + f)
        print(f"http_fuzz: gradd's log: {log.name}; rerun with --seed {seed}")
        return 1
    os.unlink(log.name)
    print("http_fuzz: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
