# A classic no-gradient mistake: a variable used only in the branch of a cond that was not taken.
# Run: python3 examples/python/mistakes/untaken_branch.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
x, w, v, training = g.input("x"), g.variable("w"), g.variable("v"), g.input("training")
out = gradd.cond(training, x * w, x * v, name="pick")            # v only matters when training is 0
loss = gradd.sum(out, name="loss")

try:
    res = gradd.Client().grad(loss, values={"x": [1.0, 2.0], "w": [0.5, 0.5], "v": [1.0, 1.0], "training": 1.0})
    print("missing:", res.missing)
    diagnostics = res.diagnostics
except gradd.NoGradientError as e:                            # 422: no variable got a gradient
    diagnostics = e.diagnostics
for d in diagnostics:
    print(d)
