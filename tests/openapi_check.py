#!/usr/bin/env python3
"""openapi_check.py - docs/openapi.json describes gradd, and gradd answers as it says.

1. The document itself: OpenAPI 3.1.0, info.version the contract version
   (server/openapi.h's GD_API_VERSION), every $ref resolves, every schema is
   a valid JSON Schema 2020-12 (jsonschema's meta-schema check), operation
   ids unique, every response names Gradd-Api-Version; the error codes are
   exactly core/error.h's table, the diagnostic codes core/diagnose.h's (plus
   the pending ones below); the op schemas are what scripts/gen_openapi.py
   renders from GET /v1/ops. Debian ships no OpenAPI 3.1 meta-schema: where
   the openapi-spec-validator module or npm's @redocly/cli (`redocly`, see
   scripts/install-deps.sh) is installed, it validates the document too;
   otherwise that step is skipped with a message.
2. gradd serves the document byte for byte at GET /v1/openapi.json.
3. Real answers: every request of the golden corpus (tests/data/golden/:
   every documented example, every error code, every diagnostic, every
   tensor form, every op) is sent to a live gradd, and each answer is
   validated with jsonschema against the document: its status must be one
   the operation lists (an undocumented path or method: 404 not_found or 405
   method_not_allowed), its Content-Type one the response lists, its body
   (the JSON part of a binary answer) the response's schema, its headers the
   declared ones. Request bodies of 2xx answers are validated against the
   request schema too. Then every error code and every diagnostic code must
   have been seen in a validated answer, except:
     EXPECTED_TO_APPEAR: described by the contract but not yet built (none
       today): listed, not failed; once one appears in an answer the check
       fails until it is removed from the list.
     NEVER_SEEN: `internal` (only a bug produces it).

Needs jsonschema (Debian's python3-jsonschema): when the first python3 lacks
it, /usr/bin/python3 is tried; without it the check is skipped (exit 77),
except under CI=true, where that fails.

Usage (make check runs it with GRADD_BIN set):
  openapi_check.py [GRADD]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
DOC = os.path.join(ROOT, "docs", "openapi.json")


def need_jsonschema():
    try:
        import jsonschema  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("GD_OPENAPI_REEXEC") != "1":
        for py in ("/usr/bin/python3", "/bin/python3"):
            if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
                if subprocess.run([py, "-c", "import jsonschema"], capture_output=True).returncode == 0:
                    os.environ["GD_OPENAPI_REEXEC"] = "1"
                    os.execv(py, [py] + sys.argv)
    msg = "openapi_check: SKIP: no jsonschema module (install Debian's python3-jsonschema: scripts/install-deps.sh)"
    print(msg)
    sys.exit(1 if os.environ.get("CI") == "true" else 77)


need_jsonschema()
import jsonschema  # noqa: E402

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import golden  # noqa: E402
import gen_openapi  # noqa: E402

# Described by the contract, produced only once other branches land (see the docstring).
EXPECTED_TO_APPEAR = {}
NEVER_SEEN = {"error internal": "only a bug produces it"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


# ---- 1. the document ---------------------------------------------------------------


def refs(v, out):
    if isinstance(v, dict):
        if isinstance(v.get("$ref"), str):
            out.append(v["$ref"])
        for x in v.values():
            refs(x, out)
    elif isinstance(v, list):
        for x in v:
            refs(x, out)
    return out


def pointer(doc, ref):
    if not ref.startswith("#/"):
        raise KeyError(ref)
    v = doc
    for part in ref[2:].split("/"):
        v = v[part.replace("~1", "/").replace("~0", "~")]
    return v


def table_codes(path, pattern):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.findall(pattern, f.read())


def check_document(doc):
    if doc.get("openapi") != "3.1.0":
        fail(f"openapi is {doc.get('openapi')!r}, not 3.1.0")
    want = table_codes("server/openapi.h", r'#define GD_API_VERSION "([^"]+)"')
    if doc["info"].get("version") != "1.1" or want != ["1.1"]:
        fail(f"info.version {doc['info'].get('version')!r}, GD_API_VERSION {want}: both must be the contract's 1.1")
    for r in refs(doc, []):
        try:
            pointer(doc, r)
        except (KeyError, TypeError):
            fail(f"$ref {r} does not resolve")
    for name, s in doc["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            fail(f"components.schemas.{name} is not a valid JSON Schema 2020-12: {e.message}")
    ids = []
    for path, item in doc["paths"].items():
        for method, o in item.items():
            if method == "parameters":
                continue
            ids.append(o.get("operationId"))
            if not o.get("responses"):
                fail(f"{method.upper()} {path}: no responses")
            for status, resp in o.get("responses", {}).items():
                resp = resolve(doc, resp)
                if "Gradd-Api-Version" not in resp.get("headers", {}):
                    fail(f"{method.upper()} {path} {status}: no Gradd-Api-Version header")
    dup = {i for i in ids if ids.count(i) > 1 or i is None}
    if dup:
        fail(f"operationIds missing or repeated: {sorted(map(str, dup))}")
    errors = table_codes("core/error.h", r'X\(\s*\w+,\s*"([a-z_]+)",\s*\d{3}')
    if doc["components"]["schemas"]["ErrorCode"]["enum"] != errors:
        fail(f"ErrorCode enum {doc['components']['schemas']['ErrorCode']['enum']} is not core/error.h's {errors}")
    diags = table_codes("core/diagnose.h", r'X\(\s*\w+,\s*"([a-z_]+)"\)')
    pending = [k.split()[1] for k in EXPECTED_TO_APPEAR if k.startswith("diagnostic ")]
    landed = [d for d in pending if d in diags]
    if landed:
        fail(f"diagnostics {landed} are in core/diagnose.h now: delete them from EXPECTED_TO_APPEAR")
    if doc["components"]["schemas"]["DiagnosticCode"]["enum"] != diags + [d for d in pending if d not in diags]:
        fail(f"DiagnosticCode enum is not core/diagnose.h's {diags} + pending {pending}")


def external_validators():
    try:
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate:
        try:
            validate(json.load(open(DOC, encoding="utf-8")))
            print("openapi_check: openapi-spec-validator: valid OpenAPI 3.1")
        except Exception as e:  # noqa: BLE001 (the validator's own error types vary by version)
            fail(f"openapi-spec-validator: {str(e)[:2000]}")
    else:
        print("openapi_check: skip openapi-spec-validator (module not installed)")
    redocly = shutil.which("redocly")
    if not redocly:
        print("openapi_check: skip @redocly/cli lint (no `redocly` on PATH: npm install -g @redocly/cli, "
              "as scripts/install-deps.sh does where npm is reachable)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "redocly.yaml")
        with open(cfg, "w") as f:
            f.write("extends:\n  - recommended\nrules:\n  operation-4xx-response: off\n"
                    "  info-license-strict: off\n  no-server-example.com: off\n  security-defined: off\n"
                    # the if/then and allOf refinements name properties that the schema they refine defines
                    "  no-required-schema-properties-undefined: off\n")
        p = subprocess.run([redocly, "lint", "--config", cfg, DOC], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true"))
    out = (p.stdout + p.stderr).strip()
    if p.returncode != 0:
        fail("redocly lint:\n" + out[-4000:])
    else:
        print("openapi_check: redocly lint: " + (out.splitlines()[-1] if out else "valid"))


# ---- 3. answers against the document ----------------------------------------------


def resolve(doc, v):
    while isinstance(v, dict) and "$ref" in v:
        v = pointer(doc, v["$ref"])
    return v


def validator(doc, schema):
    """A 2020-12 validator of schema, whose #/components/... refs resolve in doc."""
    return jsonschema.Draft202012Validator(dict(schema, components=doc["components"]))


