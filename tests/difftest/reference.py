"""reference.py - the contract (/work/shared/api-v1.md, amendment A8) in PyTorch float64.

What a correct gradd answers to a /v1/grad request: forward values as NumPy computes them,
gradients by torch.autograd, with custom backward rules where the contract pins a choice that
torch 1.13 does not make (NaN winning max/min selections, the pow exponent gradient and max/min
reductions multiplying their masks, div's denominator rule written against overflow, relu'(NaN)=1).
float32 transport: values that arrive as float32 are rounded to float32 and widened (f32r), and
what belongs to a leaf sent as float32 comes back marked (t.f32), for the comparison to narrow
it. A `wrt` that nothing evaluates gets `unconnected: "zero"` zeros of its static shape
(infer_shape: what the contract knows before any kernel runs), null when that is unknown.
It never talks to gradd and knows nothing of HTTP; difftest.py does that.

`flags` switch the reference to a known defect of today's gradd (KNOWN_CLASSES in difftest.py):
with a flag set, the reference answers as the defective gradd does, which is how a failure is
attributed to a known class. Without flags it is the contract.

Standard library + torch only.
"""
import base64
import math
import struct
import sys
from fractions import Fraction

import torch

F64 = torch.float64
I64 = torch.int64
BIG = 2 ** 53


class GdError(Exception):
    """A request error the contract requires (status 400 unless said otherwise)."""

    def __init__(self, code, status=400, static=True):
        super().__init__(code)
        self.code = code
        self.status = status
        self.static = static  # decided from shapes and attributes, before any kernel runs


# ---- float32 transport --------------------------------------------------------------------
# float32 is a transport encoding only: values are widened to float64 on arrival (f32r), and a
# value or gradient of a leaf whose value came as float32 goes back narrowed (f32r again),
# printed as the shortest decimal that reads back to the same float32 (f32_text).

F32_MAX = float.fromhex("0x1.fffffep127")
F32_INF_FROM = Fraction(2) ** 128 - Fraction(2) ** 103  # halfway FLT_MAX..2^128: rounds to inf


def f32r(x):
    """x rounded to the nearest float32 (ties to even, overflow to infinity), as a float."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:  # rounds beyond FLT_MAX
        return math.copysign(math.inf, x)


def _f32_bits_step(f, k):
    """The float32 k steps (in bit patterns) from the finite float32 f, towards +inf for k > 0."""
    b = struct.unpack("<i", struct.pack("<f", f))[0]
    if b < 0:  # negative floats: sign-magnitude
        b = -(b & 0x7FFFFFFF)
    b += k
    if b < 0:
        b = (-b) | -0x80000000
    return struct.unpack("<f", struct.pack("<i", b))[0]


def f32_read(text):
    """The float32 nearest the decimal text, exactly (as strtof), with no detour through a
    double's rounding."""
    q = Fraction(text)
    if q == 0:
        return float(text)  # keeps the sign of -0.0
    if abs(q) >= F32_INF_FROM:
        return math.copysign(math.inf, q)
    f = f32r(float(q))
    if math.isinf(f):
        f = math.copysign(F32_MAX, q)
    best = None
    for c in (_f32_bits_step(f, -1), f, _f32_bits_step(f, 1)):
        if math.isinf(c):
            continue
        d = abs(Fraction(c) - q)
        even = struct.unpack("<i", struct.pack("<f", c))[0] % 2 == 0
        if best is None or d < best[0] or (d == best[0] and even):
            best = (d, c)
    return best[1]


def f32_text(f):
    """The shortest decimal that reads back to the float32 f, nearest to f among those (ties
    to an even last digit), in Python's repr layout (float64's rule, applied to float32). f
    must be a float32 value."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "-0.0" if math.copysign(1, f) < 0 else "0.0"
    import decimal
    exact = decimal.Decimal(f)
    for p in range(1, 10):
        ctx_dn = decimal.Context(prec=p, rounding=decimal.ROUND_FLOOR)
        ctx_up = decimal.Context(prec=p, rounding=decimal.ROUND_CEILING)
        ok = [c for c in (ctx_dn.plus(exact), ctx_up.plus(exact)) if f32_read(str(c)) == f]
        if ok:
            # the nearest; a tie goes to the even last digit, as printf and repr round
            best = min(ok, key=lambda c: (abs(c - exact), c.as_tuple().digits[-1] % 2))
            # at most 9 digits: the double nearest them prints them back (trailing zeros dropped)
            return repr(float(best))
    raise AssertionError("no float32 text for %r" % f)


def narrow(t):
    """A float64 tensor's float32 transport form: every element rounded to float32."""
    return torch.tensor([f32r(x) for x in t.reshape(-1).tolist()], dtype=F64).reshape(t.shape)


# ---- tensors on the wire -----------------------------------------------------------------

