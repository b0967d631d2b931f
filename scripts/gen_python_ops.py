#!/usr/bin/env python3
"""gen_python_ops.py - clients/python/gradd/ops.py, one function per op, from GET /v1/ops.

Each op of gradd's table (leaves aside: Graph.input/variable/constant) becomes
a function of the Python client, `gradd.<op>(inputs..., attribute=..., name=...)`,
with the op's input names as parameters, its attributes as keyword-only
parameters (None: gradd's default) and its doc as docstring. Unknown
attributes pass through **attrs and are checked against GET /v1/ops by the
client before sending.

Where the op table comes from (one of):
  --gradd BIN | --url URL | --json FILE     as scripts/gen_ops_md.py
What to do with it:
  --write FILE   write the module
  --check FILE   exit 1 with a unified diff when FILE differs

Regenerate after changing an op row (from a build directory):
  python3 ../scripts/gen_python_ops.py --gradd ./gradd --write ../clients/python/gradd/ops.py

Standard library only.
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ops_md import add_source_args, load_table, write_or_check  # noqa: E402

REGENERATE = "python3 ../scripts/gen_python_ops.py --gradd ./gradd --write ../clients/python/gradd/ops.py   (from the build directory)"
LEAVES = {"variable", "input", "constant"}
HINTS = {"int": "int", "[int]": "Sequence[int]", "int|[int]": "Union[int, Sequence[int]]", "number": "float",
         "bool": "bool", "dtype": "str"}
HEAD = '''"""One function per gradd op, generated from GET /v1/ops by scripts/gen_python_ops.py: do not edit.

Inputs are nodes (or Python numbers and arrays, which become constants);
attributes are keyword arguments, None meaning gradd's default; `name` names
the node (default: the op and a counter, such as `matmul_3`).
"""
# flake8: noqa
from typing import Any, Optional, Sequence, Union

from .graph import Node, apply_op as _apply

NodeLike = Any  # a Node, or a number or array that becomes a constant


'''


def render(table):
    out = [HEAD]
    names = []
    for op in table["ops"]:
        if op["name"] in LEAVES:
            continue
        names.append(op["name"])
        inp = op["inputs"]
        if inp["max"] is None:
            params = [f"*{inp['names'][0]}s: NodeLike"]
            args = f"list({inp['names'][0]}s)"
        else:
            params = [f"{n}: NodeLike" for n in inp["names"][:inp["min"]]]
            params += [f"{n}: Optional[NodeLike] = None" for n in inp["names"][inp["min"]:inp["max"]]]
            args = "[" + ", ".join(inp["names"][:inp["min"]]) + "]"
            if inp["max"] > inp["min"]:
                args += " + [i for i in (" + ", ".join(inp["names"][inp["min"]:inp["max"]]) + ",) if i is not None]"
        kw = []
        doc_attrs = []
        for a, spec in op["attributes"].items():
            hint = HINTS[spec["type"]]
            kw.append(f"{a}: Optional[{hint}] = None")
            doc_attrs.append(f"{a} ({spec['type']}" + (", required" if spec["required"] else ", optional"
                             if spec["default"] is None else f", default {json.dumps(spec['default'])}") + ")")
        sig = ", ".join(params + (["*"] if inp["max"] is not None else []) + kw +
                        ["name: Optional[str] = None", "**attrs: Any"])
        doc = op["doc"].replace("\\", "\\\\").replace('"""', "'''")
        if doc_attrs:
            doc += "\n\n    Attributes: " + "; ".join(doc_attrs) + "."
        if not op["differentiable"]:
            doc += "\n    Not differentiable."
        call_kw = "".join(f", {a}={a}" for a in op["attributes"])
        out.append(f"def {op['name']}({sig}) -> Node:\n"
                   f'    """{doc}"""\n'
                   f"    return _apply({op['name']!r}, {args}, name{call_kw}, **attrs)\n\n\n")
    out.append("OPS = " + repr(tuple(names)) + "\n")
    return "".join(out).replace("\n\n\nOPS", "\n\nOPS")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_source_args(ap)
    act = ap.add_mutually_exclusive_group(required=True)
    act.add_argument("--write", metavar="FILE")
    act.add_argument("--check", metavar="FILE")
    args = ap.parse_args(argv)
    table = load_table(args)
    path = args.write or args.check
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    return write_or_check("gen_python_ops", path, old, render(table), args.write, REGENERATE,
                          f" ({len(table['ops'])} ops)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
