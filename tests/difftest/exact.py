"""exact.py - the true answer of a request, in mpmath, for the difftest's float64_limit arbitration.

Evaluates a /v1/grad request's graph from its float64 values in mpmath at PREC bits, exact
for sums and products of float64 numbers (no overflow, no underflow, no cancellation) and
correct to far beyond float64 for exp/log and the like, then takes the gradients by reverse
mode. Each op's derivative is the textbook one, written for finite values: the answers serve
only to arbitrate an element where gradd and the reference disagree (difftest.py decides how),
never as the contract's answer at special values (NaN/Inf semantics, masks, ties and the sign
of a zero are reference.py's business).

Only ops whose derivative is smooth where it is defined are supported; a graph with any other
op, or a value outside an op's domain that the arbitration cannot speak for, raises
Unsupported, and the arbitration then does not apply.

Standard library + mpmath (a dependency of python3-torch's sympy) only.
"""
import math
import sys

import mpmath
from mpmath import mpf

PREC = 4400  # bits: 1e308 * 1e308 and 2**-1074 * 2**-1074 side by side, exactly
NAN, INF = mpf("nan"), mpf("inf")


class Unsupported(Exception):
    pass


# ---- tensors: (shape, flat row-major list); float64 elements are mpf, int64 ones int --------

def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def strides(shape):
    st, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        st[i], acc = acc, acc * shape[i]
    return st


def unravel(k, shape):
    idx = [0] * len(shape)
    for i in range(len(shape) - 1, -1, -1):
        if shape[i]:
            k, idx[i] = divmod(k, shape[i])
    return idx


