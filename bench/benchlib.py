"""benchlib.py - what the bench scripts share: a free loopback port, and a
gradd started on one and waited for. Standard library only."""
import os
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gradd(binary, *flags, env=None, wait_s=10.0):
    """(process, port): gradd with `flags` on a free loopback port, its output
    discarded (text logs), once it accepts connections; SystemExit when it
    exits first or does not listen within wait_s."""
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, GRADD_LOG_FORMAT="text", **(env or {})))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{binary} exited at startup (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{binary} did not listen on port {port} within {wait_s:g} s")
