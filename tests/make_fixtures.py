#!/usr/bin/python3
"""make_fixtures.py - golden gradient fixtures for gradd, computed once by PyTorch.

Run with Debian's python3-torch (the interpreter that has torch):

    /usr/bin/python3 tests/make_fixtures.py            # writes tests/data/fixture_*.json
    /usr/bin/python3 tests/make_fixtures.py --out DIR  # elsewhere

Each fixture is a graph written once, as the /v1/grad request of
/work/shared/api-v1.md (graph nodes, values, target, wrt). The same node list
is then replayed by a small PyTorch interpreter (OPS below: one line per
contract op, with the contract's semantics), in float64, and torch.autograd
gives the expected target value and gradients. So the JSON and the PyTorch
computation cannot drift apart: they are the same list.

Before a fixture is written, its PyTorch gradients are checked against central
finite differences of the replayed graph, and the generator asserts that no
value sits on a kink (relu/abs at 0, clip bounds, max/min and maximum/minimum
ties), where PyTorch's subgradient would be a convention rather than a
derivative.

Output file: tests/data/fixture_<name>.json, a JSON object
    {"name", "description", "request": {...}, "expected": {"target": {name: value},
     "gradients": {name: nested list}}, "tolerance": 1e-9, "tolerance_rule": "..."}
The tolerance is relative: an actual value a matches the expected e when
|a - e| <= tolerance * max(1, |e|).

Deterministic: fixed seeds, CPU, float64, one thread; floats are printed as
Python's repr (shortest decimal that reads back to the same double), so a
value sent in a request is exactly the double PyTorch used. Running it again
rewrites the same bytes (check with `--out /tmp/fx && diff -r /tmp/fx
tests/data`). Only an expected gradient that went through a BLAS matmul may
differ in its last bit on another CPU (OpenBLAS picks its kernel per CPU);
the tolerance (1e-9 relative) is far above that. The fixtures are inputs to
the test suite (tests/test_fixtures.c): `make check` reads them and never
runs this script, so neither the build nor CI needs torch.
"""
import argparse
import json
import os
import sys

# One BLAS thread before torch loads OpenBLAS: the order of a reduction, and
# so the last bit of a matmul, must not depend on the machine's core count.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TOLERANCE = 1e-9
TOLERANCE_RULE = "relative: |actual - expected| <= tolerance * max(1, |expected|), element-wise"
FD_EPS = 1e-6      # central-difference step
FD_TOL = 1e-6      # |autograd - fd| / max(1, |autograd|, |fd|)
KINK_MARGIN = 1e-3  # minimum distance from any kink or tie

# ---------------------------------------------------------------------------
# The contract's ops in PyTorch. Each entry: f(inputs, attrs) -> tensor.


def _axes(x, attrs):
    """The reduction axes of attrs['axis'] (int, list, or absent = all)."""
    ax = attrs.get("axis")
    if ax is None:
        return tuple(range(x.dim()))
    if isinstance(ax, int):
        return (ax,)
    return tuple(ax)


def _reduce(fn):
    return lambda i, a: fn(i[0], _axes(i[0], a), bool(a.get("keepdims", False)))


def _slice(x, a):
    axes = a.get("axes", list(range(len(a["starts"]))))
    steps = a.get("steps", [1] * len(axes))
    idx = [slice(None)] * x.dim()
    for ax, s, e, st in zip(axes, a["starts"], a["ends"], steps):
        assert st > 0, "torch slicing takes positive steps only"
        idx[ax] = slice(s, e, st)
    return x[tuple(idx)]


def _gather(p, ind, a):
    """numpy.take(p, ind, axis), negative indices as Python's."""
    axis = a.get("axis", 0) % p.dim()
    flat = ind.reshape(-1) % p.shape[axis]
    out = torch.index_select(p, axis, flat)
    return out.reshape(p.shape[:axis] + ind.shape + p.shape[axis + 1:])