def num_in(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return v


def num_out(v):
    """A float for JSON: non-finite numbers are strings."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _nested_shape(v):
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        if not v:
            break
        v = v[0]
    return shape


def _flatten(v, out):
    if isinstance(v, list):
        for e in v:
            _flatten(e, out)
    else:
        out.append(num_in(v))


def decode_tensor(v, dtype=None, binsec=b""):
    """A wire tensor (any form) as a torch tensor; dtype is the leaf's declared one. float32
    arrives widened to float64 (JSON numbers rounded to float32 first), with t.f32 set."""
    if isinstance(v, dict):
        shape = v["shape"]
        dt = v.get("dtype", dtype or "float64")
        if "b64" in v or "offset" in v:
            raw = base64.b64decode(v["b64"]) if "b64" in v else binsec[v["offset"]:v["offset"] + v["nbytes"]]
            size = 4 if dt == "float32" else 8
            n = len(raw) // size
            data = list(struct.unpack("<%d%s" % (n, {"int64": "q", "float32": "f"}.get(dt, "d")), raw))
        else:
            data = [num_in(e) for e in v["data"]]
    else:
        shape = _nested_shape(v)
        data = []
        _flatten(v, data)
        dt = dtype or "float64"
    if dt == "float32":
        data = [f32r(x) for x in data]
    t = torch.tensor(data, dtype=I64 if dt == "int64" else F64).reshape(shape)
    t.f32 = dt == "float32"
    return t


def tensor_to_nested(t):
    if t.dtype == I64:
        return t.tolist()
    if t.dim() == 0:
        return num_out(t.item())

    def rec(x):
        return [rec(e) for e in x] if isinstance(x, list) else num_out(x)
    return rec(t.tolist())


def tensor_to_wire(t, form, f32=False):
    """t in one request form: nested, flat or b64 (binary framing is done by the sender).
    f32: a float64 t travels as float32: "dtype": "float32", 4-byte raw elements (rounded
    here); JSON numbers go as they are, for gradd to round on arrival."""
    dt = "int64" if t.dtype == I64 else "float32" if f32 else "float64"
    if form == "nested" and t.numel() == 0 and t.dim() > 1:
        form = "flat"  # [] cannot say [0, 3]
    if form == "nested":
        return tensor_to_nested(t)
    if form == "flat":
        flat = t.reshape(-1).tolist()
        return {"shape": list(t.shape), "dtype": dt,
                "data": flat if t.dtype == I64 else [num_out(x) for x in flat]}
    flat = t.reshape(-1).tolist()
    if dt == "float32":
        flat = [f32r(x) for x in flat]
    raw = struct.pack("<%d%s" % (len(flat), {"int64": "q", "float32": "f"}.get(dt, "d")), *flat)
    return {"shape": list(t.shape), "dtype": dt, "b64": base64.b64encode(raw).decode()}


# ---- custom backward rules -----------------------------------------------------------------

class Div(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, flags):
        ctx.save_for_backward(a, b)
        ctx.flags = flags
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        if "div_denominator" in ctx.flags:
            gb = -g * a / (b * b)
        else:
            gb = -g * (a / b) / b
        return g / b, gb, None


def _pow1(a, b):
    """C99 pow as NumPy computes it, without Python's exceptions."""
    try:
        return math.pow(a, b)
    except ValueError:
        if a == 0 and b < 0:  # 0 ** negative
            odd = b == int(b) and int(b) % 2 == 1
            return math.copysign(math.inf, a) if odd else math.inf
        return math.nan
    except OverflowError:
        odd = b == int(b) and int(b) % 2 == 1
        return -math.inf if a < 0 and odd else math.inf


def tpow(a, b):
    """Elementwise a ** b for same-shaped float64 tensors, through libm: torch 1.13's
    vectorized pow is wrong for tiny exponents (708.7 ** -1e-300 gives 0)."""
    out = [_pow1(x, y) for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist())]
    return torch.tensor(out, dtype=F64).reshape(a.shape)


class Pow(torch.autograd.Function):
    """a**b; base gradient selects 0 where b == 0, exponent gradient multiplies its mask (A8)."""

    @staticmethod
    def forward(ctx, a, b, flags):
        r = tpow(a, b)
        ctx.save_for_backward(a, b, r)
        ctx.flags = flags
        return r

    @staticmethod
    def backward(ctx, g):
        a, b, r = ctx.saved_tensors
        zero = torch.zeros((), dtype=F64)
        t = tpow(a, b - 1)
        # Where a^(b-1) alone leaves the normal range but a^b does not, the derivative
        # b a^(b-1) = b y / a is finite: g (b y / a) computed as ((g b) y) / a, so that a zero
        # cotangent gives 0 and no needless overflow decides the result (A8).
        normal = lambda x: torch.isfinite(x) & (x.abs() >= 2.2250738585072014e-308)
        regroup = ~normal(t) & (a != 0) & torch.isfinite(a) & normal(r)
        ga = torch.where(b == 0, zero, torch.where(regroup, ((g * b) * r) / a, g * (b * t)))
        mask = (a == 0) & (b >= 0)
        if "rule_overflow" in ctx.flags:  # today's gradd: (g * b) * a^(b-1), (g * y) * log(a)
            ga = torch.where(b == 0, zero, (g * b) * tpow(a, b - 1))
            gb = (g * r) * torch.log(a)
            gb = torch.where(mask, zero if "masked_select" in ctx.flags else g * 0, gb)
        elif "masked_select" in ctx.flags:
            gb = torch.where(mask, zero, g * (r * torch.log(a)))
        else:
            gb = g * torch.where(mask, zero, r * torch.log(a))
        return ga, gb, None


class MaxMin(torch.autograd.Function):
    """Elementwise maximum/minimum: NaN wins (two NaNs split evenly, A8), ties split evenly, selection."""

    @staticmethod
    def forward(ctx, a, b, is_max):
        r = torch.maximum(a, b) if is_max else torch.minimum(a, b)
        an, bn = torch.isnan(a), torch.isnan(b)
        better = (a > b) if is_max else (a < b)
        wa = torch.where(an & bn, 0.5, torch.where(an, 1.0, torch.where(bn, 0.0, torch.where(a == b, 0.5, torch.where(better, 1.0, 0.0)))))
        wa = wa.to(F64)
        ctx.save_for_backward(wa)
        return r

    @staticmethod
    def backward(ctx, g):
        (wa,) = ctx.saved_tensors
        zero = torch.zeros((), dtype=F64)
        ga = torch.where(wa == 0, zero, torch.where(wa == 1, g, g * 0.5))
        gb = torch.where(wa == 1, zero, torch.where(wa == 0, g, g * 0.5))
        return ga, gb, None


