"""Binary framing and JSON agree bit for bit; answers without NumPy; keep-alive;
float32 and int64 transport; python -m gradd."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import gradd
from gradd import tensors

HERE = os.path.dirname(os.path.abspath(__file__))


def awkward(rng, shape):
    """Values whose shortest decimals are long, tiny, huge and subnormal."""
    v = rng.normal(size=shape) * 10.0 ** rng.integers(-300, 300, size=shape)
    v.flat[0] = 5e-324
    v.flat[1] = 0.1
    v.flat[2] = -1.7976931348623157e308 / 3
    return v


def model():
    g = gradd.Graph()
    x, w, i = g.input("x"), g.variable("w"), g.input("i", dtype="int64")
    h = gradd.tanh(x @ w)
    picked = gradd.gather(h, i, axis=1, name="picked")
    loss = gradd.sum(picked * picked, name="loss")
    return g, loss, picked


@pytest.mark.parametrize("n", [3, 200])
def test_binary_and_json_agree_bit_for_bit(server, n):
    rng = np.random.default_rng(n)
    g, loss, picked = model()
    vals = {"x": awkward(rng, (n, 5)) * 1e-300 + rng.normal(size=(n, 5)), "w": rng.normal(size=(5, 7)),
            "i": np.array([0, 6, 3], dtype=np.int64)}
    results = []
    for binary in (True, None, False):
        c = gradd.Client(server.url, binary=binary)
        results.append(c.grad(loss, vals, fetch=[picked]))
    for r in results[1:]:
        for part in ("target", "gradients", "values"):
            for k, v in getattr(results[0], part).items():
                other = getattr(r, part)[k]
                assert v.dtype == other.dtype and v.shape == other.shape
                assert v.tobytes() == other.tobytes(), (part, k)


def test_binary_with_only_empty_arrays(server):
    """binary=True frames every array, an empty one too: a request whose binary section has no
    bytes is still sent binary-framed (it was sent as plain JSON referring to a section: 400)."""
    g = gradd.Graph()
    x, w = g.variable("x"), g.variable("w")
    loss = gradd.sum(x * x, name="loss") + w
    r = gradd.Client(server.url, binary=True).grad(loss, {"x": np.zeros(0), "w": 2.0})
    assert r.loss == 2.0
    assert r.gradients["x"].shape == (0,) and r.gradients["w"] == 1.0


def test_tensor_forms_round_trip(server):
    """Each value form in, each tensor_format out: the same bits."""
    g = gradd.Graph()
    x = g.variable("x")
    y = gradd.mul(x, 1.0, name="y")
    v = awkward(np.random.default_rng(3), (4, 3))
    c = gradd.Client(server.url)
    outs = [c.eval(y, {"x": v}, tensor_format=f).values["y"] for f in ("nested", "flat", "b64", "binary")]
    for o in outs:
        assert o.tobytes() == v.tobytes()


def test_float32_and_int64_transport(server):
    g = gradd.Graph()
    x, k = g.variable("x"), g.input("k", dtype="int64")
    loss = gradd.sum(gradd.square(x), name="loss")
    kk = gradd.add(k, k, name="kk")
    c = gradd.Client(server.url)
    x32 = np.array([0.1, 2.5, -3.25], dtype=np.float32)
    r = c.grad(loss, {"x": x32, "k": np.array([1, 2], dtype=np.int64)}, fetch=[kk])
    assert r.gradients["x"].dtype == np.float32
    np.testing.assert_array_equal(r.gradients["x"], (2 * x32.astype(np.float64)).astype(np.float32))
    np.testing.assert_array_equal(r.values["kk"], [2.0, 4.0])


def test_without_numpy(server, monkeypatch):
    monkeypatch.setattr(tensors, "np", None)
    g = gradd.Graph()
    w = g.variable("w")
    loss = gradd.sum(gradd.square(w), name="loss")
    c = gradd.Client(server.url)
    assert c.use_numpy is False
    r = c.grad(loss, {"w": [[1.0, -2.0], [0.5, "NaN"]]}, check_numerics=False)
    assert r.gradients["w"][0] == [2.0, -4.0] and r.gradients["w"][1][0] == 1.0
    assert r.gradients["w"][1][1] != r.gradients["w"][1][1]  # NaN
    assert isinstance(r.target["loss"], float)
    sec = b"".join(np.array([1.5, -2.0], dtype="<f8").tobytes() for _ in range(1))
    assert tensors.decode({"shape": [2], "dtype": "float64", "offset": 0, "nbytes": 16}, sec) == [1.5, -2.0]
    assert tensors.decode({"shape": [1, 2], "dtype": "int64", "b64": "AQAAAAAAAAD//////////w=="}) == [[1, -1]]


def test_keep_alive(server):
    c = gradd.Client(server.url)
    g = gradd.Graph()
    loss = gradd.square(g.variable("w"), name="loss")
    c.grad(loss, {"w": 1.0})
    sock = c._conn.sock
    for v in range(5):
        assert float(c.grad(loss, {"w": float(v)}).gradients["w"]) == 2.0 * v
    assert c._conn.sock is sock  # one connection for all of them
    c._conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server closed the idle connection: reopened, sent again
    assert float(c.grad(loss, {"w": 4.0}).gradients["w"]) == 8.0


def test_cli_prints_diagnostics(server, tmp_path):
    body = {"graph": {"nodes": [{"name": "x", "op": "variable"}, {"name": "b", "op": "variable"},
                                {"name": "sg", "op": "stop_gradient", "inputs": ["b"]},
                                {"name": "s", "op": "add", "inputs": ["x", "sg"]}]},
            "values": {"x": 1.0, "b": 2.0}, "target": "s"}
    f = tmp_path / "req.json"
    f.write_text(json.dumps(body))
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, ".."))
    p = subprocess.run([sys.executable, "-m", "gradd", str(f), "--url", server.url], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("stop_gradient (error): No gradient for 'b'")
    assert "  path: b -> sg -> s" in p.stdout and "  hint: " in p.stdout
    body["graph"]["nodes"][2]["op"] = "neg"
    f.write_text(json.dumps(body))
    p = subprocess.run([sys.executable, "-m", "gradd", str(f), "--url", server.url], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 0 and "no diagnostics" in p.stdout
    body["graph"]["nodes"][2]["op"] = "negg"
    f.write_text(json.dumps(body))
    p = subprocess.run([sys.executable, "-m", "gradd", str(f), "--url", server.url], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 2 and "unknown_op" in p.stderr and "Did you mean 'neg'?" in p.stderr
