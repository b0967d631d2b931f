#!/usr/bin/env python3
"""golden.py - gradd's v1 answers, recorded once and held still.

The corpus is tests/data/golden/*.json: each file is {"about": "...", "cases":
[...]}, one case a request and the whole response gradd gave to it when it was
recorded:

  {"name": "...",                 unique within its file
   "server": "default",           which gradd configuration (SERVERS below)
   "method": "POST",              default: POST with a body, else GET
   "path": "/v1/grad",
   "headers": {"Name": "value"},  request headers (optional)
   one request body, or none:
     "json":   a JSON value, sent compact with its numbers written as given
     "text":   a raw string, sent as is
     "binary": {"json": value, "b64": "..."}: binary framing; Content-Type and
               Gradd-Json-Length are added unless "headers" names them (a
               header given as null is not sent)
   "pad_to": N                    pad the body with spaces to N bytes (optional)
   "chunked": true                send the body with Transfer-Encoding: chunked
   "expect": {"status": 200, "headers": {...}, and one of
              "json" | "text" | "binary" | "metrics" | "empty": true}}

Files run in name order, the cases of a file in order, one new connection each.
What is compared:
  status   exactly.
  headers  every response header by name, case-insensitively, except Date,
           X-Request-Id and Content-Length (varies with the stats digits).
           Gradd-Api-Version is not recorded per case: every answer must
           carry "Gradd-Api-Version: 1.1" (A5), or the case fails.
           Gradd-Json-Length of a binary answer is recorded as "<json length>"
           and checked to be the length of the JSON part.
  json     structurally and exactly: keys (and their order), strings, and
           numbers as printed text ("2.0" is not "2"); every value inside
           "stats" ($.stats, $.error.stats) is masked, its key set kept. The
           body must also be compact JSON, byte for byte as Python would print
           the parsed value back (whitespace and string escaping).
  binary   the JSON part as above, the binary section byte for byte.
  metrics  Prometheus text: every line, with sample values masked (all but
           gradd_build_info vary with timing or with the order of requests).
  text     byte for byte.

Servers are started once each, on free loopback ports, only when some case
needs them. The "draining" server is sent SIGTERM first and the cases run
once /readyz answers 503 (its --drain-ms is far longer than the run). The
label set of /metrics depends on the requests a server answered before, so
each /metrics case has a server of its own ("metrics*"), used by the cases
just before it in the same file; -k on such a case alone may change it.

Adding a case: write its request without "expect", run --record on its file
and review the diff. Issue 7 may change no answer; a later change that fixes
an answer re-records the corpus in the same commit and says why.

--repeat N runs the corpus N times on the same servers (skipping, after
the first pass, the cases whose answers depend on what came before: /metrics
and /v1/graphs): from the second time a graph is sent inline gradd answers
it from its cache of such graphs (server/compute.c), and every answer must
stay the same.
Usage (make check runs it with GRADD_BIN set; --repeat defaults to
$GOLDEN_REPEAT, else 3):
  golden.py [-k SUBSTRING] [--repeat N] [FILE...]  check; exit 1 on any mismatch
  golden.py --record [-k SUBSTRING] [FILE...]  (re)write the expected answers

GOLDEN_TIMES=1 prints the time of each request.

Standard library only.
"""
import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "data", "golden")
TOKEN = "s3cret"
CORS = "https://app.example.com"
BINARY = "application/vnd.gradd.v1+binary"

# name -> extra flags; None stands for the token file.  Every server runs one
# worker with one BLAS thread: answers do not depend on it, the machine is shared.
SERVERS = {
    "default": [],
    "auth": ["--token-file", None],
    "cors": ["--cors-origin", CORS],
    "cors_auth": ["--cors-origin", CORS, "--token-file", None],
    "small_body": ["--max-body", "4096"],
    "small_nodes": ["--max-nodes", "4"],
    "small_elements": ["--max-elements", "1000"],
    "small_memory": ["--max-memory", "1M"],
    "metrics": [],
    "metrics_readme": [],
    "metrics_auth": ["--token-file", None],
    "draining": ["--drain-ms", "600000", "--grace-ms", "1000"],
    "no_ui": ["--no-ui"],
}
IGNORED_HEADERS = {"date", "x-request-id", "content-length", "gradd-api-version"}
API_VERSION = "1.1"  # every answer's Gradd-Api-Version (contract A5)
MASK = "<masked>"
JSON_LENGTH = "<json length>"
MAX_DIFFS = 12


# ---- JSON with numbers kept as their text -----------------------------------


class Num(str):
    """A JSON number, kept as the text it was written as."""


def loads(text):
    return json.loads(text, parse_float=Num, parse_int=Num, parse_constant=Num)


