"""Fixtures: a live gradd (GRADD_BIN, or GRADD_URL for one already running) and clients.

The package is imported from the source tree (clients/python), never from an
installed copy.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gradd  # noqa: E402

TOKEN = "s3cret"


class Server:
    def __init__(self, *flags):
        gradd_bin = os.environ.get("GRADD_BIN")
        if not gradd_bin:
            pytest.skip("set GRADD_BIN to a gradd binary")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([gradd_bin, "--port", str(self.port), "--workers", "1", "--blas-threads", "1",
                                      "--drain-ms", "0", *flags], stdout=self.log, stderr=self.log)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.log.seek(0)
        raise RuntimeError("gradd did not start:\n" + self.log.read().decode(errors="replace"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    tok = tmp_path_factory.mktemp("tok") / "token"
    tok.write_text(TOKEN + "\n")
    s = Server("--token-file", str(tok))
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = gradd.Client(server.url)
    yield c
    c.close()
