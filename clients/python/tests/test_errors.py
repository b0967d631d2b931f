"""Every error gradd answers becomes the exception of its code, with code,
message, at and suggestion as gradd sent them; the client's own checks say
what gradd would."""
import json
import os
import signal
import time

import numpy as np
import pytest

import gradd
from conftest import TOKEN, Server


def raw(client, body):
    return client.request_json("/v1/grad", body)


def node_graph(*nodes):
    return {"nodes": list(nodes)}


X = {"name": "x", "op": "variable"}


@pytest.mark.parametrize("body, cls, code, at", [
    ({"graph": node_graph(X), "values": {"x": 1, "nope": 2}, "target": "x"}, gradd.BadRequest, "unknown_node", "$.values.nope"),
    ({"graph": node_graph(X, {"name": "x", "op": "neg", "inputs": ["x"]}), "values": {"x": 1}, "target": "x"}, gradd.BadRequest, "duplicate_node", None),
    ({"graph": node_graph(X, {"name": "a", "op": "neg", "inputs": ["b"]}, {"name": "b", "op": "neg", "inputs": ["a"]}), "values": {"x": 1}, "target": "a"}, gradd.BadRequest, "cycle", None),
    ({"graph": node_graph(X), "values": {"x": 1}, "target": "x", "colour": 1}, gradd.BadRequest, "unknown_key", "$.colour"),
    ({"graph": node_graph(X, {"name": "y", "op": "sigmoyd", "inputs": ["x"]}), "values": {"x": 1}, "target": "y"}, gradd.BadRequest, "unknown_op", "$.graph.nodes[1].op"),
    ({"graph": node_graph({"name": "x", "op": "variable", "shape": [2]}), "values": {"x": [1, 2, 3]}, "target": "x"}, gradd.BadRequest, "shape_mismatch", None),
    ({"graph": node_graph({"name": "x", "op": "variable", "dtype": "int64"}), "values": {"x": {"shape": [1], "dtype": "float64", "data": [1.5]}}, "target": "x"}, gradd.BadRequest, "dtype_mismatch", None),
    ({"graph": node_graph(X), "values": {}, "target": "x"}, gradd.BadRequest, "missing_value", None),
    ({"graph": node_graph(X, {"name": "s", "op": "sum", "inputs": ["x"], "axis": "one"}), "values": {"x": [1.0]}, "target": "s"}, gradd.BadRequest, "invalid_attribute", None),
    ({"graph": node_graph(X), "values": {"x": [1, [2]]}, "target": "x"}, gradd.BadRequest, None, "$.values.x[1]"),
    ({"graph": node_graph(X, {"name": "i", "op": "input", "dtype": "int64"}, {"name": "g", "op": "gather", "inputs": ["x", "i"]}, {"name": "s", "op": "sum", "inputs": ["g"]}), "values": {"x": [1.0, 2.0], "i": [5]}, "target": "s"}, gradd.BadRequest, "index_out_of_range", None),
    ({"graph": node_graph(X), "values": {"x": [1.0, 2.0]}, "target": "x"}, gradd.BadRequest, "target_not_scalar", None),
    pytest.param({"graph": node_graph(X), "values": {"x": 1.0}, "target": "x", "wrt": []}, gradd.BadRequest,
                 "invalid_request", "$.wrt"),
    ({"graph": node_graph(X, {"name": "s", "op": "stop_gradient", "inputs": ["x"]}), "values": {"x": 1.0}, "target": "s"}, gradd.NoGradientError, "no_gradients", None),
    ({"graph": node_graph(X, {"name": "b", "op": "broadcast_to", "inputs": ["x"], "shape": [100000, 100000]}), "values": {"x": 1.0}, "target": "b"}, gradd.TooLarge, "too_large", None),
    ({"graph": node_graph({"name": "x", "op": "input"}, {"name": "m", "op": "broadcast_to", "inputs": ["x"], "shape": [3000, 3000]}, {"name": "p", "op": "matmul", "inputs": ["m", "m"]}, {"name": "s", "op": "sum", "inputs": ["p"]}), "values": {"x": 0.5}, "target": "s", "deadline_ms": 10}, gradd.DeadlineExceeded, "deadline_exceeded", None),
])
def test_error_answers(client, body, cls, code, at):
    with pytest.raises(cls) as ei:
        raw(client, body)
    e = ei.value
    assert isinstance(e, gradd.GraddError) and e.status == {gradd.BadRequest: 400, gradd.NoGradientError: 422,
                                                            gradd.TooLarge: 413, gradd.DeadlineExceeded: 504}[cls]
    if code:
        assert e.code == code
    else:
        assert e.code in ("invalid_value", "invalid_request")
    if at:
        assert e.at == at
    assert e.message and e.code in str(e)


def test_invalid_json_and_media_type(client):
    for body, headers, cls, code in [(b"{", {}, gradd.BadRequest, "invalid_json"),
                                     (b"{}", {"Content-Type": "text/csv"}, gradd.UnsupportedMediaType,
                                      "unsupported_media_type")]:
        status, hdrs, data = client.request("POST", "/v1/grad", body, headers)
        e = gradd.errors.error_from_answer(status, json.loads(data))
        assert isinstance(e, cls) and e.code == code