def dumps(v):
    """Compact JSON, numbers written as read: gradd's own layout."""
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def pretty(v, indent=0):
    """Two-space JSON for the corpus files, a list of scalars (a tensor row, a
    path) on one line, so that a changed value is a one-line diff."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        flat = all(not isinstance(x, (dict, list)) or isinstance(x, list)
                   and all(not isinstance(y, (dict, list)) for y in x) for x in v.values())
        if flat:
            one = "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {pretty(x)}" for k, x in v.items()) + "}"
            if len(one) + len(pad) <= 110:
                return one
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {pretty(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        if all(not isinstance(x, (dict, list)) for x in v):
            one = "[" + ", ".join(dumps(x) for x in v) + "]"
            if len(one) + len(pad) <= 110 or all(isinstance(x, Num) for x in v):
                return one
            return "[\n" + ",\n".join(pad + dumps(x) for x in v) + "\n" + end + "]"
        items = [pad + pretty(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return dumps(v)


def mask_stats(v):
    """The body with every value inside $.stats and $.error.stats masked."""
    def mask(obj):
        if isinstance(obj, dict) and isinstance(obj.get("stats"), dict):
            obj = dict(obj)
            obj["stats"] = {k: MASK for k in obj["stats"]}
        return obj
    v = mask(v)
    if isinstance(v, dict) and isinstance(v.get("error"), dict):
        v = dict(v)
        v["error"] = mask(v["error"])
    return v


def describe(v):
    s = dumps(v)
    return s if len(s) <= 160 else s[:157] + "..."


def json_diff(want, got, path, out):
    """Appends "path: what differs" for every difference (up to MAX_DIFFS)."""
    if len(out) >= MAX_DIFFS:
        return
    if isinstance(want, dict) and isinstance(got, dict):
        if list(want) != list(got):
            missing = [k for k in want if k not in got]
            extra = [k for k in got if k not in want]
            if missing or extra:
                out.append(f"{path}: keys missing {missing}, unexpected {extra}")
            else:
                out.append(f"{path}: key order {list(want)} became {list(got)}")
        for k in want:
            if k in got:
                json_diff(want[k], got[k], f"{path}.{k}", out)
        return
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: length {len(want)} became {len(got)}: {describe(got)}")
            return
        for i, (w, g) in enumerate(zip(want, got)):
            json_diff(w, g, f"{path}[{i}]", out)
        return
    if type(want) is not type(got) or want != got:
        out.append(f"{path}: expected {describe(want)}, got {describe(got)}")


# ---- Prometheus text ----------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def mask_metrics(text):
    out = []
    for line in text.split("\n"):
        m = SAMPLE.match(line)
        if m and not line.startswith("#") and not m.group(1).startswith("gradd_build_info"):
            line = f"{m.group(1)} {MASK}"
        out.append(line)
    return out


# ---- requests -------------------------------------------------------------------


def request_body(case):
    """(bytes or None, extra headers) of a case's request."""
    headers = {}
    if "json" in case:
        body = dumps(case["json"]).encode()
    elif "text" in case:
        body = case["text"].encode()
    elif "binary" in case:
        part = dumps(case["binary"]["json"]).encode()
        body = part + base64.b64decode(case["binary"]["b64"])
        headers = {"Content-Type": BINARY, "Gradd-Json-Length": str(len(part))}
    else:
        body = None
    if body is not None and "pad_to" in case:
        body = body + b" " * (int(case["pad_to"]) - len(body))
    return body, headers


def method_of(case):
    return case.get("method", "GET" if request_body(case)[0] is None else "POST")


