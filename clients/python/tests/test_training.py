"""Training loops through the client: 200 steps of logistic regression and of
a 2-layer MLP, each with one registered graph; the loss must fall."""
import numpy as np

import gradd


def data(seed, n=64, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = rng.normal(size=d)
    y = (X @ w_true + 0.3 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def test_logistic_regression(client):
    X, y = data(1)
    g = gradd.Graph()
    Xn, yn = g.input("X"), g.input("y")
    w, b = g.variable("w"), g.variable("b")
    z = Xn @ w + b
    # mean(softplus(z) - y*z): the logistic loss, written with the builder's operators
    loss = gradd.mean(gradd.softplus(z) - yn * z, name="loss")
    params = {"w": np.zeros(X.shape[1]), "b": np.float64(0.0)}
    losses = []
    for step in range(200):
        res = client.grad(loss, {"X": X, "y": y, **params})
        losses.append(res.loss)
        for k in params:
            params[k] = params[k] - 0.5 * res.gradients[k]
        assert not res.diagnostics
    assert client.registrations == 1
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))  # a convex loss, a small step
    acc = (((X @ params["w"] + params["b"]) > 0) == (y > 0)).mean()
    assert acc > 0.85


def test_mlp(client):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 2))
    y = ((X[:, 0] * X[:, 1]) > 0).astype(np.int64)  # XOR-like: needs the hidden layer
    g = gradd.Graph()
    Xn, yn = g.input("X"), g.input("y", dtype="int64")
    W1, b1, W2, b2 = (g.variable(n) for n in ("W1", "b1", "W2", "b2"))
    loss = gradd.softmax_cross_entropy(gradd.relu(Xn @ W1 + b1) @ W2 + b2, yn, name="loss")
    params = {"W1": rng.normal(scale=0.5, size=(2, 16)), "b1": np.zeros(16),
              "W2": rng.normal(scale=0.5, size=(16, 2)), "b2": np.zeros(2)}
    losses = []
    for step in range(200):
        res = client.grad(loss, {"X": X, "y": y, **params})
        losses.append(res.loss)
        for k in params:
            assert res.gradients[k].shape == params[k].shape and res.gradients[k].dtype == np.float64
            params[k] = params[k] - 0.5 * res.gradients[k]
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
