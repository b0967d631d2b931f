// train.test.mjs - logistic regression trained through the package: 200
// steps of gradient descent on a separable 2-D problem; the loss falls and
// the model ends up classifying the training set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gd, URL } from "./common.mjs";

test("logistic regression: the loss falls over 200 steps", async () => {
  const n = 64;
  const X = new Float64Array(n * 2), y = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const a = Math.sin(k * 1.7) * 2, b = Math.cos(k * 2.3) * 2;
    X[2 * k] = a;
    X[2 * k + 1] = b;
    y[k] = a + 0.5 * b > 0.25 ? 1 : 0;
  }
  const g = new gd.Graph();
  const x = g.input("X", { shape: [n, 2] }), t = g.input("y"), w = g.variable("w"), b = g.variable("b");
  const z = x.matmul(w).add(b);
  // mean(softplus(z) - y z): the logistic loss, stable for large |z|.
  const loss = gd.softplus(z).sub(t.mul(z)).mean({ name: "loss" });
  const client = new gd.Client(URL, { timeoutMs: 60000 });
  const wv = new Float64Array(2), bv = new Float64Array(1);
  const losses = [];
  for (let step = 0; step < 200; step++) {
    const r = await client.grad(loss, { values: { X: gd.tensor(X, [n, 2]), y, w: wv, b: gd.tensor(bv, []) },
                                       raiseOnMissing: true });
    losses.push(r.target.loss.item());
    for (let j = 0; j < 2; j++) wv[j] -= 0.5 * r.gradients.w.data[j];
    bv[0] -= 0.5 * r.gradients.b.item();
  }
  assert.ok(Math.abs(losses[0] - Math.log(2)) < 1e-12, `first loss ${losses[0]}`);
  assert.ok(losses[199] < 0.3 * losses[0], `loss ${losses[0]} -> ${losses[199]}`);
  for (let k = 1; k < losses.length; k++) assert.ok(losses[k] <= losses[k - 1] + 1e-12, `loss rose at step ${k}`);
  const p = await client.eval(z, { values: { X: gd.tensor(X, [n, 2]), w: wv, b: gd.tensor(bv, []) } });
  const right = Array.from(p.values[z.name].data).filter((v, k) => (v > 0 ? 1 : 0) === y[k]).length;
  assert.ok(right >= 0.9 * n, `${right}/${n} right`);
});