def template_of(doc, path):
    """(template, path item) of a concrete path, or (None, None)."""
    path = path.split("?")[0]
    for t, item in doc["paths"].items():
        rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(t)) + "$"
        if re.match(rx, path):
            return t, item
    return None, None


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.seen = set()
        self.answers = 0
        self.cache = {}

    def validate(self, schema, value, what):
        key = json.dumps(schema, sort_keys=True)
        if key not in self.cache:
            self.cache[key] = validator(self.doc, schema)
        errs = sorted(self.cache[key].iter_errors(value), key=lambda e: list(e.absolute_path))
        for e in errs[:3]:
            fail(f"{what}: at ${''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message[:300]}")
        return not errs

    def note(self, body):
        """Record the error and diagnostic codes and fields an answer shows."""
        if isinstance(body, dict):
            if isinstance(body.get("error"), dict):
                self.seen.add("error " + str(body["error"].get("code")))
            if "severity" in body and "code" in body:
                self.seen.add("diagnostic " + str(body["code"]))
            for k, v in body.items():
                if k in ("same_value_as", "candidates"):
                    self.seen.add("field " + k)
                self.note(v)
        elif isinstance(body, list):
            for v in body:
                self.note(v)

    def answer(self, title, method, path, status, headers, raw, req_json=None):
        self.answers += 1
        hdr = {k.lower(): v for k, v in headers}
        tmpl, item = template_of(self.doc, path)
        o = item.get(method.lower()) if item else None
        if o is None:
            if status not in (404, 405):
                fail(f"{title}: {method} {path} is not in the document, yet answered {status}")
                return
            resp = resolve(self.doc, self.doc["components"]["responses"]["NotFound" if status == 404 else "MethodNotAllowed"])
        else:
            if 200 <= status < 300:
                self.seen.add(f"route {method} {tmpl}")
            resp = o["responses"].get(str(status))
            if resp is None:
                fail(f"{title}: {method} {tmpl} answered {status}, which the document does not list "
                     f"({', '.join(o['responses'])})")
                return
            resp = resolve(self.doc, resp)
            if req_json is not None and 200 <= status < 300 and "requestBody" in o:
                schema = resolve(self.doc, o["requestBody"])["content"]["application/json"]["schema"]
                self.validate(schema, req_json, f"{title}: request body")
        for name, h in resp.get("headers", {}).items():
            h = resolve(self.doc, h)
            v = hdr.get(name.lower())
            if v is None:
                if h.get("required"):
                    fail(f"{title}: no {name} header")
                continue
            schema = h["schema"]
            value = int(v) if schema.get("type") == "integer" and v.isdigit() else v
            self.validate(schema, value, f"{title}: header {name}: {v!r}")
        ctype = hdr.get("content-type")
        content = resp.get("content")
        if not content:
            if raw and method != "HEAD":
                fail(f"{title}: {status} has a body, the document lists none")
            return
        if method == "HEAD":
            return
        base = ctype.split(";")[0].strip().lower() if ctype else None
        media = {k.split(";")[0].strip().lower(): v for k, v in content.items()}
        if base not in media:
            fail(f"{title}: Content-Type {ctype!r} is not one of {list(content)}")
            return
        schema = media[base]["schema"]
        if base == golden.BINARY:
            n = int(hdr["gradd-json-length"])
            body = json.loads(raw[:n])
            schema = resolve(self.doc, o["responses"][str(status)])["content"]["application/json"]["schema"]
        elif base == "application/json":
            body = json.loads(raw)
        else:
            body = raw.decode("utf-8")
        if tmpl != "/v1/openapi.json":
            self.note(body)
        self.validate(schema, body, f"{title}: {status} body")


