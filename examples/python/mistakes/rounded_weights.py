# A classic no-gradient mistake: rounding on the way to the loss (a cast to int64 and back).
# Run: python3 examples/python/mistakes/rounded_weights.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
x, w = g.input("x"), g.variable("w")
w_int = gradd.cast(w, dtype="int64", name="w_int")                # the mistake: the weights go through int64
w_back = gradd.cast(w_int, dtype="float64", name="w_back")
loss = gradd.sum(x * w_back, name="loss")

try:
    res = gradd.Client().grad(loss, values={"x": [1.0, 2.0], "w": [0.7, 1.6]})
    diagnostics = res.diagnostics
except gradd.NoGradientError as e:                            # 422: no variable got a gradient
    diagnostics = e.diagnostics
for d in diagnostics:
    print(d)
