# gradd's Python package: a missing gradient, what gradd says about it, and a misspelt attribute.
# Run: python3 examples/python/gradd_diagnostics.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
x, w, b = g.input("x"), g.variable("w"), g.variable("b")
loss = gradd.sum(x * w + gradd.stop_gradient(b, name="frozen"), name="loss")   # b is frozen by mistake
values = {"x": [1.0, 2.0, 3.0], "w": [0.1, 0.2, 0.3], "b": [0.0, 0.0, 0.0]}

client = gradd.Client()
res = client.grad(loss, values=values)
print("missing:", res.missing)
for d in res.diagnostics:
    print(d)

try:
    client.grad(loss, values=values, raise_on_missing=True)
except gradd.NoGradientError as e:
    print("raised", type(e).__name__, "for", e.missing)

try:
    client.grad(gradd.sum(w, axes=0), values=values)
except gradd.GraddError as e:
    print("error", e.code, "at", e.at, "- did you mean", repr(e.suggestion))
