#!/usr/bin/env python3
"""graphreg.py - graph registration (A3) against a running gradd.

1. Content addresses: the id of a graph does not depend on key order or
   whitespace, differs between different graphs, and is the SHA-256 of a
   canonical form built here independently of gradd (RFC 8785 numbers and
   strings, keys sorted by UTF-8 bytes, integers exact); GET /v1/graphs/{id}
   returns exactly that canonical text.
2. Same answers: every golden case (tests/data/golden/*.json) that posts an
   inline graph to /v1/grad or /v1/eval is replayed with the graph registered
   first and "graph_id" sent in its place; the whole answer (status, headers,
   body, binary section; stats masked) must be the recorded one. A case whose
   graph cannot be registered is counted, not replayed; so is one of the few
   whose answer legitimately differs (see DIFFERS).
3. The routes: 201 then 200, 404 unknown_graph, graph and graph_id both or
   neither, DELETE 204 then 404, the /metrics counters, --graph-cache (413 for a
   graph larger than the cache, least recently used dropped first).

Standard library only. Usage: GRADD_BIN=build/gradd graphreg.py
"""
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (the corpus, its servers and its comparison)

# Golden cases whose registered answer differs from the inline one on
# purpose: their error message quotes the body's length, which graph_id
# shortens.
DIFFERS = {
    ("tensors.json", "binary: Gradd-Json-Length past the body"),
    ("tensors.json", "binary: Gradd-Json-Length not a number"),
}


# ---- an independent canonical form -------------------------------------------


def es_number(x):
    """A float as ECMAScript's Number.prototype.toString (RFC 8785 3.2.2.3)
    writes it, from the shortest digits Python's repr finds."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))
    mant, _, exp = r.partition("e")
    intpart, _, frac = mant.partition(".")
    digits = (intpart + frac).lstrip("0")
    n = len(intpart.lstrip("0")) if intpart.strip("0") else -(len(frac) - len(frac.lstrip("0")))
    n += int(exp) if exp else 0
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + s


def canonical(v):
    """The canonical JSON text of a parsed value (json.loads: int for integer
    literals, float otherwise). json.dumps(sort_keys=True,
    separators=(',', ':'), ensure_ascii=False) gives the same text except for
    floats: Python writes 1.0, 1e-07 and 1e+16 where RFC 8785 writes 1, 1e-7
    and 10000000000000000; its key order (code points) is the UTF-8 byte order
    A3 asks for, which differs from RFC 8785's UTF-16 order only for keys
    mixing characters above U+FFFF with ones in U+E000..U+FFFF."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(canonical(k) + ":" + canonical(v[k]) for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int):
        return str(v) if -2**63 <= v < 2**63 else es_number(float(v))
    if isinstance(v, float):
        return es_number(v)
    return json.dumps(v, ensure_ascii=False)


def expected_id(graph):
    return "sha256:" + hashlib.sha256(canonical(graph).encode("utf-8")).hexdigest()


# ---- HTTP ---------------------------------------------------------------------


