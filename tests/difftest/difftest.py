#!/usr/bin/env python3
"""difftest.py - gradd against a PyTorch reference of the contract, on random requests.

Each case is a random well-typed POST /v1/grad request (gen.py: every op of GET /v1/ops with its
attributes, broadcasting, ties, kinks, magnitudes 1e-300..1e300, NaN/Inf, int64, every tensor form
in and out including binary framing, float32 transport, cond with unsent leaves on the untaken
branch, several targets, target_grad, wrt on intermediates, fetch). reference.py computes the
contract's answer (shared/api-v1.md with amendment A8) in float64 with torch.autograd; gradd's
answer must agree.

Agreement, element by element, for target values, gradients and fetched values:
  - same status; for an error, the same error code;
  - the same set of names, null exactly where the reference has null, same shape and dtype;
  - int64 elements equal exactly;
  - float64: NaN == NaN; +Inf/-Inf equal only to themselves; zeros equal whatever their sign
    (the sign of a zero gradient depends on how a rule is associated, which the contract does
    not fix); otherwise |a - b| <= RTOL * max(|a|, |b|) with RTOL = 1e-9, or |a - b| <= ATOL
    = 2**-1022 (below the normal range results depend on the order of operations), or, for
    gradients only, |a - b| <= CANCEL * S where S is the largest finite |target_grad| element
    sent (1 without target_grad) and CANCEL = 1e-14, only when S <= 1e6: fused rules such as
    softmax's y * (g - sum(g * y)) cancel, so a true 0 comes out as 1e-17; cases with extreme
    cotangents get no such slack;
  - every float64 printed in a JSON answer is the shortest text that reads back (Python's repr);
  - float32 transport (the target value, fetched value or gradient of a leaf whose value came
    as float32): dtype "float32" in the flat, b64 and binary forms (4-byte elements), and the
    element is a float32 rounding of some value within the float64 tolerance above of the
    reference's unrounded one (rounding after the tolerance, so that a value near a rounding
    boundary may go either way); each printed number is the shortest text that reads back to
    the same float32, nearest among those, in repr's layout (reference.f32_text).

A failure is first matched against KNOWN_CLASSES below: known defects of gradd still to be fixed,
and tolerances that are not defects (issue 8's defect classes were deleted as their fixes landed,
and their cases under cases/ now pass). Each class names a reference flag that reproduces the
defect (or a predicate on the request and answer); a failing case that agrees with the reference
run with one class's flag is counted under that class and tolerated. The tolerances:
  - signed_zero: the sign of a zero decided the difference (1/(+-0), log(+-0), (+-0)**-3): every
    disagreement is an infinity of the other sign in a graph that divides, or gradd agrees with
    the reference run with every zero an op computes made +0 (flag positive_zero);
  - float64_limit: arbitration by the true answer. exact.py evaluates the graph and its gradients
    in mpmath from the same float64 inputs (exactly for sums and products: no overflow, underflow
    or cancellation; ops it does not know make the class inapplicable), and each disagreeing
    float64 element of gradd's is accepted when (a) it is within the tolerance above of the true
    value rounded to float64, or (b) it is at least as close to the true value as the
    reference's, exactly, and at a finite distance, or (c) it is within CANCEL * M of the true
    value, M the element's magnitude: for a gradient, the same sweep with every product and
    difference taken in absolute value (the size of the terms that cancel in it), for a value 1
    (the cancellation slack, per element and measured against the truth), or (d) it is no farther
    from the true value than the reference's own answers on PERTURBED_RUNS copies of the request
    whose float64 inputs and cotangents are moved one ulp at random. Why: PyTorch is float64 too,
    and where float64 limits both (products that overflow, subnormal intermediates, the order of
    a sum that cancels, log(1 + 1e-9)), agreeing with PyTorch's rounding is not the contract;
    being as right as float64 allows is. NaN, or an infinity where the truth is finite, is never
    accepted by (b)-(d); or (e) the reference's element is NaN, gradd's an infinity, and an
    operand of the rule that made it holds a finite value beyond float64's range in the exact
    run (an upstream overflow: both sides computed from an infinity the truth does not have;
    an overflow born in the rule itself does not count, see overflowed_operand). A target
    exact.py cannot evaluate leaves out only that target and the gradients of what it depends
    on. Everything but float64 elements (status, names, nulls, shapes, dtypes, int64 elements)
    must agree as usual;
  - near_tie: an argmax/argmin slice whose values at gradd's and the reference's indices are
    equal to within RTOL in the reference's run (rounding picked the maximum); only that node's
    fetched values may differ. Delete a class's line once its fix
lands: its cases must then agree with the contract. Any other failure fails the run; it is
minimized (nodes cut into leaves holding their values, fetch/wrt/targets dropped, values
simplified, while it still fails outside the known classes) and written to
./difftest-failures/seedS_caseK.json (--save DIR). Copy a case worth keeping into
tests/difftest/cases/: every run replays those first (a known-class case counts under its
class, and passes once the fix lands); a failure outside the classes belongs there with
its fix, or with a new class naming the defect it stands for. Until then it waits in
tests/difftest/findings/, which make check does not replay (`--replay FILE` does).

Scope: v1 and amendment A8. A1-A7 are later work (a request without variables is answered
as v1 does: 200 with no gradients).

Usage:
  difftest.py [--cases N] [--seed S] [--no-replay] [--keep-going] [--save DIR]
  difftest.py --replay FILE...          just the given case files
GRADD_BIN names the gradd binary (make check sets it); started on a free loopback port.
`make check` runs 2,000 cases with seed 8; `make difftest CASES=N SEED=S` any number.

Standard library + torch (Debian's python3-torch) and mpmath (python3-mpmath, which
python3-torch pulls in through sympy) only.
"""
import base64
import glob
import http.client
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "cases")
RTOL = 1e-9
ATOL = 2.0 ** -1022
CANCEL = 1e-14
CANCEL_SCALE = 1e6
BINARY = "application/vnd.gradd.v1+binary"


