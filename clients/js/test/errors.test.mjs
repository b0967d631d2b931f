// errors.test.mjs - every error gradd answers (but internal and overloaded,
// which no well-formed request provokes on purpose) arrives as a GraddError
// with gradd's code, HTTP status, message, at and suggestion; the builder's
// own checks and the client's own failures (timeout, network) too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gd, URL, STRICT_URL, TOKEN, SCALE } from "./common.mjs";

const client = new gd.Client(URL);
const leaf = (name, op = "variable", extra = {}) => ({ name, op, ...extra });
const body = (nodes, values, target = "l", more = {}) => ({ graph: { nodes }, values, target, ...more });
const sumOf = (x, name = "l") => ({ name, op: "sum", inputs: [x] });

/** Asserts that `promise` rejects with a GraddError of `code` and `status` (and `fields`). */
async function rejects(promise, code, status, fields = {}) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof gd.GraddError, `not a GraddError: ${e}`);
    assert.equal(e.code, code, String(e));
    assert.equal(e.status, status, String(e));
    assert.ok(e.message.length > 0);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k} of ${e}`);
    return true;
  });
}

const CASES = [
  ["invalid_json", 400, "{", {}],
  ["invalid_request", 400, { graph: { nodes: 3 }, target: "l" }, { at: "$.graph.nodes" }],
  ["unknown_key", 400, body([leaf("x"), { ...sumOf("x"), axsi: 0 }], { x: [1] }),
   { at: "$.graph.nodes[1].axsi", suggestion: "axis" }],
  ["unknown_op", 400, body([leaf("x"), { name: "l", op: "relux", inputs: ["x"] }], { x: 1 }),
   { suggestion: "relu" }],
  ["unknown_node", 400, body([leaf("xx"), sumOf("x")], { xx: [1] }), { suggestion: "xx" }],
  ["duplicate_node", 400, body([leaf("x"), leaf("x"), sumOf("x")], { x: [1] }), {}],
  ["cycle", 400, body([leaf("x"), { name: "a", op: "add", inputs: ["x", "b"] },
    { name: "b", op: "neg", inputs: ["a"] }, sumOf("b")], { x: [1] }), {}],
  ["shape_mismatch", 400, body([leaf("x"), leaf("y"), { name: "s", op: "add", inputs: ["x", "y"] }, sumOf("s")],
    { x: [1, 2], y: [1, 2, 3] }), {}],
  ["dtype_mismatch", 400, body([leaf("x"), leaf("i", "input"), { name: "g", op: "gather", inputs: ["x", "i"] },
    sumOf("g")], { x: [1, 2], i: [0.0] }), {}],
  ["missing_value", 400, body([leaf("x"), sumOf("x")], {}), { at: "$.values" }],
  ["invalid_attribute", 400, body([leaf("x"), { ...sumOf("x"), axis: "q" }], { x: [1] }),
   { at: "$.graph.nodes[1].axis" }],
  ["invalid_value", 400, body([leaf("x"), sumOf("x")], { x: "hello" }), { at: "$.values.x" }],
  ["index_out_of_range", 400, body([leaf("x"), leaf("i", "input", { dtype: "int64" }),
    { name: "g", op: "gather", inputs: ["x", "i"] }, sumOf("g")], { x: [1, 2], i: [5] }), {}],
  ["target_not_scalar", 400, body([leaf("x"), { name: "l", op: "neg", inputs: ["x"] }], { x: [1, 2] }),
   { at: "$.target" }],
  ["unknown_graph", 404, { graph_id: `sha256:${"0".repeat(64)}`, values: {}, target: "l" }, {}],
];

for (const [code, status, req, fields] of CASES) {
  test(`${code} (${status}) from POST /v1/grad`, async () => {
    await rejects(client.request("POST", "/v1/grad", req), code, status, fields);
  });
}

test("no_gradients (422) is a NoGradientError with the diagnostics", async () => {
  const g = new gd.Graph();
  const w = g.variable("w");
  const loss = gd.stop_gradient(w).square().sum({ name: "loss" });
  await assert.rejects(client.grad(loss, { values: { w: [1, 2] } }), (e) => {
    assert.ok(e instanceof gd.NoGradientError);
    assert.equal(e.code, "no_gradients");
    assert.equal(e.status, 422);
    assert.equal(e.diagnostics.length, 1);
    const d = e.diagnostics[0];
    assert.ok(d instanceof gd.Diagnostic);
    assert.equal(d.code, "stop_gradient");
    assert.equal(d.wrt, "w");
    assert.deepEqual(d.path, ["w", "stop_gradient_1", "square_1", "loss"]);
    assert.deepEqual(d.blocked_at, [{ node: "stop_gradient_1", op: "stop_gradient", reason: "stop_gradient", input: 0 }]);
    assert.match(String(d), /^error stop_gradient: No gradient for 'w'.*\n  path: w -> stop_gradient_1 -> square_1 -> loss\n  hint: /s);
    return true;
  });
});

test("not_found (404) and method_not_allowed (405)", async () => {
  await rejects(client.request("GET", "/v1/nothing"), "not_found", 404);
  await rejects(client.request("GET", "/v1/grad"), "method_not_allowed", 405);
});

test("unsupported_media_type (415)", async () => {
  const textPlain = (u, init) => fetch(u, { ...init, headers: { ...init.headers, "Content-Type": "text/plain" } });
  const c = new gd.Client(URL, { fetch: textPlain });
  await rejects(c.request("POST", "/v1/grad", body([leaf("x"), sumOf("x")], { x: [1] })), "unsupported_media_type", 415);
});

test("unauthorized (401) without the token, and the token is sent", { skip: !STRICT_URL }, async () => {
  const g = new gd.Graph();
  const loss = g.variable("w").square().sum();
  await rejects(new gd.Client(STRICT_URL).grad(loss, { values: { w: [3] } }), "unauthorized", 401);
  const r = await new gd.Client(STRICT_URL, { token: TOKEN }).grad(loss, { values: { w: [3] } });
  assert.equal(r.gradients.w.item(), 6);
});

test("too_large (413): more nodes than --max-nodes", { skip: !STRICT_URL }, async () => {
  const g = new gd.Graph();
  let x = g.variable("w");
  for (let i = 0; i < 20; i++) x = x.neg();
  await rejects(new gd.Client(STRICT_URL, { token: TOKEN }).grad(x.sum(), { values: { w: [1] } }), "too_large", 413);
});

/** A graph whose forward takes far longer than a millisecond: 12 products of 300x300 matrices. */
function heavy() {
  const g = new gd.Graph();
  const a = g.input("a");
  let x = g.variable("w");
  for (let i = 0; i < 12; i++) x = gd.tanh(x.matmul(a));
  const n = 300;
  const values = { a: gd.tensor(Float64Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / n), [n, n]),
                   w: gd.tensor(Float64Array.from({ length: n * n }, (_, i) => ((i % 5) - 2) / n), [n, n]) };
  return { loss: x.sum(), values };
}

test("deadline_exceeded (504) with deadlineMs", async () => {
  const { loss, values } = heavy();
  await rejects(client.grad(loss, { values, deadlineMs: 1 }), "deadline_exceeded", 504);
  const r = await client.grad(loss, { values, deadlineMs: 600000 });
  assert.ok(Number.isFinite(r.target[loss.name].item()));
});

test("timeout: timeoutMs aborts the exchange (AbortController)", async () => {
  const { loss, values } = heavy();
  const started = Date.now();
  await rejects(client.grad(loss, { values, timeoutMs: 1 }), "timeout", 0);
  assert.ok(Date.now() - started < 5000 * SCALE, "the abort came late");
});

test("network: nothing listens", async () => {
  await rejects(new gd.Client("http://127.0.0.1:1").ops(), "network", 0);
});

test("the builder's own errors, named as gradd names them", () => {
  const g = new gd.Graph();
  const x = g.variable("x");
  assert.throws(() => gd.sum(x, { axsi: 1 }), { code: "unknown_key", suggestion: "axis" });
  assert.throws(() => g.node("relux", [x]), { code: "unknown_op", suggestion: "relu" });
  assert.throws(() => g.node("add", [x]), { code: "invalid_request" });
  assert.throws(() => g.node("reshape", [x], {}), { code: "invalid_attribute" });
  assert.throws(() => g.variable("x"), { code: "duplicate_node" });
  assert.throws(() => g.variable("two words"), { code: "invalid_request" });
  assert.throws(() => x.add(new gd.Graph().variable("y")), { code: "invalid_request" });
  assert.throws(() => gd.add(1, 2), { code: "invalid_request" });
});
