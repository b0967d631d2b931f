# gradd's Python package: 200 steps of logistic regression (the graph is registered once).
# Run: python3 examples/python/gradd_train.py   (GRADD_URL overrides the server)
import gradd

X = [[0.5, 1.0], [1.5, -0.5], [-1.0, 0.5], [-0.5, -1.5], [2.0, 0.5], [-1.5, -0.5]]
y = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]

g = gradd.Graph()
Xn, yn = g.input("X"), g.input("y")
w, b = g.variable("w"), g.variable("b")
z = Xn @ w + b
loss = gradd.mean(gradd.softplus(z) - yn * z, name="loss")   # the logistic loss, stably

client = gradd.Client()
params = {"w": [0.0, 0.0], "b": 0.0}
for step in range(200):
    res = client.grad(loss, values={"X": X, "y": y, **params})
    params["w"] = [float(p - 0.5 * d) for p, d in zip(params["w"], res.gradients["w"])]
    params["b"] = float(params["b"] - 0.5 * float(res.gradients["b"]))
    if step % 50 == 0 or step == 199:
        print(f"step {step:3d}: loss {res.loss:.6f}")
print("w =", [round(v, 3) for v in params["w"]], "b =", round(params["b"], 3))
