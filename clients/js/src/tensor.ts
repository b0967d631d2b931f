// tensor.ts - gradd's tensors on the client: a typed array and a shape, and
// their two wire forms (flat JSON objects and binary-framing references).
// Knows nothing of graphs or HTTP.

/** The dtypes on the wire: float64 and int64 compute, float32 is transport only. */
export type DType = "float64" | "int64" | "float32";
export type TypedData = Float64Array | BigInt64Array | Float32Array;
/** A number or (rectangular) nested arrays of numbers, sent as JSON. */
export type Nested = number | Nested[];
/** Anything a `values` entry may be: small values go as JSON, typed arrays and Tensors as binary. */
export type Value = number | bigint | Nested | TypedData | Tensor;

const BYTES: Record<DType, number> = { float64: 8, int64: 8, float32: 4 };

function dtypeOf(data: TypedData): DType {
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  return "float32";
}

function count(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** A row-major tensor: `data` holds count(shape) elements. */
export class Tensor {
  readonly data: TypedData;
  readonly shape: number[];

  constructor(data: TypedData, shape?: readonly number[]) {
    this.data = data;
    this.shape = shape ? [...shape] : [data.length];
    if (count(this.shape) !== data.length) {
      throw new RangeError(`shape [${this.shape}] holds ${count(this.shape)} elements, data has ${data.length}`);
    }
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }

  get size(): number {
    return this.data.length;
  }

  /** The one element of a tensor of size 1, as a number. */
  item(): number {
    if (this.data.length !== 1) throw new RangeError(`item() of a tensor of shape [${this.shape}]`);
    return Number(this.data[0]);
  }

  /** Nested arrays of numbers (int64 elements converted with Number()). */
  toArray(): Nested {
    const nest = (dim: number, start: number): Nested => {
      if (dim === this.shape.length) return Number(this.data[start]);
      const stride = count(this.shape.slice(dim + 1));
      const out: Nested[] = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(nest(dim + 1, start + i * stride));
      return out;
    };
    return nest(0, 0);
  }
}

/** A float64 tensor from numbers (row-major) and a shape (default: 1-D). */
export function tensor(data: ArrayLike<number> | TypedData, shape?: readonly number[]): Tensor {
  if (data instanceof Float64Array || data instanceof BigInt64Array || data instanceof Float32Array) {
    return new Tensor(data, shape);
  }
  return new Tensor(Float64Array.from(data), shape);
}

/** An int64 tensor (BigInt64Array) from numbers or bigints. */
export function int64(data: ArrayLike<number | bigint>, shape?: readonly number[]): Tensor {
  return new Tensor(BigInt64Array.from(Array.from(data, (v) => BigInt(v))), shape);
}

export function isTyped(v: unknown): v is TypedData | Tensor {
  return v instanceof Tensor || v instanceof Float64Array || v instanceof BigInt64Array ||
    v instanceof Float32Array;
}

export function asTensor(v: TypedData | Tensor): Tensor {
  return v instanceof Tensor ? v : new Tensor(v);
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The little-endian bytes of a tensor's elements. */
export function toBytes(t: Tensor): Uint8Array {
  const d = t.data;
  if (LITTLE) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const out = new Uint8Array(d.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < d.length; i++) {
    if (d instanceof BigInt64Array) view.setBigInt64(i * 8, d[i], true);
    else if (d instanceof Float64Array) view.setFloat64(i * 8, d[i], true);
    else view.setFloat32(i * 4, d[i], true);
  }
  return out;
}

/** A tensor of `dtype` read from `nbytes` little-endian bytes at `offset` of `section` (copied). */
export function fromBytes(section: Uint8Array, offset: number, nbytes: number, dtype: DType,
                          shape: number[]): Tensor {
  const size = BYTES[dtype];
  if (offset < 0 || nbytes < 0 || offset + nbytes > section.length || nbytes % size !== 0) {
    throw new RangeError(`binary reference [${offset}, +${nbytes}) outside a section of ${section.length} bytes`);
  }
  const raw = section.slice(offset, offset + nbytes); // copy: aligned and owned
  const n = nbytes / size;
  if (LITTLE) {
    const buf = raw.buffer;
    const data = dtype === "int64" ? new BigInt64Array(buf, 0, n)
      : dtype === "float64" ? new Float64Array(buf, 0, n) : new Float32Array(buf, 0, n);
    return new Tensor(data, shape);
  }
  const view = new DataView(raw.buffer);
  const data = dtype === "int64" ? new BigInt64Array(n) : dtype === "float64" ? new Float64Array(n)
    : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (data instanceof BigInt64Array) data[i] = view.getBigInt64(i * 8, true);
    else if (data instanceof Float64Array) data[i] = view.getFloat64(i * 8, true);
    else data[i] = view.getFloat32(i * 4, true);
  }
  return new Tensor(data, shape);
}

function wireNumber(v: unknown): number {
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (typeof v !== "number") throw new TypeError(`not a tensor element: ${JSON.stringify(v)}`);
  return v;
}

/** A tensor from the JSON forms gradd answers with (flat object, nested arrays, number). */
export function fromJson(v: unknown): Tensor {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as { shape: number[]; data: unknown[]; dtype?: DType };
    const dtype = o.dtype ?? "float64";
    if (dtype === "int64") return new Tensor(BigInt64Array.from(o.data, (x) => BigInt(wireNumber(x))), o.shape);
    const nums = o.data.map(wireNumber);
    return new Tensor(dtype === "float32" ? Float32Array.from(nums) : Float64Array.from(nums), o.shape);
  }
  const shape: number[] = [];
  for (let x: unknown = v; Array.isArray(x); x = x[0]) shape.push(x.length);
  const flat = shape.length ? (v as unknown[]).flat(shape.length) : [v];
  return new Tensor(Float64Array.from(flat.map(wireNumber)), shape);
}

/** A tensor in the flat JSON form (non-finite numbers as gradd's strings; int64 as bigint). */
export function toFlatJson(t: Tensor): { shape: number[]; dtype: DType; data: unknown[] } {
  const data: unknown[] = [];
  for (const x of t.data) data.push(typeof x === "bigint" ? x : finiteOrString(x));
  return { shape: t.shape, dtype: t.dtype, data };
}

export function finiteOrString(x: number): number | string {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
}
