#!/usr/bin/env python3
"""gen_openapi.py - the op schemas of docs/openapi.json, generated from gradd's op table.

docs/openapi.json is written by hand, except for the schemas that describe
the ops: `OpName` (every op's name) and `Node` (one `Node_<op>` schema per op,
with its inputs and typed attributes, chosen by `op`). This script renders
those from GET /v1/ops and writes or checks them, so the API description can
never drift from the table in core/ that validation, evaluation and
GET /v1/ops read.

PENDING_OPS are ops the contract adds that this build's table does not have
yet (another branch is adding them): they are described from the contract,
marked "x-gradd-pending", and the check fails once the table has one (delete
its entry here, then regenerate: from then on the table describes it).

Where the op table comes from (one of):
  --gradd BIN   start BIN on a free loopback port, fetch /v1/ops, stop it
  --url URL     fetch URL/v1/ops from a running gradd
  --json FILE   a saved /v1/ops answer
What to do with it:
  --write DOC   replace DOC's generated schemas
  --check DOC   exit 1 with a unified diff when they differ

Regenerate after changing an op row (from a build directory):
  python3 ../scripts/gen_openapi.py --gradd ./gradd --write ../docs/openapi.json

Standard library only.
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ops_md import add_source_args, load_table, write_or_check  # noqa: E402

REGENERATE = "python3 ../scripts/gen_openapi.py --gradd ./gradd --write ../docs/openapi.json   (from the build directory)"

# Contract amendments whose ops are not in this build's table yet, as GET /v1/ops would list them.
PENDING_OPS = []  # none: sigmoid_cross_entropy (A6) is in the table

ATTRIBUTE_TYPES = {
    "int": {"type": "integer"},
    "[int]": {"type": "array", "items": {"type": "integer"}},
    "int|[int]": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "dtype": {"$ref": "#/components/schemas/DType"},
}


def node_schema(op):
    """The JSON Schema of one node of this op: name, op, inputs, attributes."""
    props = {"name": {"$ref": "#/components/schemas/NodeName"}, "op": {"const": op["name"]}}
    required = ["name", "op"]
    inp = op["inputs"]
    if inp["max"] != 0:
        arr = {"type": "array", "items": {"$ref": "#/components/schemas/NodeName"}, "minItems": inp["min"]}
        if inp["max"] is not None:
            arr["maxItems"] = inp["max"]
        arr["description"] = "Inputs: " + (", ".join(inp["names"]) if inp["max"] is not None else inp["names"][0] + ", ...") + "."
        props["inputs"] = arr
        required.append("inputs")
    if op["name"] == "constant":
        props["value"] = {"$ref": "#/components/schemas/Tensor"}
        required.append("value")
    for name, a in op["attributes"].items():
        s = dict(ATTRIBUTE_TYPES[a["type"]])
        if a["default"] is not None:
            s["default"] = a["default"]
        props[name] = s
        if a["required"]:
            required.append(name)
    s = {"type": "object", "description": op["doc"], "required": required, "properties": props,
         "additionalProperties": False}
    if not op["differentiable"]:
        s["x-gradd-differentiable"] = False
    if op.get("pending"):
        s["x-gradd-pending"] = op["pending"] + ": described by the contract, not yet in this build's op table"
    return s


def render(table):
    """{schema name: schema} for OpName, Node and every Node_<op>."""
    names = [op["name"] for op in table["ops"]]
    ops = table["ops"] + [op for op in PENDING_OPS if op["name"] not in names]
    out = {"OpName": {"enum": [op["name"] for op in ops],
                      "description": "Every op (generated from GET /v1/ops by scripts/gen_openapi.py)."},
           "Node": {"description": "One node of a graph: `name`, `op`, `inputs` and the op's attributes inline "
                                   "(generated from GET /v1/ops by scripts/gen_openapi.py).",
                    "oneOf": [{"$ref": "#/components/schemas/Node_" + op["name"]} for op in ops],
                    "discriminator": {"propertyName": "op",
                                      "mapping": {op["name"]: "#/components/schemas/Node_" + op["name"] for op in ops}}}}
    for op in ops:
        out["Node_" + op["name"]] = node_schema(op)
    return out


def generated_part(doc):
    s = doc["components"]["schemas"]
    return {k: s[k] for k in s if k in ("OpName", "Node") or k.startswith("Node_")}


def replace(doc, gen):
    """doc with its generated schemas replaced by gen, kept after the hand-written ones."""
    s = doc["components"]["schemas"]
    kept = {k: v for k, v in s.items() if not (k in ("OpName", "Node") or k.startswith("Node_"))}
    kept.update(gen)
    doc["components"]["schemas"] = kept
    return doc


def dump(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_source_args(ap)
    act = ap.add_mutually_exclusive_group(required=True)
    act.add_argument("--write", metavar="DOC")
    act.add_argument("--check", metavar="DOC")
    args = ap.parse_args(argv)
    table = load_table(args)
    landed = sorted({op["name"] for op in table["ops"]} & {op["name"] for op in PENDING_OPS})
    gen = render(table)
    path = args.write or args.check
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = dump(replace(json.loads(text), gen))
    if landed and not args.write:
        print(f"gen_openapi: the op table now has {', '.join(landed)}: delete its PENDING_OPS entry in "
              f"scripts/gen_openapi.py and regenerate with\n  {REGENERATE}")
        return 1
    return write_or_check("gen_openapi", path, text, new, args.write, REGENERATE,
                          f" ({len(table['ops'])} ops, {len(PENDING_OPS)} pending: "
                          f"{', '.join(op['name'] for op in PENDING_OPS)})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
