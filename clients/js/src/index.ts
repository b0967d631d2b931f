// index.ts - the gradd package: a graph builder with one function per op of
// gradd (ops.ts, generated from GET /v1/ops), a client that speaks gradd's
// JSON and binary framing, and its errors and typed diagnostics.
//
//   import { Graph, Client, sigmoid } from "gradd";
//   const g = new Graph();
//   const x = g.input("x"), w = g.variable("w");
//   const loss = sigmoid(x.mul(w)).sum();
//   const res = await new Client("http://localhost:8080").grad(loss, { values: { x: [1, 2], w: 0.5 } });
//   res.gradients.w?.item();

export { Graph, Node, apply, type Operand, type Options, type LeafOptions } from "./graph.js";
export * from "./ops.js";
export { OPS, type OpSpec, type AttrSpec } from "./ops_table.js";
export {
  Client, type ClientOptions, type EvalOptions, type GradOptions, type EvalResult, type GradResult,
  type Stats, type OpInfo,
} from "./client.js";
export {
  GraddError, NoGradientError, Diagnostic, type DiagnosticCode, type NodeRef, type BlockedAt,
} from "./errors.js";
export { Tensor, tensor, int64, type DType, type Value, type Nested, type TypedData } from "./tensor.js";
