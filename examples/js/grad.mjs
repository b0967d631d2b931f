// gradd client: fetch, plain JSON (Node.js 18+).
// Run: node examples/js/grad.mjs   (GRADD_URL overrides the server)
const URL = process.env.GRADD_URL ?? "http://localhost:8080";

const res = await fetch(`${URL}/v1/grad`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({
    graph: { nodes: [
      { name: "x", op: "variable" },
      { name: "p", op: "softmax", inputs: ["x"] },
      { name: "pick", op: "argmax", inputs: ["p"] },
      { name: "l", op: "logsumexp", inputs: ["x"] },
    ] },
    values: { x: [1, 2, 3] },
    target: "l",
    fetch: ["p", "pick"],
  }),
});
const answer = await res.json();
console.log(res.status, "dl/dx =", answer.gradients.x);
console.log("argmax =", answer.values.pick);