class Relu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, flags):
        ctx.save_for_backward(x)
        ctx.flags = flags
        return torch.where(x > 0, x, torch.where(torch.isnan(x), x, torch.zeros((), dtype=F64)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        sel = x > 0
        if "relu_abs_nan" not in ctx.flags:
            sel = sel | torch.isnan(x)
        return torch.where(sel, g, torch.zeros((), dtype=F64)), None


class Abs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, flags):
        ctx.save_for_backward(x)
        ctx.flags = flags
        return torch.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sign(x)  # torch: sign(NaN) = 0, the contract's abs'(NaN)
        if "relu_abs_nan" in ctx.flags:
            s = torch.where(torch.isnan(x), x, s)
        return g * s, None


def _sigmoid(x):
    """1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: torch's form overflows e^-x for
    x < -709 and gives 0 where the value is e^x, down to the subnormals (sigmoid(log(1e-323)))."""
    return torch.where(x >= 0, 1 / (1 + torch.exp(-x)), torch.exp(x) / (1 + torch.exp(x)))


class Sigmoid(torch.autograd.Function):
    """sigmoid computed without underflow (_sigmoid); PyTorch's rule g (1 - y) y."""

    @staticmethod
    def forward(ctx, x):
        y = _sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y) * y


class Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _sigmoid(x)


class Reduce(torch.autograd.Function):
    """max/min reductions: NaN wins, ties share evenly; the mask multiplies (A8)."""

    @staticmethod
    def forward(ctx, x, dims, keep, is_max, flags):
        r = torch.amax(x, dims, keepdim=True) if is_max else torch.amin(x, dims, keepdim=True)
        mask = (x == r) | (torch.isnan(x) & torch.isnan(r))
        mask = mask.to(F64)
        cnt = mask.sum(dims, keepdim=True)
        ctx.save_for_backward(mask, cnt)
        ctx.dims, ctx.keep, ctx.flags = dims, keep, flags
        return r if keep else _squeeze(r, dims)

    @staticmethod
    def backward(ctx, g):
        mask, cnt = ctx.saved_tensors
        if not ctx.keep:
            g = _unsqueeze(g, ctx.dims)
        if "masked_select" in ctx.flags:
            d = torch.where(mask != 0, g / cnt, torch.zeros((), dtype=F64))
        else:
            d = g * mask / cnt
        return d, None, None, None, None


class SeqSum(torch.autograd.Function):
    """sum over dims, adding the reduced elements one by one in row-major order, as NumPy
    does below its pairwise block of 8 (torch's vectorized order differs, and with
    cancellation between 1e300s the order decides the result)."""

    @staticmethod
    def forward(ctx, x, dims, keep):
        ctx.dims, ctx.keep, ctx.shape = dims, keep, x.shape
        rest = [d for d in range(x.dim()) if d not in dims]
        xp = x.permute(tuple(rest) + tuple(dims))
        n = _count(x.shape, dims)
        rows = xp.reshape(-1, n).tolist() if n else [[]] * _count(x.shape, rest)
        out = []
        for row in rows:
            acc = 0.0
            for v in row:
                acc += v
            out.append(acc)
        r = torch.tensor(out, dtype=F64).reshape([x.shape[d] for d in rest])
        return _unsqueeze(r, dims) if keep else r

    @staticmethod
    def backward(ctx, g):
        if not ctx.keep:
            g = _unsqueeze(g, ctx.dims)
        return g.expand(ctx.shape).clone(), None, None


def _count(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


class LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dims, keep, flags):
        if not dims:  # a scalar: log(exp(x)) is x, as NumPy's logaddexp.reduce
            r = x.clone()
        else:
            r = torch.logsumexp(x, dims, keepdim=True) if x.numel() else \
                torch.full(_kept_shape(x.shape, dims), -math.inf, dtype=F64)
        ctx.save_for_backward(x, r)
        ctx.dims, ctx.keep, ctx.flags = dims, keep, flags
        return r if keep else _squeeze(r, dims)

    @staticmethod
    def backward(ctx, g):
        x, r = ctx.saved_tensors
        if not ctx.keep:
            g = _unsqueeze(g, ctx.dims)
        zero = torch.zeros((), dtype=F64)
        ninf = (x == -math.inf) & ~torch.isnan(r)  # a NaN result passes NaN, as PyTorch
        if "masked_select" in ctx.flags:
            d = torch.where(ninf, zero, g * torch.exp(x - r))
        else:
            d = g * torch.where(ninf, zero, torch.exp(x - r))
        return d, None, None, None


class ZeroSkip(torch.autograd.Function):
    """Known defect zero_cotangent: an all-zero cotangent gives exact zeros, unmultiplied."""

    @staticmethod
    def forward(ctx, fn, *xs):
        with torch.enable_grad():
            xd = [x.detach().requires_grad_(x.requires_grad) if x.dtype == F64 else x for x in xs]
            y = fn(*xd)
        ctx.xd, ctx.y = xd, y
        return y.detach()

    @staticmethod
    def backward(ctx, g):
        xd, y = ctx.xd, ctx.y
        need = [i for i, x in enumerate(xd) if x.dtype == F64 and x.requires_grad]
        out = [None] * len(xd)
        if not y.requires_grad or not need:
            return (None,) + tuple(out)
        gs = torch.autograd.grad(y, [xd[i] for i in need], g, allow_unused=True)
        zero = bool((g == 0).all())
        for i, gi in zip(need, gs):  # an input that passes no gradient stays None
            out[i] = None if gi is None else torch.zeros_like(xd[i]) if zero else gi
        return (None,) + tuple(out)


def _kept_shape(shape, dims):
    return [1 if i in dims else s for i, s in enumerate(shape)]


