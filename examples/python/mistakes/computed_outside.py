# A classic no-gradient mistake: a value computed outside the graph (in the client: NumPy or, here,
# plain Python) and sent back in as data, so no gradient can flow through it to the weights.
# Run: python3 examples/python/mistakes/computed_outside.py   (GRADD_URL overrides the server)
import gradd

X_v, w_v = [[1.0, 2.0], [3.0, 4.0]], [0.5, -0.5]
pred_v = [sum(a * b for a, b in zip(row, w_v)) for row in X_v]   # the mistake: X @ w made outside

g = gradd.Graph()
X, w, pred = g.input("X"), g.variable("w"), g.input("pred")
gradd.matmul(X, w, name="y")                  # the graph computes it too, but the loss does not use it
loss = gradd.mean(gradd.square(pred - 1.0), name="loss")

try:
    res = gradd.Client().grad(loss, values={"X": X_v, "w": w_v, "pred": pred_v})
    diagnostics = res.diagnostics
except gradd.NoGradientError as e:                            # 422: no variable got a gradient
    diagnostics = e.diagnostics
for d in diagnostics:
    print(d)
