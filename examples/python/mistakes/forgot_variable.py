# A classic no-gradient mistake: the weights declared as data (TensorFlow: forgetting tf.Variable).
# Run: python3 examples/python/mistakes/forgot_variable.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
X, w = g.input("X"), g.input("w")            # the mistake: w should be g.variable("w")
loss = gradd.mean(gradd.square(X @ w - 1.0), name="loss")
values = {"X": [[1.0, 2.0], [3.0, 4.0]], "w": [0.5, -0.5]}

try:
    gradd.Client().grad(loss, values=values)
except gradd.NoGradientError as e:
    for d in e.diagnostics:
        print(d)
