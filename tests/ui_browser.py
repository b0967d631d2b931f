#!/usr/bin/env python3
"""ui_browser.py - the playground page (GET /, contract A4) in a real browser.

Starts gradd (with --token-file and --cors-origin, as a guarded deployment would) and Debian's
chromium headless (--headless=new; --no-sandbox when run as root), and drives it over the
Chrome DevTools Protocol with a small WebSocket client of its own (standard library only). It
loads the page from gradd and, using the keyboard where a user would:

  - checks the focus order (example, editor, token, Run) and that every control has a label;
  - runs an example without the token: the page says to fill the token field (401);
  - types the token and runs three of the documentation's examples: a gradient (README's first
    request: the gradient of x shown, b's stop_gradient diagnostic with its hint), a no-gradient
    diagnostic (README's argmax: 422, non_differentiable, its path and hint) and a 400 error
    (docs/api.md's misspelt op: the error's `at`, $.graph.nodes[1].op, selected in the editor
    and marked in the error box), and a request that is not JSON (its line and column marked);
  - shows the picture of POST /v1/explain, or says it is unavailable when gradd answers 404;
  - fits a phone's width (390 CSS pixels) without horizontal scrolling;
  - logged no console error, warning or uncaught exception, and fetched nothing but gradd's own
    origin (the expected 4xx answers of the API excepted from Chrome's network log).
Screenshots go to ui-screenshots/ in the current directory (the build directory under make
check), or to $UI_SCREENSHOTS. The whole test is bounded by 120 s x GD_TEST_TIME_SCALE.
Exit 77 (skip) when chromium is missing or cannot start, except under CI=true, where that
fails. GRADD_BIN names gradd; CHROMIUM names the browser (default: chromium on PATH).
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAILS, SCALE, SRCDIR, Gradd, check  # noqa: E402

sys.path.insert(0, os.path.join(SRCDIR, "scripts"))
import embed_ui  # noqa: E402

TOKEN = "s3cret"
CORS = "https://app.example.com"
SHOTS = os.environ.get("UI_SCREENSHOTS") or os.path.join(os.getcwd(), "ui-screenshots")


class Skip(Exception):
    pass


# ---- a WebSocket client (RFC 6455), just what CDP needs ------------------------------------------

class WebSocket:
    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("WebSocket handshake refused: " + head.decode(errors="replace"))

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the browser closed the DevTools connection")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 \
            else bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        rep = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big") if n else b""
        self.sock.sendall(head + mask + masked)

    def send(self, text):
        self._frame(0x1, text.encode())

    def recv(self, timeout):
        """The next text message (fragments joined); answers pings."""
        self.sock.settimeout(timeout)
        parts = []
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._take(2), "big")
            elif n == 127:
                n = int.from_bytes(self._take(8), "big")
            payload = self._take(n)  # servers do not mask
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._frame(0xA, payload)
            elif opcode == 0x8:
                raise RuntimeError("the browser closed the DevTools connection")
            elif opcode in (0x0, 0x1):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()


class CDP:
    """Commands and events of one DevTools target."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url, 10 * SCALE)
        self.next_id = 0
        self.events = []

    def call(self, method, timeout=30, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.time() + timeout * SCALE
        while True:
            msg = json.loads(self.ws.recv(max(0.1, deadline - time.time())))
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout * SCALE
        seen = 0
        while True:
            for e in self.events[seen:]:
                if e["method"] == name:
                    return e
            seen = len(self.events)
            msg = json.loads(self.ws.recv(max(0.1, deadline - time.time())))
            if "method" in msg:
                self.events.append(msg)

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def key(self, key, code, vk, modifiers=0, text=None):
        down = {"type": "keyDown", "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "modifiers": modifiers}
        if text is not None:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", **down)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk,
                  modifiers=modifiers)

    def click(self, element_id):
        box = self.js(f"(() => {{ const e = document.getElementById({json.dumps(element_id)}); "
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=t, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        path = os.path.join(SHOTS, name + ".png")
        with open(path, "wb") as f:
            f.write(png)
        check(png.startswith(b"\x89PNG") and len(png) > 5000, f"screenshot {path} ({len(png)} bytes)")


# ---- the browser ----------------------------------------------------------------------------------

def start_chromium(d):
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise Skip("chromium is not installed (Debian package 'chromium'; scripts/install-deps.sh)")
    profile = os.path.join(d, "profile")
    args = [exe, "--headless=new", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000", "about:blank"]
    if os.geteuid() == 0:
        args.insert(2, "--no-sandbox")
    log = open(os.path.join(d, "chromium.log"), "w+")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 30 * SCALE
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise Skip(f"chromium exited at startup ({proc.returncode}): {log.read()[-1500:]}")
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if lines:
                return proc, int(lines[0])
        time.sleep(0.1)
    stop_chromium(proc)
    raise Skip("chromium did not open its DevTools port within the time")


def stop_chromium(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def page_target(devtools_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=10 * SCALE) as r:
        targets = json.load(r)
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


# ---- the scenarios ----------------------------------------------------------------------------------

def example_index(title_start):
    exs = embed_ui.examples(SRCDIR)
    return next(i for i, e in enumerate(exs) if e["title"].startswith(title_start)), exs


def pick(cdp, title_start):
    i, exs = example_index(title_start)
    cdp.js(f"(() => {{ const s = document.getElementById('example'); s.value = '{i}'; "
           "s.dispatchEvent(new Event('change')); })()")
    check(cdp.js("document.getElementById('editor').value") == exs[i]["request"],
          f"choosing '{title_start}' puts its request in the editor")
    return exs[i]["request"]


def wait_run(cdp, n):
    deadline = time.time() + 20 * SCALE
    while time.time() < deadline:
        if cdp.js("document.body.getAttribute('data-run')") == str(n):
            return
        time.sleep(0.05)
    status = cdp.js("document.getElementById('status').textContent")
    raise RuntimeError(f"run {n} did not finish; status: {status}")


def ctrl_enter(cdp):
    cdp.key("Enter", "Enter", 13, modifiers=2, text="\r")


def text_of(cdp, selector):
    return cdp.js(f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => e.textContent)")


def check_picture(cdp, explain):
    if explain:
        ok = cdp.js("new Promise(r => { const i = document.getElementById('picture'); const f = () => r(!i.hidden && "
                    "i.naturalWidth > 0); if (i.complete) f(); else { i.onload = f; i.onerror = () => r(false); } })")
        check(ok, "the picture of POST /v1/explain is shown")
    else:
        note = cdp.js("document.getElementById('picture-note').textContent")
        check(note.startswith("The picture is unavailable"), f"without /v1/explain the page says so ({note!r})")


def scenario_keyboard(cdp):
    labels = cdp.js("Array.from(document.querySelectorAll('input, select, textarea')).map(e => "
                    "[e.id, !!document.querySelector('label[for=\"' + e.id + '\"]')])")
    check(labels and all(has for _, has in labels), f"every control has a label ({labels})")
    cdp.js("document.activeElement && document.activeElement.blur()")
    order = []
    for _ in range(4):
        cdp.key("Tab", "Tab", 9)
        order.append(cdp.js("document.activeElement.id"))
    check(order == ["example", "editor", "token", "run"], f"Tab goes example, editor, token, Run ({order})")
    n = cdp.js("document.querySelectorAll('#example option[value]:not([value=\"\"])').length")
    check(n == len(embed_ui.examples(SRCDIR)), f"the page offers the documentation's {n} examples")


def scenario_token(cdp, explain):
    pick(cdp, "A first request")
    cdp.click("run")
    wait_run(cdp, 1)
    status = cdp.js("document.getElementById('status').textContent")
    check(status.startswith("401") and "Bearer token" in status, f"without the token the page asks for it ({status!r})")
    cdp.js("document.getElementById('token').focus()")
    cdp.call("Input.insertText", text=TOKEN)


def scenario_gradient(cdp, explain):
    pick(cdp, "A first request")
    cdp.js("document.getElementById('editor').focus()")
    ctrl_enter(cdp)
    wait_run(cdp, 2)
    status = cdp.js("document.getElementById('status').textContent")
    check(status.startswith("200 OK"), f"a gradient: status {status!r}")
    rows = cdp.js("Array.from(document.querySelectorAll('#gradients tr')).map(r => [r.cells[0].textContent, "
                  "r.cells[1].textContent])")
    check(rows == [["x", "[2,2,6]"], ["b", "no gradient (see the diagnostics)"]], f"the gradients table ({rows})")
    check(text_of(cdp, "#diagnostics .diag-code") == ["stop_gradient"], "b's stop_gradient diagnostic is listed")
    hints = text_of(cdp, "#diagnostics .diag-hint")
    check(hints and hints[0].startswith("Remove 'sg'"), f"with its hint ({hints})")
    check(cdp.js("document.getElementById('values').textContent").startswith("d"), "the fetched value d is shown")
    check_picture(cdp, explain)
    cdp.screenshot("1-gradient")


def scenario_no_gradient(cdp, explain):
    pick(cdp, "Why: A policy-gradient mistake")
    cdp.js("document.getElementById('run').focus()")
    cdp.key("Enter", "Enter", 13, text="\r")  # a focused button runs on Enter
    wait_run(cdp, 3)
    status = cdp.js("document.getElementById('status').textContent")
    check(status.startswith("422 no_gradients"), f"a no-gradient diagnostic: status {status!r}")
    check(text_of(cdp, "#diagnostics .diag-code") == ["non_differentiable"], "the non_differentiable diagnostic")
    body = cdp.js("document.getElementById('diagnostics').textContent")
    check("logits \u2192 pick \u2192 onehot \u2192 r \u2192 loss" in body, "its path is shown")
    hints = text_of(cdp, "#diagnostics .diag-hint")
    check(hints and "softmax" in hints[0] and "'pick'" in hints[0], f"its hint names 'pick' and the fix ({hints})")
    check_picture(cdp, explain)
    cdp.screenshot("2-no-gradient")


def scenario_error(cdp, explain):
    request = pick(cdp, "Errors: A misspelt op")
    cdp.js("document.getElementById('editor').focus()")
    ctrl_enter(cdp)
    wait_run(cdp, 4)
    status = cdp.js("document.getElementById('status').textContent")
    check(status.startswith("400 unknown_op"), f"a 400 error: status {status!r}")
    fields = cdp.js("document.getElementById('error-fields').textContent")
    check("$.graph.nodes[1].op" in fields and "sigmoid" in fields, f"the error's at and suggestion ({fields!r})")
    check(cdp.js("document.querySelector('#culprit-line mark').textContent") == '"sigmoyd"',
          "the error box marks the culprit's text")
    sel = cdp.js("(() => { const e = document.getElementById('editor'); "
                 "return e.value.slice(e.selectionStart, e.selectionEnd); })()")
    check(sel == '"sigmoyd"', f"the editor selects the culprit ({sel!r})")
    line = request[:request.index('"sigmoyd"')].count("\n") + 1
    where = cdp.js("document.getElementById('culprit-where').textContent")
    check(f"line {line}," in where, f"and says where ({where!r})")
    cdp.click("show-culprit")
    check(cdp.js("document.activeElement.id") == "editor", "'Select it in the editor' moves the focus there")
    check(cdp.js("document.getElementById('position').textContent").startswith(f"Line {line}, column"),
          "the editor's line and column follow the selection")
    cdp.screenshot("3-error")

    # Text that is not JSON: its line and column, from the message, marked.
    cdp.js("(() => { const e = document.getElementById('editor'); e.focus(); e.select(); })()")
    cdp.call("Input.insertText", text='{"graph": {"nodes": [\n  {"name": "x" "op": "variable"}]}}')
    ctrl_enter(cdp)
    wait_run(cdp, 5)
    status = cdp.js("document.getElementById('status').textContent")
    check(status.startswith("400 invalid_json"), f"invalid JSON: status {status!r}")
    where = cdp.js("document.getElementById('culprit-where').textContent")
    check("line 2, column" in where, f"invalid JSON: its line is pointed at ({where!r})")


def scenario_phone(cdp):
    cdp.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    pick(cdp, "A first request")
    cdp.js("document.getElementById('run').click()")
    wait_run(cdp, 6)
    widths = cdp.js("[document.documentElement.scrollWidth, "
                    "Math.max(...Array.from(document.querySelectorAll('body *')).map(e => "
                    "e.getBoundingClientRect().right))]")
    check(widths[0] <= 390 and widths[1] <= 390,
          f"on a phone's 390 px nothing sticks out sideways (page {widths[0]}, rightmost element {widths[1]})")
    cdp.screenshot("4-phone")


def check_console(cdp, gradd_port):
    bad, ignored = [], 0
    origin = f"http://127.0.0.1:{gradd_port}/"
    for e in cdp.events:
        m, p = e["method"], e["params"]
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
            bad.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}")
        elif m == "Runtime.exceptionThrown":
            bad.append(f"exception: {p['exceptionDetails'].get('text')} "
                       f"{p['exceptionDetails'].get('exception', {}).get('description', '')}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            entry = p["entry"]
            # Chrome logs every 4xx a fetch gets; the API answers the test provoked are not page errors.
            expected = entry.get("source") == "network" and entry.get("url", "").startswith(origin + "v1/") and \
                any(f"status of {s}" in entry["text"] for s in (400, 401, 404, 422))
            ignored += expected
            if not expected:
                bad.append(f"log {entry['level']} ({entry.get('source')}): {entry['text']} {entry.get('url', '')}")
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not (url.startswith(origin) or url.startswith("data:") or url.startswith("blob:")):
                bad.append(f"a request outside gradd: {url}")
    print(f"{ignored} network log entries of the API's expected 4xx answers ignored")
    check(not bad, "no console error or warning, no exception, nothing fetched from elsewhere"
          + ("" if not bad else ":\n  " + "\n  ".join(bad)))


def run(d):
    with open(os.path.join(d, "token"), "w") as f:
        f.write(TOKEN + "\n")
    g = Gradd(d, "--token-file", os.path.join(d, "token"), "--cors-origin", CORS)
    proc = None
    try:
        status, _, body = g.request("POST", "/v1/explain", b"{}", {"Authorization": "Bearer " + TOKEN})
        explain = not (status == 404 and b'"not_found"' in body)
        print(f"POST /v1/explain: {status}; expecting {'the picture' if explain else 'the unavailable note'}")
        proc, devtools_port = start_chromium(d)
        cdp = CDP(page_target(devtools_port))
        for domain in ("Runtime", "Log", "Page", "Network"):
            cdp.call(domain + ".enable")
        cdp.call("Page.navigate", url=f"http://127.0.0.1:{g.port}/")
        cdp.wait_event("Page.loadEventFired")
        check(cdp.js("document.title") == "gradd playground", "the page loads from gradd")
        scenario_keyboard(cdp)
        scenario_token(cdp, explain)
        scenario_gradient(cdp, explain)
        scenario_no_gradient(cdp, explain)
        scenario_error(cdp, explain)
        scenario_phone(cdp)
        cdp.call("Runtime.evaluate", expression="0")  # collect the events still in flight
        check_console(cdp, g.port)
    finally:
        if proc:
            stop_chromium(proc)
        g.stop()


def main():
    def too_long(signum, frame):
        raise TimeoutError(f"ui_browser: over {int(120 * SCALE)} s")
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(int(120 * SCALE))
    with tempfile.TemporaryDirectory(prefix="ui_browser.") as d:
        try:
            run(d)
        except Skip as e:
            if os.environ.get("CI") == "true":
                print(f"ui_browser: FAIL (CI=true): {e}")
                return 1
            print(f"ui_browser: SKIP: {e}")
            return 77
    if FAILS:
        print(f"ui_browser: {len(FAILS)} check(s) failed; screenshots in {SHOTS}")
        return 1
    print(f"ui_browser: all checks passed; screenshots in {SHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