def _reexec_with_torch():
    """torch is Debian's python3-torch: use /usr/bin/python3 when the first python3 lacks it."""
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    for py in ("/usr/bin/python3", "/bin/python3"):
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable) \
                and not os.environ.get("DIFFTEST_REEXEC"):
            os.environ["DIFFTEST_REEXEC"] = "1"
            os.execv(py, [py] + sys.argv)
    print("difftest: SKIP: python3-torch is not installed")
    sys.exit(77)


_reexec_with_torch()
sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only in distcheck)
sys.path.insert(0, HERE)
import torch  # noqa: E402
import exact  # noqa: E402
import gen  # noqa: E402
import reference as ref  # noqa: E402

torch.set_num_threads(1)

# ---- known-failure classes -------------------------------------------------------------------
# name: (how it is recognised, the defect it stands for).  "flag:X" = the reference run with flag
# X agrees with gradd; "pred:X" = the predicate PREDICATES[X] holds.  One line per class: delete
# the line when the fix lands.
KNOWN_CLASSES = {
    "signed_zero": ("pred:signed_zero", "not a defect: 1/(+-0), log(+-0), (+-0)**-3 where the sign of a zero is not fixed (see the tolerance above)"),
    "float64_limit": ("pred:float64_limit", "not a defect: gradd as close to the true answer (mpmath) as PyTorch or closer, where float64 itself limits both"),
    "near_tie": ("pred:near_tie", "not a defect: argmax/argmin between values equal to within RTOL, where rounding decides"),
}


