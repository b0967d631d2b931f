"""gen.py - random well-typed /v1/grad requests for difftest.py.

make_case(rng) builds a graph node by node, each op drawn evenly from ALL_OPS (every op of
GET /v1/ops but the leaves), its inputs picked among earlier nodes or new leaves of a shape that
broadcasts, its attributes drawn from their valid forms (negative axes, keepdims, slice bounds
out of range and past 2^53, negative steps, negative gather indices). It runs each new node's
forward through reference.apply_op to learn its shape, and draws again when the op does not fit.
Values come in one of three profiles: plain (small numbers, integers for ties and kinks),
extreme (magnitudes 1e-300..1e300) and special (NaN, ±Inf, ±0 mixed in). In a quarter of the
cases some float leaves travel as float32 (declared `"dtype": "float32"` on the node, or named on
a flat/b64/binary value; JSON numbers sent unrounded, for gradd to round on arrival, which takes
1e300 to Infinity and 1e-300 to 0), and some cotangents too. A case is
{"request": ..., "binary_values": [names sent in the binary section]}.

It knows nothing of gradd or HTTP.
"""
import math

import torch

import reference as ref

UNARY = sorted(ref.UNARY) + ["abs", "relu", "softplus", "leaky_relu", "clip"] + sorted(ref.NONDIFF_UNARY)
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"] + sorted(ref.COMPARE)
ALL_OPS = UNARY + BINARY + list(ref.REDUCE) + [
    "cast", "argmax", "argmin", "reshape", "transpose", "broadcast_to", "concat", "slice", "gather",
    "matmul", "softmax", "log_softmax", "softmax_cross_entropy", "one_hot", "stop_gradient",
    "where", "cond"]
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0]
EXTREMES = [1e-300, -1e-300, 1e300, -1e300, 5e-324, 1e-160, 1e154, 1e308, 2.2250738585072014e-308,
            2.0 ** -1017, 2.0 ** -1000, 2.0 ** 1000]  # 2^-1017: a shortest-print trap


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.profile = rng.choices(["plain", "extreme", "special"], [5, 3, 2])[0]
        self.f32 = rng.random() < 0.25  # float32 transport for some float leaves
        self.nodes, self.values, self.vals = [], {}, {}
        self.f32_leaves = {}  # name: "declared" (dtype on the node) or "explicit" (on the value)
        self.unsent = set()
        self.k = 0

    def name(self, p):
        self.k += 1
        return "%s%d" % (p, self.k)

    # -- values --
    def number(self):
        r = self.rng
        roll = r.random()
        if self.profile == "special" and roll < 0.2:
            return r.choice(SPECIALS)
        if self.profile == "extreme" and roll < 0.35:
            return r.choice(EXTREMES) * r.choice([1, 2, 0.5, 3.7])
        if roll < 0.55:
            return float(r.randint(-3, 3))  # ties and kinks
        return round(r.gauss(0, 2), r.choice([1, 3, 17]))

    def tensor(self, shape, dtype="float64", lo=-3, hi=3):
        n = 1
        for s in shape:
            n *= s
        if dtype == "int64":
            return torch.tensor([self.rng.randint(lo, hi) for _ in range(n)], dtype=ref.I64).reshape(shape)
        return torch.tensor([self.number() for _ in range(n)], dtype=ref.F64).reshape(shape)

    def shape(self, rank=None):
        r = self.rng
        rank = r.choice([0, 1, 1, 2, 2, 3, 4]) if rank is None else rank
        return [r.choice([1, 2, 2, 3, 3, 4] + ([0] if r.random() < 0.05 else [])) for _ in range(rank)]

    def leaf(self, shape, dtype="float64", op=None, t=None, lo=-3, hi=3):
        r = self.rng
        op = op or r.choices(["variable", "input", "constant"], [6, 3, 1])[0]
        name = self.name({"variable": "v", "input": "in", "constant": "c"}[op])
        t = self.tensor(shape, dtype, lo, hi) if t is None else t
        n = {"name": name, "op": op}
        if dtype == "int64":
            n["dtype"] = "int64"
        if r.random() < 0.3:
            n["shape"] = list(shape)
        f32 = None
        if self.f32 and dtype == "float64" and r.random() < 0.6:
            f32 = r.choice(["declared", "explicit"])
            if f32 == "declared":
                n["dtype"] = "float32"
        if op == "constant":
            forms = {None: ["nested", "flat"], "declared": ["nested", "flat", "b64"], "explicit": ["flat", "b64"]}[f32]
            n["value"] = self.wire_value(t, r.choice(forms), f32)
        else:
            self.values[name] = t
        if f32:
            self.f32_leaves[name] = f32
            t = ref.narrow(t)  # gradd widens what arrived as float32: the graph sees this
        self.nodes.append(n)
        self.vals[name] = t
        return name

    def wire_value(self, t, form, f32):
        """t in a request form; float32 transport (f32: declared on the node or explicit on the
        value) sends JSON numbers as they are, for gradd to round, and b64 as 4-byte floats."""
        v = ref.tensor_to_wire(t, form, f32=bool(f32))
        if f32 == "declared" and isinstance(v, dict) and "data" in v and self.rng.random() < 0.5:
            del v["dtype"]  # the node's declaration says float32
        return v

    # -- picking inputs --
    def pool(self, dtype="float64"):
        return [n["name"] for n in self.nodes if self.vals[n["name"]].dtype == (ref.I64 if dtype == "int64" else ref.F64)]

    def pick(self, dtype="float64"):
        p = self.pool(dtype)
        if p and self.rng.random() < 0.75:
            return self.rng.choice(p[-6:])
        return self.leaf(self.shape(), dtype)

    def compatible(self, shape):
        """A shape that broadcasts with `shape` (same, trailing part, or ones)."""
        r = self.rng
        choice = r.random()
        if choice < 0.4:
            return list(shape)
        if choice < 0.7:
            return list(shape[r.randint(0, len(shape)):])
        return [1 if r.random() < 0.5 else s for s in shape]

    def partner(self, a):
        s = list(self.vals[a].shape)
        for n in reversed(self.pool()[-8:]):
            if list(self.vals[n].shape) == s and n != a and self.rng.random() < 0.5:
                return n
        return self.leaf(self.compatible(s))

    # -- one op --
    def node(self, op):
        r = self.rng
        attrs = {}
        if op in UNARY:
            ins = [self.pick()]
            if op == "leaky_relu" and r.random() < 0.7:
                attrs["alpha"] = r.choice([0.01, 0.2, -0.5, 1.5, 0.0])
            if op == "clip":
                for k in ("min", "max"):
                    if r.random() < 0.7:
                        attrs[k] = float(r.randint(-2, 2))
        elif op in BINARY:
            a = self.pick()
            b = self.partner(a)
            ins = [a, b] if r.random() < 0.5 else [b, a]
        elif op in ref.REDUCE:
            x = self.pick()
            rank = self.vals[x].dim()
            if rank and r.random() < 0.7:
                axes = r.sample(range(rank), r.randint(1, rank))
                axes = [ax - rank if r.random() < 0.3 else ax for ax in axes]
                attrs["axis"] = axes[0] if len(axes) == 1 and r.random() < 0.5 else axes
            if r.random() < 0.4:
                attrs["keepdims"] = r.random() < 0.7
            ins = [x]
        elif op == "cast":
            ins = [self.pick(r.choice(["float64", "int64"]))]
            attrs["dtype"] = r.choice(["float64", "int64"])
        elif op in ("argmax", "argmin"):
            x = self.pick()
            ins = [x]
            if self.vals[x].dim() and r.random() < 0.7:
                attrs["axis"] = r.randrange(-self.vals[x].dim(), self.vals[x].dim())
        elif op == "reshape":
            x = self.pick(r.choice(["float64", "float64", "int64"]))
            n = self.vals[x].numel()
            shape = [n] if n else [0]
            if n % 2 == 0 and n:
                shape = r.choice([[2, n // 2], [n // 2, -1], [-1], [1, n, 1]])
            elif n == 1:
                shape = r.choice([[], [1, 1], [-1]])
            attrs["shape"] = shape
            ins = [x]
        elif op == "transpose":
            x = self.pick()
            rank = self.vals[x].dim()
            if r.random() < 0.6:
                axes = list(range(rank))
                r.shuffle(axes)
                attrs["axes"] = [a - rank if r.random() < 0.3 else a for a in axes]
            ins = [x]
        elif op == "broadcast_to":
            x = self.pick()
            s = list(self.vals[x].shape)
            attrs["shape"] = [r.choice([2, 3]) if d == 1 and r.random() < 0.6 else d for d in s]
            if r.random() < 0.5:
                attrs["shape"] = [r.choice([1, 2])] + attrs["shape"]
            ins = [x]
        elif op == "concat":
            x = self.pick()
            s = list(self.vals[x].shape)
            if not s:
                return None
            ax = r.randrange(len(s))
            ins = [x]
            for _ in range(r.randint(0, 2)):
                s2 = list(s)
                s2[ax] = r.choice([0, 1, 2])
                ins.append(self.leaf(s2))
            attrs["axis"] = ax - len(s) if r.random() < 0.3 else ax
            if ax == 0 and r.random() < 0.3:
                del attrs["axis"]
        elif op == "slice":
            x = self.pick(r.choice(["float64", "float64", "int64"]))
            s = list(self.vals[x].shape)
            if not s:
                return None
            axes = r.sample(range(len(s)), r.randint(1, len(s)))
            big = 9223372036854775807
            attrs["starts"] = [r.choice([0, 1, -1, -5, 7, -big - 1 if r.random() < 0.1 else 0]) for _ in axes]
            attrs["ends"] = [r.choice([1, 2, -1, 9, big, 2 ** 53, -big - 1]) for _ in axes]
            if r.random() < 0.5 or axes != list(range(len(axes))):
                attrs["axes"] = [a - len(s) if r.random() < 0.3 else a for a in axes]
            if r.random() < 0.4:
                attrs["steps"] = [r.choice([1, 2, -1, -2, 3]) for _ in axes]
            ins = [x]
        elif op == "gather":
            p = self.pick(r.choice(["float64", "float64", "int64"]))
            s = list(self.vals[p].shape)
            if not s:
                return None
            ax = r.randrange(len(s))
            n = s[ax]
            if n == 0:
                return None
            idx = self.leaf(self.shape(r.choice([0, 1, 1, 2])), "int64", op=r.choice(["input", "constant"]),
                            lo=-n, hi=n - 1)
            if r.random() < 0.7 or ax:
                attrs["axis"] = ax - len(s) if r.random() < 0.3 else ax
            ins = [p, idx]
        elif op == "matmul":
            k = r.choice([1, 2, 3])
            a = self.leaf(r.choice([[k], [2, k], [2, 2, k], [1, 3, k]])) if r.random() < 0.5 else self.pick()
            sa = list(self.vals[a].shape)
            if not sa:
                return None
            k = sa[-1]
            b = self.leaf(r.choice([[k], [k, 2], [1, k, 3], [k, 1]]))
            ins = [a, b] if r.random() < 0.8 else [b, a]
        elif op in ("softmax", "log_softmax"):
            x = self.pick()
            rank = self.vals[x].dim()
            if not rank:
                return None
            if r.random() < 0.6:
                attrs["axis"] = r.randrange(-rank, rank)
            ins = [x]
        elif op == "softmax_cross_entropy":
            n, c = r.choice([0, 1, 2, 3]), r.choice([1, 2, 3])
            z = self.leaf([n, c])
            if r.random() < 0.5:
                y = self.leaf([n], "int64", op="input", lo=0, hi=c - 1)
            else:
                y = self.leaf([n, c], t=torch.softmax(torch.randn(n, c, dtype=ref.F64), 1) if n else None)
            ins = [z, y]
        elif op == "one_hot":
            d = r.choice([1, 2, 3])
            ins = [self.leaf(self.shape(r.choice([0, 1, 2])), "int64", op="input", lo=0, hi=d - 1)]
            attrs["depth"] = d
        elif op == "stop_gradient":
            ins = [self.pick()]
        elif op == "where":
            a = self.pick()
            b = self.partner(a)
            c = self.leaf(self.compatible(list(self.vals[a].shape)), op="input")
            ins = [c, a, b]
        elif op == "cond":
            return self.cond()
        else:
            raise AssertionError(op)
        return self.add(op, ins, attrs)

    def add(self, op, ins, attrs):
        try:
            t = ref.apply_op(op, attrs, [self.vals[i] for i in ins], frozenset())
        except Exception:  # the op does not fit these inputs: draw again
            return None
        if t.numel() > 4096:
            return None
        name = self.name(op[:3])
        n = {"name": name, "op": op, "inputs": ins}
        n.update(attrs)
        self.nodes.append(n)
        self.vals[name] = t.detach()
        return name

    def cond(self):
        """cond(pred, a, b): the untaken branch gets its own leaves, sometimes left unsent, and
        sometimes a node that would fail if evaluated (max over an empty slice)."""
        r = self.rng
        a = self.pick()
        shape = list(self.vals[a].shape)
        pv = r.choice([0.0, 1.0, -0.0, 2.0])
        pred = self.leaf([], op="input", t=torch.tensor(pv, dtype=ref.F64))
        bl = self.leaf(shape, op="variable")
        if not shape and r.random() < 0.3:
            bl = self.leaf([0], op="variable")
            b = self.add("max", [bl], {})
            if b is None:  # the generator itself must accept it: build the node by hand
                b = self.name("max")
                self.nodes.append({"name": b, "op": "max", "inputs": [bl]})
                self.vals[b] = torch.zeros((), dtype=ref.F64)
        else:
            b = self.add(r.choice(["exp", "neg", "sqrt", "log"]), [bl], {}) or bl
        ins = [pred, a, b] if r.random() < 0.5 else [pred, b, a]
        taken = ins[1] if pv != 0 else ins[2]
        untaken = ins[2] if pv != 0 else ins[1]
        if untaken == b and r.random() < 0.6:
            self.unsent.add(bl)
        name = self.name("cnd")
        self.nodes.append({"name": name, "op": "cond", "inputs": ins})
        self.vals[name] = self.vals[taken]
        return name


def make_case(rng):
    """One random request and how its values travel."""
    while True:
        b = Builder(rng)
        for _ in range(rng.randint(1, 9)):
            for _ in range(10):
                if b.node(rng.choice(ALL_OPS)) is not None:
                    break
        floats = [n["name"] for n in b.nodes if b.vals[n["name"]].dtype == ref.F64]
        if floats:
            break
    req = {"graph": {"nodes": b.nodes}}
    # targets: the last float nodes mostly, sometimes several
    k = rng.choice([1, 1, 1, 2, 3])
    targets = list(dict.fromkeys(rng.choice(floats[-4:]) if rng.random() < 0.8 else rng.choice(floats)
                                 for _ in range(k)))
    as_list = len(targets) > 1 or rng.random() < 0.2
    req["target"] = targets if as_list else targets[0]
    tg = {}
    for t in targets:
        v = b.vals[t]
        if v.dim() or rng.random() < 0.15:
            roll = rng.random()
            if roll < 0.2:
                c = torch.zeros(v.shape, dtype=ref.F64)
            elif roll < 0.3:
                c = torch.zeros(v.shape, dtype=ref.F64)
                if c.numel():
                    c.reshape(-1)[rng.randrange(c.numel())] = 1.0
            else:
                c = b.tensor(list(v.shape))
            if b.f32 and rng.random() < 0.3:  # a float32 cotangent, rounded on arrival
                tg[t] = ref.tensor_to_wire(c, rng.choice(["flat", "b64"]), f32=True)
            else:
                tg[t] = ref.tensor_to_wire(c, rng.choice(["nested", "flat", "b64"]))
    if tg:
        req["target_grad"] = tg if as_list else tg[targets[0]]
    names = [n["name"] for n in b.nodes]
    if rng.random() < 0.6:
        req["wrt"] = rng.sample(names, rng.randint(1, min(4, len(names))))
    if rng.random() < 0.3:
        req["unconnected"] = rng.choice(["none", "zero"])
    if rng.random() < 0.4:
        req["fetch"] = rng.sample(names, rng.randint(1, min(3, len(names))))
    fmt = rng.choice(["nested", "nested", "flat", "b64", "binary"])
    if fmt != "nested" or rng.random() < 0.2:
        req["tensor_format"] = fmt
    values, binary = {}, []
    for name, t in b.values.items():
        if name in b.unsent:
            continue
        f32 = b.f32_leaves.get(name)
        form = rng.choice(["nested", "nested", "flat", "b64", "binary"])
        if f32 == "explicit" and form == "nested":
            form = "flat"  # only a tensor object can say float32
        if form == "nested" and (t.numel() == 0 and t.dim() > 1):
            form = "flat"  # [] cannot say [0, 3]
        values[name] = b.wire_value(t, "b64" if form == "binary" else form, f32)
        if form == "binary":
            binary.append(name)
    req["values"] = values
    return {"request": req, "binary_values": binary}
