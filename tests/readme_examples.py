#!/usr/bin/env python3
"""readme_examples.py - keeps README.md's examples true.

Every fenced ```sh block of README.md whose first line starts with `curl` is an
example, and so is every ```python or ```js block right after the line
`<!-- client -->` (run with this python3, or with node when it is on PATH,
GRADD_URL pointing at the test server); the fenced block right after it (```json or ```text) is the response
the README shows. This script starts gradd on free loopback ports, runs each
command with bash (its `localhost:8080` pointed at the test server) and
compares what it printed with what the README shows:

  json  both sides are parsed and compared structurally; inside "stats" only
        the key set is compared (timings vary); a header X-Request-Id is never
        compared.
  client  the printout must equal the shown text exactly.
  text  every shown line other than "..." must match a printed line, where
        any number in the shown line stands for any number, and a line of the
        form "Name: value" matches a header case-insensitively by name. Lines
        for volatile headers (Date, X-Request-Id) must be present by name only.

An HTML comment `<!-- server: NAME -->` on the line before the ```sh block
runs the example against a server started with extra flags:
  auth   --token-file holding "s3cret"
  cors   --cors-origin https://app.example.com

Usage (make check runs it with GRADD_BIN set and no arguments):
  readme_examples.py GRADD [README]           check; exit 1 on any mismatch
  readme_examples.py --update GRADD [README]  rewrite the shown responses

Standard library only (Debian's python3 has no third-party modules here).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SERVERS = {
    "default": [],
    "auth": ["--token-file", None],  # filled with a temp file
    "cors": ["--cors-origin", "https://app.example.com"],
}
VOLATILE_HEADERS = {"date", "x-request-id", "content-length"}
FENCE = re.compile(r"^```(\w*)\s*$")


class Example:
    def __init__(self, line, server, cmd, lang, shown, shown_start, shown_end):
        self.line = line          # 1-based line of the command block
        self.server = server
        self.cmd = cmd
        self.lang = lang          # "json" or "text"
        self.shown = shown
        self.shown_start = shown_start  # index of the first content line
        self.shown_end = shown_end      # index of the closing fence


def parse(lines):
    """Yield the README's examples in order."""
    out = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(1)
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        body = lines[i + 1:j]
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        before = lines[k].strip() if k >= 0 else ""
        is_curl = lang == "sh" and body and body[0].lstrip().startswith("curl")
        is_client = lang in ("python", "js") and re.match(r"<!--\s*client\s*-->", before)
        if is_curl or is_client:
            server = "default"
            mm = re.match(r"<!--\s*server:\s*(\w+)\s*-->", before)
            if mm:
                server = mm.group(1)
            # the next fence after blank lines or one line of prose
            n = j + 1
            while n < len(lines) and not FENCE.match(lines[n]):
                n += 1
            if n >= len(lines):
                raise SystemExit(f"README line {i + 1}: example without a shown response")
            m2 = FENCE.match(lines[n])
            e = n + 1
            while e < len(lines) and not FENCE.match(lines[e]):
                e += 1
            ex = Example(i + 1, server, "\n".join(body) + "\n", m2.group(1) or "text",
                         "\n".join(lines[n + 1:e]), n + 1, e)
            ex.client = lang if is_client else None
            out.append(ex)
            i = e + 1
            continue
        i = j + 1
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(gradd, flags):
    port = free_port()
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([gradd, "--port", str(port), "--workers", "2", "--log-format", "text"] + flags,
                         stdout=log, stderr=log)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return p, port, log
        except OSError:
            if p.poll() is not None:
                log.seek(0)
                raise SystemExit("gradd exited at start:\n" + log.read().decode(errors="replace"))
            time.sleep(0.05)
    p.kill()
    raise SystemExit("gradd did not answer /healthz")


def run(e, port):
    """The example's output, or None when its interpreter is missing."""
    if e.client:
        env = dict(os.environ, GRADD_URL=f"http://127.0.0.1:{port}")
        if e.client == "python":
            argv = [sys.executable, "-"]
        else:
            node = shutil.which("node")
            if not node:
                return None
            argv = [node, "--input-type=module", "-"]
        r = subprocess.run(argv, input=e.cmd.encode(), capture_output=True, timeout=60, env=env)
        return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    cmd = e.cmd.replace("localhost:8080", f"127.0.0.1:{port}")
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=60)
    return r.stdout.decode(errors="replace")


