# A classic no-gradient mistake: a value computed outside the graph (here with NumPy) and sent back
# in as data, so no gradient can flow through it to the weights.
# Run: python3 examples/python/mistakes/computed_outside.py   (GRADD_URL overrides the server)
import gradd
import numpy as np

X_np, w_np = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
pred_np = X_np @ w_np                         # the mistake: the prediction is made in NumPy

g = gradd.Graph()
X, w, pred = g.input("X"), g.variable("w"), g.input("pred")
gradd.matmul(X, w, name="y")                  # the graph computes it too, but the loss does not use it
loss = gradd.mean(gradd.square(pred - 1.0), name="loss")

try:
    res = gradd.Client().grad(loss, values={"X": X_np, "w": w_np, "pred": pred_np})
    diagnostics = res.diagnostics
except gradd.NoGradientError as e:                            # 422: no variable got a gradient
    diagnostics = e.diagnostics
for d in diagnostics:
    print(d)