def _squeeze(r, dims):
    for d in sorted(dims, reverse=True):
        r = r.squeeze(d)
    return r


def _unsqueeze(g, dims):
    for d in sorted(dims):
        g = g.unsqueeze(d)
    return g


# ---- ops -----------------------------------------------------------------------------------

def f64(x):
    return x.to(F64) if x.dtype == I64 else x


def _axes(attr, rank, default_all=True):
    if attr is None:
        return tuple(range(rank)) if default_all else None
    lst = attr if isinstance(attr, list) else [attr]
    out = []
    for a in lst:
        if a < -rank or a >= rank:
            raise GdError("invalid_attribute")
        a = a + rank if a < 0 else a
        if a in out:
            raise GdError("invalid_attribute")
        out.append(a)
    return tuple(sorted(out))


def _bcast(*xs):
    try:
        return torch.broadcast_tensors(*xs)
    except RuntimeError:
        raise GdError("shape_mismatch")


def _libm1(f, x):
    try:
        return f(x)
    except ValueError:
        return -math.inf if x == -1 else math.nan
    except OverflowError:
        return math.inf


class _Libm(torch.autograd.Function):
    """Forward values from libm (torch 1.13's vectorized log1p gives log1p(5e307) = inf),
    backward from torch's own rule."""

    @staticmethod
    def forward(ctx, fn, tfn, x):
        ctx.tfn = tfn
        ctx.save_for_backward(x)
        out = [_libm1(fn, v) for v in x.reshape(-1).tolist()]
        return torch.tensor(out, dtype=F64).reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(ctx.tfn(xd), xd, g)
        return None, None, d


class Sqrt(torch.autograd.Function):
    """sqrt with PyTorch's rule g / (2 * y); flag rule_overflow: today's gradd g * 0.5 / y,
    whose g * 0.5 underflows for a subnormal g."""

    @staticmethod
    def forward(ctx, x, flags):
        y = torch.sqrt(x)
        ctx.save_for_backward(y)
        ctx.flags = flags
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if "rule_overflow" in ctx.flags:
            return g * 0.5 / y, None
        return g / (2 * y), None