def request_json(case):
    """The JSON request of a case, parsed as gradd parses it (None if it is not JSON)."""
    body, headers = golden.request_body(case)
    if body is None:
        return None
    if "Gradd-Json-Length" in headers:
        body = body[:int(headers["Gradd-Json-Length"])]
    try:
        return json.loads(body)
    except ValueError:
        return None


def replay_golden(gradd, doc, checker):
    tok = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)
    tok.write(golden.TOKEN + "\n")
    tok.close()
    servers = {}
    try:
        files = sorted(os.path.join(golden.CORPUS, f) for f in os.listdir(golden.CORPUS) if f.endswith(".json"))
        for f in files:
            for c in golden.load(f)["cases"]:
                name = c.get("server", "default")
                if name not in servers:
                    servers[name] = golden.Server(gradd, name, tok.name)
                method = golden.method_of(c)
                title = f"{os.path.basename(f)}: {c['name']}"
                status, headers, raw = golden.send(servers[name].port, c)
                req = request_json(c)
                checker.answer(title, method, c["path"], status, headers, raw, req)
        # this document, served
        port = servers["default"].port
        for method in ("GET", "HEAD"):
            status, headers, raw = golden.send(port, {"method": method, "path": "/v1/openapi.json"})
            checker.answer(f"{method} /v1/openapi.json", method, "/v1/openapi.json", status, headers, raw)
            if method == "GET":
                with open(DOC, "rb") as fh:
                    if raw != fh.read():
                        fail("GET /v1/openapi.json is not docs/openapi.json byte for byte (rebuild gradd)")
        # Answers the golden corpus does not record (the playground page
        # changes with the documentation; a picture with Graphviz's version):
        # the page, and a picture as SVG and as DOT.
        picture = {"graph": {"nodes": [{"name": "w", "op": "variable"}, {"name": "s", "op": "stop_gradient",
                                                                           "inputs": ["w"]},
                                       {"name": "loss", "op": "sum", "inputs": ["s"]}]},
                   "values": {"w": [1.0, 2.0]}, "target": "loss"}
        probes = [("GET /", {"method": "GET", "path": "/"}),
                  ("HEAD /", {"method": "HEAD", "path": "/"}),
                  ("POST /v1/explain (SVG)", {"path": "/v1/explain", "json": picture}),
                  ("POST /v1/explain (DOT)", {"path": "/v1/explain", "json": picture,
                                              "headers": {"Accept": "text/vnd.graphviz"}})]
        for title, case in probes:
            method = golden.method_of(case)
            status, headers, raw = golden.send(port, case)
            checker.answer(title, method, case["path"], status, headers, raw, request_json(case))
    finally:
        for s in servers.values():
            s.stop()
        os.unlink(tok.name)


