# gradd's Python package: a model's gradients in five lines (clients/python; docs/clients.md).
# Run: python3 examples/python/gradd_quickstart.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
x, w = g.input("x"), g.variable("w")
loss = gradd.mean(gradd.square(x @ w - 1.0), name="loss")
res = gradd.Client().grad(loss, values={"x": [[1.0, 2.0], [3.0, 4.0]], "w": [0.5, -0.5]})

print("loss", res.loss)
print("dloss/dw", [float(v) for v in res.gradients["w"]])