def send(port, case):
    """(status, [(name, value)], body bytes) of gradd's answer to a case."""
    body, headers = request_body(case)
    given = {k.lower(): k for k in case.get("headers", {})}
    for k in list(headers):
        if k.lower() in given:
            del headers[k]
    for k, v in case.get("headers", {}).items():
        if v is not None:
            headers[k] = v
    method = method_of(case)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        if case.get("chunked"):
            size = 1000
            chunks = [body[i:i + size] for i in range(0, len(body), size)]
            conn.request(method, case["path"], body=iter(chunks), headers=headers, encode_chunked=True)
        else:
            conn.request(method, case["path"], body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def observe(status, headers, raw):
    """The comparable form of an answer: what "expect" holds."""
    hdrs = {}
    ctype = ""
    for k, v in headers:
        if k.lower() == "content-type":
            ctype = v
        if k.lower() not in IGNORED_HEADERS:
            hdrs[k] = v
    exp = {"status": Num(status), "headers": hdrs}
    problems = []
    versions = [v for k, v in headers if k.lower() == "gradd-api-version"]
    if versions != [API_VERSION]:
        problems.append(f"Gradd-Api-Version headers {versions}, expected exactly one, {API_VERSION!r}")
    if not raw:
        exp["empty"] = True
    elif ctype.startswith(BINARY):
        name = next((k for k in hdrs if k.lower() == "gradd-json-length"), None)
        n = int(hdrs[name]) if name and hdrs[name].isdigit() else -1
        if name:
            hdrs[name] = JSON_LENGTH
        if not 0 < n <= len(raw):
            problems.append(f"Gradd-Json-Length {n} does not fit the {len(raw)}-byte body")
            exp["text"] = raw.decode("latin-1")
            return exp, problems
        part = raw[:n].decode(errors="replace")
        try:
            value = loads(part)
        except ValueError as e:
            problems.append(f"the JSON part is not JSON ({e}): {part[:200]!r}")
            exp["text"] = raw.decode("latin-1")
            return exp, problems
        if dumps(value) != part:
            problems.append("the JSON part is not compact JSON in gradd's layout: " + part[:200])
        exp["binary"] = {"json": mask_stats(value), "b64": base64.b64encode(raw[n:]).decode()}
    elif ctype.startswith("application/json"):
        text = raw.decode(errors="replace")
        try:
            value = loads(text)
        except ValueError as e:
            problems.append(f"the body is not JSON ({e}): {text[:200]!r}")
            exp["text"] = raw.decode("latin-1")
            return exp, problems
        if dumps(value) != text:
            problems.append("the body is not compact JSON in gradd's layout: " + text[:200])
        exp["json"] = mask_stats(value)
    elif ctype.startswith("text/plain") and b"# TYPE " in raw:
        exp["metrics"] = mask_metrics(raw.decode())
    else:
        exp["text"] = raw.decode("latin-1")
    return exp, problems


def binary_diff(want, got, section_json):
    """Where two binary sections differ, naming the tensor that covers it."""
    w, g = base64.b64decode(want), base64.b64decode(got)
    if w == g:
        return None
    at = next((i for i in range(min(len(w), len(g))) if w[i] != g[i]), min(len(w), len(g)))
    owner = "no tensor"

    def find(v, path):
        nonlocal owner
        if isinstance(v, dict):
            if "offset" in v and "nbytes" in v:
                o, nb = int(v["offset"]), int(v["nbytes"])
                if o <= at < o + nb:
                    owner = f"{path} (offset {o}, nbytes {nb})"
            for k, x in v.items():
                find(x, f"{path}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                find(x, f"{path}[{i}]")
    find(section_json, "$")
    return (f"binary section: {len(w)} bytes expected, {len(g)} got; first difference at byte {at}, "
            f"inside {owner}: expected {w[at:at + 8].hex()}, got {g[at:at + 8].hex()}")


def compare(want, got):
    """The differences between an expected and an observed answer."""
    out = []
    if want.get("status") != got["status"]:
        out.append(f"status: expected {want.get('status')}, got {got['status']}")
    wh = {k.lower(): (k, v) for k, v in want.get("headers", {}).items()}
    gh = {k.lower(): (k, v) for k, v in got["headers"].items()}
    for k in sorted(set(wh) | set(gh)):
        if k not in gh:
            out.append(f"header {wh[k][0]}: expected {wh[k][1]!r}, missing")
        elif k not in wh:
            out.append(f"header {gh[k][0]}: unexpected, {gh[k][1]!r}")
        elif wh[k][1] != gh[k][1]:
            out.append(f"header {wh[k][0]}: expected {wh[k][1]!r}, got {gh[k][1]!r}")
    kinds = [k for k in ("json", "binary", "metrics", "text", "empty") if k in want]
    gkind = next(k for k in ("json", "binary", "metrics", "text", "empty") if k in got)
    if kinds != [gkind]:
        out.append(f"body: expected a {'/'.join(kinds) or 'no'} body, got a {gkind} body")
        return out
    if gkind == "json":
        json_diff(want["json"], got["json"], "$", out)
    elif gkind == "binary":
        json_diff(want["binary"]["json"], got["binary"]["json"], "$", out)
        d = binary_diff(want["binary"]["b64"], got["binary"]["b64"], got["binary"]["json"])
        if d:
            out.append(d)
    elif gkind == "metrics":
        w, g = want["metrics"], got["metrics"]
        for i in range(max(len(w), len(g))):
            a = w[i] if i < len(w) else "<none>"
            b = g[i] if i < len(g) else "<none>"
            if a != b:
                out.append(f"metrics line {i + 1}: expected {a!r}, got {b!r}")
                if len(out) >= MAX_DIFFS:
                    break
    elif gkind == "text" and want["text"] != got["text"]:
        out.append(f"body: expected {want['text'][:300]!r}, got {got['text'][:300]!r}")
    return out


# ---- servers ----------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_status(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


class Server:
    def __init__(self, gradd, name, token_file):
        flags = [token_file if f is None else f for f in SERVERS[name]]
        self.name = name
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        base = ["--port", str(self.port), "--workers", "1", "--blas-threads", "1", "--log-format", "text"]
        if "--drain-ms" not in flags:
            base += ["--drain-ms", "0"]  # stop at once at the end of the run
        self.proc = subprocess.Popen([gradd] + base + flags, stdout=self.log, stderr=self.log)
        self.wait_for("/healthz", 200)
        if name == "draining":
            self.proc.send_signal(signal.SIGTERM)
            self.wait_for("/readyz", 503)

    def wait_for(self, path, status):
        for _ in range(600):
            try:
                if get_status(self.port, path) == status:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"gradd ({self.name}) exited at start:\n{self.logtext()}")
            time.sleep(0.05)
        self.proc.kill()
        raise SystemExit(f"gradd ({self.name}) never answered {status} on {path}:\n{self.logtext()}")

    def logtext(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self):
        """0 when gradd exited cleanly, else a description."""
        self.proc.send_signal(signal.SIGTERM)
        if self.name == "draining":
            self.proc.send_signal(signal.SIGTERM)  # a second signal ends the drain
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "killed"
        return 0 if rc == 0 else f"gradd ({self.name}) exited with {rc}:\n{self.logtext()}"


# ---- main ---------------------------------------------------------------------------


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = loads(f.read())
    names = [c["name"] for c in doc["cases"]]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"{path}: duplicate case names {sorted(dup)}")
    for c in doc["cases"]:
        if c.get("server", "default") not in SERVERS:
            raise SystemExit(f"{path}: case {c['name']}: unknown server {c.get('server')!r}")
    return doc


