// common.mjs - what the test files share: the package under test (GRADD_JS,
// the build directory's dist/index.js), the servers tests/js_client.py
// started, and bitwise comparison of tensors.
import assert from "node:assert/strict";

export const gd = await import(process.env.GRADD_JS ?? "../dist/index.js");
export const URL = process.env.GRADD_URL ?? "http://127.0.0.1:8080";
export const STRICT_URL = process.env.GRADD_STRICT_URL;
export const TOKEN = process.env.GRADD_TOKEN;
export const SCALE = Number(process.env.GD_TEST_TIME_SCALE || 1);

/** The wire's number (gradd writes NaN and infinities as strings). */
export function wire(x) {
  if (x === "NaN") return NaN;
  if (x === "Infinity") return Infinity;
  if (x === "-Infinity") return -Infinity;
  return x;
}

/** Asserts that two Tensors (or nulls) are equal bit for bit: dtype, shape, every element (Object.is). */
export function sameTensor(a, b, what) {
  if (a === null || b === null) return assert.equal(a, b, `${what}: ${a} vs ${b}`);
  assert.ok(a && b, `${what}: ${a} vs ${b}`);
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  for (let i = 0; i < a.data.length; i++) {
    assert.ok(Object.is(a.data[i], b.data[i]), `${what}[${i}]: ${a.data[i]} vs ${b.data[i]}`);
  }
}

/** Asserts that a Tensor is the flat JSON tensor `flat` gradd wrote, element for element. */
export function sameAsFlat(t, flat, what) {
  if (flat === null) return assert.equal(t, null, `${what}: ${t} vs null`);
  assert.ok(t && flat, `${what}: ${t} vs ${JSON.stringify(flat)}`);
  assert.deepEqual(t.shape, flat.shape, `${what}: shape`);
  assert.equal(t.dtype, flat.dtype ?? "float64", `${what}: dtype`);
  flat.data.forEach((x, i) => {
    const got = t.dtype === "int64" ? Number(t.data[i]) : t.data[i];
    assert.ok(Object.is(got, wire(x)), `${what}[${i}]: ${got} vs ${x}`);
  });
}
