// graph.ts - the graph builder: Graph holds nodes in the order they were made,
// Node is one of them, with operator-like methods (x.matmul(w).add(b)).
// Every op is checked against the op table of GET /v1/ops (ops_table.ts,
// generated from ops.json) as it is made: arity, attribute names (with gradd's
// "did you mean") and required attributes. Knows nothing of HTTP.

import { GraddError, closest } from "./errors.js";
import { OPS } from "./ops_table.js";
import type { DType, Nested } from "./tensor.js";

/** A node, or a number (made a constant node of the same graph). */
export type Operand = Node | number;
/** Attributes of a node, as an options object; `name` overrides the automatic name. */
export type Options = { name?: string; [attribute: string]: unknown };
export interface LeafOptions {
  shape?: number[];
  dtype?: DType;
}

const NAME = /^[\x21-\x7e]{1,256}$/;

export class Node {
  readonly graph: Graph;
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly Node[];
  readonly attrs: Readonly<Record<string, unknown>>;

  /** @internal Use Graph's methods or the op functions. */
  constructor(graph: Graph, name: string, op: string, inputs: Node[], attrs: Record<string, unknown>) {
    this.graph = graph;
    this.name = name;
    this.op = op;
    this.inputs = inputs;
    this.attrs = attrs;
  }

  add(b: Operand, o?: Options): Node { return this.graph.node("add", [this, b], o); }
  sub(b: Operand, o?: Options): Node { return this.graph.node("sub", [this, b], o); }
  mul(b: Operand, o?: Options): Node { return this.graph.node("mul", [this, b], o); }
  div(b: Operand, o?: Options): Node { return this.graph.node("div", [this, b], o); }
  pow(b: Operand, o?: Options): Node { return this.graph.node("pow", [this, b], o); }
  maximum(b: Operand, o?: Options): Node { return this.graph.node("maximum", [this, b], o); }
  minimum(b: Operand, o?: Options): Node { return this.graph.node("minimum", [this, b], o); }
  matmul(b: Operand, o?: Options): Node { return this.graph.node("matmul", [this, b], o); }
  neg(o?: Options): Node { return this.graph.node("neg", [this], o); }
  square(o?: Options): Node { return this.graph.node("square", [this], o); }
  exp(o?: Options): Node { return this.graph.node("exp", [this], o); }
  log(o?: Options): Node { return this.graph.node("log", [this], o); }
  sum(o?: { axis?: number | number[]; keepdims?: boolean; name?: string }): Node {
    return this.graph.node("sum", [this], o);
  }
  mean(o?: { axis?: number | number[]; keepdims?: boolean; name?: string }): Node {
    return this.graph.node("mean", [this], o);
  }
  reshape(shape: number[], o?: { name?: string }): Node {
    return this.graph.node("reshape", [this], { ...o, shape });
  }
  transpose(o?: { axes?: number[]; name?: string }): Node {
    return this.graph.node("transpose", [this], o);
  }

  /** The node as the graph's JSON writes it. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { name: this.name, op: this.op };
    if (this.inputs.length) out.inputs = this.inputs.map((n) => n.name);
    return Object.assign(out, this.attrs);
  }
}

/** A graph under construction. Node names are unique; unnamed nodes get `op_N`. */
export class Graph {
  readonly nodes: Node[] = [];
  private readonly byName = new Map<string, Node>();
  private readonly counters = new Map<string, number>();

  /** A trainable leaf; its value comes from the request's `values`. */
  variable(name: string, o: LeafOptions = {}): Node {
    return this.node("variable", [], { ...o, name });
  }

  /** A data leaf; its value comes from the request's `values`. */
  input(name: string, o: LeafOptions = {}): Node {
    return this.node("input", [], { ...o, name });
  }

  /** A constant leaf holding `value` (a number or nested arrays). */
  constant(value: Nested, o: LeafOptions & { name?: string } = {}): Node {
    const { name, ...attrs } = o;
    return this.make("constant", [], { ...attrs, value }, name);
  }

  /** The node by name, or undefined. */
  get(name: string): Node | undefined {
    return this.byName.get(name);
  }

  /** A node of op `op` with `inputs`; `options` holds its attributes and optional name.
   * Throws GraddError (unknown_op, invalid_request, unknown_key, invalid_attribute,
   * duplicate_node) as gradd would answer the same mistake. */
  node(op: string, inputs: Operand[], options: { name?: string } | Options = {}): Node {
    const spec = OPS[op];
    if (!spec) {
      throw new GraddError("unknown_op", `Unknown op '${op}'.`, { suggestion: closest(op, Object.keys(OPS)) });
    }
    const { name, ...attrs } = options as Options;
    for (const k of Object.keys(attrs)) {
      if (attrs[k] === undefined) delete attrs[k];
      else if (!(k in spec.attributes)) {
        throw new GraddError("unknown_key", `Unknown attribute '${k}' of op '${op}'.`,
          { suggestion: closest(k, Object.keys(spec.attributes)) });
      }
    }
    for (const [k, a] of Object.entries(spec.attributes)) {
      if (a.required && !(k in attrs)) {
        throw new GraddError("invalid_attribute", `Op '${op}' needs the attribute '${k}'.`);
      }
    }
    if (inputs.length < spec.min || (spec.max !== null && inputs.length > spec.max)) {
      const want = spec.max === null ? `at least ${spec.min}` : spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      throw new GraddError("invalid_request", `Op '${op}' takes ${want} inputs, got ${inputs.length}.`);
    }
    return this.make(op, inputs.map((x) => this.operand(x)), attrs, name);
  }

  /** `{"nodes": [...]}` in the order the nodes were made. */
  toJSON(): { nodes: Record<string, unknown>[] } {
    return { nodes: this.nodes.map((n) => n.toJSON()) };
  }

  private operand(x: Operand): Node {
    if (typeof x === "number") return this.constant(x);
    if (!(x instanceof Node)) throw new GraddError("invalid_request", `Not a node or a number: ${String(x)}.`);
    if (x.graph !== this) {
      throw new GraddError("invalid_request", `Node '${x.name}' belongs to another graph.`);
    }
    return x;
  }

  private make(op: string, inputs: Node[], attrs: Record<string, unknown>, name?: string): Node {
    const n = name ?? this.autoName(op);
    if (!NAME.test(n)) {
      throw new GraddError("invalid_request", `Node name '${n}' is not 1 to 256 printable non-space characters.`);
    }
    if (this.byName.has(n)) throw new GraddError("duplicate_node", `Two nodes are named '${n}'.`);
    const node = new Node(this, n, op, inputs, attrs);
    this.nodes.push(node);
    this.byName.set(n, node);
    return node;
  }

  /** `op_N`, N counting the op's automatic names from 1, skipping names taken by hand. */
  private autoName(op: string): string {
    for (;;) {
      const k = (this.counters.get(op) ?? 0) + 1;
      this.counters.set(op, k);
      const n = `${op}_${k}`;
      if (!this.byName.has(n)) return n;
    }
  }
}

/** A node made by an op function: its graph is that of its first node operand. */
export function apply(op: string, inputs: Operand[], options?: { name?: string }): Node {
  const first = inputs.find((x): x is Node => x instanceof Node);
  if (!first) throw new GraddError("invalid_request", `Op '${op}' needs at least one node among its inputs.`);
  return first.graph.node(op, inputs, options);
}