def same_json(a, b, path="$"):
    """None when equal, else a description of the first difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            if path == "$" and k == "stats" or path.endswith(".error") and k == "stats":
                if not isinstance(b[k], dict) or set(a[k]) != set(b[k]):
                    return f"{path}.stats: keys differ"
                continue
            d = same_json(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same_json(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return f"{path}: shown {json.dumps(a)} vs got {json.dumps(b)}"
    return None


NUM = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def line_pattern(shown):
    parts = []
    pos = 0
    for m in NUM.finditer(shown):
        parts.append(re.escape(shown[pos:m.start()]))
        parts.append(r"-?[\d.eE+-]+")
        pos = m.end()
    parts.append(re.escape(shown[pos:]))
    return re.compile("^" + "".join(parts) + "$")


def same_text(shown, got):
    got_lines = [l.rstrip("\r") for l in got.splitlines()]
    for s in shown.splitlines():
        s = s.rstrip()
        if not s or s == "...":
            continue
        hm = re.match(r"^([A-Za-z][A-Za-z0-9-]*): ?(.*)$", s)
        if hm and not s.startswith("HTTP/"):
            name = hm.group(1).lower()
            found = [g for g in got_lines if g.lower().startswith(name + ":")]
            if not found:
                return f"header {hm.group(1)} missing"
            if name in VOLATILE_HEADERS:
                continue
            if not any(line_pattern(s.lower()).match(g.lower()) for g in found):
                return f"header line '{s}' differs: got {found}"
            continue
        pat = line_pattern(s)
        if not any(pat.match(g) for g in got_lines):
            return f"line '{s}' not in the output"
    return None


def pretty(v, indent=0):
    """JSON with two-space indentation, but a list of numbers, strings or
    nulls (a tensor row, a path) on one line, so tensors stay readable."""
    pad = "  " * (indent + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {pretty(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return "[" + ", ".join(json.dumps(x) for x in v) + "]"
        if all(isinstance(x, list) and all(not isinstance(y, (dict, list)) for y in x) for x in v):
            rows = [pad + pretty(x) for x in v]
            return "[\n" + ",\n".join(rows) + "\n" + "  " * indent + "]"
        items = [pad + pretty(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(v)


def main(argv):
    update = False
    if argv and argv[0] == "--update":
        update = True
        argv = argv[1:]
    if not argv and os.environ.get("GRADD_BIN"):
        argv = [os.environ["GRADD_BIN"]]  # as `make check` runs it
    if not argv:
        print(__doc__)
        return 2
    gradd = os.path.abspath(argv[0])
    readme = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    examples = parse(lines)
    if not examples:
        print("readme_examples: no examples found", file=sys.stderr)
        return 1
    tok = tempfile.NamedTemporaryFile("w", delete=False)
    tok.write("s3cret\n")
    tok.close()
    servers = {}
    failures = 0
    try:
        for name in sorted({e.server for e in examples}):
            if name not in SERVERS:
                raise SystemExit(f"unknown server '{name}'")
            flags = [tok.name if f is None else f for f in SERVERS[name]]
            servers[name] = start(gradd, flags)
        for e in reversed(examples) if update else examples:
            got = run(e, servers[e.server][1])
            first = e.cmd.splitlines()[0]
            if got is None:
                print(f"SKIP README.md:{e.line} {first[:60]}: no node on PATH")
                continue
            if update:
                if e.lang == "json":
                    try:
                        new = pretty(json.loads(got))
                    except ValueError:
                        raise SystemExit(f"README line {e.line}: output is not JSON:\n{got}")
                else:
                    new = got.rstrip("\n")
                lines[e.shown_start:e.shown_end] = new.split("\n")
                continue
            if e.client:
                # a client's printout is deterministic: compared exactly
                want = [l.rstrip() for l in e.shown.strip().splitlines()]
                have = [l.rstrip() for l in got.strip().splitlines()]
                diff = None if want == have else f"printed {have} instead of {want}"
            elif e.lang == "json":
                try:
                    diff = same_json(json.loads(e.shown), json.loads(got))
                except ValueError as ex:
                    diff = f"not JSON ({ex}): {got[:300]!r}"
            else:
                diff = same_text(e.shown, got)
            status = "ok  " if diff is None else "FAIL"
            print(f"{status} README.md:{e.line} [{e.server}] {first[:90]}")
            if diff:
                failures += 1
                print(f"     {diff}")
    finally:
        for p, _, _ in servers.values():
            p.terminate()
        for p, _, log in servers.values():
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "killed"
            if rc != 0:
                log.seek(0)
                print(f"gradd exited with {rc}:\n" + log.read().decode(errors="replace")[-2000:])
                failures += 1
        os.unlink(tok.name)
    if update:
        with open(readme, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        print(f"readme_examples: updated {len(examples)} responses")
        return 0
    print(f"readme_examples: {len(examples) - failures}/{len(examples)} examples match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
