// errors.ts - what goes wrong, as classes: GraddError (every error gradd answers
// with, and the client's own: timeout, network, bad builder use) and
// NoGradientError (422 no_gradients, or raiseOnMissing); and the typed
// diagnostics of a /v1/grad answer.

/** `{"node", "op"}` as diagnostics name a node. */
export interface NodeRef {
  node: string;
  op: string;
}

/** A stopping point of a blocked gradient (`blocked_at`). */
export interface BlockedAt extends NodeRef {
  reason: "stop_gradient" | "non_differentiable" | "untaken_branch";
  input: number;
  predicate?: string;
}

export type DiagnosticCode =
  | "disconnected" | "stop_gradient" | "non_differentiable" | "untaken_branch" | "mixed"
  | "integer_dtype" | "zero_gradient" | "non_finite_gradient" | "non_finite_value" | "no_variables";

/** One diagnostic: every field of the contract's table, those that apply to its code present. */
export class Diagnostic {
  readonly code!: DiagnosticCode;
  readonly severity!: "error" | "warning";
  readonly message!: string;
  readonly hint!: string;
  /** The gradient it is about (gradient codes). */
  readonly wrt?: string;
  /** The node whose value it is about (non_finite_value). */
  readonly node?: string;
  readonly path?: string[];
  readonly blocked_at?: BlockedAt[];
  readonly consumers?: NodeRef[];
  readonly same_value_as?: { input: string; node: string };
  readonly dtype?: string;
  readonly made_by?: NodeRef;
  readonly zeroed_at?: (NodeRef & { cause: "mask" | "value" | "cancellation" })[];
  readonly origin?: NodeRef & { index: number[] };
  readonly candidates?: NodeRef[];

  constructor(raw: Record<string, unknown>) {
    Object.assign(this, raw);
  }

  /** The message, then the path and the hint on their own lines. */
  toString(): string {
    const lines = [`${this.severity} ${this.code}: ${this.message}`];
    if (this.path) lines.push(`  path: ${this.path.join(" -> ")}`);
    if (this.hint) lines.push(`  hint: ${this.hint}`);
    return lines.join("\n");
  }
}

/** An error: gradd's `{"error": {code, message, at, suggestion}}`, or the client's own
 * (`timeout`, `network`, `invalid_response`, and builder errors named as the server names them). */
export class GraddError extends Error {
  readonly code: string;
  /** HTTP status; 0 for an error found on the client. */
  readonly status: number;
  /** JSON path of the culprit, where it applies. */
  readonly at?: string;
  /** The closest valid spelling, where it applies. */
  readonly suggestion?: string;
  readonly diagnostics: Diagnostic[];

  constructor(code: string, message: string,
              extra: { status?: number; at?: string; suggestion?: string; diagnostics?: Diagnostic[] } = {}) {
    super(message);
    this.name = "GraddError";
    this.code = code;
    this.status = extra.status ?? 0;
    this.at = extra.at;
    this.suggestion = extra.suggestion;
    this.diagnostics = extra.diagnostics ?? [];
  }

  override toString(): string {
    let s = `${this.name} ${this.code}: ${this.message}`;
    if (this.at) s += ` (at ${this.at})`;
    if (this.suggestion) s += ` (did you mean '${this.suggestion}'?)`;
    return s;
  }
}

/** No gradient for a `wrt`: gradd's 422 no_gradients, or any error diagnostic under raiseOnMissing. */
export class NoGradientError extends GraddError {
  constructor(message: string, diagnostics: Diagnostic[], status = 0) {
    super("no_gradients", message, { status, diagnostics });
    this.name = "NoGradientError";
  }
}

/** The GraddError of an error answer's body (anything else: invalid_response). */
export function errorFromBody(status: number, body: unknown): GraddError {
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  if (!e || typeof e.code !== "string") {
    return new GraddError("invalid_response", `HTTP ${status} without a gradd error body`, { status });
  }
  const diagnostics = Array.isArray(e.diagnostics)
    ? e.diagnostics.map((d) => new Diagnostic(d as Record<string, unknown>)) : [];
  const message = String(e.message ?? e.code);
  if (e.code === "no_gradients") return new NoGradientError(message, diagnostics, status);
  return new GraddError(e.code, message, {
    status,
    at: typeof e.at === "string" ? e.at : undefined,
    suggestion: typeof e.suggestion === "string" ? e.suggestion : undefined,
    diagnostics,
  });
}

/** Levenshtein distance, for the builder's "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The closest of `names` to `name`, when close enough to be a misspelling. */
export function closest(name: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = distance(name, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
