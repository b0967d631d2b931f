#!/usr/bin/python3
"""torch_graph.py - the PyTorch eager peer of a gradd /v1/grad request, in
process: the request's graph run node by node as a PyTorch user writes it
(one eager op per node, autograd recording), then torch.autograd.grad of
the target with respect to every variable. bench/issue10.py writes the
request body to a file, sends it to gradd and runs this on the same file, so
both sides compute the same thing on the same values (rows 5 and 6 of issue
10's targets table).

    torch_graph.py --body FILE [--threads 1] [--min-time S] [--min-runs N]
                   [--warmup N] [--answer FILE]

Prints
    RESULT torch_graph nodes=N step_ms=... min_ms=... max_ms=... runs=N
where a step is the whole forward (tensors made from the already-decoded
values, every node evaluated) and the backward; --answer writes
{"target": {name: value}, "gradients": {name: list or number}} as JSON for
the comparison with gradd's answer. Ops: those the benchmark graphs use
(add sub mul div neg abs square sqrt exp log tanh sin cos sigmoid relu sum
mean); anything else is an error, never a silent skip.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch

OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": torch.neg,
    "abs": torch.abs,
    "square": torch.square,
    "sqrt": torch.sqrt,
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "sin": torch.sin,
    "cos": torch.cos,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "sum": torch.sum,
    "mean": torch.mean,
}


def plan(req):
    """The nodes in the order sent (the benchmark graphs are sent in
    topological order), checked against OPS."""
    nodes = req["graph"]["nodes"]
    seen = set()
    for n in nodes:
        op = n["op"]
        if op not in ("variable", "input") and op not in OPS:
            raise SystemExit("torch_graph.py: op %r is not supported here" % op)
        for i in n.get("inputs", []):
            if i not in seen:
                raise SystemExit("torch_graph.py: node %r comes before its input %r" % (n["name"], i))
        if set(n) - {"name", "op", "inputs", "shape"}:
            raise SystemExit("torch_graph.py: node %r has attributes this peer does not read" % n["name"])
        seen.add(n["name"])
    return [(n["name"], n["op"], n.get("inputs", [])) for n in nodes]


def step(steps, leaves, variables, target):
    env = dict(leaves)
    for name, op, inputs in steps:
        if op in ("variable", "input"):
            continue
        env[name] = OPS[op](*[env[i] for i in inputs])
    out = env[target]
    grads = torch.autograd.grad(out, [leaves[v] for v in variables])
    return out, grads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--body", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--answer")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.body) as f:
        req = json.load(f)
    steps = plan(req)
    target = req["target"]
    variables = [n for n, op, _ in steps if op == "variable"]
    leaves = {}
    for n, op, _ in steps:
        if op in ("variable", "input"):
            leaves[n] = torch.tensor(req["values"][n], dtype=torch.float64, requires_grad=(op == "variable"))

    w = []
    for _ in range(max(1, a.warmup)):
        t0 = time.perf_counter()
        out, grads = step(steps, leaves, variables, target)
        w.append(time.perf_counter() - t0)
    est = statistics.median(w)
    n = max(a.min_runs, math.ceil(a.min_time / est) if est > 0 else a.min_runs)
    v = []
    for _ in range(n):
        t0 = time.perf_counter()
        out, grads = step(steps, leaves, variables, target)
        v.append(time.perf_counter() - t0)
    if a.answer:
        with open(a.answer, "w") as f:
            json.dump({"target": {target: out.tolist()},
                       "gradients": {k: g.tolist() for k, g in zip(variables, grads)}}, f)
    print("torch_graph: PyTorch %s eager, %d thread(s), %d nodes, %d variables"
          % (torch.__version__, torch.get_num_threads(), len(steps), len(variables)))
    print("RESULT torch_graph nodes=%d step_ms=%.3f min_ms=%.3f max_ms=%.3f runs=%d"
          % (len(steps), 1e3 * statistics.median(v), 1e3 * min(v), 1e3 * max(v), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