def main(argv):
    record = False
    repeat = int(os.environ.get("GOLDEN_REPEAT", "3"))
    pattern = None
    files = []
    while argv:
        a = argv.pop(0)
        if a == "--record":
            record = True
        elif a == "-k" and argv:
            pattern = argv.pop(0)
        elif a == "--repeat" and argv:
            repeat = int(argv.pop(0))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            files.append(a)
    gradd = os.environ.get("GRADD_BIN")
    if not gradd:
        print("golden: set GRADD_BIN to the gradd binary (make check does)", file=sys.stderr)
        return 2
    if not files:
        files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.endswith(".json"))
    docs = [(f, load(f)) for f in files]
    if not any(d["cases"] for _, d in docs):
        print("golden: no cases found", file=sys.stderr)
        return 1

    def selected(c):
        return pattern is None or pattern in c["name"]

    def repeatable(c):
        """A case whose answer does not depend on the requests before it:
        not /metrics (its label set grows), /v1/graphs (201 turns 200) nor a
        graph_id (the graph may have been deleted since)."""
        return ("metrics" not in c.get("expect", {}) and not c.get("server", "default").startswith("metrics")
                and not c["path"].startswith("/v1/graphs") and "graph_id" not in json.dumps(c.get("json"))
                and "graph_id" not in json.dumps(c.get("binary")))

    tok = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)
    tok.write(TOKEN + "\n")
    tok.close()
    servers = {}
    passed = failed = 0
    try:
        for rep, (f, doc) in ((r, d) for r in range(1 if record else repeat) for d in docs):
            short = os.path.relpath(f, CORPUS)
            if short.startswith(".."):
                short = f
            if rep:
                short += f" (again, {rep + 1})"
            changed = False
            for c in doc["cases"]:
                if not selected(c) or (rep and not repeatable(c)):
                    continue
                name = c.get("server", "default")
                if name not in servers:
                    servers[name] = Server(gradd, name, tok.name)
                title = f"{short}: {c['name']} [{name}] {method_of(c)} {c['path']}"
                t0 = time.monotonic()
                try:
                    status, headers, raw = send(servers[name].port, c)
                except (OSError, http.client.HTTPException) as e:
                    if record:
                        raise SystemExit(f"{title}: no answer: {e!r}")
                    failed += 1
                    print(f"FAIL {title}\n     no answer: {e!r}")
                    continue
                if os.environ.get("GOLDEN_TIMES"):
                    print(f"{time.monotonic() - t0:8.3f} s  {c['name']}")
                got, problems = observe(status, headers, raw)
                if record:
                    if problems:
                        raise SystemExit(f"{title}: " + "; ".join(problems))
                    if c.get("expect") != got:
                        c["expect"] = got
                        changed = True
                    passed += 1
                    continue
                diffs = problems + (compare(c["expect"], got) if "expect" in c else ["no expected answer recorded"])
                if diffs:
                    failed += 1
                    print(f"FAIL {title}")
                    for d in diffs:
                        print(f"     {d}")
                else:
                    passed += 1
            if record and changed:
                with open(f, "w", encoding="utf-8") as out:
                    out.write(pretty(doc) + "\n")
                print(f"golden: recorded {short}")
    finally:
        for s in servers.values():
            bad = s.stop()
            if bad:
                print(bad)
                failed += 1
        os.unlink(tok.name)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
