#!/usr/bin/env python3
"""tls_test.py - gradd over HTTPS (--tls-cert/--tls-key) and mutual TLS (--tls-client-ca).

The test makes its own certificate authority, a server certificate for 127.0.0.1 and client
certificates (one from that authority, one from a stranger) with the openssl command, starts
gradd with them and talks to it with Python's ssl module:
  - a /v1/grad answer over HTTPS, verified against the test's CA; a client that does not trust
    the CA fails the handshake; plain HTTP on the TLS port gets no HTTP answer;
  - `gradd --healthcheck` speaks TLS when --tls-cert is set;
  - with --tls-client-ca: /v1/* without a client certificate, or with one from another CA, is
    401 `unauthorized`; with the CA's client certificate it is served; /healthz stays open;
  - bad combinations and bad files stop gradd at startup with exit 2 and a message naming the flag.
Exit 77 (skip) when openssl is missing, except under CI=true, where that is a failure.
GRADD_BIN names the gradd binary (make check sets it).
"""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAILS, GRADD, SCALE, Gradd, check, free_port  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)


def make_cert(d, name, ca, ext):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def context(d, trust=True, cert=None):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem") if trust else None)
    if not trust:
        ctx.load_verify_locations(cafile=os.path.join(d, "stranger.pem"))
    if cert:
        ctx.load_cert_chain(os.path.join(d, f"{cert}.pem"), os.path.join(d, f"{cert}.key"))
    return ctx


GRAD = {"graph": {"nodes": [{"name": "x", "op": "variable"}, {"name": "y", "op": "square", "inputs": ["x"]}]},
        "values": {"x": 3.0}, "target": "y"}


def request(g, ctx, method="POST", path="/v1/grad", body=GRAD):
    c = http.client.HTTPSConnection("127.0.0.1", g.port, context=ctx, timeout=10 * SCALE)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def startup_fails(d, flags, words):
    p = subprocess.run([GRADD, "--port", str(free_port()), *flags], capture_output=True, text=True,
                       timeout=20 * SCALE)
    check(p.returncode == 2 and all(w in p.stderr for w in words),
          f"gradd {' '.join(flags)} exits 2 naming {words} (rc {p.returncode}: {p.stderr.strip()[:200]})")


def main():
    if not shutil.which("openssl"):
        if os.environ.get("CI") == "true":
            print("tls_test: FAIL: openssl is not installed (scripts/install-deps.sh installs it)")
            return 1
        print("tls_test: SKIP: openssl is not installed")
        return 77
    d = tempfile.mkdtemp(prefix="gradd-tls-")
    try:
        make_ca(d, "ca")
        make_ca(d, "stranger")
        make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
        make_cert(d, "intruder", "stranger", "extendedKeyUsage=clientAuth")
        pem = lambda n: os.path.join(d, n)  # noqa: E731
        tls = ["--tls-cert", pem("server.pem"), "--tls-key", pem("server.key")]

        g = Gradd(d, *tls)
        try:
            st, body = request(g, context(d))
            check(st == 200 and json.loads(body)["gradients"]["x"] == 6.0,
                  f"POST /v1/grad over HTTPS: 200 with d(x^2)/dx = 6 (got {st} {body[:120]!r})")
            st, body = request(g, context(d), "GET", "/healthz", None)
            check(st == 200, f"GET /healthz over HTTPS: 200 (got {st})")
            try:
                request(g, context(d, trust=False))
                check(False, "a client that does not trust the CA fails the handshake")
            except ssl.SSLCertVerificationError:
                check(True, "a client that does not trust the CA fails the handshake")
            c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=5 * SCALE)
            try:
                c.request("GET", "/healthz")
                got = c.getresponse().status
            except (http.client.HTTPException, OSError) as e:
                got = type(e).__name__
            finally:
                c.close()
            check(got != 200, f"plain HTTP on the HTTPS port gets no answer (got {got})")
            p = subprocess.run([GRADD, "--healthcheck", "--port", str(g.port), *tls], capture_output=True,
                               text=True, timeout=20 * SCALE)
            check(p.returncode == 0 and "healthy" in p.stdout,
                  f"gradd --healthcheck over TLS: exit 0 (got {p.returncode}: {(p.stdout + p.stderr).strip()})")
            p = subprocess.run([GRADD, "--healthcheck", "--port", str(g.port)], capture_output=True, text=True,
                               timeout=20 * SCALE)
            check(p.returncode == 1, f"gradd --healthcheck without --tls-cert on an HTTPS port: exit 1 "
                                     f"(got {p.returncode}: {(p.stdout + p.stderr).strip()})")
            time.sleep(0.2)
            check("listening on https://127.0.0.1:" in g.logtext(), "the startup line says https://")
        finally:
            g.stop()

        g = Gradd(d, *tls, "--tls-client-ca", pem("ca.pem"))
        try:
            st, body = request(g, context(d, cert="client"))
            check(st == 200, f"mutual TLS, the CA's client certificate: 200 (got {st} {body[:120]!r})")
            st, body = request(g, context(d))
            err = json.loads(body).get("error", {}) if body.startswith(b"{") else {}
            check(st == 401 and err.get("code") == "unauthorized" and "client certificate" in err.get("message", ""),
                  f"mutual TLS, no client certificate: 401 unauthorized (got {st} {body[:160]!r})")
            try:
                st, body = request(g, context(d, cert="intruder"))
            except (ssl.SSLError, OSError) as e:
                st, body = type(e).__name__, b""
            check(st != 200, f"mutual TLS, a certificate from another CA: refused (got {st} {body[:120]!r})")
            st, _ = request(g, context(d), "GET", "/healthz", None)
            check(st == 200, f"mutual TLS: /healthz needs no client certificate (got {st})")
            st, _ = request(g, context(d), "GET", "/v1/ops", None)
            check(st == 401, f"mutual TLS: GET /v1/ops without a client certificate is 401 (got {st})")
        finally:
            g.stop()

        startup_fails(d, ["--tls-cert", pem("server.pem")], ["--tls-key"])
        startup_fails(d, ["--tls-client-ca", pem("ca.pem")], ["--tls-client-ca", "--tls-cert"])
        startup_fails(d, ["--tls-cert", pem("server.pem"), "--tls-key", pem("client.key")],
                      ["--tls-cert", "--tls-key", "client.key"])
        startup_fails(d, ["--tls-cert", pem("nonexistent.pem"), "--tls-key", pem("server.key")],
                      ["--tls-cert", "nonexistent.pem"])
        startup_fails(d, [*tls, "--tls-client-ca", pem("server.ext")], ["--tls-client-ca", "server.ext"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"tls_test: {'FAILED: ' + '; '.join(FAILS) if FAILS else 'all checks passed'}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
