// transport.test.mjs - binary framing and JSON agree bit for bit (negative
// zero, subnormals, NaN, infinities, int64 past 2^53); graphs are registered
// once and registered again after the server forgets them; raiseOnMissing and
// typed diagnostics; float32 round trips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gd, URL, sameTensor } from "./common.mjs";

/** A client whose exchanges are recorded as "METHOD path content-type". */
function recorded() {
  const log = [];
  const spy = (u, init) => {
    log.push(`${init.method} ${new globalThis.URL(u).pathname} ${init.headers["Content-Type"] ?? "-"}`);
    return fetch(u, init);
  };
  return { client: new gd.Client(URL, { fetch: spy }), log };
}

test("binary and JSON agree bit for bit, special values included", async () => {
  const g = new gd.Graph();
  const x = g.variable("x"), y = g.input("y");
  const i = g.input("i", { dtype: "int64" });
  const loss = x.mul(y).add(x.square()).sum({ name: "loss" });
  const picked = gd.gather(x, i, { name: "picked" });
  const vals = [-0, 0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, -1 / 3, NaN, Infinity, -Infinity];
  const xs = Float64Array.from(vals);
  const ys = Float64Array.from(vals, (_, k) => (k % 3) - 1);
  const idx = [9, 0, 7, -1];
  const { client, log } = recorded();
  const bin = await client.grad(loss, { values: { x: xs, y: ys, i: gd.int64(idx) }, fetch: [picked, y, i] });
  const json = await client.grad(loss, { values: { x: Array.from(xs), y: Array.from(ys), i: idx }, fetch: [picked, y, i] });
  const jsonTyped = await client.grad(loss, { values: { x: xs, y: ys, i: gd.int64(idx) }, fetch: [picked, y, i], binary: false });
  assert.deepEqual(log.map((l) => l.split(" ")[2]),
    ["application/json", "application/vnd.gradd.v1+binary", "application/json", "application/json"]);
  for (const r of [json, jsonTyped]) {
    sameTensor(r.target.loss, bin.target.loss, "loss");
    sameTensor(r.gradients.x, bin.gradients.x, "dx");
    for (const k of ["picked", "y", "i"]) sameTensor(r.values[k], bin.values[k], k);
  }
  assert.ok(Object.is(bin.values.picked.data[1], -0));
  assert.equal(bin.values.i.dtype, "int64");
  assert.deepEqual(Array.from(bin.values.i.data), [9n, 0n, 7n, -1n]);
  assert.ok(bin.diagnostics.every((d) => d instanceof gd.Diagnostic));
  assert.ok(bin.diagnostics.some((d) => d.code === "non_finite_value"));
});

test("int64 values past 2^53 travel exactly in binary framing", async () => {
  const g = new gd.Graph();
  const i = g.input("i", { dtype: "int64" });
  const out = gd.stop_gradient(i);
  const r = await new gd.Client(URL).eval(out, { values: { i: gd.int64([2n ** 62n + 1n, -(2n ** 63n)]) } });
  assert.equal(r.values[out.name].dtype, "int64");
  assert.deepEqual(Array.from(r.values[out.name].data), [2n ** 62n + 1n, -(2n ** 63n)]);
});

test("float32 values come back as float32", async () => {
  const g = new gd.Graph();
  const x = g.variable("x");
  const loss = x.square().sum();
  const xs = Float32Array.from([0.1, -2.5, 3e-41]);
  const c = new gd.Client(URL);
  const bin = await c.grad(loss, { values: { x: xs } });
  const json = await c.grad(loss, { values: { x: xs }, binary: false });
  assert.equal(bin.gradients.x.dtype, "float32");
  sameTensor(json.gradients.x, bin.gradients.x, "float32 gradient");
  assert.deepEqual(Array.from(bin.gradients.x.data), Array.from(xs, (v) => Math.fround(2 * v)));
});

