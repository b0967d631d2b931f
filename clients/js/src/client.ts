// client.ts - the HTTP side: Client sends a graph's requests to gradd with
// fetch (Node >= 18 and browsers), registers each graph once (A3) and again
// when the server answers 404 unknown_graph, frames typed arrays as binary and
// small values as JSON, and turns every answer into Tensors, typed
// diagnostics or a GraddError.

import { Diagnostic, GraddError, NoGradientError, errorFromBody } from "./errors.js";
import type { Graph, Node } from "./graph.js";
import { stringify } from "./json.js";
import {
  Tensor, type DType, type Value, asTensor, fromBytes, fromJson, isTyped, toBytes, toFlatJson,
} from "./tensor.js";

const BINARY = "application/vnd.gradd.v1+binary";

export interface ClientOptions {
  /** Sent as `Authorization: Bearer <token>` (gradd's --token-file). */
  token?: string;
  /** Default time limit of each HTTP exchange, client side (AbortController); none when absent. */
  timeoutMs?: number;
  /** Register graphs (POST /v1/graphs) and send only their id (default true). */
  register?: boolean;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export interface EvalOptions {
  /** Values of the graph's variables and inputs, by name. */
  values?: Record<string, Value>;
  /** Nodes whose forward values to return. */
  fetch?: (Node | string)[];
  /** The request's compute deadline on the server (`deadline_ms`). */
  deadlineMs?: number;
  /** This call's client-side time limit (overrides the client's). */
  timeoutMs?: number;
  /** Binary framing both ways; default: when any value is a typed array or Tensor. */
  binary?: boolean;
  checkNumerics?: boolean;
}

export interface GradOptions extends EvalOptions {
  /** Gradients to compute (default: every variable). */
  wrt?: (Node | string)[];
  /** Cotangent of a non-scalar target (by name for a list of targets). */
  targetGrad?: Value | Record<string, Value>;
  unconnected?: "none" | "zero";
  /** Throw NoGradientError when some `wrt` gets no gradient (an error diagnostic). */
  raiseOnMissing?: boolean;
}

export interface Stats {
  nodes: number;
  forward_us: number;
  backward_us: number;
  queue_us: number;
  total_us: number;
  peak_bytes: number;
}

export interface EvalResult {
  /** Target values by name (grad answers). */
  target: Record<string, Tensor>;
  /** Fetched values by name; null for an untaken branch. */
  values: Record<string, Tensor | null>;
  diagnostics: Diagnostic[];
  stats: Stats;
}

export interface GradResult extends EvalResult {
  /** Gradients by `wrt` name; null where there is none (see diagnostics). */
  gradients: Record<string, Tensor | null>;
}

/** One op of GET /v1/ops. */
export interface OpInfo {
  name: string;
  inputs: { names: string[]; min: number; max: number | null; no_gradient: string[] };
  attributes: Record<string, { type: string; default: unknown; required: boolean }>;
  differentiable: boolean;
  doc: string;
}

interface Reply {
  status: number;
  body: any;
  section: Uint8Array;
}

/** Request bodies under construction: the JSON and its binary section. */
class Framer {
  readonly parts: Uint8Array[] = [];
  length = 0;

  constructor(readonly binary: boolean) {}

  /** `v` in the wire form: a binary reference when framing, else JSON. */
  encode(v: Value): unknown {
    if (!isTyped(v)) return v;
    const t = asTensor(v);
    if (!this.binary) return toFlatJson(t);
    const pad = (8 - (this.length % 8)) % 8;
    if (pad) this.push(new Uint8Array(pad));
    const ref = { shape: t.shape, dtype: t.dtype, offset: this.length, nbytes: t.data.byteLength };
    this.push(toBytes(t));
    return ref;
  }