# ---- gradd ------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gradd:
    def __init__(self, binary):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--workers", "1", "--blas-threads", "1",
             "--drain-ms", "0", "--log-format", "text"], stdout=self.log, stderr=self.log)
        for _ in range(600):
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("difftest: gradd did not start:\n" + self.logtext())

    def logtext(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def post(self, body, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request("POST", "/v1/grad", body=body, headers=headers)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed"


def wire(case):
    """The case's HTTP body and headers: JSON, or binary framing with `binary` values moved out."""
    req = case["request"]
    moved = case.get("binary_values", [])
    if not moved:
        return json.dumps(req, allow_nan=False).encode(), {"Content-Type": "application/json"}, b""
    req = json.loads(json.dumps(req))
    sec = bytearray()
    for name in moved:
        v = req["values"][name]
        raw = base64.b64decode(v.pop("b64"))
        while len(sec) % 8:
            sec.append(0)
        v["offset"], v["nbytes"] = len(sec), len(raw)
        sec += raw
    js = json.dumps(req, allow_nan=False).encode()
    return js + bytes(sec), {"Content-Type": BINARY, "Gradd-Json-Length": str(len(js))}, bytes(sec)


# ---- gradd's answer, decoded ---------------------------------------------------------------------

def parse_answer(status, headers, raw):
    """(status, body, binary section, [non-shortest float texts])."""
    bad = []

    def pf(s):
        v = Num(s)
        if repr(float(v)) != s:
            bad.append(s)
        return v
    sec = b""
    if headers.get("content-type", "").startswith(BINARY):
        n = int(headers["gradd-json-length"])
        raw, sec = raw[:n], raw[n:]
    try:
        body = json.loads(raw, parse_float=pf)
    except ValueError:
        body = None
    return status, body, sec, bad


class Num(float):
    """A JSON number of gradd's answer, with the text it was printed as."""

    def __new__(cls, text):
        v = float.__new__(cls, text)
        v.text = text
        return v


def answer_tensor(v, sec):
    """gradd's tensor as a torch tensor; t.texts: its JSON numbers' texts (None for NaN and
    infinities, and for raw forms), for the float32 printing rule."""
    if v is None:
        return None
    if isinstance(v, dict):
        t = ref.decode_tensor(v, None, sec)
        t.texts = [getattr(x, "text", None) for x in v.get("data", [])] if "data" in v else None
        return t
    dt = "int64" if _all_ints(v) and not _has_float(v) else None
    t = ref.decode_tensor(v, dt)
    t.nested = True
    flat = []
    ref._flatten(v, flat)
    t.texts = [getattr(x, "text", None) for x in flat]
    return t


def _all_ints(v):
    if isinstance(v, list):
        return all(_all_ints(e) for e in v)
    return isinstance(v, int) and not isinstance(v, bool)


def _has_float(v):
    if isinstance(v, list):
        return any(_has_float(e) for e in v)
    return not isinstance(v, int)


def close(a, b, slack=0.0):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    d = abs(a - b)
    return d <= RTOL * max(abs(a), abs(b)) or d <= ATOL or d <= slack


def close32(a, b, slack=0.0):
    """float32 transport: b (gradd's, narrowed) is a float32 rounding of some value within the
    float64 tolerance of a (the reference's, before narrowing): the rounding comes after the
    tolerance, so a reference value near a float32 rounding boundary may go either way."""
    b = ref.f32r(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a):
        return a == b
    tol = max(RTOL * abs(a), ATOL, slack)
    return ref.f32r(a - tol) <= b <= ref.f32r(a + tol)


def cotangent_scale(req):
    """The largest finite |cotangent| sent (1 without target_grad, and for a target that a
    target_grad object leaves out)."""
    tg = req.get("target_grad")
    if tg is None:
        return 1.0
    ts = tg.values() if isinstance(req["target"], list) else [tg]
    missing = isinstance(req["target"], list) and any(t not in tg for t in req["target"])
    scale = 1.0 if missing else 0.0
    for t in ts:
        for v in ref.decode_tensor(t).reshape(-1).tolist():
            if math.isfinite(v):
                scale = max(scale, abs(v))
    return scale


def cancellation_slack(req):
    """CANCEL * the largest finite |cotangent| (1 without target_grad, and for a target that a
    target_grad object leaves out), when that is at
    most CANCEL_SCALE: rules such as softmax's y * (g - sum(g * y)) cancel, and a true 0
    comes out as 1e-17. Extreme-magnitude cases get no slack: their results must match."""
    scale = cotangent_scale(req)
    return CANCEL * scale if scale <= CANCEL_SCALE else 0.0


def compare_tensor(where, e, g, out, slack=0.0):
    if e is None or g is None:
        if (e is None) != (g is None):
            out.append("%s: expected %s, got %s" % (where, "null" if e is None else "a tensor",
                                                    "null" if g is None else "a tensor"))
        return
    if getattr(g, "nested", False) and e.numel() == 0:
        # nested JSON cannot say [0, 3]: [] is its whole answer; compare up to the first 0
        es = list(e.shape)
        es = es[:es.index(0) + 1]
        if es != list(g.shape):
            out.append("%s: shape %s, got %s" % (where, list(e.shape), list(g.shape)))
        return
    if list(e.shape) != list(g.shape):
        out.append("%s: shape %s, got %s" % (where, list(e.shape), list(g.shape)))
        return
    if e.dtype != g.dtype:
        if g.numel():  # an empty nested [] has no dtype to read
            out.append("%s: dtype %s, got %s" % (where, e.dtype, g.dtype))
            return
    f32 = getattr(e, "f32", False)
    if not getattr(g, "nested", False) and e.dtype == ref.F64 and f32 != getattr(g, "f32", False):
        out.append("%s: dtype %s, got %s" % (where, "float32" if f32 else "float64", "float64" if f32 else "float32"))
        return
    ef, gf = e.reshape(-1).tolist(), g.reshape(-1).tolist()
    for i, (x, y) in enumerate(zip(ef, gf)):
        ok = (x == y) if e.dtype == ref.I64 else close32(x, y, slack) if f32 else close(float(x), float(y), slack)
        if not ok:
            n32 = " (float32 %r)" % ref.f32r(x) if f32 and ref.f32r(x) != x else ""
            out.append("%s[%d]: expected %r%s, got %r" % (where, i, x, n32, y))
            return
    texts = (getattr(g, "texts", None) or []) if f32 else []
    for i, text in enumerate(texts):  # the float32 printing rule
        if text is not None and ref.f32_text(ref.f32_read(text)) != text:
            out.append("%s[%d]: %s is not the shortest float32 text (%s)" % (
                where, i, text, ref.f32_text(ref.f32_read(text))))
            return


def compare(exp, ans, case):
    """The list of disagreements between the reference's answer and gradd's (empty: agree)."""
    status, body, sec, _ = ans
    out = []
    if exp[0] == "error":
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        if status != exp[1] or code != exp[2]:
            out.append("status %s %s, expected %s %s" % (status, code, exp[1], exp[2]))
        return out
    if status != 200 or not isinstance(body, dict):
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        msg = body.get("error", {}).get("message") if isinstance(body, dict) else None
        return ["status %s %s (%s), expected 200" % (status, code, msg)]
    _, tv, gv, vv = exp
    slack = cancellation_slack(case["request"])
    for key, want in (("target", tv), ("gradients", gv), ("values", vv)):
        got = body.get(key, {})
        if set(got) != set(want):
            out.append("%s: names %s, expected %s" % (key, sorted(got), sorted(want)))
            continue
        for name, e in want.items():
            try:
                g = answer_tensor(got[name], sec)
            except Exception as x:  # a malformed tensor is a disagreement, reported
                out.append("%s.%s: unreadable tensor %r (%s)" % (key, name, got[name], x))
                continue
            compare_tensor("%s.%s" % (key, name), e, g, out, slack if key == "gradients" else 0.0)
    return out


def float32_reach(req):
    """The nodes that a leaf sent as float32 feeds, the leaves themselves included."""
    reach = set(ref.f32_leaves(req))
    grew = True
    while grew:
        grew = False
        for n in req["graph"]["nodes"]:
            if n["name"] not in reach and any(i in reach for i in n.get("inputs", [])):
                reach.add(n["name"])
                grew = True
    return reach


def float32_cotangent(req):
    tg = req.get("target_grad")
    tgs = (tg.values() if isinstance(req["target"], list) else [tg]) if tg is not None else []
    return any(isinstance(v, dict) and v.get("dtype") == "float32" for v in tgs)


# ---- running and classifying a case ------------------------------------------------------------

def untaken_error(case, ans):
    """Defect 4: the reference evaluating untaken branches too gives the error gradd gave."""
    e = ref.expected(case["request"], b"", frozenset(), eager=True)
    return e[0] == "error" and not compare(e, ans, case)


def shortest_float(case, ans):
    return bool(ans[3]) and not compare(ref.expected(case["request"]), ans, case)


def signed_zero(case, ans):
    """The sign of a zero, which the contract does not fix, decided the answer: either every
    disagreement is an infinity of the other sign and the graph divides by a value (reciprocal,
    div, pow, the gradients of sqrt and log), or gradd agrees with the reference run with every zero that an
    op computes made +0 (flag positive_zero: softmax_cross_entropy's loss of exactly 0 is -0 in
    PyTorch, +0 in gradd, and log or pow of it gives -inf or +inf)."""
    diffs = compare(ref.expected(case["request"]), ans, case)
    ops = {n["op"] for n in case["request"]["graph"]["nodes"]}
    flips = ("expected inf, got -inf", "expected -inf, got inf")
    if bool(diffs) and bool(ops & {"reciprocal", "div", "pow", "sqrt", "log"}) and all(d.endswith(flips) for d in diffs):
        return True
    return bool(diffs) and not compare(ref.expected(case["request"], b"", frozenset(["positive_zero"])), ans, case)


def _decode_flat(v, dtype):
    t = ref.decode_tensor(v, dtype)
    return list(t.shape), t.reshape(-1).tolist()


def _perturb_tensor(v, rng, dtype=None):
    """A wire tensor with each finite float64 element moved by one ulp either way."""
    def one(x):
        x = ref.num_in(x)
        if not isinstance(x, float) or not math.isfinite(x) or x == 0:
            return ref.num_out(x) if isinstance(x, float) else x
        return ref.num_out(math.nextafter(x, math.inf if rng.random() < 0.5 else -math.inf))
    if isinstance(v, dict):
        if v.get("dtype", dtype or "float64") == "int64":
            return v
        w = dict(v)
        if "b64" in w:
            t = ref.decode_tensor(v).reshape(-1).tolist()
            w["b64"] = ref.tensor_to_wire(torch.tensor([ref.num_in(one(x)) for x in t], dtype=ref.F64),
                                          "b64")["b64"]
        elif "data" in w:
            w["data"] = [one(x) for x in w["data"]]
        return w
    if dtype == "int64":
        return v
    if isinstance(v, list):
        return [_perturb_tensor(e, rng, dtype) for e in v]
    return one(v) if isinstance(v, float) else v


def _perturbed(req, rng):
    """The request with every float64 value, constant and cotangent moved by one ulp at random."""
    r = json.loads(json.dumps(req))
    dt = {n["name"]: n.get("dtype") for n in r["graph"]["nodes"]}
    r["values"] = {k: _perturb_tensor(v, rng, dt.get(k)) for k, v in r.get("values", {}).items()}
    for n in r["graph"]["nodes"]:
        if n["op"] == "constant" and "value" in n:
            n["value"] = _perturb_tensor(n["value"], rng, n.get("dtype"))
    tg = r.get("target_grad")
    if tg is not None:
        r["target_grad"] = ({k: _perturb_tensor(v, rng) for k, v in tg.items()}
                            if isinstance(r["target"], list) else _perturb_tensor(tg, rng))
    return r


PERTURBED_RUNS = 4


def overflowed_operand(req, truth, key, name, x, y):
    """(e) of float64_limit: the reference's element is NaN and gradd's an infinity, and an
    operand of the rule that made the element (for a value, the node's inputs; for a gradient,
    the other inputs of the nodes that consume it) holds, in the exact run, a finite value
    beyond float64's range: both sides computed from an infinity that an upstream overflow
    left there, the reference's sum lost it as inf - inf, gradd's kept the IEEE result on its
    operands. An overflow born in the rule itself (a product of two finite operands) is not
    this: the rule must then get it right (A8)."""
    if not (math.isnan(x) and math.isinf(y)):
        return False
    nodes = req["graph"]["nodes"]
    if key == "gradients":
        operands = {i for n in nodes if name in n.get("inputs", []) for i in n["inputs"] if i != name}
    else:
        operands = set(next(n for n in nodes if n["name"] == name).get("inputs", []))
    return any(("beyond", o) in truth for o in operands)


def float64_limit(case, ans):
    """Arbitration by the true answer: every element where gradd and the reference disagree is
    recomputed exactly (exact.py: mpmath, no rounding, overflow or underflow between the float64
    inputs and the answer), and gradd's element is accepted when it is within the comparison's
    tolerance of the true value rounded to float64, or at least as close to it as the
    reference's: |gradd - true| <= |reference - true|, exactly, with |gradd - true| finite (so
    NaN, or an infinity where the truth is finite, is never accepted this way). Everything
    else (status, names, shapes, dtypes, int64 elements, nulls) must agree as usual, and the
    graph must be one that exact.py knows (else the class does not apply)."""
    status, body, sec, bad = ans
    req = case["request"]
    exp = ref.expected(req)
    if exp[0] != "ok" or status != 200 or not isinstance(body, dict) or bad:
        return False
    try:
        truth = exact.truth(req, _decode_flat)
    except exact.Unsupported:
        return False
    slack = cancellation_slack(req)
    arbitrated = False
    noisy = []  # the reference's answers on inputs within one ulp, computed when first needed

    def reference_spread(key, name, i, tv):
        """The largest distance from the truth of the reference's element on perturbed inputs."""
        if not noisy:
            rng = random.Random(repr(case.get("seed")))
            for _ in range(PERTURBED_RUNS):
                noisy.append(ref.expected(_perturbed(req, rng)))
        d = exact.mpf(0)
        for e2 in noisy:
            if e2[0] != "ok":
                return exact.INF
            t2 = {"target": e2[1], "gradients": e2[2], "values": e2[3]}[key].get(name)
            if t2 is None or t2.numel() <= i:
                return exact.INF
            d = max(d, exact.distance(float(t2.reshape(-1)[i]), tv))
        return d

    for key, want in (("target", exp[1]), ("gradients", exp[2]), ("values", exp[3])):
        got = body.get(key, {})
        if set(got) != set(want):
            return False
        for name, e in want.items():
            g = answer_tensor(got[name], sec)
            out = []
            compare_tensor(key, e, g, out, slack if key == "gradients" else 0.0)
            if not out:
                continue
            if e is None or g is None or list(e.shape) != list(g.shape) or e.dtype != g.dtype:
                return False
            t = truth.get((key, name))
            ef, gf = e.reshape(-1).tolist(), g.reshape(-1).tolist()
            for i, (x, y) in enumerate(zip(ef, gf)):
                if e.dtype == ref.I64:
                    if x != y:
                        return False
                    continue
                if close(float(x), float(y), slack if key == "gradients" else 0.0):
                    continue
                if t is None or list(t[0]) != list(e.shape):
                    return False
                tv = t[1][i]
                dg = exact.distance(y, tv)
                mag = truth.get(("magnitude", name)) if key == "gradients" else None
                cancel = CANCEL * (mag[1][i] if mag is not None else 1.0 if key != "gradients" else 0.0)
                if not (close(exact.to_float(tv), y) or (dg != exact.INF and dg <= exact.distance(x, tv))
                        or dg <= cancel or (dg != exact.INF and dg <= reference_spread(key, name, i, tv))
                        or overflowed_operand(req, truth, key, name, x, y)):
                    return False
                arbitrated = True
    return arbitrated


def near_tie(case, ans):
    """An argmax/argmin whose slice holds two values within the comparison's tolerance (RTOL)
    of each other, in the reference's own run, picks the other of them: rounding decided the tie
    (log_softmax(x) - x is the same number in every element in exact arithmetic). Only the
    argmax/argmin node's own fetched values may differ; everything else must agree."""
    req = case["request"]
    exp = ref.expected(req)
    status, body, sec, bad = ans
    if exp[0] != "ok" or status != 200 or not isinstance(body, dict) or bad:
        return False
    nodes = {n["name"]: n for n in req["graph"]["nodes"]}
    args = {f for f in exp[3] if nodes[f]["op"] in ("argmax", "argmin")}
    rest = {k: {n: t for n, t in w.items() if not (k == "values" and n in args)}
            for k, w in (("target", exp[1]), ("gradients", exp[2]), ("values", exp[3]))}
    sub = {k: {n: t for n, t in body.get(k, {}).items() if not (k == "values" and n in args)} for k in rest}
    if compare(("ok", rest["target"], rest["gradients"], rest["values"]), (status, sub, sec, bad), case):
        return False
    g = ref.Graph(req, b"", frozenset())
    tied = False
    for f in args:
        e, got = exp[3][f], body.get("values", {}).get(f)
        if e is None or got is None:
            if (e is None) != (got is None):
                return False
            continue
        gt = answer_tensor(got, sec)
        if list(gt.shape) != list(e.shape):
            return False
        x = ref.f64(g.eval(nodes[f]["inputs"][0]).detach())
        ax = nodes[f].get("axis")
        ax = ax[0] if isinstance(ax, list) else ax
        rows = x.reshape(1, -1) if ax is None else x.movedim(ax % max(x.dim(), 1), -1).reshape(-1, x.shape[ax] if x.dim() else 1)
        for row, a, b in zip(rows.tolist(), e.reshape(-1).tolist(), gt.reshape(-1).tolist()):
            if a == b:
                continue
            if not (0 <= b < len(row)) or not close(row[a], row[b]) or math.isnan(row[a]) or math.isnan(row[b]):
                return False
            tied = True
    return tied


PREDICATES = {"untaken_error": untaken_error, "shortest_float": shortest_float, "signed_zero": signed_zero,
              "float64_limit": float64_limit, "near_tie": near_tie}


def run_case(srv, case):
    """("pass" | known class name | "FAIL", disagreements, answer)."""
    body, headers, _ = wire(case)
    status, hdrs, raw = srv.post(body, headers)
    ans = parse_answer(status, hdrs, raw)
    if status >= 500 or ans[1] is None:
        return "FAIL", ["status %d, body %r" % (status, raw[:200])], ans
    exp = ref.expected(case["request"], b"")
    diffs = compare(exp, ans, case)
    if not diffs and not ans[3]:
        return "pass", [], ans
    if not diffs:
        diffs = ["not the shortest float text: %s" % ", ".join(ans[3][:3])]
    for name, (how, _) in KNOWN_CLASSES.items():
        kind, what = how.split(":")
        if kind == "flag":
            if not compare(ref.expected(case["request"], b"", frozenset([what])), ans, case) and not ans[3]:
                return name, diffs, ans
        elif PREDICATES[what](case, ans):
            return name, diffs, ans
    flags = frozenset(h.split(":")[1] for h, _ in KNOWN_CLASSES.values() if h.startswith("flag:"))
    if flags and not compare(ref.expected(case["request"], b"", flags), ans, case) and \
            (not ans[3] or "shortest_float" in KNOWN_CLASSES):
        return "several", diffs, ans
    return "FAIL", diffs, ans


# ---- minimization -------------------------------------------------------------------------------

def _prune(req):
    """Drop nodes that no target, fetch or wrt needs, and their values."""
    nodes = {n["name"]: n for n in req["graph"]["nodes"]}
    roots = list(req["target"] if isinstance(req["target"], list) else [req["target"]])
    roots += req.get("fetch", []) + req.get("wrt", [])
    keep, stack = set(), [r for r in roots if r in nodes]
    while stack:
        s = stack.pop()
        if s not in keep:
            keep.add(s)
            stack.extend(nodes[s].get("inputs", []))
    if "wrt" not in req:
        keep |= {n for n in nodes if nodes[n]["op"] == "variable" and n in keep}
    req["graph"]["nodes"] = [n for n in req["graph"]["nodes"] if n["name"] in keep]
    req["values"] = {k: v for k, v in req.get("values", {}).items() if k in keep}


def _candidates(case):
    """Smaller variants of a case, biggest cuts first."""
    req = case["request"]
    if case.get("binary_values") or req.get("tensor_format", "nested") != "nested":
        c = json.loads(json.dumps(case))
        c["binary_values"] = []
        c["request"].pop("tensor_format", None)
        yield c
    for key in ("fetch", "wrt"):
        for i in range(len(req.get(key, []))):
            c = json.loads(json.dumps(case))
            del c["request"][key][i]
            if key == "wrt" and not c["request"]["wrt"]:
                del c["request"]["wrt"]
            yield c
    if isinstance(req["target"], list) and len(req["target"]) > 1:
        for i in range(len(req["target"])):
            c = json.loads(json.dumps(case))
            t = c["request"]["target"].pop(i)
            if isinstance(c["request"].get("target_grad"), dict):
                c["request"]["target_grad"].pop(t, None)
            yield c
    # cut the graph: a non-leaf node becomes a variable holding its forward value
    try:
        g = _evaluated(req)
    except Exception:
        g = None
    if g is not None:
        for n in req["graph"]["nodes"]:
            if n["op"] in ("variable", "input", "constant") or n["name"] not in g.memo:
                continue
            t = g.memo[n["name"]].detach()
            c = json.loads(json.dumps(case))
            for m in c["request"]["graph"]["nodes"]:
                if m["name"] == n["name"]:
                    m.clear()
                    m.update({"name": n["name"], "op": "variable"})
                    if t.dtype == ref.I64:
                        m["dtype"] = "int64"
            c["request"]["values"][n["name"]] = ref.tensor_to_wire(t, "nested")
            c["binary_values"] = [b for b in c.get("binary_values", []) if b != n["name"]]
            yield c
    # simpler values: each element to 1.0 (or 1), then 0
    for name, v in req.get("values", {}).items():
        if not isinstance(v, (list, int, float)) or isinstance(v, bool):
            continue
        flat = []
        ref._flatten(v, flat)
        if len(flat) > 16:
            continue
        for i, x in enumerate(flat):
            for simple in (1, 0, 2):
                if x == simple:
                    continue
                c = json.loads(json.dumps(case))
                c["request"]["values"][name] = _set_elem(v, i, simple if isinstance(x, int) else float(simple))
                yield c


def _evaluated(req):
    g = ref.Graph(req, b"", frozenset())
    targets = req["target"] if isinstance(req["target"], list) else [req["target"]]
    for t in targets:
        g.eval(t)
    return g


def _set_elem(v, i, x):
    flat = []
    ref._flatten(v, flat)
    flat[i] = x
    it = iter(flat)

    def rebuild(s):
        if isinstance(s, list):
            return [rebuild(e) for e in s]
        return _w(next(it))
    return rebuild(v)


def _w(x):
    return ref.num_out(x) if isinstance(x, float) else x


def minimize(srv, case, budget=400):
    """Shrink a failing case while it still fails outside the known classes."""
    cur = case
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for c in _candidates(cur):
            tries += 1
            if tries >= budget:
                break
            _prune(c["request"])
            try:
                verdict = run_case(srv, c)[0]
            except Exception:
                continue
            if verdict == "FAIL":
                cur = c
                progress = True
                break
    return cur


# ---- main ----------------------------------------------------------------------------------------

def main(argv):
    cases, seed, replay_only, keep_going = 2000, 8, None, False
    save = os.path.join(os.getcwd(), "difftest-failures")
    no_replay = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--cases":
            cases = int(argv[i + 1]); i += 1
        elif a == "--seed":
            seed = int(argv[i + 1]); i += 1
        elif a == "--replay":
            replay_only = argv[i + 1:]; break
        elif a == "--no-replay":
            no_replay = True
        elif a == "--keep-going":
            keep_going = True
        elif a == "--save":
            save = argv[i + 1]; i += 1
        else:
            print(__doc__)
            return 2
        i += 1
    binary = os.environ.get("GRADD_BIN") or os.path.join(os.getcwd(), "gradd")
    srv = Gradd(binary)
    counts = {"pass": 0}
    fails = []
    started = time.time()
    try:
        files = replay_only if replay_only is not None else \
            ([] if no_replay else sorted(glob.glob(os.path.join(CASES_DIR, "*.json"))))
        for f in files:
            with open(f) as fh:
                case = json.load(fh)
            verdict, diffs, _ = run_case(srv, case)
            counts[verdict] = counts.get(verdict, 0) + 1
            print("replay %s: %s%s" % (os.path.basename(f), verdict,
                                       "" if verdict == "pass" else " (" + "; ".join(diffs[:2]) + ")"))
            if verdict == "FAIL":
                fails.append(f)
        if replay_only is not None:
            cases = 0
        rng = random.Random(seed)
        opcount, opcount32, cases32 = {}, {}, 0
        for k in range(cases):
            case = gen.make_case(rng)
            case["seed"] = [seed, k]
            reach32 = float32_reach(case["request"])
            cases32 += bool(reach32) or float32_cotangent(case["request"])
            for n in case["request"]["graph"]["nodes"]:
                opcount[n["op"]] = opcount.get(n["op"], 0) + 1
                if n["name"] in reach32:
                    opcount32[n["op"]] = opcount32.get(n["op"], 0) + 1
            try:
                verdict, diffs, _ = run_case(srv, case)
            except Exception as x:
                verdict, diffs = "FAIL", ["difftest raised %r" % (x,)]
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict == "FAIL":
                small = minimize(srv, case)
                _, sdiffs, _ = run_case(srv, small)
                small["about"] = "seed %d case %d: %s" % (seed, k, "; ".join((sdiffs or diffs)[:3]))
                os.makedirs(save, exist_ok=True)
                path = os.path.join(save, "seed%d_case%d.json" % (seed, k))
                with open(path, "w") as fh:
                    json.dump(small, fh, indent=1, sort_keys=True)
                    fh.write("\n")
                fails.append(path)
                print("FAIL seed %d case %d: %s\n  minimized: %s" % (seed, k, "; ".join(diffs[:3]), path))
                if not keep_going and len(fails) >= 20:
                    print("difftest: stopping after 20 failures")
                    break
        if cases:
            print("per-op node counts (%d cases, seed %d; %d with float32 transport), all and "
                  "fed by a float32 leaf:" % (cases, seed, cases32))
            for op in sorted(opcount):
                print("  %-22s %6d %6d" % (op, opcount[op], opcount32.get(op, 0)))
            missing = sorted(set(gen.ALL_OPS) - set(opcount))
            if missing:
                print("  never generated: %s" % ", ".join(missing))
    finally:
        rc = srv.stop()
    total = sum(counts.values())
    print("difftest: %d cases in %.1fs: %d passed, %s" % (
        total, time.time() - started, counts.get("pass", 0),
        ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items()) if k != "pass") or "nothing else"))
    for name in KNOWN_CLASSES:
        if counts.get(name):
            print("  known class %-18s %5d  %s" % (name, counts[name], KNOWN_CLASSES[name][1]))
    if rc != 0:
        print("difftest: gradd exited with %s\n%s" % (rc, srv.logtext()))
        return 1
    if fails:
        print("difftest: %d failures outside the known classes:\n  %s" % (len(fails), "\n  ".join(fails)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