test("a graph is registered once, then sent by id; re-registered after DELETE", async () => {
  const { client, log } = recorded();
  const g = new gd.Graph();
  const w = g.variable("w");
  const loss = w.sub(3).square().sum({ name: "loss" });
  for (let k = 0; k < 3; k++) await client.grad(loss, { values: { w: [k] } });
  assert.deepEqual(log.map((l) => l.split(" ").slice(0, 2).join(" ")),
    ["POST /v1/graphs", "POST /v1/grad", "POST /v1/grad", "POST /v1/grad"]);
  const id = await client.register(g);
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const held = await client.request("GET", `/v1/graphs/${id}`);
  assert.deepEqual(held.nodes ?? held.graph?.nodes, JSON.parse(JSON.stringify(g)).nodes);

  await new gd.Client(URL).forget(id); // the server forgets it; this client does not know
  await assert.rejects(client.request("GET", `/v1/graphs/${id}`), { code: "unknown_graph" });
  log.length = 0;
  const r = await client.grad(loss, { values: { w: [1] } });
  assert.equal(r.gradients.w.item(), -4);
  assert.deepEqual(log.map((l) => l.split(" ").slice(0, 2).join(" ")),
    ["POST /v1/grad", "POST /v1/graphs", "POST /v1/grad"]);
  // A graph that grows gets a new id.
  log.length = 0;
  w.mul(2, { name: "extra" });
  await client.grad(loss, { values: { w: [1] } });
  assert.deepEqual(log.map((l) => l.split(" ").slice(0, 2).join(" ")), ["POST /v1/graphs", "POST /v1/grad"]);
});

test("register: false sends the graph inline", async () => {
  const calls = [];
  const c = new gd.Client(URL, { register: false, fetch: (u, init) => { calls.push(init.body); return fetch(u, init); } });
  const g = new gd.Graph();
  const loss = g.variable("w").square().sum();
  assert.equal((await c.grad(loss, { values: { w: 2 } })).gradients.w.item(), 4);
  assert.equal(calls.length, 1);
  assert.match(calls[0], /^\{"graph":\{"nodes":/);
});

test("raiseOnMissing, wrt, unconnected and typed diagnostics", async () => {
  const g = new gd.Graph();
  const w = g.variable("w"), b = g.variable("b"), u = g.variable("unused");
  const loss = w.square().add(gd.stop_gradient(b)).sum({ name: "loss" });
  const c = new gd.Client(URL);
  const values = { w: [1, 2], b: [0.5, 0.5], unused: 1 };
  const r = await c.grad(loss, { values });
  assert.deepEqual(Array.from(r.gradients.w.data), [2, 4]);
  assert.equal(r.gradients.b, null);
  const codes = Object.fromEntries(r.diagnostics.map((d) => [d.wrt, d.code]));
  assert.deepEqual(codes, { b: "stop_gradient", unused: "disconnected" });
  assert.deepEqual(r.diagnostics.find((d) => d.wrt === "unused").consumers, []);
  await assert.rejects(c.grad(loss, { values, raiseOnMissing: true }), (e) => {
    assert.ok(e instanceof gd.NoGradientError);
    assert.deepEqual(e.diagnostics.map((d) => d.wrt).sort(), ["b", "unused"]);
    return true;
  });
  const z = await c.grad(loss, { values, wrt: [w, u], unconnected: "zero", raiseOnMissing: false });
  assert.deepEqual(Object.keys(z.gradients).sort(), ["unused", "w"]);
  assert.equal(z.gradients.unused.item(), 0);
  const ok = await c.grad(loss, { values, wrt: ["w"], raiseOnMissing: true, deadlineMs: 60000 });
  assert.deepEqual(Object.keys(ok.gradients), ["w"]);
  assert.deepEqual(Object.keys(ok.stats).sort(), ["backward_us", "forward_us", "nodes", "peak_bytes", "queue_us", "total_us"]);
});

test("targetGrad for a non-scalar target, and a list of targets", async () => {
  const g = new gd.Graph();
  const x = g.variable("x");
  const y = x.mul(3, { name: "y" });
  const c = new gd.Client(URL);
  const r = await c.grad(y, { values: { x: [1, 2] }, targetGrad: new Float64Array([1, -1]) });
  assert.deepEqual(Array.from(r.gradients.x.data), [3, -3]);
  const s1 = x.sum({ name: "s1" }), s2 = x.square().sum({ name: "s2" });
  const both = await c.grad([s1, s2], { values: { x: [1, 2] } });
  assert.deepEqual(Array.from(both.gradients.x.data), [3, 5]);
  assert.deepEqual(Object.keys(both.target).sort(), ["s1", "s2"]);
});