class _Exact(torch.autograd.Function):
    """A unary op whose backward is a product of extreme factors (square: 2*x*g,
    reciprocal: -g/x^2): computed exactly in rationals and rounded once, so that neither
    torch's association nor gradd's decides an overflow (A8: no needless over/underflow).
    Non-finite or zero operands take the float formula grouped cotangent first, as the
    contract's div rule -g*(a/b)/b: 2 (g x) and (-g y) y (0 * inf = NaN)."""

    @staticmethod
    def forward(ctx, x, which, flags=frozenset()):
        ctx.which, ctx.flags = which, flags
        ctx.save_for_backward(x)
        return x * x if which == "square" else torch.reciprocal(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = []
        for xv, gv in zip(x.reshape(-1).tolist(), g.reshape(-1).tolist()):
            if "rule_overflow" in ctx.flags:  # today's gradd: g * 2.0 * x, -g * y * y
                y = 1 / xv if xv != 0 else math.copysign(math.inf, xv)
                out.append(gv * 2.0 * xv if ctx.which == "square" else -gv * y * y)
                continue
            # plain: the exact path; also y = 1/x must be finite (else the forward value is
            # a real infinity and 0 x Infinity = NaN)
            plain = math.isfinite(xv) and math.isfinite(gv) and xv != 0 and math.isfinite(1 / xv)
            if ctx.which == "square":
                if not plain:
                    out.append(2 * (gv * xv))  # gradd's grouping: 2 (g x)
                    continue
                q = 2 * Fraction(xv) * Fraction(gv)
            else:
                if not plain:
                    y = 1 / xv if xv != 0 else math.copysign(math.inf, xv)
                    out.append((-gv * y) * y)  # as div's -g*(a/b)/b: the cotangent first
                    continue
                q = -Fraction(gv) / (Fraction(xv) ** 2)
            try:
                out.append(float(q))
            except OverflowError:
                out.append(math.inf if q > 0 else -math.inf)
            # A zero cotangent times a finite derivative too large for float64 is 0, not
            # NaN: the contract's div rule -g*(a/b)/b multiplies the cotangent first, and
            # reciprocal and square follow it (0 x Infinity = NaN only for a real infinity).
        return torch.tensor(out, dtype=F64).reshape(x.shape), None, None


def _libm(fn, tfn, x):
    return _Libm.apply(fn, tfn, x)


UNARY = {
    "neg": lambda x: -x, "exp": torch.exp, "log": torch.log, "log1p": lambda x: _libm(math.log1p, torch.log1p, x),
    "expm1": lambda x: _libm(math.expm1, torch.expm1, x), "sqrt": torch.sqrt, "square": lambda x: _Exact.apply(x, "square"),
    "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": lambda x: Sigmoid.apply(x),
    "reciprocal": lambda x: _Exact.apply(x, "reciprocal"),
}
NONDIFF_UNARY = {
    "round": torch.round, "floor": torch.floor, "ceil": torch.ceil,
    "sign": lambda x: torch.where(torch.isnan(x), x, torch.sign(x)),
}
COMPARE = {
    "greater": torch.gt, "greater_equal": torch.ge, "less": torch.lt,
    "less_equal": torch.le, "equal": torch.eq, "not_equal": torch.ne,
}
REDUCE = ("sum", "mean", "max", "min", "logsumexp")


def _arg(x, axis, is_max):
    x = f64(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    else:
        if isinstance(axis, list):
            if len(axis) != 1:
                raise GdError("invalid_attribute")
            axis = axis[0]
        if axis < -x.dim() or axis >= x.dim():
            raise GdError("invalid_attribute")
        axis %= max(x.dim(), 1)
    if x.shape[axis] == 0:
        raise GdError("invalid_value")
    moved = x.movedim(axis, -1)
    rows = moved.reshape(-1, moved.shape[-1]).tolist()
    res = []
    for row in rows:
        best = 0
        for i, v in enumerate(row):
            if math.isnan(row[best]):
                break
            if math.isnan(v) or (v > row[best] if is_max else v < row[best]):
                best = i
        res.append(best)
    return torch.tensor(res, dtype=I64).reshape(moved.shape[:-1])


def _slice(x, a):
    starts, ends = a["starts"], a["ends"]
    axes = a.get("axes", list(range(len(starts))))
    steps = a.get("steps", [1] * len(starts))
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise GdError("invalid_attribute")
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0 or ax < -x.dim() or ax >= x.dim():
            raise GdError("invalid_attribute")
        ax %= x.dim()
        idx = list(range(*slice(s, e, st).indices(x.shape[ax])))
        x = torch.index_select(x, ax, torch.tensor(idx, dtype=I64))
    return x


def _gather(p, i, axis):
    if i.dtype != I64:
        raise GdError("dtype_mismatch")
    if p.dim() == 0 or axis < -p.dim() or axis >= p.dim():
        raise GdError("invalid_attribute")
    axis %= p.dim()
    n = p.shape[axis]
    if bool(((i < -n) | (i >= n)).any()):
        raise GdError("index_out_of_range", static=False)
    flat = torch.where(i < 0, i + n, i).reshape(-1)
    out = torch.index_select(p, axis, flat)
    return out.reshape(list(p.shape[:axis]) + list(i.shape) + list(p.shape[axis + 1:]))


def _sce(z, y, flags):
    z = f64(z)
    if z.dim() != 2:
        raise GdError("shape_mismatch")
    ls = torch.log_softmax(z, 1) if z.numel() else z
    n = z.shape[0]
    if y.dtype == I64:
        if list(y.shape) != [n]:
            raise GdError("shape_mismatch")
        if bool(((y < 0) | (y >= z.shape[1])).any()):
            raise GdError("index_out_of_range", static=False)
        picked = ls.gather(1, y.reshape(-1, 1)).reshape(-1) if n else ls.reshape(-1)
        return -(picked.sum() / n) if n else torch.tensor(math.nan, dtype=F64) + 0 * z.sum()
    if list(y.shape) != list(z.shape):
        raise GdError("shape_mismatch")
    if n == 0:
        return torch.tensor(math.nan, dtype=F64) + 0 * (z.sum() + y.sum())
    return -(y * ls).sum() / n


def apply_op(op, a, xs, flags):
    """The forward of one node (differentiable through torch where the contract says so)."""
    if op == "sqrt":
        return Sqrt.apply(f64(xs[0]), flags)
    if op in ("square", "reciprocal"):
        return _Exact.apply(f64(xs[0]), op, flags)
    if op in UNARY:
        return UNARY[op](f64(xs[0]))
    if op in NONDIFF_UNARY:
        return NONDIFF_UNARY[op](f64(xs[0]).detach())
    if op in COMPARE:
        x, y = _bcast(f64(xs[0]).detach(), f64(xs[1]).detach())
        return COMPARE[op](x, y).to(F64)
    if op == "abs":
        return Abs.apply(f64(xs[0]), flags)
    if op == "relu":
        return Relu.apply(f64(xs[0]), flags)
    if op == "softplus":
        return Softplus.apply(f64(xs[0]))
    if op == "leaky_relu":
        x = f64(xs[0])
        return torch.where(x > 0, x, x * a.get("alpha", 0.01))
    if op == "clip":
        x = f64(xs[0])
        lo, hi = a.get("min"), a.get("max")
        return torch.clamp(x, min=lo, max=hi) if lo is not None or hi is not None else x
    if op in ("add", "sub", "mul", "div", "pow", "maximum", "minimum"):
        x, y = _bcast(f64(xs[0]), f64(xs[1]))
        if op == "add":
            return x + y
        if op == "sub":
            return x - y
        if op == "mul":
            return x * y
        if op == "div":
            return Div.apply(x, y, flags)
        if op == "pow":
            return Pow.apply(x, y, flags)
        return MaxMin.apply(x, y, op == "maximum")
    if op == "cast":
        x = xs[0]
        if a.get("dtype") == "int64":
            if x.dtype == I64:
                return x
            xf = x.detach()
            if bool((~torch.isfinite(xf)).any()) or bool(((xf >= 2.0 ** 63) | (xf < -2.0 ** 63)).any()):
                raise GdError("invalid_value", static=False)
            return torch.trunc(xf).to(I64)
        return f64(x)
    if op in REDUCE:
        x = f64(xs[0])
        dims = _axes(a.get("axis"), x.dim())
        keep = a.get("keepdims", False)
        if not dims and ("axis" in a or op in ("sum", "mean")):
            return x  # axis [] reduces nothing
        if op in ("max", "min"):
            if any(x.shape[d] == 0 for d in dims):
                raise GdError("invalid_value")
            return Reduce.apply(x, dims, keep, op == "max", flags)
        if op == "logsumexp":
            return LogSumExp.apply(x, dims, keep, flags)
        r = SeqSum.apply(x, dims, keep)
        if op == "mean":
            cnt = 1
            for d in dims:
                cnt *= x.shape[d]
            r = r / cnt if cnt else r * math.nan
        return r
    if op in ("argmax", "argmin"):
        return _arg(xs[0].detach(), a.get("axis"), op == "argmax")
    if op == "reshape":
        try:
            return xs[0].reshape(a["shape"])
        except RuntimeError:
            raise GdError("shape_mismatch")
    if op == "transpose":
        x = xs[0]
        axes = a.get("axes")
        if axes is None:
            return x.permute(tuple(reversed(range(x.dim()))))
        if sorted(ax % max(x.dim(), 1) for ax in axes) != list(range(x.dim())):
            raise GdError("invalid_attribute")
        return x.permute(tuple(ax % x.dim() for ax in axes))
    if op == "broadcast_to":
        try:
            return torch.broadcast_to(xs[0], a["shape"])
        except RuntimeError:
            raise GdError("shape_mismatch")
    if op == "concat":
        ys = xs if all(x.dtype == I64 for x in xs) else [f64(x) for x in xs]
        axis = a.get("axis", 0)
        r = ys[0].dim()
        if r == 0 or axis < -r or axis >= r:
            raise GdError("invalid_attribute")
        try:
            return torch.cat(ys, axis % r)
        except RuntimeError:
            raise GdError("shape_mismatch")
    if op == "slice":
        return _slice(xs[0], a)
    if op == "gather":
        return _gather(xs[0] if xs[0].dtype == I64 else f64(xs[0]), xs[1], a.get("axis", 0))
    if op == "matmul":
        x, y = f64(xs[0]), f64(xs[1])
        if x.dim() == 0 or y.dim() == 0:
            raise GdError("shape_mismatch")
        try:
            return torch.matmul(x, y)
        except RuntimeError:
            raise GdError("shape_mismatch")
    if op in ("softmax", "log_softmax"):
        x = f64(xs[0])
        ax = a.get("axis", -1)
        if x.dim() == 0 or ax < -x.dim() or ax >= x.dim():
            raise GdError("invalid_attribute")
        if x.numel() == 0:
            return x
        return torch.softmax(x, ax) if op == "softmax" else torch.log_softmax(x, ax)
    if op == "softmax_cross_entropy":
        return _sce(xs[0], xs[1], flags)
    if op == "one_hot":
        i, d = xs[0], a["depth"]
        if bool(((i < 0) | (i >= d)).any()):
            raise GdError("index_out_of_range", static=False)
        return torch.nn.functional.one_hot(i, d).to(F64) if d else torch.zeros(list(i.shape) + [0], dtype=F64)
    if op == "stop_gradient":
        return xs[0].detach()
    if op == "where":
        c, x, y = xs
        c = c.detach() != 0
        if x.dtype != I64 or y.dtype != I64:
            x, y = f64(x), f64(y)
        c, x, y = _bcast(c, x, y)
        return torch.where(c, x, y)
    raise GdError("unknown_op")


# ---- static inference -------------------------------------------------------------------

KEEP_DTYPE = {"reshape", "transpose", "broadcast_to", "slice", "stop_gradient", "gather"}


def infer_dtype(op, a, dts):
    """A node's dtype from its inputs' dtypes alone (known even where its shape is not)."""
    if op == "cast":
        return I64 if a.get("dtype") == "int64" else F64
    if op in ("argmax", "argmin"):
        return I64
    if op in KEEP_DTYPE:
        return dts[0]
    if op == "concat":
        return I64 if all(d == I64 for d in dts) else F64
    if op in ("where", "cond"):
        return I64 if dts[1] == I64 and dts[2] == I64 else F64
    return F64


def infer_shape(op, a, shapes, dts):
    """A node's shape as the contract's static inference knows it before any kernel runs:
    None where an input's shape is unknown (an unsent leaf without a declared shape) or the
    node's check fails (a node that only cond branches need keeps its error for evaluation,
    and its shape is unknown meanwhile). Attributes fix a shape without the input's
    (reshape without -1, broadcast_to), argmax/argmin without an axis give a scalar, as does
    softmax_cross_entropy, and a cond takes whichever branch's shape is known, the first's
    when both are (they must then agree)."""
    if op == "cond":
        p, s1, s2 = shapes
        if p is not None and len(p) > 0:
            return None
        if s1 is not None and s2 is not None and s1 != s2:
            return None
        return s1 if s1 is not None else s2
    if any(s is None for s in shapes):
        if op == "reshape":
            t = a.get("shape", [])
            ok = t.count(-1) <= 1 and all(d >= -1 for d in t)
            return list(t) if ok and -1 not in t else None
        if op == "broadcast_to":
            t = a.get("shape", [])
            return list(t) if all(d >= 0 for d in t) else None
        if op in ("argmax", "argmin"):
            return [] if "axis" not in a else None
        if op == "softmax_cross_entropy":
            z, y = shapes
            if (z is not None and len(z) != 2) or (y is not None and len(y) not in (1, 2)):
                return None
            if y is not None and len(y) == 1 and dts[1] != I64:
                return None
            return []
        return None
    dummies = [torch.zeros(s, dtype=d) for s, d in zip(shapes, dts)]
    try:
        with torch.no_grad():
            return list(apply_op(op, a, dummies, frozenset()).shape)
    except GdError as e:
        if e.static:
            return None
    # a kernel's error on the zeros stands in for: the shape is known all the same
    if op == "gather":
        p, i = shapes
        ax = a.get("axis", 0) % len(p)
        return p[:ax] + i + p[ax + 1:]
    if op == "one_hot":
        return shapes[0] + [a["depth"]]
    if op == "softmax_cross_entropy":
        return []
    return shapes[0]


NO_ZEROSKIP = set(NONDIFF_UNARY) | set(COMPARE) | {"argmax", "argmin", "one_hot", "stop_gradient", "cast"}


# ---- a request, evaluated ------------------------------------------------------------------

class Graph:
    """A request's graph and values, evaluated lazily as the contract's cond requires."""

    def __init__(self, req, binsec, flags, eager=False, fill_declared=False):
        self.fill_declared = fill_declared  # an unsent leaf with a declared shape: zeros
        self.nodes = {n["name"]: n for n in req["graph"]["nodes"]}
        self.order = [n["name"] for n in req["graph"]["nodes"]]
        self.values = req.get("values", {})
        self.binsec, self.flags, self.eager = binsec, flags, eager
        self.memo, self.smemo, self.smeta = {}, {}, {}
        self.req, self.checker = req, None

    def check(self, name):
        """The checks that need shapes only, over what the request forces: a tensor, or
        None where a value is missing or only a kernel could tell (no error then). They stop
        at a cond's branches, which only the predicate's value decides on: a branch's checks
        fire when the cond picks it (Graph.eval: after the predicate's value and before the
        branch's own values), and never for the untaken one (A8)."""
        if name in self.smemo:
            return self.smemo[name]
        n = self.nodes[name]
        op, t = n["op"], None
        with torch.no_grad():
            if op in ("variable", "input", "constant"):
                try:
                    t = self.eval(name)
                except GdError as e:
                    if e.code != "missing_value":
                        raise
            elif op == "cond":
                p = self.check(n["inputs"][0])
                if self.eager:  # the untaken_error predicate: both branches, as gradd once did
                    self.check(n["inputs"][1])
                    self.check(n["inputs"][2])
                s1, s2 = (self.static_meta(i)[0] for i in n["inputs"][1:])
                if (p is not None and p.dim() > 0) or (s1 is not None and s2 is not None and s1 != s2):
                    raise GdError("shape_mismatch")
                shape, dt = self.static_meta(name)  # what follows sees the cond's static shape
                t = None if shape is None else torch.zeros(shape, dtype=dt)
            else:
                xs = [self.check(i) for i in n["inputs"]]
                if all(x is not None for x in xs):
                    try:
                        t = apply_op(op, self.attrs(n), [x.detach() for x in xs], frozenset())
                    except GdError as e:
                        if e.static:
                            raise
        self.smemo[name] = t
        return t

    def untaken(self):
        """Nodes not evaluated that an untaken input of an evaluated cond needs."""
        dead, stack = set(), []
        for name in self.memo:
            n = self.nodes[name]
            if n["op"] == "cond":
                p = self.memo[n["inputs"][0]]
                stack.append(n["inputs"][2 if p.item() != 0 else 1])
        while stack:
            s = stack.pop()
            if s not in dead and s not in self.memo:
                dead.add(s)
                stack.extend(self.nodes[s].get("inputs", []))
        return dead

    def static_meta(self, name):
        """(shape or None, dtype) of a node by static inference (infer_shape): leaves from
        the value sent or the declarations."""
        if name in self.smeta:
            return self.smeta[name]
        n = self.nodes[name]
        op = n["op"]
        if op in ("variable", "input", "constant"):
            v = n.get("value") if op == "constant" else self.values.get(name)
            if v is not None:
                t = decode_tensor(v, n.get("dtype"), self.binsec)
                m = (list(t.shape), t.dtype)
            else:
                m = (n.get("shape"), I64 if n.get("dtype") == "int64" else F64)
        else:
            ms = [self.static_meta(i) for i in n["inputs"]]
            dts = [d for _, d in ms]
            a = self.attrs(n)
            m = (infer_shape(op, a, [s for s, _ in ms], dts), infer_dtype(op, a, dts))
        self.smeta[name] = m
        return m

    def attrs(self, n):
        return {k: v for k, v in n.items() if k not in ("name", "op", "inputs")}

    def eval(self, name):
        if name in self.memo:
            return self.memo[name]
        n = self.nodes[name]
        op = n["op"]
        if op in ("variable", "input", "constant"):
            v = n.get("value") if op == "constant" else self.values.get(name)
            if v is None and self.fill_declared and "shape" in n:
                v = {"shape": n["shape"], "data": [0] * math.prod(n["shape"])}
            if v is None:
                raise GdError("missing_value")
            t = decode_tensor(v, n.get("dtype"), self.binsec)
            if "shape" in n and list(t.shape) != n["shape"]:
                raise GdError("shape_mismatch")
            if t.dtype == F64:
                t.requires_grad_(True)
            self.memo[name] = t
            return t
        if op == "cond":
            p = f64(self.eval(n["inputs"][0])).detach()
            if p.dim() != 0:
                raise GdError("shape_mismatch")
            take = 1 if p.item() != 0 else 2
            if self.eager:
                try:
                    self.eval(n["inputs"][3 - take])
                except GdError as e:
                    if e.code != "missing_value":  # unsent leaves are the untaken branch's right
                        raise
            # The branch's shape checks fire when the cond picks it, before any of its values
            # is needed: a taken branch's static errors come before its missing values, as the
            # rest of the graph's do (its nested conds: their predicates only, Graph.check).
            if not self.fill_declared:
                if self.checker is None:
                    self.checker = Graph(self.req, self.binsec, self.flags, self.eager, fill_declared=True)
                self.checker.check(n["inputs"][take])
            t = self.eval(n["inputs"][take])
            t = t.view_as(t) if t.requires_grad else t
            self.memo[name] = t
            return t
        xs = [self.eval(i) for i in n["inputs"]]
        a = self.attrs(n)
        if "zero_cotangent" in self.flags and op not in NO_ZEROSKIP and any(
                x.dtype == F64 and x.requires_grad for x in xs):
            t = ZeroSkip.apply(lambda *ys: apply_op(op, a, list(ys), self.flags), *xs)
            if t.dtype != F64:
                t = t.detach()
        else:
            t = apply_op(op, a, xs, self.flags)
        if "positive_zero" in self.flags and t.dtype == F64:
            t = t + 0.0  # -0 becomes +0, nothing else changes (the signed_zero class)
        if t.dtype == F64:
            # every node is a point of its own for a `wrt` on it: its gradient is its
            # cotangent, even where nothing flows further up (stop_gradient, round, ...)
            t = t.view_as(t) if t.requires_grad else t.detach().requires_grad_(True)
        self.memo[name] = t
        return t


def expected(req, binsec=b"", flags=frozenset(), eager=False):
    """The contract's answer: ("error", status, code) or ("ok", targets, gradients, values)."""
    try:
        return _expected(req, binsec, flags, eager)
    except GdError as e:
        return ("error", e.status, e.code)


def _expected(req, binsec, flags, eager):
    for n in req["graph"]["nodes"]:
        if n["op"] == "slice" and "big_slice_bounds" in flags:
            for k in ("starts", "ends"):
                if any(abs(v) > BIG for v in n.get(k, [])):
                    raise GdError("invalid_attribute")
    g = Graph(req, binsec, flags, eager)
    targets = req["target"] if isinstance(req["target"], list) else [req["target"]]
    # Shape checks fire for every node the request forces (targets, fetch, and nodes no one
    # consumes) and what they need outside cond branches (A8: a branch's errors fire only when
    # it is evaluated; Graph.check). A fetch that a target needs (through any input, branches
    # too) forces nothing of its own: the target's evaluation runs it or, behind an untaken
    # branch, leaves it null, and no check of it fires. Then the targets are evaluated lazily
    # (a cond evaluates its taken input only), then fetch: a node that only untaken branches
    # need is null, as is a wrt on it.
    used = {i for n in g.nodes.values() for i in n.get("inputs", [])}
    fetch = req.get("fetch", [])
    needed, stack = set(), list(targets)
    while stack:
        s = stack.pop()
        if s not in needed:
            needed.add(s)
            stack.extend(g.nodes[s].get("inputs", []))
    sg = Graph(req, binsec, flags, eager, fill_declared=True)
    for r in g.order:
        if r in targets or (r in fetch and r not in needed) or r not in used:
            sg.check(r)
    tvals = {}
    with torch.enable_grad():
        for t in targets:
            tvals[t] = g.eval(t)
            if tvals[t].dtype != F64:
                raise GdError("dtype_mismatch")
        vals = {}
        while True:
            dead = g.untaken()
            todo = [f for f in fetch if f not in vals and f not in dead]
            if not todo:
                break
            for f in todo:
                vals[f] = g.eval(f)
        for f in fetch:
            vals.setdefault(f, None)
        dead = g.untaken()
        tg = req.get("target_grad")
        if tg is not None and not isinstance(req["target"], list):
            tg = {targets[0]: tg}
        loss = None
        for t in targets:
            v = tvals[t]
            if tg is None or t not in tg:
                if v.dim() != 0:
                    raise GdError("target_not_scalar")
                c = torch.ones((), dtype=F64)
            else:
                c = decode_tensor(tg[t], None, binsec)
                if list(c.shape) != list(v.shape):
                    raise GdError("shape_mismatch")
            term = (v * c).sum() if v.requires_grad else None
            if term is not None:
                loss = term if loss is None else loss + term
        if "wrt" in req:
            wrt = req["wrt"]
        else:
            wrt = [n for n in g.order if g.nodes[n]["op"] == "variable"]
            if not wrt:  # A1 (fix): no variable at all is 422 whatever unconnected says
                raise GdError("no_gradients", 422)
        grads = {}
        want = []
        for w in wrt:
            if w not in g.memo:
                grads[w] = None  # untaken, or nothing the targets need: no path
                continue
            t = g.eval(w)
            if t.dtype == F64 and t.requires_grad and loss is not None:
                want.append(w)
            else:
                grads[w] = None
        if want:
            res = torch.autograd.grad(loss, [g.memo[w] for w in want], allow_unused=True)
            for w, r in zip(want, res):
                grads[w] = r
        if all(v is None for v in grads.values()) and req.get("unconnected", "none") == "none":
            raise GdError("no_gradients", 422)
        if req.get("unconnected") == "zero":
            for w in wrt:
                if grads[w] is None:
                    t = g.memo.get(w)
                    if t is None:  # not evaluated: zeros of its static shape, when known
                        shape, dt = g.static_meta(w)
                        if shape is None:
                            continue
                        t = torch.zeros(shape, dtype=dt)
                    as_float = "int64_zero" in flags
                    grads[w] = torch.zeros(t.shape, dtype=F64 if as_float else t.dtype)
    out_t = {t: tvals[t].detach() for t in targets}
    out_g = {w: (None if v is None else v.detach()) for w, v in grads.items()}
    out_v = {f: (None if v is None else v.detach()) for f, v in vals.items()}
    return _answer(req, out_t, out_g, out_v)


def _answer(req, out_t, out_g, out_v):
    """("ok", ...), float32 transport marked: what belongs to a leaf whose value came as
    float32 goes back narrowed; the tensors stay float64 with t.f32 set, so that the
    comparison rounds to float32 after applying its tolerance."""
    narrowed = f32_leaves(req)
    for out in (out_t, out_g, out_v):
        for name, v in out.items():
            if v is not None and v.dtype == F64:
                v.f32 = name in narrowed
    return ("ok", out_t, out_g, out_v)


def f32_leaves(req):
    """The leaves whose value travels as float32: declared so, or sent with "dtype": "float32"."""
    out = set()
    for n in req["graph"]["nodes"]:
        if n["op"] not in ("variable", "input", "constant"):
            continue
        v = n.get("value") if n["op"] == "constant" else req.get("values", {}).get(n["name"])
        if n.get("dtype") == "float32" or (isinstance(v, dict) and v.get("dtype") == "float32"):
            out.add(n["name"])
    return out
