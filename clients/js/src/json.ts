// json.ts - JSON text for gradd: bigint written as an exact integer (int64
// attributes and values past 2^53), negative zero as -0.0 (JSON.stringify
// writes 0), non-finite numbers as gradd's strings.

const MARK = "\u0000raw:";
const MARKED = /"\\u0000raw:(-?[0-9.]+)"/g;

/** JSON text of `v`; bigints become exact decimal integers, -0 "-0.0", NaN/Infinity "NaN"/"Infinity". */
export function stringify(v: unknown): string {
  const text = JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return MARK + x.toString();
    if (typeof x === "number" && !Number.isFinite(x)) {
      return Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
    }
    if (Object.is(x, -0)) return MARK + "-0.0";
    return x;
  });
  return text.replace(MARKED, "$1");
}
