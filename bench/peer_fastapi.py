"""peer_fastapi.py - the service a user would otherwise write instead of
gradd: FastAPI + PyTorch answering POST /v1/grad with the same JSON as
gradd's wire contract (graph, values, target, wrt, fetch, tensor_format) and the same
response shape (target, gradients, values, diagnostics, stats), for the ops
the HTTP benchmark's graphs use and a few neighbours. It builds the torch
computation from the JSON node by node and calls torch.autograd.grad; no
diagnostics are computed (the list is always empty).

bench/http_bench.sh runs it as a user would deploy it, one worker per core
and no access log (Debian's python3-fastapi, python3-uvicorn, python3-torch):

    /usr/bin/python3 -m uvicorn peer_fastapi:app --app-dir bench \\
        --host 127.0.0.1 --port 8090 --workers "$(nproc)" --no-access-log

Not a reimplementation of gradd: unknown ops answer 400 unknown_op, and the
checks are the ones torch does by itself.
"""
import base64
import time

import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# One process per core (uvicorn --workers): one intra-op thread each.
torch.set_num_threads(1)

app = FastAPI()

DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64}

UNARY = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "square": torch.square,
    "abs": torch.abs, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "relu": torch.relu, "softplus": F.softplus, "reciprocal": torch.reciprocal,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "matmul": torch.matmul,
}
REDUCE = {"sum": torch.sum, "mean": torch.mean, "logsumexp": torch.logsumexp}


class BadRequest(Exception):
    def __init__(self, code, message, at=None):
        super().__init__(message)
        self.code, self.message, self.at = code, message, at


def to_tensor(v, dtype):
    """A wire tensor (number, nested list, flat {shape, data} or {shape, dtype, b64}) as a torch tensor."""
    if isinstance(v, dict):
        dtype = DTYPES[v.get("dtype", "float64")] if "dtype" in v else dtype
        shape = v["shape"]
        if "b64" in v:
            t = torch.frombuffer(bytearray(base64.b64decode(v["b64"])), dtype=dtype)
        else:
            t = torch.tensor(v["data"], dtype=dtype)
        return t.reshape(shape).to(torch.int64 if dtype == torch.int64 else torch.float64)
    return torch.tensor(v, dtype=dtype)


def from_tensor(t, fmt):
    """A torch tensor in the requested tensor_format."""
    t = t.detach()
    if fmt == "b64":
        dt = "int64" if t.dtype == torch.int64 else "float64"
        return {"shape": list(t.shape), "dtype": dt, "b64": base64.b64encode(t.contiguous().numpy().tobytes()).decode()}
    if fmt == "flat":
        return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}
    return t.tolist()


def apply(node, args):
    """The torch value of one node from its inputs' values."""
    op = node["op"]
    if op in UNARY:
        return UNARY[op](args[0])
    if op in BINARY:
        return BINARY[op](*args)
    if op in REDUCE:
        axis = node.get("axis")
        keep = node.get("keepdims", False)
        if axis is None:
            return REDUCE[op](args[0]) if op != "logsumexp" else torch.logsumexp(args[0].reshape(-1), 0)
        return REDUCE[op](args[0], axis, keepdim=keep)
    if op == "softmax_cross_entropy":
        logits, labels = args
        if labels.dtype == torch.int64:
            return F.cross_entropy(logits, labels)
        return -(labels * F.log_softmax(logits, dim=1)).sum(1).mean()
    if op == "softmax":
        return torch.softmax(args[0], node.get("axis", -1))
    if op == "log_softmax":
        return torch.log_softmax(args[0], node.get("axis", -1))
    raise BadRequest("unknown_op", "op '%s' is not supported by this peer" % op)


def grad(req):
    """The response document for one /v1/grad request (raises BadRequest and
    the usual Python/torch errors on bad input)."""
    t0 = time.perf_counter()
    nodes = req["graph"]["nodes"]
    values = req.get("values", {})
    fmt = req.get("tensor_format", "nested")
    by_name = {n["name"]: n for n in nodes}
    env = {}
    variables = []

    def value(name):
        # Depth-first evaluation in dependency order (nodes may come in any order).
        if name in env:
            return env[name]
        n = by_name.get(name)
        if n is None:
            raise BadRequest("unknown_node", "no node named '%s'" % name)
        op = n["op"]
        if op in ("variable", "input", "constant"):
            dtype = DTYPES[n.get("dtype", "float64")]
            raw = n["value"] if op == "constant" else values.get(name)
            if raw is None:
                raise BadRequest("missing_value", "no value for '%s'" % name, "$.values")
            t = to_tensor(raw, dtype)
            if op == "variable" and t.dtype == torch.float64:
                t.requires_grad_(True)
                variables.append(name)
        else:
            t = apply(n, [value(i) for i in n.get("inputs", [])])
        env[name] = t
        return t

    with torch.enable_grad():
        for n in nodes:
            value(n["name"])
        targets = req["target"] if isinstance(req["target"], list) else [req["target"]]
        total = sum(env[t] for t in targets)
        t1 = time.perf_counter()
        wrt = req.get("wrt", [n["name"] for n in nodes if n["op"] == "variable"])
        leaves = [env[w] for w in wrt]
        gs = torch.autograd.grad(total, leaves, allow_unused=True) if leaves else []
    t2 = time.perf_counter()
    out = {
        "target": {t: from_tensor(env[t], fmt) for t in targets},
        "gradients": {w: (None if g is None else from_tensor(g, fmt)) for w, g in zip(wrt, gs)},
        "diagnostics": [],
    }
    if req.get("fetch"):
        out["values"] = {f: from_tensor(env[f], fmt) for f in req["fetch"]}
    out["stats"] = {"nodes": len(nodes), "forward_us": int((t1 - t0) * 1e6), "backward_us": int((t2 - t1) * 1e6),
                    "queue_us": 0, "total_us": int((time.perf_counter() - t0) * 1e6)}
    return out


@app.post("/v1/grad")
async def v1_grad(request: Request):
    # async def: the computation is short, so it runs on the event loop
    # (a plain def would add a thread-pool hop per request).
    try:
        req = await request.json()
        return JSONResponse(grad(req))
    except BadRequest as e:
        err = {"code": e.code, "message": e.message}
        if e.at:
            err["at"] = e.at
        return JSONResponse({"error": err}, status_code=400)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        return JSONResponse({"error": {"code": "invalid_request", "message": str(e)}}, status_code=400)