def test_suggestions_are_the_servers(client):
    g = gradd.Graph()
    x = g.variable("x")
    s = gradd.sum(x, kepdims=True, name="s")
    with pytest.raises(gradd.ClientError) as local:
        client.grad(s, {"x": [1.0, 2.0]})
    unchecked = gradd.Client(client.url, check_attributes=False, register=False)
    with pytest.raises(gradd.BadRequest) as remote:
        unchecked.grad(s, {"x": [1.0, 2.0]})
    assert local.value.code == remote.value.code == "unknown_key"
    assert local.value.suggestion == remote.value.suggestion == "keepdims"
    assert local.value.at == remote.value.at == "$.graph.nodes[1].kepdims"
    g2 = gradd.Graph()
    y = g2.add("sigmoyd", [g2.variable("x")], name="y")
    with pytest.raises(gradd.ClientError) as e:
        client.grad(y, {"x": 1.0})
    assert e.value.code == "unknown_op" and e.value.suggestion == "sigmoid"
    for word in ["axsi", "kepdim", "x", "stars", "zzzzzz", "dtpye"]:
        keys = ["name", "op", "inputs", "starts", "ends", "axes", "steps", "dtype", "axis", "keepdims"]
        r = unchecked.request("POST", "/v1/eval", json.dumps({"graph": {"nodes": [
            {"name": "x", "op": "input"}, {"name": "s", "op": "slice", "inputs": ["x"], "starts": [0], "ends": [1], word: 1}]},
            "values": {"x": [1.0]}, "target": "s"}).encode())
        want = json.loads(r[2])["error"].get("suggestion")
        assert gradd.closest(word, keys[:7]) == want, word


def test_not_found_and_method(client):
    with pytest.raises(gradd.NotFound):
        client._json_call("GET", "/v1/nothing")
    with pytest.raises(gradd.MethodNotAllowed):
        client._json_call("GET", "/v1/grad")


def test_unauthorized_and_token(auth_server):
    g = gradd.Graph()
    loss = gradd.square(g.variable("w"), name="loss")
    with pytest.raises(gradd.Unauthorized) as e:
        gradd.Client(auth_server.url).grad(loss, {"w": 3.0})
    assert e.value.code == "unauthorized"
    assert float(gradd.Client(auth_server.url, token=TOKEN).grad(loss, {"w": 3.0}).gradients["w"]) == 6.0


def test_overloaded_while_draining():
    s = Server("--drain-ms", "600000")
    try:
        c = gradd.Client(s.url)
        s.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            try:
                c._json_call("GET", "/readyz")
            except gradd.Overloaded as e:
                assert e.code == "overloaded" and e.status == 503
                break
            time.sleep(0.05)
        else:
            pytest.fail("/readyz never answered 503")
    finally:
        s.proc.send_signal(signal.SIGTERM)
        s.stop()


def test_unknown_graph_is_registered_again(client):
    g = gradd.Graph()
    loss = gradd.square(g.variable("w"), name="loss")
    assert float(client.grad(loss, {"w": 2.0}).gradients["w"]) == 4.0
    assert client.registrations == 1
    gid = client.register(g)
    status, _, _ = client.request("DELETE", "/v1/graphs/" + gid)
    assert status == 204
    assert float(client.grad(loss, {"w": 3.0}).gradients["w"]) == 6.0
    assert client.registrations == 2
    assert float(client.grad(loss, {"w": 1.0}).gradients["w"]) == 2.0
    assert client.registrations == 2


def test_timeout(server):
    g = gradd.Graph()
    x = g.input("x")
    s = gradd.sum(gradd.matmul(gradd.broadcast_to(x, shape=[2500, 2500]), gradd.broadcast_to(x, shape=[2500, 2500])))
    c = gradd.Client(server.url, timeout=0.01)
    with pytest.raises(gradd.GraddError) as e:
        c.eval(s, {"x": 0.5})
    assert e.value.code == "timeout"
    ok = gradd.Client(server.url)
    with pytest.raises(gradd.DeadlineExceeded):
        ok.eval(s, {"x": 0.5}, deadline_ms=1)


def test_raise_on_missing_and_typed_diagnostics(client):
    g = gradd.Graph()
    x, b, t = g.variable("x"), g.variable("b"), g.input("t")
    s = gradd.square(x - t) + gradd.stop_gradient(b, name="sg")
    loss = gradd.sum(s, name="loss")
    vals = {"x": np.array([1.0, 2.0, 3.0]), "b": np.array([0.5, 0.5, 0.5]), "t": np.array([0.0, 1.0, 0.0])}
    r = client.grad(loss, vals)
    assert r.gradients["b"] is None and r.missing == ["b"]
    np.testing.assert_array_equal(r.gradients["x"], [2.0, 2.0, 6.0])
    (d,) = r.diagnostics
    assert isinstance(d, gradd.StopGradient) and d.is_error and d.wrt == "b"
    assert d.blocked_at == [gradd.BlockedAt(node="sg", op="stop_gradient", reason="stop_gradient", input=0)]
    assert d.path[0] == "b" and d.path[-1] == "loss"
    text = str(d)
    assert d.message in text and "path: b -> sg" in text and "hint: " + d.hint in text
    with pytest.raises(gradd.NoGradientError) as e:
        client.grad(loss, vals, raise_on_missing=True)
    assert e.value.missing == ["b"] and e.value.diagnostics == [d]
    with pytest.raises(gradd.NoGradientError) as e:
        client.grad(loss, vals, wrt=["b"])
    assert e.value.status == 422 and e.value.code == "no_gradients" and e.value.missing == ["b"]
