#!/usr/bin/env python3
"""readme_examples.py - keeps the examples of README.md and docs/*.md true.

It reads README.md and every docs/*.md, starts gradd on free loopback ports,
runs every example against it and compares what it printed with what the
document shows. Two kinds of example:

  curl     a fenced ```sh block whose first line starts with `curl`. It runs
           with bash -o pipefail (its `localhost:8080` pointed at the test
           server); the next fenced block is the response the document shows.
  client   a fenced block right after `<!-- example: examples/PATH -->`. The
           block must be identical to the file examples/PATH, which is run
           (.py with this python3 and clients/python on PYTHONPATH, .mjs with
           node, .sh with sh, .ts and .c as built into the build directory;
           GRADD_URL points at the test server); the next fenced block is its printout, compared
           exactly. Every file under examples/ must be shown in some document.

  log      a fenced block right after `<!-- log: SERVER -->`: each of its
           lines must be a line that server has logged so far (it runs with
           --log-format text), where the leading timestamp, the *_us timings
           and bytes_out (the response's timings vary in length) are not
           compared.

A shown response is compared by its fence's language:

  json  both sides are parsed and compared structurally; inside "stats" only
        the key set is compared (timings vary).
  text  line by line, in order and exactly; a line "..." stands for any run
        of lines, and the value of a Date or X-Request-Id header line is not
        compared (its presence is).

Every example must exit 0 (curl's and the pipeline's status), unless an
`<!-- exit: N -->` line before it says N. Every HTTP status is checked too:
curl is run through a wrapper that reports the status of each transfer, and
it must be the status line the text shows, else the status of the JSON
error's code (the table below, as docs/api.md documents it), else 200.

HTML comments on the lines before an example's fence set its options:
  <!-- server: NAME -->  run against a server started with extra flags:
                         auth   --token-file holding "s3cret"
                         cors   --cors-origin https://app.example.com
  <!-- exit: N -->       the command's expected exit status

When node (or tsc, jq, a built example) is missing, the examples that need it
are skipped, except under CI (CI=true in the environment), where that is a
failure.

Usage (make check runs it with GRADD_BIN set and no arguments):
  readme_examples.py GRADD [DOC.md...]           check; exit 1 on any mismatch
  readme_examples.py --update GRADD [DOC.md...]  rewrite the shown responses

Standard library only (Debian's python3 has no third-party modules here).
"""
import glob
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SERVERS = {
    "default": [],
    "auth": ["--token-file", None],  # filled with a temp file
    "cors": ["--cors-origin", "https://app.example.com"],
}
# The HTTP status of each error code (docs/api.md, "Errors").
ERROR_STATUS = {
    **dict.fromkeys([
        "invalid_json", "invalid_request", "unknown_key", "unknown_op", "unknown_node",
        "duplicate_node", "cycle", "shape_mismatch", "dtype_mismatch", "missing_value",
        "invalid_attribute", "invalid_value", "index_out_of_range", "target_not_scalar"], 400),
    "unauthorized": 401, "not_found": 404, "unknown_graph": 404, "method_not_allowed": 405, "too_large": 413,
    "no_gradients": 422, "internal": 500, "overloaded": 503, "deadline_exceeded": 504,
}
VOLATILE_HEADERS = {"date", "x-request-id"}
SCALE = float(os.environ.get("GD_TEST_TIME_SCALE", "1") or 1)
FENCE = re.compile(r"^```(\w*)\s*$")
OPTION = re.compile(r"^<!--\s*(server|exit|example|log):\s*(\S+)\s*-->$")
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
STATUS_TAG = "readme_examples-status"
# How a client example runs: .py with this python3, .mjs with node, .sh with
# sh (curl and jq on PATH); .ts and .c run as the build directory has them
# (GD_BUILDDIR, else GRADD's directory): examples/ts/NAME.js with node
# (tests/build_js.sh compiles it) and the program examples/c/NAME.
RUNNERS = {".py": "python", ".mjs": "node", ".sh": "sh", ".ts": "node-built", ".c": "built"}