def coverage(doc, checker):
    want = {"error " + c for c in doc["components"]["schemas"]["ErrorCode"]["enum"]}
    want |= {"diagnostic " + c for c in doc["components"]["schemas"]["DiagnosticCode"]["enum"]}
    want |= {"field same_value_as", "field candidates"}
    for t, item in doc["paths"].items():
        for m in item:
            if m in ("get", "post", "delete"):
                want.add(f"route {m.upper()} {t}")
    names = {o["name"] for o in golden_ops(doc)}
    for op in doc["components"]["schemas"]["OpName"]["enum"]:
        want.add("op " + op) if op not in names else checker.seen.add("op " + op)
    for k in sorted(want - checker.seen):
        if k in NEVER_SEEN:
            print(f"openapi_check: not seen, as expected: {k} ({NEVER_SEEN[k]})")
        elif k in EXPECTED_TO_APPEAR or (k == "field candidates" and "diagnostic no_variables" in EXPECTED_TO_APPEAR):
            print(f"openapi_check: EXPECTED TO APPEAR (not failed): {k}: "
                  f"{EXPECTED_TO_APPEAR.get(k, EXPECTED_TO_APPEAR.get('diagnostic no_variables'))}")
        else:
            fail(f"no answer showed {k}: add a golden case that does")
    for k in sorted(EXPECTED_TO_APPEAR):
        if k in checker.seen:
            fail(f"{k} appears in answers now: delete it from EXPECTED_TO_APPEAR in tests/openapi_check.py")


def golden_ops(doc):
    """The ops of this build's table (GET /v1/ops in the golden corpus)."""
    with open(os.path.join(golden.CORPUS, "ops.json"), encoding="utf-8") as f:
        for c in json.load(f)["cases"]:
            if c["path"] == "/v1/ops" and c["expect"].get("json", {}).get("ops"):
                return c["expect"]["json"]["ops"]
    return []


def main(argv):
    gradd = argv[0] if argv else os.environ.get("GRADD_BIN")
    if not gradd:
        print(__doc__)
        return 2
    with open(DOC, encoding="utf-8") as f:
        doc = json.load(f)
    check_document(doc)
    if gen_openapi.main(["--gradd", gradd, "--check", DOC]) != 0:
        fail("docs/openapi.json's op schemas differ from GET /v1/ops")
    external_validators()
    checker = Checker(doc)
    replay_golden(os.path.abspath(gradd), doc, checker)
    coverage(doc, checker)
    print(f"openapi_check: {checker.answers} answers validated against docs/openapi.json, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
