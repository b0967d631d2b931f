// gradd client in TypeScript: logistic regression with the gradd package (clients/js).
// Run: make check builds it into build/examples/ts/logreg.js; node build/examples/ts/logreg.js
// (GRADD_URL overrides the server)
import { Client, Graph, softplus } from "gradd";

declare const process: { env: Record<string, string | undefined> };

const X = [[0.5, 1.0], [1.5, -0.5], [-1.0, 0.5], [-0.5, -1.5],
           [2.0, 0.5], [-1.5, -0.5], [1.0, 1.5], [0.5, -1.0]];
const y = [1, 1, 0, 0, 1, 0, 1, 0];

const g = new Graph();
const x = g.input("X"), t = g.input("y"), w = g.variable("w"), b = g.variable("b");
const z = x.matmul(w).add(b);
const loss = softplus(z).sub(t.mul(z)).mean({ name: "loss" });  // logistic loss, stable

const client = new Client(process.env.GRADD_URL ?? "http://localhost:8080");
const wv = new Float64Array(2);   // typed arrays travel in binary framing
let bv = 0;
for (let step = 0; step <= 50; step++) {
  const r = await client.grad(loss, { values: { X, y, w: wv, b: bv } });
  if (step % 10 === 0) console.log(`step ${step}: loss ${r.target.loss.item().toFixed(6)}`);
  const dw = r.gradients.w!.data as Float64Array;
  wv[0] -= 0.5 * dw[0];
  wv[1] -= 0.5 * dw[1];
  bv -= 0.5 * r.gradients.b!.item();
}
console.log(`w = [${wv[0].toFixed(4)}, ${wv[1].toFixed(4)}], b = ${bv.toFixed(4)}`);