class Example:
    def __init__(self, doc, line, opts, cmd, lang, shown, shown_start, shown_end):
        self.doc = doc            # path relative to ROOT
        self.line = line          # 1-based line of the command block
        self.server = opts.get("server", opts.get("log", "default"))
        self.log = "log" in opts  # a log excerpt: no command, shown = the block
        self.exit = int(opts.get("exit", "0"))
        self.file = opts.get("example")  # examples/... for a client
        self.cmd = cmd
        self.lang = lang          # "json" or "text"
        self.shown = shown
        self.shown_start = shown_start  # index of the first content line
        self.shown_end = shown_end      # index of the closing fence

    def where(self):
        return f"{self.doc}:{self.line}"


def options_before(lines, i):
    """The `<!-- key: value -->` lines right above line i (blank lines skipped)."""
    opts = {}
    k = i - 1
    while k >= 0:
        s = lines[k].strip()
        if not s:
            k -= 1
            continue
        m = OPTION.match(s)
        if not m:
            break
        opts.setdefault(m.group(1), m.group(2))
        k -= 1
    return opts


def parse(doc, lines):
    """The document's examples in order."""
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
        opts = options_before(lines, i)
        if "log" in opts:
            out.append(Example(doc, i + 1, opts, None, "log", "\n".join(body), i + 1, j))
            i = j + 1
            continue
        is_curl = lang == "sh" and body and body[0].lstrip().startswith("curl")
        if is_curl or "example" in opts:
            n = j + 1
            while n < len(lines) and not FENCE.match(lines[n]):
                n += 1
            if n >= len(lines):
                raise SystemExit(f"{doc}:{i + 1}: example without a shown response")
            m2 = FENCE.match(lines[n])
            e = n + 1
            while e < len(lines) and not FENCE.match(lines[e]):
                e += 1
            out.append(Example(doc, i + 1, opts, "\n".join(body) + "\n", m2.group(1) or "text",
                               "\n".join(lines[n + 1:e]), n + 1, e))
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


def curl_wrapper(tmpdir):
    """A directory holding a `curl` that reports each transfer's status on
    stderr, to put first on PATH."""
    real = shutil.which("curl")
    if not real:
        raise SystemExit("readme_examples: curl not found (Debian package 'curl')")
    d = os.path.join(tmpdir, "bin")
    os.mkdir(d)
    path = os.path.join(d, "curl")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                f"exec '{real}' --write-out '%{{stderr}}{STATUS_TAG} %{{http_code}}\\n' \"$@\"\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return d


class Run:
    def __init__(self, rc, out, err, statuses):
        self.rc, self.out, self.err, self.statuses = rc, out, err, statuses


def log_line_pattern(shown):
    """A shown log line as a regex: its timestamp, *_us and bytes_out vary."""
    pat = re.escape(shown)
    m = re.match(TIMESTAMP, shown)
    if m:
        pat = TIMESTAMP + re.escape(shown[m.end():])
    pat = re.sub(r"(_us=|bytes_out=)\d+", r"\1\\d+", pat)
    return re.compile("^" + pat + "$")


def check_log(e, log):
    """None when every shown line is in the server's log (waiting up to 2 s
    for the last lines to be written), else what is missing."""
    missing = None
    for _ in range(40):
        log.seek(0)
        logged = [l.rstrip("\r") for l in log.read().decode(errors="replace").splitlines()]
        missing = [s for s in trim(e.shown.splitlines())
                   if not any(log_line_pattern(s).match(l) for l in logged)]
        if not missing:
            return None
        time.sleep(0.05)
    return f"not in the log: {missing}; logged:\n" + "\n".join("       | " + l for l in logged[-5:])


