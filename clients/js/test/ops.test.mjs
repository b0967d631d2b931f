// ops.test.mjs - every op of the generated op functions, through the builder,
// against gradd's answer to the same graph written by hand: the builder's
// forward value and (for differentiable ops) gradients are what gradd answers
// to the hand-written request, element for element; and the JSON and binary
// paths of the client agree bit for bit on each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gd, URL, sameAsFlat, sameTensor } from "./common.mjs";

const client = new gd.Client(URL);
const X = [[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]];
const P = [[0.5, 1.25, 2.0], [1.5, 0.25, 0.75]];
const M = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]];
const f = (v) => ({ kind: "variable", v });
const i64 = (v) => ({ kind: "int64", v });
const data = (v) => ({ kind: "input", v });
// op -> [inputs, attributes]; an op whose output is int64 or that passes no
// gradient is checked by /v1/eval only.
const CASES = {
  neg: [[f(X)]], exp: [[f(X)]], log: [[f(P)]], log1p: [[f(P)]], expm1: [[f(X)]], sqrt: [[f(P)]],
  square: [[f(X)]], abs: [[f(X)]], sin: [[f(X)]], cos: [[f(X)]], tanh: [[f(X)]], sigmoid: [[f(X)]],
  relu: [[f(X)]], softplus: [[f(X)]], reciprocal: [[f(P)]],
  leaky_relu: [[f(X)], { alpha: 0.2 }], clip: [[f(X)], { min: -1, max: 1 }],
  add: [[f(X), f(P)]], sub: [[f(X), f(P)]], mul: [[f(X), f(P)]], div: [[f(X), f(P)]],
  pow: [[f(P), f(X)]], maximum: [[f(X), f(P)]], minimum: [[f(X), f(P)]],
  round: [[f(X)]], floor: [[f(X)]], ceil: [[f(X)]], sign: [[f(X)]],
  greater: [[f(X), f(P)]], greater_equal: [[f(X), f(X)]], less: [[f(X), f(P)]],
  less_equal: [[f(X), f(P)]], equal: [[f(X), f(P)]], not_equal: [[f(X), f(P)]],
  cast: [[f(X)], { dtype: "int64" }],
  sum: [[f(X)], { axis: 1, keepdims: true }], mean: [[f(X)], { axis: [0] }], max: [[f(X)], { axis: 1 }],
  min: [[f(X)]], logsumexp: [[f(X)], { axis: -1 }], argmax: [[f(X)], { axis: 1 }], argmin: [[f(X)]],
  reshape: [[f(X)], { shape: [3, -1] }], transpose: [[f(X)], { axes: [1, 0] }],
  broadcast_to: [[f([1.0, 2.0, 3.0])], { shape: [2, 3] }], concat: [[f(X), f(P)], { axis: 1 }],
  slice: [[f(X)], { starts: [0, 1], ends: [2, 9223372036854775807n], steps: [1, 1] }],
  gather: [[f(X), i64([1, 0, -1])], { axis: 0 }], matmul: [[f(X), f(M)]],
  softmax: [[f(X)], { axis: 0 }], log_softmax: [[f(X)]],
  softmax_cross_entropy: [[f(X), i64([2, 0])]], sigmoid_cross_entropy: [[f(X), f(P)]], one_hot: [[i64([0, 2, 1])], { depth: 4 }],
  stop_gradient: [[f(X)]], where: [[data([[1, 0, 1], [0, 0, 1]]), f(X), f(P)]],
  cond: [[data(0.0), f(X), f(P)]], // a1's gradient: null (untaken branch), both ways
};

test("every op of the table has a case here", () => {
  const ops = Object.keys(gd.OPS).filter((op) => gd.OPS[op].min > 0 || gd.OPS[op].max !== 0);
  assert.deepEqual(Object.keys(CASES).sort(), ops.sort());
});

/** A value as a JSON request carries it and as the binary path does (a Tensor). */
function valueForms(a) {
  const nested = (v) => (typeof v === "bigint" ? Number(v) : v);
  if (a.kind === "int64") return [a.v, gd.int64(a.v)];
  const flat = [a.v].flat(8);
  const shape = [];
  for (let x = a.v; Array.isArray(x); x = x[0]) shape.push(x.length);
  return [nested(a.v), gd.tensor(flat, shape)];
}

for (const [op, [args, attrs = {}]] of Object.entries(CASES)) {
  test(`${op}: builder vs hand-written request, JSON vs binary`, async () => {
    const g = new gd.Graph();
    const leaves = args.map((a, k) => (a.kind === "variable" ? g.variable(`a${k}`)
      : g.input(`a${k}`, a.kind === "int64" ? { dtype: "int64" } : {})));
    const out = op === "concat" ? gd.concat(leaves, attrs) : gd[op](...leaves, attrs);
    assert.equal(out.name, `${op}_1`);
    const spec = gd.OPS[op];
    const grads = spec.differentiable && op !== "cast" && args.some((a) => a.kind === "variable");
    const target = grads ? gd.sum(out, { name: "loss" }) : out;
    const jsonValues = {}, binValues = {};
    args.forEach((a, k) => { [jsonValues[`a${k}`], binValues[`a${k}`]] = valueForms(a); });

    // The same graph by hand, as a user without the package writes it.
    const nodes = args.map((a, k) => ({ name: `a${k}`, op: a.kind === "variable" ? "variable" : "input",
                                        ...(a.kind === "int64" ? { dtype: "int64" } : {}) }));
    nodes.push({ name: "out", op, inputs: args.map((_, k) => `a${k}`), ...attrs });
    if (grads) nodes.push({ name: "loss", op: "sum", inputs: ["out"] });
    const raw = await client.request("POST", grads ? "/v1/grad" : "/v1/eval", {
      graph: { nodes }, values: jsonValues, target: grads ? "loss" : "out",
      ...(grads ? { fetch: ["out"] } : {}), tensor_format: "flat",
    });

    const call = grads ? (o) => client.grad(target, { ...o, fetch: [out] }) : (o) => client.eval(target, o);
    const viaJson = await call({ values: jsonValues });
    const viaBinary = await call({ values: binValues });
    assert.equal(viaBinary.stats.nodes, nodes.length);
    sameAsFlat(viaJson.values[out.name], raw.values.out, `${op} value (JSON)`);
    sameTensor(viaBinary.values[out.name], viaJson.values[out.name], `${op} value (binary vs JSON)`);
    if (grads) {
      for (const [k, a] of args.entries()) {
        if (a.kind !== "variable") continue;
        sameAsFlat(viaJson.gradients[`a${k}`], raw.gradients[`a${k}`], `${op} gradient a${k}`);
        sameTensor(viaBinary.gradients[`a${k}`], viaJson.gradients[`a${k}`], `${op} gradient a${k} (binary vs JSON)`);
      }
    }
  });
}
