// gradd in five lines of TypeScript: the gradient of a small model, and a diagnostic.
// Run: node build/examples/ts/quickstart.js   (GRADD_URL overrides the server)
import { Client, Graph, sigmoid } from "gradd";

declare const process: { env: Record<string, string | undefined> };

const g = new Graph();
const x = g.input("x"), w = g.variable("w"), b = g.variable("b");
const loss = sigmoid(x.matmul(w)).sum({ name: "loss" });   // b is forgotten: no gradient
const client = new Client(process.env.GRADD_URL ?? "http://localhost:8080");
const res = await client.grad(loss, { values: { x: [[1, 2], [3, 4]], w: [0.5, -0.25], b: 0.1 } });

console.log("loss", res.target.loss.item());
console.log("dloss/dw", res.gradients.w?.toArray());
console.log("dloss/db", res.gradients.b);
for (const d of res.diagnostics) console.log(String(d));