def client_argv(path):
    """The command that runs the client example at path, or why it cannot run here."""
    runner = RUNNERS.get(os.path.splitext(path)[1])
    builddir = os.environ.get("GD_BUILDDIR") or os.path.dirname(os.path.abspath(os.environ.get("GRADD_BIN", ".")))
    stem = os.path.splitext(os.path.relpath(path, ROOT))[0]
    if runner == "python":
        return [sys.executable, path]
    if runner == "sh":
        missing = [t for t in ("curl", "jq") if not shutil.which(t)]
        return f"no {' '.join(missing)} on PATH (scripts/install-deps.sh)" if missing else ["sh", path]
    if runner == "built":
        exe = os.path.join(builddir, stem)
        return [exe] if os.access(exe, os.X_OK) else f"{exe} not built (make check builds it)"
    node = shutil.which("node")
    if not node:
        return "no node on PATH (Debian package 'nodejs', installed by scripts/install-deps.sh)"
    if runner == "node-built":
        js = os.path.join(builddir, stem + ".js")
        return [node, js] if os.path.isfile(js) else f"{js} not built (tsc, Debian package node-typescript)"
    return [node, path]


def run(e, port, bindir):
    """Run the example: a Run, or a string saying why it cannot run here."""
    if e.file:
        env = dict(os.environ, GRADD_URL=f"http://127.0.0.1:{port}")
        # the Python package (clients/python) imports from the source tree, as if installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(ROOT, "clients", "python"),
                                                          os.environ.get("PYTHONPATH")]))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        path = os.path.join(ROOT, e.file)
        argv = client_argv(path)
        if isinstance(argv, str):
            return argv
        # A client example runs a whole loop (examples/shell starts ~300 processes).
        r = subprocess.run(argv, capture_output=True, timeout=60 * SCALE, env=env)
        return Run(r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"), None)
    cmd = e.cmd.replace("localhost:8080", f"127.0.0.1:{port}")
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=60, env=env)
    err_lines = r.stderr.decode(errors="replace").splitlines()
    statuses = [int(l.split()[1]) for l in err_lines if l.startswith(STATUS_TAG + " ")]
    err = "\n".join(l for l in err_lines if not l.startswith(STATUS_TAG + " "))
    return Run(r.returncode, r.stdout.decode(errors="replace"), err, statuses)


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