def call(port, method, path, body=None, headers=None, raw_body=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        as_json = raw and not raw_body and r.getheader("Content-Type", "").startswith("application/json")
        return r.status, (json.loads(raw) if as_json else raw)
    finally:
        conn.close()


def metric(port, name):
    _, text = call(port, "GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"/metrics has no {name}")


FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL", what)


# ---- 1. ids ----------------------------------------------------------------------

GRAPHS = [
    {"nodes": [{"name": "x", "op": "variable", "shape": [2]},
               {"name": "c", "op": "constant", "value": [0.1, 1e-7, 1e21, 2.5e-5, 100.0, -0.0, 1e300, 123456.789]},
               {"name": "s", "op": "sum", "inputs": ["c"]},
               {"name": "m", "op": "mul", "inputs": ["x", "s"]},
               {"name": "loss", "op": "sum", "inputs": ["m"], "axis": 0, "keepdims": False}]},
    {"nodes": [{"name": "α\"quoted\"\\\u00e9\u4e2d\U0001f600", "op": "input", "dtype": "float32"},
               {"name": "k", "op": "leaky_relu", "inputs": ["α\"quoted\"\\\u00e9\u4e2d\U0001f600"], "alpha": 0.01},
               {"name": "i", "op": "constant", "dtype": "int64", "value": [9007199254740991, -3, 0]},
               {"name": "e", "op": "slice", "inputs": ["i"], "starts": [-9223372036854775808],
                "ends": [9223372036854775807]},
               {"name": "loss", "op": "sum", "inputs": ["k"]}]},
    {"nodes": [{"name": "w", "op": "variable", "shape": [3, 2]},
               {"name": "t", "op": "transpose", "inputs": ["w"], "axes": [1, 0]},
               {"name": "loss", "op": "mean", "inputs": ["t"]}]},
]


def shuffled_pretty(graph):
    """The same graph, every object's keys reversed, indented."""
    def rev(v):
        if isinstance(v, dict):
            return {k: rev(v[k]) for k in reversed(list(v))}
        if isinstance(v, list):
            return [rev(x) for x in v]
        return v
    return json.dumps({"graph": rev(graph)}, indent=3, ensure_ascii=False).encode()


def test_ids(port):
    ids = []
    for g in GRAPHS:
        st, a = call(port, "POST", "/v1/graphs", {"graph": g})
        check(st == 201, f"register: status {st}, {a}")
        if st != 201:
            continue
        st2, b = call(port, "POST", "/v1/graphs", shuffled_pretty(g))
        check(st2 == 200 and b["graph_id"] == a["graph_id"], f"same graph, keys reversed and indented: {st2} {b}")
        check(a["graph_id"] == expected_id(g), f"id {a['graph_id']} is not {expected_id(g)} of {canonical(g)}")
        st3, text = call(port, "GET", "/v1/graphs/" + a["graph_id"], raw_body=True)
        check(st3 == 200 and text == canonical(g).encode(), f"GET returns the canonical form: {st3} {text[:200]}")
        check(st3 == 200 and "sha256:" + hashlib.sha256(text).hexdigest() == a["graph_id"], "GET body hashes to id")
        check(a["nodes"] == len(g["nodes"]), f"nodes {a['nodes']}")
        want_vars = [n["name"] for n in g["nodes"] if n["op"] == "variable"]
        want_ins = [n["name"] for n in g["nodes"] if n["op"] == "input"]
        check(a["variables"] == want_vars and a["inputs"] == want_ins, f"variables/inputs: {a}")
        ids.append(a["graph_id"])
    check(len(set(ids)) == len(ids), f"different graphs, different ids: {ids}")
    # One number changed, one attribute added: different ids.
    g = json.loads(json.dumps(GRAPHS[2]))
    g["nodes"][2]["keepdims"] = False
    _, b = call(port, "POST", "/v1/graphs", {"graph": g})
    check(b["graph_id"] not in ids and b["graph_id"] == expected_id(g), "an added attribute changes the id")
    # 1 and 1.0 are the same number (decode.h), so the same graph.
    st, x = call(port, "POST", "/v1/graphs", b'{"graph":{"nodes":[{"name":"c","op":"constant","value":[1.0,2e0]}]}}')
    st2, y = call(port, "POST", "/v1/graphs", b'{"graph":{"nodes":[{"name":"c","op":"constant","value":[1,2]}]}}')
    check(st == 201 and st2 == 200 and x["graph_id"] == y["graph_id"], f"1.0 and 1 give one id: {x} {y}")


# ---- 2. golden replay ---------------------------------------------------------------


def with_graph_id(case, gid):
    """The case with its "graph" replaced, in place, by "graph_id"."""
    c = golden.loads(golden.dumps(case))
    part = c["json"] if "json" in c else c["binary"]["json"]
    new = {}
    for k, v in part.items():
        if k == "graph":
            new["graph_id"] = gid
        else:
            new[k] = v
    if "json" in c:
        c["json"] = new
    else:
        c["binary"]["json"] = new
    return c


def request_json(case):
    part = case.get("json", case.get("binary", {}).get("json") if isinstance(case.get("binary"), dict) else None)
    return part if isinstance(part, dict) else None


def test_golden(gradd, tok):
    servers = {}
    replayed = unregistered = differ = 0
    try:
        for f in sorted(os.listdir(golden.CORPUS)):
            if not f.endswith(".json"):
                continue
            doc = golden.load(os.path.join(golden.CORPUS, f))
            for c in doc["cases"]:
                part = request_json(c)
                name = c.get("server", "default")
                if (c.get("path") not in ("/v1/grad", "/v1/eval") or part is None or "graph" not in part
                        or "graph_id" in part
                        or name == "draining" or name.startswith("metrics") or "expect" not in c
                        or c.get("chunked")):
                    continue
                if name not in servers:
                    servers[name] = golden.Server(gradd, name, tok)
                port = servers[name].port
                hdrs = {k: v for k, v in c.get("headers", {}).items()
                        if v is not None and k.lower() in ("authorization", "origin")}
                body = golden.dumps({"graph": part["graph"]}).encode()
                st, reg = call(port, "POST", "/v1/graphs", body, hdrs)
                if st not in (200, 201):
                    unregistered += 1
                    continue
                if (f, c["name"]) in DIFFERS:
                    differ += 1
                    continue
                rc = with_graph_id(c, reg["graph_id"])
                status, headers, raw = golden.send(port, rc)
                got, problems = golden.observe(status, headers, raw)
                diffs = problems + golden.compare(c["expect"], got)
                check(not diffs, f"golden {f}: {c['name']} [{name}] with graph_id: " + "; ".join(diffs[:4]))
                replayed += 1
    finally:
        for s in servers.values():
            s.stop()
    print(f"golden replay: {replayed} cases answered alike with graph_id, {unregistered} graphs not registrable "
          f"(their error comes from the graph), {differ} differing on purpose")
    check(replayed >= 150, f"only {replayed} golden cases replayed")


# ---- 3. routes, errors, cache, metrics -------------------------------------------------

SMALL = {"nodes": [{"name": "x", "op": "variable"}, {"name": "loss", "op": "sum", "inputs": ["x"]}]}


def test_routes(port):
    st, a = call(port, "POST", "/v1/graphs", {"graph": SMALL})
    gid = a["graph_id"]
    hits, misses = metric(port, "gradd_graph_cache_hits_total"), metric(port, "gradd_graph_cache_misses_total")
    st, r = call(port, "POST", "/v1/grad", {"graph_id": gid, "values": {"x": [1, 2]}, "target": "loss"})
    check(st == 200 and r["gradients"]["x"] == [1.0, 1.0], f"grad by id: {st} {r}")
    st, r = call(port, "POST", "/v1/eval", {"graph_id": gid, "values": {"x": [1, 2]}, "target": "loss"})
    check(st == 200 and r["values"]["loss"] == 3.0, f"eval by id: {st} {r}")
    st, r = call(port, "POST", "/v1/grad", {"graph_id": gid, "graph": SMALL, "values": {"x": [1]}, "target": "loss"})
    check(st == 400 and r["error"]["code"] == "invalid_request" and r["error"]["at"] == "$.graph_id", f"both: {r}")
    st, r = call(port, "POST", "/v1/grad", {"values": {"x": [1]}, "target": "loss"})
    check(st == 400 and r["error"]["code"] == "invalid_request", f"neither: {r}")
    st, r = call(port, "POST", "/v1/grad", {"graph_id": 7, "target": "loss"})
    check(st == 400 and r["error"]["code"] == "invalid_request" and r["error"]["at"] == "$.graph_id", f"type: {r}")
    st, r = call(port, "POST", "/v1/grad", {"graph_id": "sha256:" + "0" * 64, "values": {"x": [1]}, "target": "loss"})
    check(st == 404 and r["error"]["code"] == "unknown_graph" and r["error"]["at"] == "$.graph_id", f"404: {r}")
    # Name errors against a held graph: the same paths and suggestions as inline.
    st, r = call(port, "POST", "/v1/grad", {"graph_id": gid, "values": {"x": [1]}, "target": "los"})
    check(st == 400 and r["error"]["code"] == "unknown_node" and r["error"].get("suggestion") == "loss", f"{r}")
    check(metric(port, "gradd_graph_cache_hits_total") == hits + 3, "hits counted")
    check(metric(port, "gradd_graph_cache_misses_total") == misses + 1, "misses counted")
    # Registration errors: as /v1/grad's, with the same paths.
    bad = {"nodes": [{"name": "x", "op": "variable"}, {"name": "y", "op": "exp", "inputs": ["z"]}]}
    st, r = call(port, "POST", "/v1/graphs", {"graph": bad})
    st2, r2 = call(port, "POST", "/v1/grad", {"graph": bad, "target": "y"})
    check(st == 400 and r == r2 and r["error"]["at"] == "$.graph.nodes[1].inputs[0]", f"unknown input: {r} {r2}")
    cyc = {"nodes": [{"name": "a", "op": "exp", "inputs": ["b"]}, {"name": "b", "op": "exp", "inputs": ["a"]}]}
    st, r = call(port, "POST", "/v1/graphs", {"graph": cyc})
    check(st == 400 and r["error"]["code"] == "cycle", f"cycle: {r}")
    shp = {"nodes": [{"name": "a", "op": "variable", "shape": [2]}, {"name": "b", "op": "variable", "shape": [3]},
                     {"name": "c", "op": "add", "inputs": ["a", "b"]}]}
    st, r = call(port, "POST", "/v1/graphs", {"graph": shp})
    check(st == 400 and r["error"]["code"] == "shape_mismatch" and r["error"]["at"] == "$.graph.nodes[2].inputs",
          f"declared shapes that conflict: {r}")
    st, r = call(port, "POST", "/v1/graphs", {"graph": SMALL, "target": "loss"})
    check(st == 400 and r["error"]["code"] == "unknown_key" and r["error"]["at"] == "$.target", f"extra key: {r}")
    # A conflict inside an untaken cond branch is no registration error; a
    # request taking that branch reports it.
    br = {"nodes": [{"name": "p", "op": "input"}, {"name": "a", "op": "variable", "shape": [2]},
                    {"name": "b", "op": "constant", "value": [1, 2, 3]}, {"name": "bad", "op": "add", "inputs": ["a", "b"]},
                    {"name": "ok", "op": "sum", "inputs": ["a"]}, {"name": "sb", "op": "sum", "inputs": ["bad"]},
                    {"name": "c", "op": "cond", "inputs": ["p", "ok", "sb"]}]}
    st, r = call(port, "POST", "/v1/graphs", {"graph": br})
    check(st == 201, f"branch-only conflict registers: {st} {r}")
    if st == 201:
        for p in (1.0, 0.0):
            req = {"values": {"p": p, "a": [1, 2]}, "target": "c"}
            a1 = call(port, "POST", "/v1/grad", dict(req, graph=br))
            a2 = call(port, "POST", "/v1/grad", dict(req, graph_id=r["graph_id"]))
            for x in (a1[1], a2[1]):
                if isinstance(x, dict):
                    x.pop("stats", None)
            check(a1 == a2, f"cond p={p}: inline {a1} registered {a2}")
            check(a1[0] == (200 if p else 400), f"cond p={p}: {a1}")
    # DELETE, then 404 everywhere; HEAD; a path that names no graph.
    st, _ = call(port, "DELETE", "/v1/graphs/" + gid)
    check(st == 204, f"delete: {st}")
    st, r = call(port, "DELETE", "/v1/graphs/" + gid)
    check(st == 404 and r["error"]["code"] == "unknown_graph", f"delete again: {r}")
    st, r = call(port, "GET", "/v1/graphs/" + gid)
    check(st == 404 and r["error"]["code"] == "unknown_graph", f"get deleted: {r}")
    st, r = call(port, "GET", "/v1/graphs")
    check(st == 405, f"GET /v1/graphs: {st}")
    st, r = call(port, "PUT", "/v1/graphs/" + gid)
    check(st == 405, f"PUT /v1/graphs/id: {st}")


def test_cache(gradd):
    """--graph-cache 256K: a graph over it is 413; registering past it drops
    the least recently used."""
    s = golden.Server.__new__(golden.Server)
    s.name, s.port, s.log = "graph_cache", golden.free_port(), tempfile.TemporaryFile()
    s.proc = golden.subprocess.Popen([gradd, "--port", str(s.port), "--workers", "2", "--blas-threads", "1",
                                      "--drain-ms", "0", "--graph-cache", "256K"], stdout=s.log, stderr=s.log)
    s.wait_for("/healthz", 200)
    try:
        port = s.port
        big = {"nodes": [{"name": "c", "op": "constant", "value": [0.5] * 40000}]}
        st, r = call(port, "POST", "/v1/graphs", {"graph": big})
        check(st == 413 and r["error"]["code"] == "too_large" and "--graph-cache" in r["error"]["message"],
              f"graph over the cache: {st} {r}")
        chain = lambda k: {"nodes": [{"name": "x", "op": "variable"}] + [
            {"name": f"n{i}", "op": "exp", "inputs": ["x" if i == 0 else f"n{i - 1}"]} for i in range(k)]}
        small = lambda k: {"nodes": [{"name": "x", "op": "variable"},
                                     {"name": "n0", "op": "leaky_relu", "inputs": ["x"], "alpha": k / 1000}]}
        ids = []
        for k in range(150):
            st, r = call(port, "POST", "/v1/graphs", {"graph": small(k)})
            check(st == 201, f"register graph {k}: {st} {r}")
            ids.append(r.get("graph_id"))
            if k % 5 == 4:  # keep the first one recently used
                st, _ = call(port, "POST", "/v1/eval", {"graph_id": ids[0], "values": {"x": 0}, "target": "n0"})
                check(st == 200, f"first graph still held while used ({k})")
        first = ids[0]
        held = metric(port, "gradd_graphs_held")
        nbytes = metric(port, "gradd_graph_cache_bytes")
        check(0 < nbytes <= 262144, f"gradd_graph_cache_bytes {nbytes} within --graph-cache")
        check(held < 150, f"the cache dropped graphs: {held} held")
        check(call(port, "GET", "/v1/graphs/" + ids[1])[0] == 404, "the least recently used went first")
        check(call(port, "GET", "/v1/graphs/" + first)[0] == 200, "a recently used graph stayed")
        check(call(port, "GET", "/v1/graphs/" + ids[-1])[0] == 200, "the newest stayed")
        # Requests on a graph while it is deleted and registered again: each
        # answer is the right one or unknown_graph, never anything else.
        g = chain(50)
        _, r = call(port, "POST", "/v1/graphs", {"graph": g})
        gid, bad = r["graph_id"], []

        def user():
            for _ in range(40):
                st, a = call(port, "POST", "/v1/grad", {"graph_id": gid, "values": {"x": 0.0}, "target": "n49"})
                if not (st == 200 and isinstance(a, dict) and "gradients" in a
                        or st == 404 and a["error"]["code"] == "unknown_graph"):
                    bad.append((st, a))

        def churn():
            for _ in range(40):
                call(port, "DELETE", "/v1/graphs/" + gid)
                call(port, "POST", "/v1/graphs", {"graph": g})
        ts = [threading.Thread(target=user) for _ in range(3)] + [threading.Thread(target=churn)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not bad, f"answers during delete/register churn: {bad[:3]}")
    finally:
        rc = s.stop()
        check(rc == 0, f"gradd exit: {rc}")


def main():
    gradd = os.environ.get("GRADD_BIN")
    if not gradd:
        print("graphreg: set GRADD_BIN (make check does)", file=sys.stderr)
        return 2
    tok = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)
    tok.write(golden.TOKEN + "\n")
    tok.close()
    s = golden.Server(gradd, "default", tok.name)
    try:
        test_ids(s.port)
        test_routes(s.port)
    finally:
        rc = s.stop()
        check(rc == 0, f"gradd exit: {rc}")
    test_cache(gradd)
    test_golden(gradd, tok.name)
    os.unlink(tok.name)
    print(f"graphreg: {len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
