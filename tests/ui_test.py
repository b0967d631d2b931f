#!/usr/bin/env python3
"""ui_test.py - the playground page of GET / (contract A4) over plain HTTP.

  - GET / is 200 text/html, served without the token under --token-file (the page holds no
    data; its calls to /v1/* carry the token typed into it), with the CORS headers of
    --cors-origin like every answer, and a Content-Security-Policy whose hashes are those of the
    page's one inline script and style and which allows calls to gradd's own origin only;
  - the page names no external URL and loads nothing (no src, no href but data:, no @import);
  - its examples are the documentation's /v1/grad examples (scripts/embed_ui.py --examples),
    and among them are a gradient, a 400 error and every no-gradient diagnostic code;
  - HEAD / has the headers without the body, OPTIONS / 204, POST / 405;
  - --no-ui (or GRADD_NO_UI=1) makes / 404 not_found while the API still serves; a value given
    to --no-ui, or a GRADD_NO_UI that is not a boolean, stops gradd with exit 2.
The page in a real browser: tests/ui_browser.py. GRADD_BIN names gradd (make check sets it).
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAILS, GRADD, SRCDIR, Gradd, check  # noqa: E402

sys.path.insert(0, os.path.join(SRCDIR, "scripts"))
import embed_ui  # noqa: E402

CORS = "https://app.example.com"
NO_GRADIENT_CODES = {"disconnected", "stop_gradient", "non_differentiable", "untaken_branch", "mixed",
                     "integer_dtype", "zero_gradient", "non_finite_gradient", "non_finite_value"}


def inline(html, tag):
    return [m.group(2) for m in re.finditer(rf"<{tag}(\s[^>]*)?>(.*?)</{tag}>", html, re.S)
            if not (tag == "script" and m.group(1) and "type=" in m.group(1))]


def check_page(g):
    status, h, body = g.request("GET", "/")
    check(status == 200, f"GET / is 200 (got {status})")
    check(h.get("content-type") == "text/html; charset=utf-8", f"GET / is text/html (got {h.get('content-type')})")
    html = body.decode("utf-8")
    check(html.startswith("<!doctype html>") and "</html>" in html, "GET / is a whole HTML document")
    check(int(h.get("content-length", -1)) == len(body), "Content-Length is the page's length")
    check(h.get("x-content-type-options") == "nosniff", "X-Content-Type-Options: nosniff")

    # No external URL, nothing loaded from anywhere.
    ext = re.findall(r"(?i)\b(?:https?|wss?|ftp):|(?:src|href|action)\s*=\s*[\"']?//|@import", html)
    ext += re.findall(r"\burl\(", html)  # CSS; the script's URL.createObjectURL( is no fetch
    check(not ext, f"the page names no external URL ({ext[:5]})")
    refs = re.findall(r"(?i)\b(?:src|href)\s*=\s*[\"']([^\"']*)", html)
    check(all(r.startswith("data:") for r in refs), f"every src/href is data: ({refs})")
    check("@EXAMPLES@" not in html, "the examples placeholder was filled in")

    # The CSP: exactly the page's inline script and style, and its own origin.
    csp = dict((d.strip().split(" ", 1) + [""])[:2] for d in h.get("content-security-policy", "").split(";"))
    def hashes(tag):
        return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                        for s in inline(html, tag))
    check(csp.get("default-src") == "'none'", f"CSP default-src 'none' ({csp})")
    check(csp.get("script-src") == hashes("script"), "CSP script-src is the hash of the page's inline script")
    check(csp.get("style-src") == hashes("style"), "CSP style-src is the hash of the page's inline style")
    check(csp.get("connect-src") == "'self'", "CSP connect-src 'self': the page calls its own gradd only")

    # The examples are the documentation's, verbatim.
    m = re.search(r'<script type="application/json" id="examples">(.*?)</script>', html, re.S)
    shown = json.loads(m.group(1)) if m else None
    want = embed_ui.examples(SRCDIR)
    check(shown == want and len(want) >= 10, f"the page's {len(shown or [])} examples are the documentation's "
          f"{len(want)} /v1/grad examples")
    return shown or []


def check_examples(g, examples):
    """Among the examples: a gradient, a 400 error, every no-gradient diagnostic."""
    statuses, codes = set(), set()
    for ex in examples:
        status, _, body = g.request("POST", "/v1/grad", ex["request"].encode(), {"Content-Type": "application/json"})
        statuses.add(status)
        doc = json.loads(body)
        diags = doc.get("diagnostics", []) + doc.get("error", {}).get("diagnostics", [])
        codes |= {d["code"] for d in diags}
        if status == 200 and any(v is not None for v in doc.get("gradients", {}).values()):
            statuses.add("gradient")
    check({"gradient", 400, 422} <= statuses, f"the examples give a gradient, a 400 and a 422 ({statuses})")
    check(NO_GRADIENT_CODES <= codes, f"the examples show every diagnostic code (missing: {NO_GRADIENT_CODES - codes})")


def check_methods(g):
    status, h, body = g.request("HEAD", "/")
    check(status == 200 and body == b"" and h.get("content-type", "").startswith("text/html"),
          f"HEAD / is 200 text/html without a body (got {status}, {len(body)} bytes)")
    status, h, _ = g.request("OPTIONS", "/")
    check(status == 204 and h.get("allow") == "GET, HEAD, OPTIONS", f"OPTIONS / is 204 with Allow ({status}, {h})")
    status, h, body = g.request("POST", "/", b"{}", {"Content-Type": "application/json"})
    check(status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed",
          f"POST / is 405 method_not_allowed (got {status})")
    status, _, body = g.request("GET", "/metrics")
    check('gradd_requests_total{route="/",status="200"}' in body.decode(), "/metrics counts GET / under route=\"/\"")


def check_token_and_cors(d):
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("s3cret\n")
    g = Gradd(d, "--token-file", token, "--cors-origin", CORS)
    try:
        status, h, _ = g.request("GET", "/")
        check(status == 200, f"under --token-file GET / is served without the token (got {status})")
        check(h.get("access-control-allow-origin") == CORS, f"GET / carries --cors-origin's header ({h})")
        status, _, _ = g.request("POST", "/v1/grad", b"{}")
        check(status == 401, f"under --token-file /v1/grad still needs the token (got {status})")
    finally:
        g.stop()


def check_no_ui(d, *flags, env=None):
    g = Gradd(d, *flags, env=env)
    how = " ".join(flags) or " ".join(f"{k}={v}" for k, v in env.items())
    try:
        for method in ("GET", "HEAD"):
            status, h, body = g.request(method, "/")
            check(status == 404, f"{how}: {method} / is 404 (got {status})")
        status, h, body = g.request("GET", "/")
        check(json.loads(body)["error"]["code"] == "not_found", f"{how}: GET / is the JSON error not_found")
        status, _, _ = g.request("POST", "/v1/grad", b'{"graph": {"nodes": [{"name": "x", "op": "variable"}]}, '
                                 b'"values": {"x": 2}, "target": "x"}')
        check(status == 200, f"{how}: /v1/grad still serves (got {status})")
    finally:
        g.stop()


def check_bad_settings():
    for args, env in (([ "--no-ui=1"], {}), ([], {"GRADD_NO_UI": "maybe"})):
        r = subprocess.run([GRADD, "--port", "0", *args], env={**os.environ, **env}, capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 2 and ("--no-ui" in r.stderr or "GRADD_NO_UI" in r.stderr),
              f"{args or env} stops gradd with exit 2 naming the setting (got {r.returncode}: {r.stderr.strip()})")
    r = subprocess.run([GRADD, "--help"], capture_output=True, text=True, timeout=20)
    check("--no-ui" in r.stdout and "GRADD_NO_UI" in r.stdout, "--help documents --no-ui")


def main():
    with tempfile.TemporaryDirectory(prefix="ui_test.") as d:
        g = Gradd(d)
        try:
            examples = check_page(g)
            check_examples(g, examples)
            check_methods(g)
        finally:
            g.stop()
        check_token_and_cors(d)
        check_no_ui(d, "--no-ui")
        check_no_ui(d, env={"GRADD_NO_UI": "1"})
        g = Gradd(d, env={"GRADD_NO_UI": "0"})
        try:
            check(g.request("GET", "/")[0] == 200, "GRADD_NO_UI=0 serves the page")
        finally:
            g.stop()
        check_bad_settings()
    if FAILS:
        print(f"ui_test: {len(FAILS)} check(s) failed")
        return 1
    print("ui_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