def trim(lines):
    lines = [l.rstrip("\r").rstrip() for l in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def line_matches(shown, got):
    if shown == got:
        return True
    hm = re.match(r"^([A-Za-z][A-Za-z0-9-]*):", shown)
    return bool(hm and hm.group(1).lower() in VOLATILE_HEADERS
                and got.lower().startswith(hm.group(1).lower() + ":"))


def text_matches(shown, got):
    """shown (with "..." lines) matches got exactly, line by line."""
    if not shown:
        return not got
    if shown[0] == "...":
        return any(text_matches(shown[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and line_matches(shown[0], got[0]) and text_matches(shown[1:], got[1:])


def same_text(shown, got):
    s, g = trim(shown.splitlines()), trim(got.splitlines())
    if text_matches(s, g):
        return None
    return "printed:\n" + "\n".join("       | " + l for l in g)


def expected_status(e):
    """The HTTP status the shown response documents."""
    if e.lang == "text":
        for l in e.shown.splitlines():
            m = re.match(r"^HTTP/[\d.]+ (\d{3}) ", l)
            if m:
                return int(m.group(1))
        return 200
    try:
        shown = json.loads(e.shown)
    except ValueError:
        return None
    if isinstance(shown, dict) and isinstance(shown.get("error"), dict):
        code = shown["error"].get("code")
        if code not in ERROR_STATUS:
            raise SystemExit(f"{e.where()}: error code '{code}' has no status in ERROR_STATUS")
        return ERROR_STATUS[code]
    return 200


def check(e, r):
    """None when the run agrees with the document, else what differs."""
    if r.rc != e.exit:
        return f"exit status {r.rc}, expected {e.exit}" + (f"; stderr: {r.err.strip()[:500]}" if r.err.strip() else "")
    if not e.file:
        want = expected_status(e)
        if not r.statuses:
            return "curl reported no HTTP status"
        if any(s != want for s in r.statuses):
            return f"HTTP status {r.statuses}, the document shows {want}"
    if e.file:
        # a client's printout is deterministic: compared exactly
        want = trim(e.shown.strip().splitlines())
        have = trim(r.out.strip().splitlines())
        return None if want == have else f"printed {have} instead of {want}"
    if e.lang == "json":
        try:
            return same_json(json.loads(e.shown), json.loads(r.out))
        except ValueError as ex:
            return f"not JSON ({ex}): {r.out[:300]!r}"
    return same_text(e.shown, r.out)


def check_includes(examples):
    """Each shown client is identical to its file, and every file under
    examples/ is shown somewhere: a list of problems."""
    problems = []
    shown = set()
    for e in examples:
        if not e.file:
            continue
        path = os.path.join(ROOT, e.file)
        if not os.path.isfile(path) or os.path.splitext(path)[1] not in RUNNERS:
            problems.append(f"{e.where()}: {e.file} is not a runnable example ({' '.join(RUNNERS)})")
            continue
        shown.add(os.path.normpath(e.file))
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text.rstrip("\n") != e.cmd.rstrip("\n"):
            problems.append(f"{e.where()}: the block differs from {e.file}; copy the file into the document")
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*"), recursive=True)):
        rel = os.path.relpath(path, ROOT)
        if os.path.splitext(path)[1] in RUNNERS and rel not in shown:
            problems.append(f"{rel} is shown in no document (add <!-- example: {rel} --> and its output)")
    return problems


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
    docs = argv[1:] or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    texts = {}
    examples = []
    for path in docs:
        with open(path, encoding="utf-8") as f:
            texts[path] = f.read().split("\n")
        examples += [(path, e) for e in parse(os.path.relpath(path, ROOT), texts[path])]
    if not examples:
        print("readme_examples: no examples found", file=sys.stderr)
        return 1
    failures = 0
    if not update:
        for p in check_includes([e for _, e in examples]):
            print(f"FAIL {p}")
            failures += 1
    ci = os.environ.get("CI") == "true"
    tmpdir = tempfile.mkdtemp(prefix="readme_examples.")
    tok = os.path.join(tmpdir, "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    bindir = curl_wrapper(tmpdir)
    servers = {}
    skipped = 0
    matched = 0
    try:
        for name in sorted({e.server for _, e in examples}):
            if name not in SERVERS:
                raise SystemExit(f"unknown server '{name}'")
            flags = [tok if f is None else f for f in SERVERS[name]]
            servers[name] = start(gradd, flags)
        for path, e in reversed(examples) if update else examples:
            if e.log:
                if not update:
                    diff = check_log(e, servers[e.server][2])
                    print(f"{'ok  ' if diff is None else 'FAIL'} {e.where()} [{e.server}] log")
                    if diff:
                        failures += 1
                        print(f"     {diff}")
                    else:
                        matched += 1
                continue
            r = run(e, servers[e.server][1], bindir)
            first = e.file or e.cmd.splitlines()[0]
            if isinstance(r, str):
                if ci:
                    print(f"FAIL {e.where()} {first[:60]}: {r}; under CI every example must run")
                    failures += 1
                else:
                    print(f"SKIP {e.where()} {first[:60]}: {r}")
                    skipped += 1
                continue
            if update:
                if e.lang == "json":
                    try:
                        new = pretty(json.loads(r.out))
                    except ValueError:
                        raise SystemExit(f"{e.where()}: output is not JSON:\n{r.out}")
                else:
                    new = "\n".join(trim(r.out.splitlines()))
                texts[path][e.shown_start:e.shown_end] = new.split("\n")
                continue
            diff = check(e, r)
            status = "ok  " if diff is None else "FAIL"
            print(f"{status} {e.where()} [{e.server}] {first[:90]}")
            if diff:
                failures += 1
                print(f"     {diff}")
            else:
                matched += 1
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
        shutil.rmtree(tmpdir, ignore_errors=True)
    if update:
        for path, lines in texts.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
        print(f"readme_examples: updated {len(examples)} responses")
        return 0
    n = len(examples)
    print(f"readme_examples: {matched}/{n} examples match"
          + (f", {skipped} skipped" if skipped else "") + f" ({len(docs)} documents)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
