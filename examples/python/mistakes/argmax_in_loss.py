# A classic no-gradient mistake: a loss built on argmax (an accuracy), which has no gradient.
# Run: python3 examples/python/mistakes/argmax_in_loss.py   (GRADD_URL overrides the server)
import gradd

g = gradd.Graph()
X, W = g.input("X"), g.variable("W")
logits = gradd.matmul(X, W, name="logits")
guess = gradd.argmax(logits, axis=1, name="guess")               # the mistake: argmax on the path
loss = gradd.mean(gradd.cast(guess, dtype="float64", name="guess_f"), name="loss")

try:
    res = gradd.Client().grad(loss, values={"X": [[1.0, 2.0], [3.0, 4.0]], "W": [[0.1, 0.2], [0.3, 0.4]]})
    diagnostics = res.diagnostics
except gradd.NoGradientError as e:                            # 422: no variable got a gradient
    diagnostics = e.diagnostics
for d in diagnostics:
    print(d)