OPS = {
    # unary
    "neg": lambda i, a: torch.neg(i[0]),
    "exp": lambda i, a: torch.exp(i[0]),
    "log": lambda i, a: torch.log(i[0]),
    "log1p": lambda i, a: torch.log1p(i[0]),
    "expm1": lambda i, a: torch.expm1(i[0]),
    "sqrt": lambda i, a: torch.sqrt(i[0]),
    "square": lambda i, a: torch.square(i[0]),
    "abs": lambda i, a: torch.abs(i[0]),
    "sin": lambda i, a: torch.sin(i[0]),
    "cos": lambda i, a: torch.cos(i[0]),
    "tanh": lambda i, a: torch.tanh(i[0]),
    "sigmoid": lambda i, a: torch.sigmoid(i[0]),
    "relu": lambda i, a: torch.relu(i[0]),
    "softplus": lambda i, a: F.softplus(i[0]),
    "reciprocal": lambda i, a: torch.reciprocal(i[0]),
    "leaky_relu": lambda i, a: F.leaky_relu(i[0], a.get("alpha", 0.01)),
    "clip": lambda i, a: torch.clamp(i[0], a.get("min"), a.get("max")),
    # binary (NumPy broadcasting)
    "add": lambda i, a: i[0] + i[1],
    "sub": lambda i, a: i[0] - i[1],
    "mul": lambda i, a: i[0] * i[1],
    "div": lambda i, a: i[0] / i[1],
    "pow": lambda i, a: torch.pow(i[0], i[1]),
    "maximum": lambda i, a: torch.maximum(i[0], i[1]),
    "minimum": lambda i, a: torch.minimum(i[0], i[1]),
    # reductions
    "sum": _reduce(lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
    "mean": _reduce(lambda x, d, k: torch.mean(x, dim=d, keepdim=k)),
    "max": _reduce(lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
    "min": _reduce(lambda x, d, k: torch.amin(x, dim=d, keepdim=k)),
    "logsumexp": _reduce(lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    # shape
    "reshape": lambda i, a: i[0].reshape(a["shape"]),
    "transpose": lambda i, a: i[0].permute(a.get("axes", list(range(i[0].dim()))[::-1])),
    "broadcast_to": lambda i, a: torch.broadcast_to(i[0], a["shape"]),
    "concat": lambda i, a: torch.cat(i, dim=a.get("axis", 0)),
    "slice": lambda i, a: _slice(i[0], a),
    "gather": lambda i, a: _gather(i[0], i[1], a),
    # linear algebra, nn
    "matmul": lambda i, a: torch.matmul(i[0], i[1]),
    "softmax": lambda i, a: torch.softmax(i[0], dim=a.get("axis", -1)),
    "log_softmax": lambda i, a: torch.log_softmax(i[0], dim=a.get("axis", -1)),
    "softmax_cross_entropy": lambda i, a: F.cross_entropy(i[0], i[1], reduction="mean"),
    # flow
    "stop_gradient": lambda i, a: i[0].detach(),
    "where": lambda i, a: torch.where(i[0] != 0, i[1], i[2]),
}

LEAVES = ("variable", "input", "constant")
NODE_KEYS = ("name", "op", "inputs")


class Graph:
    """A request under construction: nodes in the contract's JSON form, the
    leaves' values, and a replay of the nodes in PyTorch."""

    def __init__(self):
        self.nodes = []
        self.values = {}  # name -> torch tensor (variables and inputs)

    def variable(self, name, value, declare_shape=True):
        node = {"name": name, "op": "variable"}
        if declare_shape:
            node["shape"] = list(value.shape)
        self.nodes.append(node)
        self.values[name] = value
        return name

    def input(self, name, value):
        node = {"name": name, "op": "input"}
        if value.dtype == torch.int64:
            node["dtype"] = "int64"
        self.nodes.append(node)
        self.values[name] = value
        return name

    def constant(self, name, value):
        self.nodes.append({"name": name, "op": "constant", "value": value})
        return name

    def op(self, name, op, inputs, **attrs):
        assert op in OPS, op
        node = {"name": name, "op": op, "inputs": list(inputs)}
        node.update(attrs)
        self.nodes.append(node)
        return name

    def run(self, values, watch=None):
        """Evaluate every node in PyTorch from `values` (name -> tensor);
        returns name -> tensor. `watch(name, node, inputs, out)` sees each op."""
        env = {}
        for node in self.nodes:
            name, op = node["name"], node["op"]
            if op == "constant":
                env[name] = torch.tensor(node["value"], dtype=torch.float64)
            elif op in LEAVES:
                env[name] = values[name]
            else:
                ins = [env[k] for k in node["inputs"]]
                attrs = {k: v for k, v in node.items() if k not in NODE_KEYS}
                # The contract converts int64 operands to float64 except where
                # an op keeps them (gather's indices, cross-entropy labels).
                if op not in ("gather", "softmax_cross_entropy", "where"):
                    ins = [t.double() if t.dtype == torch.int64 else t for t in ins]
                env[name] = OPS[op](ins, attrs)
                if watch:
                    watch(name, node, ins, env[name])
        return env


# ---------------------------------------------------------------------------
# Kink and tie guards: the fixtures stay where the derivative is unique.


def _gap_to_ties(x, dim):
    """Smallest gap between the largest and second largest (and smallest and
    second smallest) along dim; inf when the axis has one element."""
    if x.shape[dim] < 2:
        return float("inf")
    s, _ = torch.sort(x, dim=dim)
    top = (s.narrow(dim, -1, 1) - s.narrow(dim, -2, 1)).abs().min().item()
    bot = (s.narrow(dim, 1, 1) - s.narrow(dim, 0, 1)).abs().min().item()
    return min(top, bot)


def check_kinks(name, node, ins, out):
    op = node["op"]
    m = KINK_MARGIN
    if op in ("relu", "abs", "leaky_relu"):
        assert ins[0].abs().min().item() > m, f"{name}: {op} input near 0"
    elif op == "clip":
        for b in ("min", "max"):
            if b in node:
                assert (ins[0] - node[b]).abs().min().item() > m, f"{name}: clip input near {b}"
    elif op in ("maximum", "minimum"):
        a, b = torch.broadcast_tensors(ins[0], ins[1])
        assert (a - b).abs().min().item() > m, f"{name}: {op} tie"
    elif op in ("max", "min"):
        x = ins[0]
        ax = node.get("axis")
        dims = range(x.dim()) if ax is None else ([ax] if isinstance(ax, int) else ax)
        flat = x
        if ax is None or (not isinstance(ax, int) and len(ax) > 1):
            # move the reduced axes last and flatten them
            dims = [d % x.dim() for d in dims]
            keep = [d for d in range(x.dim()) if d not in dims]
            flat = x.permute(keep + dims).reshape([x.shape[d] for d in keep] + [-1])
            gap = _gap_to_ties(flat, -1)
        else:
            gap = _gap_to_ties(x, ax)
        assert gap > m, f"{name}: {op} reduction has a near tie ({gap})"
    elif op in ("log", "sqrt", "reciprocal", "div"):
        den = ins[-1] if op == "div" else ins[0]
        assert den.abs().min().item() > m, f"{name}: {op} near its pole"
    elif op == "pow":
        assert ins[0].min().item() > m, f"{name}: pow base not positive"


# ---------------------------------------------------------------------------
# Expected values, finite-difference self-check, output.


def nested(t):
    """A tensor as nested lists of Python floats/ints (a number for rank 0)."""
    return t.tolist()


def compute(g, target, wrt):
    """Forward and autograd of `target` with respect to `wrt` (leaf names).
    Returns (target value, {name: gradient tensor})."""
    values = {k: (v.clone().requires_grad_(k in wrt) if v.dtype == torch.float64 else v)
              for k, v in g.values.items()}
    env = g.run(values, watch=check_kinks)
    y = env[target]
    assert y.dim() == 0, "fixtures use scalar targets"
    grads = torch.autograd.grad(y, [values[k] for k in wrt])
    return y.item(), dict(zip(wrt, grads))


def fd_check(g, target, wrt, grads):
    """Central finite differences of the replayed graph against autograd.
    Returns the worst error, |ad - fd| / max(1, |ad|, |fd|)."""
    worst = 0.0
    with torch.no_grad():
        for k in wrt:
            base = g.values[k]
            flat = base.reshape(-1)
            gflat = grads[k].reshape(-1)
            for j in range(flat.numel()):
                vals = dict(g.values)
                plus, minus = flat.clone(), flat.clone()
                plus[j] += FD_EPS
                minus[j] -= FD_EPS
                vals[k] = plus.reshape(base.shape)
                fp = g.run(vals)[target].item()
                vals[k] = minus.reshape(base.shape)
                fm = g.run(vals)[target].item()
                fd = (fp - fm) / (2 * FD_EPS)
                ad = gflat[j].item()
                worst = max(worst, abs(ad - fd) / max(1.0, abs(ad), abs(fd)))
    return worst


def request_values(g):
    return {k: nested(v) for k, v in g.values.items()}


def dump_fixture(path, fx):
    """JSON with one node per line and one value per line: readable diffs,
    small files. Floats use repr (json's default)."""
    c = lambda o: json.dumps(o, separators=(", ", ": "))
    req = fx["request"]
    lines = ["{"]
    lines.append(f'  "name": {c(fx["name"])},')
    lines.append(f'  "description": {c(fx["description"])},')
    lines.append('  "request": {')
    lines.append('    "graph": {"nodes": [')
    lines.append(",\n".join("      " + c(n) for n in req["graph"]["nodes"]))
    lines.append("    ]},")
    lines.append('    "values": {')
    lines.append(",\n".join(f"      {c(k)}: {c(v)}" for k, v in req["values"].items()))
    lines.append("    },")
    lines.append(f'    "target": {c(req["target"])},')
    lines.append(f'    "wrt": {c(req["wrt"])}')
    lines.append("  },")
    lines.append('  "expected": {')
    lines.append(f'    "target": {c(fx["expected"]["target"])},')
    lines.append('    "gradients": {')
    lines.append(",\n".join(f"      {c(k)}: {c(v)}" for k, v in fx["expected"]["gradients"].items()))
    lines.append("    }")
    lines.append("  },")
    lines.append(f'  "tolerance": {c(fx["tolerance"])},')
    lines.append(f'  "tolerance_rule": {c(fx["tolerance_rule"])}')
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == fx, "dump_fixture lost information"
    with open(path, "w") as f:
        f.write(text)
    return len(text)


def build_fixture(name, description, g, target, wrt, node_order=None):
    value, grads = compute(g, target, wrt)
    worst = fd_check(g, target, wrt, grads)
    assert worst < FD_TOL, f"{name}: autograd disagrees with finite differences ({worst:.3g})"
    nodes = g.nodes if node_order is None else node_order(g.nodes)
    fx = {
        "name": name,
        "description": description,
        "request": {
            "graph": {"nodes": nodes},
            "values": request_values(g),
            "target": target,
            "wrt": list(wrt),
        },
        "expected": {
            "target": {target: value},
            "gradients": {k: nested(grads[k]) for k in wrt},
        },
        "tolerance": TOLERANCE,
        "tolerance_rule": TOLERANCE_RULE,
    }
    return fx, worst


# ---------------------------------------------------------------------------
# The fixtures.


def rng(seed):
    return torch.Generator().manual_seed(seed)


def uniform(gen, shape, lo, hi):
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def away(gen, shape, lo, hi, kinks, margin=0.05):
    """uniform in [lo, hi) redrawn until every element is `margin` away from
    each kink."""
    x = uniform(gen, shape, lo, hi)
    for _ in range(1000):
        bad = torch.zeros(shape, dtype=torch.bool)
        for k in kinks:
            bad |= (x - k).abs() < margin
        if not bad.any():
            return x
        x = torch.where(bad, uniform(gen, shape, lo, hi), x)
    raise RuntimeError("could not avoid the kinks")


def fixture_mlp():
    gen = rng(1001)
    g = Graph()
    x = g.input("x", uniform(gen, (8, 5), -1.0, 1.0))
    labels = g.input("labels", torch.tensor([0, 3, 1, 2, 3, 0, 1, 1], dtype=torch.int64))
    W1 = g.variable("W1", uniform(gen, (5, 7), -0.8, 0.8))
    b1 = g.variable("b1", uniform(gen, (7,), -0.3, 0.3))
    W2 = g.variable("W2", uniform(gen, (7, 4), -0.8, 0.8))
    b2 = g.variable("b2", uniform(gen, (4,), -0.3, 0.3))
    g.op("h", "matmul", [x, W1])
    g.op("hb", "add", ["h", b1])
    g.op("a", "relu", ["hb"])
    g.op("o", "matmul", ["a", W2])
    g.op("logits", "add", ["o", b2])
    g.op("loss", "softmax_cross_entropy", ["logits", labels])
    # Dead relu units must exist (else the mask is never exercised).
    pre = torch.matmul(g.values["x"], g.values["W1"]) + g.values["b1"]
    assert (pre < 0).any() and (pre > 0).any()
    return build_fixture(
        "mlp",
        "Two-layer perceptron: relu(x@W1+b1)@W2+b2 -> softmax_cross_entropy with int64 labels "
        "(PyTorch F.cross_entropy, mean over N=8). Covers matmul (2-D), broadcast add of a bias "
        "(gradient summed over the batch), relu with dead units (no pre-activation within 1e-3 "
        "of 0), int64 input leaf, cross-entropy's fused backward.",
        g, "loss", ["W1", "b1", "W2", "b2"])


def fixture_embedding():
    gen = rng(2002)
    g = Graph()
    # -3 is Python's 7: row 7 is gathered twice (once by a negative index),
    # row 3 twice; rows 1 2 4 5 6 8 never (their gradient rows are zero).
    ids = g.input("ids", torch.tensor([3, 7, 3, 0, 9, -3], dtype=torch.int64))
    E = g.variable("E", uniform(gen, (10, 4), -1.0, 1.0))
    W = g.variable("W", uniform(gen, (4, 3), -1.0, 1.0))
    g.op("emb", "gather", [E, ids], axis=0)                  # [6, 4]
    g.op("t", "tanh", ["emb"])
    g.op("head1", "mean", ["t"])                              # scalar
    g.op("z", "matmul", ["emb", W])                           # [6, 3]
    g.op("ls", "log_softmax", ["z"], axis=-1)
    # rows -5::2 (1, 3, 5) of columns 0:2; the end 100 clamps to 6.
    g.op("part", "slice", ["ls"], starts=[-5, 0], ends=[100, 2], axes=[0, 1], steps=[2, 1])
    g.op("head2", "sum", ["part"])
    g.op("loss", "add", ["head1", "head2"])
    return build_fixture(
        "embedding",
        "Embedding lookup: gather{axis:0}(E [10,4], int64 ids [6]) with repeated ids (3 twice; 7 "
        "twice, once as the negative index -3) so gradient rows accumulate, and never-gathered rows "
        "get zeros. Head 1: mean(tanh(emb)). Head 2: sum of slice{starts:[-5,0], ends:[100,2], "
        "axes:[0,1], steps:[2,1]} (negative start, clamped end, step 2) of "
        "log_softmax{axis:-1}(emb @ W). loss = head1 + head2.",
        g, "loss", ["E", "W"])


def fixture_attention():
    gen = rng(3003)
    g = Graph()
    x = g.input("x", uniform(gen, (5, 4), -1.0, 1.0))
    Wq = g.variable("Wq", uniform(gen, (4, 4), -0.7, 0.7))
    Wk = g.variable("Wk", uniform(gen, (4, 4), -0.7, 0.7))
    Wv = g.variable("Wv", uniform(gen, (4, 4), -0.7, 0.7))
    bias = g.variable("bias", uniform(gen, (4,), -0.5, 0.5))
    scale = g.constant("scale", 0.5)
    g.op("q0", "matmul", [x, Wq])
    g.op("q", "add", ["q0", bias])                            # [5,4] + [4]
    g.op("k", "matmul", [x, Wk])
    g.op("v", "matmul", [x, Wv])
    g.op("kt", "transpose", ["k"])                            # default axes: reversed
    g.op("s0", "matmul", ["q", "kt"])                         # [5, 5]
    g.op("s", "mul", ["s0", scale])
    g.op("p", "softmax", ["s"], axis=-1)
    g.op("out", "matmul", ["p", "v"])                         # [5, 4]
    g.op("sq", "square", ["out"])
    g.op("l1", "sum", ["sq"])
    g.op("r_out", "reshape", ["out"], shape=[10, -1])         # [10, 2]
    g.op("r_q", "reshape", ["q"], shape=[10, 2])
    g.op("c", "concat", ["r_out", "r_q"], axis=1)             # [10, 4]
    g.op("mu", "mean", ["c"], axis=1, keepdims=True)          # [10, 1]
    g.op("cc", "sub", ["c", "mu"])                            # broadcast [10,4] - [10,1]
    g.op("lse", "logsumexp", ["cc"], axis=0)                  # [4]
    g.op("l2", "sum", ["lse"])
    g.op("loss", "add", ["l1", "l2"])
    return build_fixture(
        "attention",
        "Single-head self-attention on x [5,4]: q = x@Wq + bias (broadcast add), k = x@Wk, v = x@Wv, "
        "p = softmax{axis:-1}(matmul(q, transpose(k)) * constant 0.5), out = p@v; "
        "loss = sum(square(out)) + sum(logsumexp{axis:0}(c - mean{axis:1, keepdims:true}(c))) with "
        "c = concat{axis:1}(reshape(out,[10,-1]), reshape(q,[10,2])). The nodes are listed in "
        "reverse order (consumers before their inputs), which the contract allows.",
        g, "loss", ["Wq", "Wk", "Wv", "bias"],
        node_order=lambda nodes: list(reversed(nodes)))


def fixture_elementwise_mix():
    gen = rng(4005)
    g = Graph()
    # a > 0 (log, sqrt, reciprocal, pow base); b away from 0 (abs, leaky_relu)
    # and from clip's bounds -0.8 / 0.9, with values on both sides of them.
    a = g.variable("a", uniform(gen, (3, 4), 0.5, 2.0))
    b = g.variable("b", away(gen, (4,), -1.5, 1.5, [0.0, -0.8, 0.9]))
    mask = g.input("mask", torch.tensor([[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=torch.float64))
    g.op("e_exp", "exp", [b])                                  # [4]
    g.op("e_div", "div", ["e_exp", a])                         # [4] / [3,4]
    g.op("e_log", "log", [a])
    g.op("e_sig", "sigmoid", [b])
    g.op("e_max", "maximum", [a, "e_sig"])                     # [3,4] vs [4]
    g.op("e_sp", "softplus", [b])
    g.op("e_tanh", "tanh", [a])
    g.op("e_min", "minimum", ["e_tanh", "e_sp"])
    g.op("e_pow", "pow", [a, b])                               # base > 0, exponent varies
    g.op("e_abs", "abs", [b])
    g.op("e_where", "where", [mask, "e_pow", "e_abs"])
    g.op("e_clip", "clip", [b], min=-0.8, max=0.9)
    g.op("e_lrelu", "leaky_relu", [b], alpha=0.1)
    g.op("e_sqrt", "sqrt", [a])
    g.op("e_l1p", "log1p", [a])
    g.op("e_em1", "expm1", [b])
    g.op("e_rec", "reciprocal", [a])
    g.op("e_sin", "sin", [a])
    g.op("e_cos", "cos", [b])
    g.op("e_neg", "neg", ["e_cos"])
    # Mix them into three [3,4] tensors.
    g.op("m1a", "add", ["e_div", "e_log"])
    g.op("m1b", "mul", ["e_max", "e_min"])
    g.op("m1", "sub", ["m1a", "m1b"])
    g.op("m2a", "mul", ["e_where", "e_clip"])
    g.op("m2b", "add", ["e_lrelu", "e_sqrt"])
    g.op("m2", "add", ["m2a", "m2b"])
    g.op("m3a", "mul", ["e_l1p", "e_em1"])
    g.op("m3b", "add", ["e_rec", "e_sin"])
    g.op("m3c", "div", ["m3b", "e_l1p"])
    g.op("m3d", "add", ["m3a", "m3c"])
    g.op("m3", "add", ["m3d", "e_neg"])
    # Reductions: max over axis 1, min over axis 0, mean over an axis list of
    # a rank-3 view.
    g.op("r_max", "max", ["m1"], axis=1)                       # [3]
    g.op("r_min", "min", ["m2"], axis=0)                       # [4]
    g.op("m3r", "reshape", ["m3"], shape=[3, 2, 2])
    g.op("r_mean", "mean", ["m3r"], axis=[0, 2])               # [2]
    g.op("s_max", "sum", ["r_max"])
    g.op("s_min", "sum", ["r_min"])
    g.constant("half", [0.5, -1.5])
    g.op("r_mean_w", "mul", ["r_mean", "half"])
    g.op("s_mean", "sum", ["r_mean_w"])
    g.op("s1", "add", ["s_max", "s_min"])
    g.op("loss", "add", ["s1", "s_mean"])
    bv = g.values["b"]
    assert (bv < -0.8).any() and (bv > -0.8).any(), "clip's lower bound should bite and not bite"
    return build_fixture(
        "elementwise_mix",
        "Many elementwise ops on a [3,4] (in [0.5, 2)) and b [4] (broadcast against a; every element "
        "at least 0.05 from 0, -0.8 and 0.9): exp log sigmoid softplus tanh div pow(a, b) "
        "maximum minimum clip{min:-0.8,max:0.9} (some b beyond a bound, none on it) abs where(mask "
        "input, ...) leaky_relu{alpha:0.1} sqrt log1p expm1 reciprocal sin cos neg add sub mul; "
        "then max{axis:1}, min{axis:0} (no near ties), mean{axis:[0,2]} of a [3,2,2] reshape "
        "weighted by a constant vector. No operand is within 1e-3 of a kink or tie.",
        g, "loss", ["a", "b"])


FIXTURES = [fixture_mlp, fixture_embedding, fixture_attention, fixture_elementwise_mix]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for make in FIXTURES:
        fx, worst = make()
        path = os.path.join(args.out, f"fixture_{fx['name']}.json")
        size = dump_fixture(path, fx)
        assert size < 200 * 1024, f"{path} is too large ({size} bytes)"
        print(f"{path}: {size} bytes, target {fx['expected']['target']}, "
              f"autograd vs finite differences {worst:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