  body(json: string): Uint8Array {
    const head = new TextEncoder().encode(json);
    const out = new Uint8Array(head.length + this.length);
    out.set(head, 0);
    let at = head.length;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  private push(p: Uint8Array): void {
    this.parts.push(p);
    this.length += p.length;
  }
}

function names(list: (Node | string)[] | undefined): string[] | undefined {
  return list?.map((x) => (typeof x === "string" ? x : x.name));
}

function anyTyped(o: EvalOptions & { targetGrad?: unknown }): boolean {
  const tg = o.targetGrad;
  const tgs = tg && typeof tg === "object" && !isTyped(tg) && !Array.isArray(tg) ? Object.values(tg) : [tg];
  return [...Object.values(o.values ?? {}), ...tgs].some(isTyped);
}

export class Client {
  readonly url: string;
  private readonly options: ClientOptions;
  private readonly ids = new Map<string, string>(); // graph JSON -> graph_id

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.options = options;
  }

  /** Gradients of `target` (a node, or nodes whose sum is the target). */
  async grad(target: Node | Node[], o: GradOptions = {}): Promise<GradResult> {
    const extra: Record<string, unknown> = {};
    if (o.wrt) extra.wrt = names(o.wrt);
    if (o.unconnected) extra.unconnected = o.unconnected;
    const answer = await this.compute("/v1/grad", target, o, extra);
    const result = answer as GradResult;
    if (o.raiseOnMissing) {
      const missing = result.diagnostics.filter((d) => d.severity === "error" && d.wrt !== undefined);
      if (missing.length) {
        throw new NoGradientError(missing.map((d) => d.message).join(" "), missing);
      }
    }
    return result;
  }

  /** Forward values of `target` (and of `fetch`). */
  async eval(target: Node | Node[], o: EvalOptions = {}): Promise<EvalResult> {
    return this.compute("/v1/eval", target, o, {});
  }

  /** Registers `graph` (POST /v1/graphs) and returns its id. */
  async register(graph: Graph): Promise<string> {
    const json = stringify(graph);
    const r = await this.send("POST", "/v1/graphs", `{"graph":${json}}`, undefined, undefined);
    this.ids.set(json, r.body.graph_id);
    return r.body.graph_id;
  }

  /** Drops a registered graph on the server (DELETE /v1/graphs/{id}). */
  async forget(graph: Graph | string): Promise<void> {
    const id = typeof graph === "string" ? graph : this.ids.get(stringify(graph));
    if (id === undefined) return;
    await this.send("DELETE", `/v1/graphs/${id}`, undefined, undefined, undefined);
  }

  /** GET /v1/ops. */
  async ops(): Promise<OpInfo[]> {
    return (await this.request("GET", "/v1/ops")).ops;
  }