def bshape(a, b):
    n = max(len(a), len(b))
    a, b = [1] * (n - len(a)) + list(a), [1] * (n - len(b)) + list(b)
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise Unsupported("broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def bindex(shape, out_shape):
    """For each flat index of out_shape, the flat index of a broadcast operand of `shape`."""
    pad = [1] * (len(out_shape) - len(shape)) + list(shape)
    st = strides(pad)
    res = []
    for k in range(numel(out_shape)):
        idx = unravel(k, out_shape)
        res.append(sum((0 if pad[i] == 1 else idx[i]) * st[i] for i in range(len(idx))))
    return res


def unbroadcast(g, out_shape, shape):
    """Sum a gradient of out_shape back to an operand of `shape`."""
    res = [mpf(0)] * numel(shape)
    for k, j in enumerate(bindex(shape, out_shape)):
        res[j] += g[k]
    return res


def isnan(x):
    return isinstance(x, mpf) and mpmath.isnan(x)


# ---- elementwise ops: value and derivative ---------------------------------------------------

ABS = [False]  # True: gradients() computes the magnitude bound instead (see magnitudes)


def mul(a, b):
    """a * b in a backward rule; |a| * |b| when computing magnitudes."""
    return abs(a) * abs(b) if ABS[0] else a * b


def sub(a, b):
    """a - b in a backward rule; |a| + |b| when computing magnitudes."""
    return abs(a) + abs(b) if ABS[0] else a - b


def _exp(x):
    """exp, with arguments below -1e5 taken as 0 (e**-1e5 is 10**-43429, below anything float64
    can tell apart; mpmath would work hard on e**-1e300). Large arguments are exact: e**1e308 is
    a number whose binary exponent mpmath holds as an integer (about 20 ms); beyond 1e330, which
    no float64 input reaches in one step, Unsupported."""
    if isnan(x) or x == INF:
        return x
    if x < -100000:
        return mpf(0)
    if x > mpf("1e330"):
        raise Unsupported("exp of a huge argument")
    return mpmath.exp(x)


def dv(a, b):
    """a / b, with IEEE's answers where b is 0 (the sign of the zero ignored)."""
    if b == 0:
        return NAN if a == 0 or isnan(a) else INF if a > 0 else -INF
    return a / b


def _log(x):
    if isnan(x) or x < 0:
        return NAN
    return -INF if x == 0 else mpmath.log(x)


def _sqrt(x):
    return NAN if isnan(x) or x < 0 else mpmath.sqrt(x)


def _pow(x, y):
    """x ** y for finite x, y, as C99's pow: NaN for a negative x and a fractional y."""
    if x > 0:
        return mpmath.power(x, y)
    if x == 0:
        return mpf(0) if y > 0 else mpf(1) if y == 0 else INF
    return mpmath.power(x, int(y)) if y == int(y) else NAN


def _sigmoid(x):
    if mpmath.isinf(x):
        return mpf(1) if x > 0 else mpf(0)
    return 1 / (1 + _exp(-x))


def _softplus(x):
    if mpmath.isinf(x):
        return x if x > 0 else mpf(0)
    return mpmath.log1p(_exp(x)) if x < 0 else x + mpmath.log1p(_exp(-x))


UNARY = {  # name: (f, f')
    "neg": (lambda x: -x, lambda x: mpf(-1)),
    "exp": (_exp, _exp),
    "log": (_log, lambda x: dv(1, x)),
    "log1p": (lambda x: _log(1 + x), lambda x: dv(1, 1 + x)),
    "expm1": (lambda x: _exp(x) - 1 if abs(x) > 1 else mpmath.expm1(x), _exp),
    "sqrt": (_sqrt, lambda x: dv(1, 2 * _sqrt(x))),
    "square": (lambda x: x * x, lambda x: 2 * x),
    "reciprocal": (lambda x: dv(1, x), lambda x: dv(-1, x * x)),
    "sin": (mpmath.sin, mpmath.cos),
    "cos": (mpmath.cos, lambda x: -mpmath.sin(x)),
    "tanh": (mpmath.tanh, lambda x: 1 - mpmath.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "softplus": (_softplus, _sigmoid),
    # kinks as the contract puts them (A8): relu'(NaN) = 1, abs'(0) = abs'(NaN) = 0
    "relu": (lambda x: x if isnan(x) or x > 0 else mpf(0), lambda x: mpf(1) if isnan(x) or x > 0 else mpf(0)),
    "abs": (abs, lambda x: mpf(0) if isnan(x) or x == 0 else mpmath.sign(x)),
}

NONDIFF = {  # forward only: no gradient passes
    "round": lambda x: x if not mpmath.isfinite(x) else mpf(round(x)),  # half to even, as NumPy
    "floor": lambda x: x if not mpmath.isfinite(x) else mpmath.floor(x),
    "ceil": lambda x: x if not mpmath.isfinite(x) else mpmath.ceil(x),
    "sign": lambda x: x if isnan(x) else mpmath.sign(x),
}

COMPARE = {
    "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b, "less": lambda a, b: a < b,
    "less_equal": lambda a, b: a <= b, "equal": lambda a, b: a == b, "not_equal": lambda a, b: a != b,
}

BINARY = {  # name: (f, df/da, df/db)
    "add": (lambda a, b: a + b, lambda a, b: mpf(1), lambda a, b: mpf(1)),
    "sub": (lambda a, b: a - b, lambda a, b: mpf(1), lambda a, b: mpf(-1)),
    "mul": (lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
    "div": (lambda a, b: dv(a, b), lambda a, b: dv(1, b), lambda a, b: dv(-a, b * b)),
}


# ---- the graph --------------------------------------------------------------------------------

class Exact:
    def __init__(self, req, decode):
        self.nodes = {n["name"]: n for n in req["graph"]["nodes"]}
        self.values = req.get("values", {})
        self.decode = decode  # wire tensor, dtype -> (shape, flat list of floats or ints)
        self.val = {}  # name -> (shape, flat)
        self.order = []  # evaluation order
        self.back = {}  # name -> fn(g) -> [(input name, gradient flat)]

    def leaf(self, name, n):
        v = n.get("value") if n["op"] == "constant" else self.values.get(name)
        if v is None:
            raise Unsupported("missing value")
        shape, flat = self.decode(v, n.get("dtype"))
        if flat and isinstance(flat[0], float) or not flat and n.get("dtype") != "int64":
            flat = [mpf(x) for x in flat]
        return tuple(shape), flat

    def eval(self, name):
        if name in self.val:
            return self.val[name]
        n = self.nodes[name]
        op = n["op"]
        if op in ("variable", "input", "constant"):
            r = self.leaf(name, n)
        elif op == "cond":
            ps, pf = self.eval(n["inputs"][0])
            if len(ps):
                raise Unsupported("cond predicate")
            take = n["inputs"][1 if pf[0] != 0 else 2]
            r = self.eval(take)
            self.back[name] = lambda g, take=take: [(take, g)]
        else:
            xs = [self.eval(i) for i in n["inputs"]]
            r = self.apply(name, n, op, xs)
        self.val[name] = r
        self.order.append(name)
        return r

    def apply(self, name, n, op, xs):
        ins = n["inputs"]
        if any(not isinstance(v, mpf) for s, f in xs for v in f):
            if op in ("one_hot", "gather", "softmax_cross_entropy", "where", "cast") or op in COMPARE:
                if op == "one_hot":
                    (s, i), = xs
                    depth = n["depth"]
                    self.back[name] = lambda g: []
                    return tuple(s) + (depth,), [mpf(1) if j == t else mpf(0) for t in i for j in range(depth)]
                xs = [(sh, [mpf(v) if isinstance(v, int) and op != "gather" and op != "softmax_cross_entropy"
                            and not (op == "where" and k == 0) else v for v in f]) for k, (sh, f) in enumerate(xs)]
            else:
                raise Unsupported("int64 operand")
        if op in UNARY:
            f, d = UNARY[op]
            (s, x), = xs
            self.back[name] = lambda g: [(ins[0], [mul(gi, d(xi)) for gi, xi in zip(g, x)])]
            return s, [f(v) for v in x]
        if op in BINARY:
            f, da, db = BINARY[op]
            (sa, a), (sb, b) = xs
            so = bshape(sa, sb)
            ia, ib = bindex(sa, so), bindex(sb, so)
            pa, pb = [a[i] for i in ia], [b[i] for i in ib]

            def back(g):
                return [(ins[0], unbroadcast([mul(gi, da(x, y)) for gi, x, y in zip(g, pa, pb)], so, sa)),
                        (ins[1], unbroadcast([mul(gi, db(x, y)) for gi, x, y in zip(g, pa, pb)], so, sb))]
            self.back[name] = back
            return so, [f(x, y) for x, y in zip(pa, pb)]
        if op in ("sum", "mean", "logsumexp"):
            return self.reduce(name, n, op, xs[0])
        if op in ("softmax", "log_softmax"):
            return self.softmax(name, n, op == "log_softmax", xs[0])
        if op == "softmax_cross_entropy":
            return self.sce(name, n, xs)
        if op == "matmul":
            return self.matmul(name, n, xs)
        if op == "gather":
            return self.gather(name, n, xs)
        if op == "reshape":
            (s, x), = xs
            shape = list(n["shape"])
            if -1 in shape:
                k = shape.index(-1)
                shape[k] = numel(s) // max(1, numel([d for d in shape if d != -1]))
            if numel(shape) != numel(s):
                raise Unsupported("reshape")
            self.back[name] = lambda g: [(ins[0], list(g))]
            return tuple(shape), list(x)
        if op == "stop_gradient":
            self.back[name] = lambda g: []
            return xs[0]
        return self.apply_more(name, n, op, xs)

    def apply_more(self, name, n, op, xs):
        ins = n["inputs"]
        if op in NONDIFF:
            (s, x), = xs
            self.back[name] = lambda g: []
            return s, [NONDIFF[op](v) for v in x]
        if op in COMPARE:
            (sa, a), (sb, b) = xs
            so = bshape(sa, sb)
            self.back[name] = lambda g: []
            return so, [mpf(1) if COMPARE[op](a[i], b[j]) else mpf(0)
                        for i, j in zip(bindex(sa, so), bindex(sb, so))]
        if op == "leaky_relu":
            (s, x), = xs
            al = mpf(n.get("alpha", 0.01))
            self.back[name] = lambda g: [(ins[0], [mul(gi, 1 if v > 0 else al) for gi, v in zip(g, x)])]
            return s, [v if v > 0 else v * al for v in x]
        if op == "clip":
            (s, x), = xs
            lo, hi = n.get("min"), n.get("max")
            if lo is None and hi is None:
                self.back[name] = lambda g: [(ins[0], list(g))]
                return s, list(x)
            lo = None if lo is None else mpf(lo)
            hi = None if hi is None else mpf(hi)
            keep = [(lo is None or v >= lo) and (hi is None or v <= hi) for v in x]
            self.back[name] = lambda g: [(ins[0], [gi if k else mpf(0) for gi, k in zip(g, keep)])]
            out = []
            for v in x:
                if lo is not None and v < lo:
                    v = lo
                if hi is not None and v > hi:
                    v = hi
                out.append(v)
            return s, out
        if op in ("maximum", "minimum"):
            (sa, a), (sb, b) = xs
            so = bshape(sa, sb)
            pa = [a[i] for i in bindex(sa, so)]
            pb = [b[i] for i in bindex(sb, so)]
            wa = []
            for x, y in zip(pa, pb):  # NaN wins (A8), ties split evenly
                if isnan(x) or isnan(y):
                    wa.append(mpf(0.5) if isnan(x) and isnan(y) else mpf(1) if isnan(x) else mpf(0))
                else:
                    wa.append(mpf(0.5) if x == y else mpf(1) if (x > y) == (op == "maximum") else mpf(0))
            self.back[name] = lambda g: [
                (ins[0], unbroadcast([mul(gi, w) if w else mpf(0) for gi, w in zip(g, wa)], so, sa)),
                (ins[1], unbroadcast([mul(gi, 1 - w) if w != 1 else mpf(0) for gi, w in zip(g, wa)], so, sb))]
            return so, [x if w == 1 or (w == mpf(0.5) and isnan(x)) else y if w == 0 else x
                        for x, y, w in zip(pa, pb, wa)]
        if op in ("max", "min"):
            return self.extreme(name, n, op == "max", xs[0])
        if op == "pow":
            # finite operands; a negative base with a fractional exponent is NaN, 0 ** negative
            # +inf (the sign of a zero ignored); the masks of A8 at b == 0 (base) and at a == 0,
            # b >= 0 (exponent, multiplied)
            (sa, a), (sb, b) = xs
            so = bshape(sa, sb)
            pa, pb = [a[i] for i in bindex(sa, so)], [b[i] for i in bindex(sb, so)]
            if not all(mpmath.isfinite(x) and mpmath.isfinite(y) and abs(y) < 1e5 for x, y in zip(pa, pb)):
                raise Unsupported("pow of a non-finite value")
            r = [_pow(x, y) for x, y in zip(pa, pb)]
            self.back[name] = lambda g: [
                (ins[0], unbroadcast([mpf(0) if y == 0 else mul(gi, y * _pow(x, y - 1)) for gi, x, y in zip(g, pa, pb)],
                                     so, sa)),
                (ins[1], unbroadcast([mul(gi, mpf(0) if x == 0 and y >= 0 else ri * _log(x))
                                      for gi, ri, x, y in zip(g, r, pa, pb)], so, sb))]
            return so, r
        if op == "concat":
            ax = n.get("axis", 0) % len(xs[0][0])
            parts = [(s, x) for s, x in xs]
            so = list(parts[0][0])
            so[ax] = sum(s[ax] for s, _ in parts)
            so = tuple(so)
            outer = numel(so[:ax])
            inner = numel(so[ax + 1:])
            out, src = [], []  # src: (part, flat index)
            for o in range(outer):
                for p_, (s, x) in enumerate(parts):
                    blk = s[ax] * inner
                    for k in range(blk):
                        out.append(x[o * blk + k])
                        src.append((p_, o * blk + k))

            def back(g):
                ds = [[mpf(0)] * len(x) for _, x in parts]
                for gi, (p_, k) in zip(g, src):
                    ds[p_][k] += gi
                return [(ins[p_], ds[p_]) for p_ in range(len(parts))]
            if not all(isinstance(v, mpf) for v in out):
                raise Unsupported("int64 concat")
            self.back[name] = back
            return so, out
        if op == "broadcast_to":
            (s, x), = xs
            so = tuple(n["shape"])
            if bshape(s, so) != so:
                raise Unsupported("broadcast_to")
            self.back[name] = lambda g: [(ins[0], unbroadcast(g, so, s))]
            return so, [x[i] for i in bindex(s, so)]
        if op == "transpose":
            (s, x), = xs
            perm = [a % len(s) for a in n["axes"]] if n.get("axes") is not None else list(range(len(s)))[::-1]
            so = tuple(s[a] for a in perm)
            st = strides(s)
            src = [sum(idx[k] * st[perm[k]] for k in range(len(perm))) for idx in map(lambda k: unravel(k, so), range(numel(so)))]
            return self.select(name, ins[0], s, so, x, src)
        if op == "slice":
            (s, x), = xs
            starts, ends = n["starts"], n["ends"]
            axes = n.get("axes", list(range(len(starts))))
            steps = n.get("steps", [1] * len(starts))
            keep = [list(range(d)) for d in s]
            for a, b, ax, st in zip(starts, ends, axes, steps):
                ax %= len(s)
                keep[ax] = [keep[ax][i] for i in range(*slice(a, b, st).indices(len(keep[ax])))]
            so = tuple(len(k) for k in keep)
            sst = strides(s)
            src = [sum(keep[d][idx[d]] * sst[d] for d in range(len(s))) for idx in (unravel(k, so) for k in range(numel(so)))]
            return self.select(name, ins[0], s, so, x, src)
        if op == "where":
            (sc, c), (sa, a), (sb, b) = xs
            if not all(isinstance(v, mpf) for v in a + b):
                raise Unsupported("int64 where")
            so = bshape(bshape(sc, sa), sb)
            pc = [c[i] != 0 for i in bindex(sc, so)]
            pa, pb = [a[i] for i in bindex(sa, so)], [b[i] for i in bindex(sb, so)]
            self.back[name] = lambda g: [
                (ins[1], unbroadcast([gi if k else mpf(0) for gi, k in zip(g, pc)], so, sa)),
                (ins[2], unbroadcast([mpf(0) if k else gi for gi, k in zip(g, pc)], so, sb))]
            return so, [x if k else y for k, x, y in zip(pc, pa, pb)]
        if op in ("argmax", "argmin"):  # forward only, first of the extremes; NaN wins
            (s, x), = xs
            ax = n.get("axis")
            ax = ax[0] if isinstance(ax, list) else ax
            kept, grp = self.groups(s, list(range(len(s))) if ax is None else [ax % len(s)])
            res = []
            for idx in grp:
                if not idx:
                    raise Unsupported("empty argmax")
                best = 0
                for j, k in enumerate(idx):
                    b = x[idx[best]]
                    if isnan(b):
                        break
                    if isnan(x[k]) or (x[k] > b if op == "argmax" else x[k] < b):
                        best = j
                res.append(best)
            self.back[name] = lambda g: []
            return (() if ax is None else tuple(d for i, d in enumerate(s) if i != ax % len(s))), res
        if op == "cast":
            (s, x), = xs
            if n.get("dtype") == "int64":
                if not all(isinstance(v, mpf) and mpmath.isfinite(v) for v in x):
                    raise Unsupported("cast")
                self.back[name] = lambda g: []
                return s, [int(v) for v in x]  # truncation toward zero
            self.back[name] = lambda g: [(ins[0], list(g))]
            return s, list(x)
        raise Unsupported(op)

    def select(self, name, inp, s, so, x, src):
        """An output that picks input elements src (each at most once)."""
        def back(g):
            d = [mpf(0)] * len(x)
            for gi, k in zip(g, src):
                d[k] += gi
            return [(inp, d)]
        self.back[name] = back
        return so, [x[k] for k in src]

    def extreme(self, name, n, is_max, x):
        s, v = x
        axes = self.axes(n.get("axis"), len(s))
        if not axes and "axis" in n:
            self.back[name] = lambda g: [(n["inputs"][0], list(g))]
            return s, list(v)
        kept, grp = self.groups(s, axes)
        shape = tuple(kept) if n.get("keepdims") else tuple(d for i, d in enumerate(s) if i not in axes)
        res, sel = [], []
        for idx in grp:
            if not idx:
                raise Unsupported("empty max/min")
            vals = [v[k] for k in idx]
            r = NAN if any(isnan(t) for t in vals) else (max(vals) if is_max else min(vals))
            m = [k for k in idx if (isnan(v[k]) if isnan(r) else v[k] == r)]
            res.append(r)
            sel.append((idx, set(m), len(m)))

        def back(g):  # the mask multiplies (A8): g * 0 elsewhere
            d = [mpf(0)] * len(v)
            for gi, (idx, m, cnt) in zip(g, sel):
                for k in idx:
                    d[k] = mul(gi, mpf(1) / cnt if k in m else mpf(0))
            return [(n["inputs"][0], d)]
        self.back[name] = back
        return shape, res

    # -- slices along axes --

    def axes(self, attr, rank, default_all=True):
        if attr is None:
            return list(range(rank)) if default_all else None
        lst = attr if isinstance(attr, list) else [attr]
        return sorted(a % rank for a in lst) if rank else []

    def groups(self, shape, axes):
        """Flat indices of shape grouped by the kept (non-reduced) position, in kept order."""
        kept = [d if i not in axes else 1 for i, d in enumerate(shape)]
        out = [[] for _ in range(numel(kept))]
        kst = strides(kept)
        for k in range(numel(shape)):
            idx = unravel(k, shape)
            out[sum((0 if i in axes else idx[i]) * kst[i] for i in range(len(idx)))].append(k)
        return kept, out

    def reduce(self, name, n, op, x):
        s, v = x
        axes = self.axes(n.get("axis"), len(s))
        if not axes and ("axis" in n or op != "logsumexp"):
            self.back[name] = lambda g: [(n["inputs"][0], list(g))]
            return s, list(v)
        kept, grp = self.groups(s, axes)
        shape = tuple(kept) if n.get("keepdims") else tuple(d for i, d in enumerate(s) if i not in axes)
        res, grads = [], []
        for idx in grp:
            if op == "logsumexp":
                if any(mpmath.isinf(v[k]) or isnan(v[k]) for k in idx):
                    raise Unsupported("logsumexp of a non-finite value")
                m = max((v[k] for k in idx), default=None)
                r = m + mpmath.log(mpmath.fsum(_exp(v[k] - m) for k in idx)) if idx else -INF
                grads.append([_exp(v[k] - r) for k in idx])
            else:
                r = mpmath.fsum(v[k] for k in idx)
                if op == "mean":
                    r = r / len(idx) if idx else NAN
                grads.append([mpf(1) / (len(idx) if op == "mean" else 1)] * len(idx))
            res.append(r)

        def back(g):
            d = [mpf(0)] * len(v)
            for gi, idx, w in zip(g, grp, grads):
                for k, wk in zip(idx, w):
                    d[k] = mul(gi, wk)
            return [(n["inputs"][0], d)]
        self.back[name] = back
        return shape, res

    def softmax(self, name, n, is_log, x):
        """A slice holding NaN or +inf, or only -inf, is NaN (the contract's forward, and its
        gradient NaN as PyTorch's); -inf elsewhere is a probability of exactly 0."""
        s, v = x
        rank = max(len(s), 1)
        ax = n.get("axis", -1) % rank
        _, grp = self.groups(s if s else (1,), [ax])
        out, probs = [NAN] * len(v), [NAN] * len(v)
        dead = set()
        for gi, idx in enumerate(grp):
            m = max((v[k] for k in idx if mpmath.isfinite(v[k])), default=None)
            if m is None or any(isnan(v[k]) or v[k] == INF for k in idx):
                dead.add(gi)
                continue
            lse = m + mpmath.log(mpmath.fsum(_exp(v[k] - m) for k in idx))
            for k in idx:
                probs[k] = _exp(v[k] - lse) if mpmath.isfinite(v[k]) else mpf(0)
                out[k] = (v[k] - lse if mpmath.isfinite(v[k]) else -INF) if is_log else probs[k]

        def back(g):
            d = [NAN] * len(v)
            for gi, idx in enumerate(grp):
                if gi in dead:
                    continue
                if is_log:
                    t = mpmath.fsum(g[k] for k in idx)
                    for k in idx:
                        d[k] = sub(g[k], mul(probs[k], t))
                else:
                    t = mpmath.fsum(mul(g[k], probs[k]) for k in idx)
                    for k in idx:
                        d[k] = mul(probs[k], sub(g[k], t))
            return [(n["inputs"][0], d)]
        self.back[name] = back
        return s, out

    def sce(self, name, n, xs):
        (sz, z), (sy, y) = xs
        if len(sz) != 2 or not all(isinstance(t, mpf) and mpmath.isfinite(t) for t in z):
            raise Unsupported("softmax_cross_entropy logits")
        N, C = sz
        if N == 0:
            raise Unsupported("empty batch")
        if len(sy) == 1:
            y = [int(t) for t in y]
            q = [mpf(1) if j == y[i] else mpf(0) for i in range(N) for j in range(C)]
            qgrad = False
        elif all(isinstance(t, mpf) for t in y):
            q, qgrad = y, True
        else:
            raise Unsupported("int64 probabilities")
        ls, total = [], mpf(0)
        for i in range(N):
            row = z[i * C:(i + 1) * C]
            m = max(row)
            lse = m + mpmath.log(mpmath.fsum(_exp(t - m) for t in row))
            ls += [t - lse for t in row]
        total = -mpmath.fsum(q[k] * ls[k] for k in range(N * C)) / N

        def back(g):
            g = mul(g[0], mpf(1) / N)
            dz = []
            for i in range(N):
                qs = mpmath.fsum(q[i * C:(i + 1) * C])
                dz += [mul(g, sub(_exp(ls[k]) * qs, q[k])) for k in range(i * C, (i + 1) * C)]
            res = [(n["inputs"][0], dz)]
            if qgrad:
                res.append((n["inputs"][1], [-mul(g, t) if not ABS[0] else mul(g, t) for t in ls]))
            return res
        self.back[name] = back
        return (), [total]

    def matmul(self, name, n, xs):
        (sa, a), (sb, b) = xs
        if not sa or not sb:
            raise Unsupported("matmul of a scalar")
        a1, b1 = len(sa) == 1, len(sb) == 1
        sa2 = (1,) + tuple(sa) if a1 else tuple(sa)
        sb2 = tuple(sb) + (1,) if b1 else tuple(sb)
        M, K, K2, N = sa2[-2], sa2[-1], sb2[-2], sb2[-1]
        if K != K2:
            raise Unsupported("matmul shapes")
        batch = bshape(sa2[:-2], sb2[:-2])
        ia, ib = bindex(sa2[:-2], batch), bindex(sb2[:-2], batch)
        nb = numel(batch)
        out = []
        for t in range(nb):
            ao, bo = ia[t] * M * K, ib[t] * K * N
            for i in range(M):
                for j in range(N):
                    out.append(mpmath.fsum(a[ao + i * K + k] * b[bo + k * N + j] for k in range(K)))
        shape = tuple(batch) + (() if a1 else (M,)) + (() if b1 else (N,))

        def back(g):
            da, db = [mpf(0)] * len(a), [mpf(0)] * len(b)
            for t in range(nb):
                ao, bo, go = ia[t] * M * K, ib[t] * K * N, t * M * N
                for i in range(M):
                    for j in range(N):
                        gij = g[go + i * N + j]
                        for k in range(K):
                            da[ao + i * K + k] += mul(gij, b[bo + k * N + j])
                            db[bo + k * N + j] += mul(a[ao + i * K + k], gij)
            return [(n["inputs"][0], da), (n["inputs"][1], db)]
        self.back[name] = back
        return shape, out

    def gather(self, name, n, xs):
        (sp, p), (si, i) = xs
        if not sp or any(isinstance(t, mpf) for t in i) or not all(isinstance(t, mpf) for t in p):
            raise Unsupported("gather operands")
        ax = n.get("axis", 0) % len(sp)
        L = sp[ax]
        outer, inner = numel(sp[:ax]), numel(sp[ax + 1:])
        idx = [t + L if t < 0 else t for t in i]
        if any(t < 0 or t >= L for t in idx):
            raise Unsupported("index out of range")
        src = [o * L * inner + k * inner + r for o in range(outer) for k in idx for r in range(inner)]
        shape = tuple(sp[:ax]) + tuple(si) + tuple(sp[ax + 1:])

        def back(g):
            d = [mpf(0)] * len(p)
            for gi, k in zip(g, src):
                d[k] += gi
            return [(n["inputs"][0], d)]
        self.back[name] = back
        return shape, [p[k] for k in src]

    # -- gradients --

    def gradients(self, seeds, wrt):
        """seeds: {target: flat cotangent}; the exact gradient of each name in wrt (None: no path)."""
        grad = {}
        for t, g in seeds.items():
            acc = grad.setdefault(t, [mpf(0)] * len(g))
            for k, v in enumerate(g):
                acc[k] += v
        for name in reversed(self.order):
            if name not in grad or name not in self.back:
                continue
            for inp, d in self.back[name](grad[name]):
                if not all(isinstance(v, mpf) for v in self.val[inp][1]):
                    continue  # int64: no gradient
                acc = grad.setdefault(inp, [mpf(0)] * len(d))
                for k, v in enumerate(d):
                    acc[k] += v
        return {w: grad.get(w) for w in wrt}


def truth(req, decode):
    """{("target"|"gradients"|"values", name): (shape, flat mpf list)} for a request, in mpmath.
    Raises Unsupported when the arbitration cannot speak for it (an op it does not know, a
    value outside a derivative's domain, a shape it does not check)."""
    try:
        return _truth(req, decode)
    except Unsupported:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        raise Unsupported(repr(e))


def _partial(ex, name):
    """ex.eval(name), or None when exact.py cannot speak for that node (the rest still can)."""
    try:
        return ex.eval(name)
    except Unsupported:
        return None
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None


def _truth(req, decode):
    """Each target, fetch and gradient exact.py can compute: a target it cannot evaluate (an op
    it does not know, say) leaves out that target and every gradient of a node it depends on,
    not the whole request (so the minimizer cannot keep an unrelated node only to silence the
    arbitration)."""
    with mpmath.workprec(PREC):
        ex = Exact(req, decode)
        targets = req["target"] if isinstance(req["target"], list) else [req["target"]]
        out, unknown = {}, []
        for t in targets:
            r = _partial(ex, t)
            if r is None:
                unknown.append(t)
            else:
                out[("target", t)] = r
        for f in req.get("fetch", []):
            r = _partial(ex, f)
            if r is not None:
                out[("values", f)] = r
        tainted, stack = set(), list(unknown)  # what the unknown targets depend on
        while stack:
            n = stack.pop()
            if n not in tainted:
                tainted.add(n)
                stack.extend(ex.nodes[n].get("inputs", []))
        targets = [t for t in targets if t not in unknown]
        tg = req.get("target_grad")
        if tg is not None and not isinstance(req["target"], list):
            tg = {targets[0]: tg} if targets else {}
        seeds = {}
        for t in targets:
            s, v = out[("target", t)]
            if tg is not None and t in tg:
                seeds[t] = [mpf(x) for x in decode(tg[t], None)[1]]
            else:
                seeds[t] = [mpf(1)] * len(v)
        wrt = req.get("wrt") or [n for n in ex.order if ex.nodes[n]["op"] == "variable"]
        wrt = [w for w in wrt if w in ex.val and w not in tainted]
        for w, g in ex.gradients(seeds, wrt).items():
            if g is not None:
                out[("gradients", w)] = (ex.val[w][0], g)
        # the nodes holding a finite value beyond float64's range: float64 arithmetic (gradd's
        # and PyTorch's alike) holds an infinity there, and what is computed from it is lost
        big = mpf(sys.float_info.max)
        for n in ex.order:
            if any(isinstance(v, mpf) and mpmath.isfinite(v) and abs(v) > big for v in ex.val[n][1]):
                out[("beyond", n)] = True
        # the same sweep with every product and difference taken in absolute value: the size
        # of the terms that make each gradient element, so that a cancellation between them
        # can be told from an error (the cancellation slack of difftest.py, per element)
        ABS[0] = True
        try:
            for w, g in ex.gradients({t: [abs(v) for v in c] for t, c in seeds.items()}, wrt).items():
                if g is not None:
                    out[("magnitude", w)] = (ex.val[w][0], g)
        finally:
            ABS[0] = False
        return out


def to_float(x):
    """The float64 nearest to an mpf (overflowing to an infinity)."""
    if isnan(x):
        return math.nan
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def distance(x, t):
    """|x - t| for a float64 x and a true value t, exactly; infinite when either is NaN or only
    one is infinite."""
    if math.isnan(x) or isnan(t):
        return INF if math.isnan(x) != isnan(t) else mpf(0)
    if math.isinf(x) or mpmath.isinf(t):
        return mpf(0) if x == t else INF
    with mpmath.workprec(PREC):
        return abs(mpf(x) - t)
