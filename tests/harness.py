"""harness.py - what the Python tests that start gradd themselves share (tests/tls_test.py,
tests/ui_test.py, tests/ui_browser.py, tests/explain_test.py): a gradd on a free loopback port, checks that print
`ok`/`FAIL` lines, and plain HTTP calls. Standard library only."""
import http.client
import os
import socket
import subprocess
import time

GRADD = os.environ.get("GRADD_BIN", "./gradd")
SCALE = float(os.environ.get("GD_TEST_TIME_SCALE", "1") or 1)
SRCDIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FAILS = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gradd:
    """gradd with extra flags on a free port; stop() checks that it exits 0 on SIGTERM."""

    def __init__(self, d, *flags, env=None, workers=1):
        self.port = free_port()
        self.log = open(os.path.join(d, f"gradd-{self.port}.log"), "w+")
        self.flags = ["--port", str(self.port), "--workers", str(workers), "--drain-ms", "0", *flags]
        self.proc = subprocess.Popen([GRADD, *self.flags], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + 10 * SCALE
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("gradd exited at startup:\n" + self.logtext())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("gradd did not listen:\n" + self.logtext())

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def request(self, method, path, body=None, headers=None):
        """(status, {lower-case header: value}, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SCALE)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(10 * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        check(rc == 0, f"gradd {' '.join(self.flags[6:])} exits 0 after SIGTERM (got {rc})"
              + ("" if rc == 0 else ":\n" + self.logtext()[-3000:]))
        self.log.close()
