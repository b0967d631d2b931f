"""Every op of GET /v1/ops through the builder: the server's answer to the
builder's graph is the answer to the same graph written by hand as JSON, and
agrees with NumPy."""
import json
import math

import numpy as np
import pytest

import gradd

rng = np.random.default_rng(12)
A = rng.uniform(0.5, 2.0, size=(2, 3))   # positive: log, sqrt, pow
B = rng.uniform(-1.5, 1.5, size=(2, 3))
M = rng.normal(size=(3, 4))
I = np.array([[2, 0], [1, 2]], dtype=np.int64)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logsumexp(x):
    m = x.max()
    return m + np.log(np.exp(x - m).sum())


# op -> (input values, attributes, NumPy reference of the value)
CASES = {
    "neg": ([B], {}, lambda x: -x),
    "exp": ([B], {}, np.exp),
    "log": ([A], {}, np.log),
    "log1p": ([A], {}, np.log1p),
    "expm1": ([B], {}, np.expm1),
    "sqrt": ([A], {}, np.sqrt),
    "square": ([B], {}, np.square),
    "abs": ([B], {}, np.abs),
    "sin": ([B], {}, np.sin),
    "cos": ([B], {}, np.cos),
    "tanh": ([B], {}, np.tanh),
    "sigmoid": ([B], {}, lambda x: 1 / (1 + np.exp(-x))),
    "relu": ([B], {}, lambda x: np.maximum(x, 0)),
    "softplus": ([B], {}, lambda x: np.log1p(np.exp(x))),
    "reciprocal": ([A], {}, lambda x: 1 / x),
    "leaky_relu": ([B], {"alpha": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    "clip": ([B], {"min": -0.5, "max": 0.5}, lambda x: np.clip(x, -0.5, 0.5)),
    "add": ([A, B], {}, np.add),
    "sub": ([A, B], {}, np.subtract),
    "mul": ([A, B], {}, np.multiply),
    "div": ([B, A], {}, np.divide),
    "pow": ([A, B], {}, np.power),
    "maximum": ([A, B], {}, np.maximum),
    "minimum": ([A, B], {}, np.minimum),
    "round": ([B * 3], {}, np.round),
    "floor": ([B], {}, np.floor),
    "ceil": ([B], {}, np.ceil),
    "sign": ([B], {}, np.sign),
    "greater": ([A, B], {}, lambda a, b: (a > b) * 1.0),
    "greater_equal": ([A, B], {}, lambda a, b: (a >= b) * 1.0),
    "less": ([A, B], {}, lambda a, b: (a < b) * 1.0),
    "less_equal": ([A, B], {}, lambda a, b: (a <= b) * 1.0),
    "equal": ([A, A], {}, lambda a, b: (a == b) * 1.0),
    "not_equal": ([A, B], {}, lambda a, b: (a != b) * 1.0),
    "cast": ([B * 3], {"dtype": "int64"}, lambda x: np.trunc(x).astype(np.int64)),
    "sum": ([B], {"axis": 1, "keepdims": True}, lambda x: x.sum(axis=1, keepdims=True)),
    "mean": ([B], {"axis": 0}, lambda x: x.mean(axis=0)),
    "max": ([B], {"axis": [0, 1]}, lambda x: x.max()),
    "min": ([B], {"axis": -1}, lambda x: x.min(axis=-1)),
    "logsumexp": ([B], {}, logsumexp),
    "argmax": ([B], {"axis": 1}, lambda x: x.argmax(axis=1)),
    "argmin": ([B], {}, lambda x: np.int64(x.argmin())),
    "reshape": ([B], {"shape": [3, -1]}, lambda x: x.reshape(3, -1)),
    "transpose": ([B], {}, lambda x: x.T),
    "broadcast_to": ([B[0]], {"shape": [4, 3]}, lambda x: np.broadcast_to(x, (4, 3))),
    "concat": ([A, B], {"axis": 1}, lambda a, b: np.concatenate([a, b], axis=1)),
    "slice": ([B], {"starts": [0, -1], "ends": [2, 0], "steps": [1, -1]}, lambda x: x[0:2, -1:0:-1]),
    "gather": ([M, I], {"axis": 1}, lambda p, i: np.take(p, i, axis=1)),
    "matmul": ([B, M], {}, np.matmul),
    "softmax": ([B], {}, softmax),
    "log_softmax": ([B], {"axis": 0}, lambda x: np.log(softmax(x, axis=0))),
    "softmax_cross_entropy": ([B, np.array([2, 0], dtype=np.int64)], {},
                              lambda z, y: -np.log(softmax(z))[np.arange(2), y].mean()),
    "sigmoid_cross_entropy": ([B, (B > 0) * 1.0], {},
                              lambda z, y: (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean()),
    "one_hot": ([np.array([2, 0, 1], dtype=np.int64)], {"depth": 4}, lambda i: np.eye(4)[i]),
    "stop_gradient": ([B], {}, lambda x: x),
    "where": ([(B > 0) * 1.0, A, B], {}, lambda c, a, b: np.where(c != 0, a, b)),
    "cond": ([np.float64(1.0), A, B], {}, lambda p, a, b: a),
}


def test_every_op_has_a_function_and_a_case(client):
    table = client.ops()
    ops = [n for n in table if n not in ("variable", "input", "constant")]
    assert list(gradd.OPS) == ops, "clients/python/gradd/ops.py is stale: scripts/gen_python_ops.py"
    assert sorted(CASES) == sorted(ops)
    for name in ops:
        fn = getattr(gradd, name)
        assert fn.__doc__ and table[name]["doc"][:40] in fn.__doc__


@pytest.mark.parametrize("op", sorted(CASES))
def test_op(client, op):
    ins, attrs, ref = CASES[op]
    g = gradd.Graph()
    leaves = [g.input(f"x{i}", dtype="int64" if np.asarray(v).dtype == np.int64 else None) for i, v in enumerate(ins)]
    out = getattr(gradd, op)(*leaves, name="out", **attrs)
    values = {f"x{i}": v for i, v in enumerate(ins)}
    res = client.eval(out, values)
    got = res.values["out"]
    want = ref(*ins)
    assert got.shape == np.shape(want)
    if np.asarray(want).dtype.kind in "iu":
        assert got.dtype == np.int64 and np.array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # the same graph written by hand: the same answer, bit for bit
    nodes = [{"name": f"x{i}", "op": "input", **({"dtype": "int64"} if np.asarray(v).dtype == np.int64 else {})}
             for i, v in enumerate(ins)]
    nodes.append({"name": "out", "op": op, "inputs": [f"x{i}" for i in range(len(ins))], **attrs})
    assert g.to_json() == {"nodes": nodes}
    raw = client.request_json("/v1/eval", {"graph": {"nodes": nodes}, "target": "out",
                                           "values": {f"x{i}": np.asarray(v).tolist() for i, v in enumerate(ins)}})
    hand = gradd.tensors.decode(raw["values"]["out"])
    assert hand.dtype == got.dtype and np.array_equal(hand, got)


def test_operators_build_the_expected_graph(client):
    g = gradd.Graph()
    x, w = g.input("x"), g.variable("w")
    y = -(x @ w) + 1.0 - x * 2 / (w ** 2) + abs(x)
    ops = [n.op for n in g.nodes]
    assert ops == ["input", "variable", "matmul", "neg", "constant", "add", "constant", "mul", "constant",
                   "pow", "div", "sub", "abs", "add"]
    assert [n.name for n in g.nodes][2:4] == ["matmul_1", "neg_1"]
    xv, wv = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.5, -1.0], [2.0, 1.5]])
    got = client.eval(y, {"x": xv, "w": wv}).values[y.name]
    np.testing.assert_allclose(got, -(xv @ wv) + 1.0 - xv * 2 / (wv ** 2) + np.abs(xv), rtol=1e-13)
    r = client.grad(gradd.sum(y), {"x": xv, "w": wv})
    assert r.gradients["w"].shape == (2, 2) and not r.diagnostics