  /** One raw exchange: `body` (an object, sent as JSON) to `path`; the parsed answer, or
   * GraddError for an error answer. For requests the builder does not make. */
  async request(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<any> {
    const text = body === undefined ? undefined : typeof body === "string" ? body : stringify(body);
    return (await this.send(method, path, text, undefined, timeoutMs)).body;
  }

  private async compute(path: string, target: Node | Node[], o: GradOptions,
                        extra: Record<string, unknown>): Promise<EvalResult> {
    const targets = Array.isArray(target) ? target : [target];
    if (!targets.length) throw new GraddError("invalid_request", "No target.");
    const graph = targets[0].graph;
    if (targets.some((t) => t.graph !== graph)) {
      throw new GraddError("invalid_request", "The targets belong to different graphs.");
    }
    const framer = new Framer(o.binary ?? anyTyped(o));
    const body: Record<string, unknown> = {
      target: Array.isArray(target) ? targets.map((t) => t.name) : targets[0].name,
      ...extra,
      tensor_format: framer.binary ? "binary" : "flat",
    };
    if (o.values) {
      body.values = Object.fromEntries(Object.entries(o.values).map(([k, v]) => [k, framer.encode(v)]));
    }
    if (o.targetGrad !== undefined) {
      const tg = o.targetGrad;
      body.target_grad = tg && typeof tg === "object" && !isTyped(tg) && !Array.isArray(tg)
        ? Object.fromEntries(Object.entries(tg).map(([k, v]) => [k, framer.encode(v)]))
        : framer.encode(tg as Value);
    }
    if (o.fetch) body.fetch = names(o.fetch);
    if (o.checkNumerics !== undefined) body.check_numerics = o.checkNumerics;
    if (o.deadlineMs !== undefined) body.deadline_ms = o.deadlineMs;

    const register = this.options.register ?? true;
    const graphJson = stringify(graph);
    const post = async (): Promise<Reply> => {
      let head: string;
      if (register) {
        const id = this.ids.get(graphJson) ?? await this.register(graph);
        head = `{"graph_id":${JSON.stringify(id)},`;
      } else {
        head = `{"graph":${graphJson},`;
      }
      const json = head + stringify(body).slice(1);
      return this.send("POST", path, json, framer.binary ? framer : undefined, o.timeoutMs);
    };
    let r: Reply;
    try {
      r = await post();
    } catch (e) {
      // The replica no longer holds the graph (restart, eviction, another replica):
      // register it again and retry once.
      if (!(register && e instanceof GraddError && e.code === "unknown_graph")) throw e;
      this.ids.delete(graphJson);
      r = await post();
    }
    return decodeAnswer(r);
  }

  private async send(method: string, path: string, json: string | undefined, framer: Framer | undefined,
                     timeoutMs: number | undefined): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    let payload: Uint8Array | string | undefined = json;
    if (json !== undefined && framer) {
      payload = framer.body(json);
      headers["Content-Type"] = BINARY;
      headers["Gradd-Json-Length"] = String(new TextEncoder().encode(json).length);
    } else if (json !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    const limit = timeoutMs ?? this.options.timeoutMs;
    const abort = new AbortController();
    const timer = limit === undefined ? undefined : setTimeout(() => abort.abort(), limit);
    const doFetch = this.options.fetch ?? fetch;
    try {
      const res = await doFetch(this.url + path, { method, headers, body: payload, signal: abort.signal });
      const bytes = new Uint8Array(await res.arrayBuffer());
      return parseReply(res, bytes);
    } catch (e) {
      if (e instanceof GraddError) throw e;
      if (abort.signal.aborted) {
        throw new GraddError("timeout", `No answer from ${this.url}${path} within ${limit} ms.`);
      }
      throw new GraddError("network", `${method} ${this.url}${path}: ${(e as Error).message}` +
        ((e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ""));
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

function parseReply(res: Response, bytes: Uint8Array): Reply {
  const type = (res.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  let jsonBytes = bytes;
  let section = new Uint8Array(0);
  if (type === BINARY) {
    const n = Number(res.headers.get("Gradd-Json-Length"));
    if (!Number.isInteger(n) || n < 0 || n > bytes.length) {
      throw new GraddError("invalid_response", "Binary answer without a valid Gradd-Json-Length.",
        { status: res.status });
    }
    jsonBytes = bytes.subarray(0, n);
    section = bytes.subarray(n);
  }
  let body: unknown = null;
  if (jsonBytes.length) {
    const text = new TextDecoder().decode(jsonBytes);
    try {
      body = JSON.parse(text);
    } catch {
      if (res.ok) throw new GraddError("invalid_response", `Answer is not JSON: ${text.slice(0, 200)}`, { status: res.status });
    }
  }
  if (!res.ok) throw errorFromBody(res.status, body);
  return { status: res.status, body, section };
}

function decodeTensor(v: unknown, section: Uint8Array): Tensor | null {
  if (v === null || v === undefined) return null;
  const ref = v as { offset?: number; nbytes?: number; dtype?: DType; shape?: number[] };
  if (typeof ref.offset === "number" && typeof ref.nbytes === "number") {
    return fromBytes(section, ref.offset, ref.nbytes, ref.dtype ?? "float64", ref.shape ?? []);
  }
  return fromJson(v);
}

function decodeMap(m: unknown, section: Uint8Array): Record<string, Tensor | null> {
  const out: Record<string, Tensor | null> = {};
  for (const [k, v] of Object.entries((m ?? {}) as Record<string, unknown>)) out[k] = decodeTensor(v, section);
  return out;
}

function decodeAnswer(r: Reply): GradResult {
  const b = r.body;
  return {
    target: decodeMap(b.target, r.section) as Record<string, Tensor>,
    gradients: decodeMap(b.gradients, r.section),
    values: decodeMap(b.values, r.section),
    diagnostics: (b.diagnostics ?? []).map((d: Record<string, unknown>) => new Diagnostic(d)),
    stats: b.stats,
  };
}
