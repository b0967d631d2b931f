// json.ts - JSON text for gradd: bigint written as an exact integer (int64
// attributes and values past 2^53), non-finite numbers as gradd's strings.

const MARK = "\u0000bigint:";
const MARKED = /"\\u0000bigint:(-?\d+)"/g;

/** JSON text of `v`; bigints become exact decimal integers, NaN/Infinity "NaN"/"Infinity". */
export function stringify(v: unknown): string {
  const text = JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return MARK + x.toString();
    if (typeof x === "number" && !Number.isFinite(x)) {
      return Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
    }
    return x;
  });
  return text.replace(MARKED, "$1");
}
