"""One function per gradd op, generated from GET /v1/ops by scripts/gen_python_ops.py: do not edit.

Inputs are nodes (or Python numbers and arrays, which become constants);
attributes are keyword arguments, None meaning gradd's default; `name` names
the node (default: the op and a counter, such as `matmul_3`).
"""
# flake8: noqa
from typing import Any, Optional, Sequence, Union

from .graph import Node, apply_op as _apply

NodeLike = Any  # a Node, or a number or array that becomes a constant


def neg(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise negation, -x."""
    return _apply('neg', [x], name, **attrs)


def exp(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise e^x."""
    return _apply('exp', [x], name, **attrs)


def log(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise natural logarithm; log(0) is -Infinity and a negative x gives NaN (no error)."""
    return _apply('log', [x], name, **attrs)


def log1p(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise log(1 + x), accurate near x = 0; x < -1 gives NaN."""
    return _apply('log1p', [x], name, **attrs)


def expm1(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise e^x - 1, accurate near x = 0."""
    return _apply('expm1', [x], name, **attrs)


def sqrt(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise square root; a negative x gives NaN, and the gradient at 0 is +Infinity."""
    return _apply('sqrt', [x], name, **attrs)


def square(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise x^2."""
    return _apply('square', [x], name, **attrs)


def abs(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise |x|; the gradient is dout * sign(x), with sign 0 at x = 0 and at NaN (as PyTorch)."""
    return _apply('abs', [x], name, **attrs)


def sin(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise sine (radians)."""
    return _apply('sin', [x], name, **attrs)


def cos(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise cosine (radians)."""
    return _apply('cos', [x], name, **attrs)


def tanh(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise hyperbolic tangent."""
    return _apply('tanh', [x], name, **attrs)


def sigmoid(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise logistic function 1 / (1 + e^-x), computed without overflow for large |x|."""
    return _apply('sigmoid', [x], name, **attrs)


def relu(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise max(x, 0); NaN stays NaN; the gradient passes where x > 0 or x is NaN and is exactly 0 elsewhere, x = 0 included (as PyTorch)."""
    return _apply('relu', [x], name, **attrs)


def softplus(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|); its gradient is sigmoid(x)."""
    return _apply('softplus', [x], name, **attrs)


def reciprocal(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise 1 / x; 1 / 0 is Infinity (no error)."""
    return _apply('reciprocal', [x], name, **attrs)


def leaky_relu(x: NodeLike, *, alpha: Optional[float] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise x for x > 0, else alpha * x (alpha defaults to 0.01); the gradient at x = 0 is alpha (as PyTorch).

    Attributes: alpha (number, default 0.01)."""
    return _apply('leaky_relu', [x], name, alpha=alpha, **attrs)


def clip(x: NodeLike, *, min: Optional[float] = None, max: Optional[float] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise minimum(maximum(x, min), max) as numpy.clip; either bound may be omitted (neither: the identity), min > max gives max, and the gradient passes where min <= x <= max, bounds included (as torch.clamp).

    Attributes: min (number, optional); max (number, optional)."""
    return _apply('clip', [x], name, min=min, max=max, **attrs)


def add(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a + b, with NumPy broadcasting."""
    return _apply('add', [a, b], name, **attrs)


def sub(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a - b, with NumPy broadcasting."""
    return _apply('sub', [a, b], name, **attrs)


def mul(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a * b, with NumPy broadcasting."""
    return _apply('mul', [a, b], name, **attrs)


def div(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a / b, with NumPy broadcasting; division by zero gives ±Infinity or NaN (no error)."""
    return _apply('div', [a, b], name, **attrs)


def pow(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a ** b, with NumPy broadcasting; a negative a with a non-integer b gives NaN. The gradient for a is 0 where b == 0, the gradient for b is dout * 0 where a == 0 and b >= 0 (NaN for an infinite dout, as PyTorch)."""
    return _apply('pow', [a, b], name, **attrs)


def maximum(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise larger of a and b, with NumPy broadcasting; NaN propagates (maximum(NaN, 1) is NaN). The gradient goes to the selected operand (a NaN one), ties and two NaNs share it evenly (0.5 each), and the other operand gets exactly 0."""
    return _apply('maximum', [a, b], name, **attrs)


def minimum(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise smaller of a and b, with NumPy broadcasting; NaN propagates (minimum(NaN, 1) is NaN). The gradient goes to the selected operand (a NaN one), ties and two NaNs share it evenly (0.5 each), and the other operand gets exactly 0."""
    return _apply('minimum', [a, b], name, **attrs)


def round(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise rounding to the nearest integer, halves to even as NumPy (0.5 -> 0, 1.5 -> 2); not differentiable.
    Not differentiable."""
    return _apply('round', [x], name, **attrs)


def floor(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise largest integer <= x; not differentiable.
    Not differentiable."""
    return _apply('floor', [x], name, **attrs)


def ceil(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise smallest integer >= x; not differentiable.
    Not differentiable."""
    return _apply('ceil', [x], name, **attrs)


def sign(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise -1, 0 or 1 by the sign of x (0 for ±0, NaN for NaN); not differentiable.
    Not differentiable."""
    return _apply('sign', [x], name, **attrs)


def greater(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a > b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable.
    Not differentiable."""
    return _apply('greater', [a, b], name, **attrs)


def greater_equal(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a >= b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable.
    Not differentiable."""
    return _apply('greater_equal', [a, b], name, **attrs)


def less(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a < b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable.
    Not differentiable."""
    return _apply('less', [a, b], name, **attrs)


def less_equal(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a <= b as float64 0/1, with NumPy broadcasting; NaN compares false; not differentiable.
    Not differentiable."""
    return _apply('less_equal', [a, b], name, **attrs)


def equal(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a == b as float64 0/1, with NumPy broadcasting; NaN equals nothing; not differentiable.
    Not differentiable."""
    return _apply('equal', [a, b], name, **attrs)


def not_equal(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a != b as float64 0/1, with NumPy broadcasting; NaN differs from everything (1); not differentiable.
    Not differentiable."""
    return _apply('not_equal', [a, b], name, **attrs)


def cast(x: NodeLike, *, dtype: Optional[str] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Converts x to dtype ("float64" or "int64", required). float64 -> int64 truncates toward zero, and NaN, ±Infinity or a value outside int64's range is invalid_value; float64 -> float64 is the identity and passes the gradient through; no gradient flows into int64.

    Attributes: dtype (dtype, required)."""
    return _apply('cast', [x], name, dtype=dtype, **attrs)


def sum(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: Optional[bool] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Sum over `axis` (an integer or a list; default: all axes; [] reduces nothing), keeping the reduced axes as size 1 when `keepdims`; the sum of no elements is 0.

    Attributes: axis (int|[int], optional); keepdims (bool, default false)."""
    return _apply('sum', [x], name, axis=axis, keepdims=keepdims, **attrs)


def mean(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: Optional[bool] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Mean over `axis` (an integer or a list; default: all axes), keeping the reduced axes as size 1 when `keepdims`; the mean of no elements is NaN, as in NumPy; the gradient is dout / count.

    Attributes: axis (int|[int], optional); keepdims (bool, default false)."""
    return _apply('mean', [x], name, axis=axis, keepdims=keepdims, **attrs)


def max(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: Optional[bool] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Maximum over `axis` (an integer or a list; default: all axes), with `keepdims`; NaN propagates and an empty axis is an invalid_value error (NumPy); tied maxima share the gradient evenly (PyTorch amax), a NaN result passes it to the NaN elements, split evenly, and the other elements get dout * 0.

    Attributes: axis (int|[int], optional); keepdims (bool, default false)."""
    return _apply('max', [x], name, axis=axis, keepdims=keepdims, **attrs)


def min(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: Optional[bool] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Minimum over `axis` (an integer or a list; default: all axes), with `keepdims`; NaN propagates and an empty axis is an invalid_value error (NumPy); tied minima share the gradient evenly (PyTorch amin), a NaN result passes it to the NaN elements, split evenly, and the other elements get dout * 0.

    Attributes: axis (int|[int], optional); keepdims (bool, default false)."""
    return _apply('min', [x], name, axis=axis, keepdims=keepdims, **attrs)


def logsumexp(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: Optional[bool] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """log(sum(exp(x))) over `axis` (an integer or a list; default: all axes), with `keepdims`, computed stably by subtracting the maximum; all -inf or empty gives -inf (with gradient dout * 0); the gradient is dout * softmax(x).

    Attributes: axis (int|[int], optional); keepdims (bool, default false)."""
    return _apply('logsumexp', [x], name, axis=axis, keepdims=keepdims, **attrs)


def argmax(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Index (int64) of the largest element along the single integer `axis`, or of the flattened tensor when `axis` is left out (a scalar); ties give the first occurrence and the first NaN wins (NumPy); an empty axis is an invalid_value error; not differentiable.

    Attributes: axis (int|[int], optional).
    Not differentiable."""
    return _apply('argmax', [x], name, axis=axis, **attrs)


def argmin(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """Index (int64) of the smallest element along the single integer `axis`, or of the flattened tensor when `axis` is left out (a scalar); ties give the first occurrence and the first NaN wins (NumPy); an empty axis is an invalid_value error; not differentiable.

    Attributes: axis (int|[int], optional).
    Not differentiable."""
    return _apply('argmin', [x], name, axis=axis, **attrs)


def reshape(x: NodeLike, *, shape: Optional[Sequence[int]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """x's elements in row-major order with shape `shape`; one entry may be -1 and is inferred. Keeps int64.

    Attributes: shape ([int], required)."""
    return _apply('reshape', [x], name, shape=shape, **attrs)


def transpose(x: NodeLike, *, axes: Optional[Sequence[int]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """x with its axes permuted: output axis i is input axis axes[i] (negative allowed); default: reversed axes. Keeps int64.

    Attributes: axes ([int], optional)."""
    return _apply('transpose', [x], name, axes=axes, **attrs)


def broadcast_to(x: NodeLike, *, shape: Optional[Sequence[int]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """x broadcast to exactly `shape` by NumPy rules (as numpy.broadcast_to); the gradient sums over the broadcast axes. Keeps int64.

    Attributes: shape ([int], required)."""
    return _apply('broadcast_to', [x], name, shape=shape, **attrs)


def concat(*xs: NodeLike, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """The inputs joined along `axis` (default 0, negative counts from the end); shapes must agree elsewhere. int64 when all inputs are, else float64.

    Attributes: axis (int|[int], default 0)."""
    return _apply('concat', list(xs), name, axis=axis, **attrs)


def slice(x: NodeLike, *, starts: Optional[Sequence[int]] = None, ends: Optional[Sequence[int]] = None, axes: Optional[Sequence[int]] = None, steps: Optional[Sequence[int]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """x[starts:ends:steps] on `axes` (default 0..len(starts)-1; steps default 1, nonzero, may be negative) with Python slice rules: negative bounds count from the end, out-of-range bounds clamp. Keeps int64.

    Attributes: starts ([int], required); ends ([int], required); axes ([int], optional); steps ([int], optional)."""
    return _apply('slice', [x], name, starts=starts, ends=ends, axes=axes, steps=steps, **attrs)


def gather(params: NodeLike, indices: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """numpy.take(params, indices, axis) with int64 indices (axis default 0); negative indices count from the end, out-of-range ones are index_out_of_range; repeated indices add up in the gradient.

    Attributes: axis (int|[int], default 0)."""
    return _apply('gather', [params, indices], name, axis=axis, **attrs)


def matmul(a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Matrix product with numpy.matmul semantics: a 1-D a is a row and a 1-D b a column (their unit dim dropped), leading dims broadcast as batches; scalars are rejected. Computed with BLAS in float64; an element that comes out NaN or infinite is recomputed with a wider exponent range, so products that overflow float64 do not decide it (1e200 * 1e200 - 1e200 * 1e200 + 1 is 1)."""
    return _apply('matmul', [a, b], name, **attrs)


def softmax(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """exp(x) / sum(exp(x)) along the single integer `axis` (default -1), computed stably by subtracting the maximum; a slice holding NaN or +inf, or only -inf, gives NaN; fused backward y * (dout - sum(dout * y)).

    Attributes: axis (int|[int], default -1)."""
    return _apply('softmax', [x], name, axis=axis, **attrs)


def log_softmax(x: NodeLike, *, axis: Optional[Union[int, Sequence[int]]] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """x - logsumexp(x) along the single integer `axis` (default -1), computed stably; fused backward dout - exp(y) * sum(dout).

    Attributes: axis (int|[int], default -1)."""
    return _apply('log_softmax', [x], name, axis=axis, **attrs)


def softmax_cross_entropy(logits: NodeLike, labels: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Mean over N of -sum_c labels * log_softmax(logits) for logits [N, C] and labels either int64 class indices [N] (each in [0, C), else index_out_of_range; no gradient) or probabilities [N, C] (which get the gradient -log_softmax(logits) * dout / N); N = 0 gives NaN, the mean of nothing as in NumPy; the logits' gradient is (softmax - labels) * dout / N for labels that sum to 1 per row (in general (softmax * sum(labels) - labels) * dout / N)."""
    return _apply('softmax_cross_entropy', [logits, labels], name, **attrs)


def sigmoid_cross_entropy(logits: NodeLike, labels: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Binary cross-entropy on logits, as PyTorch's binary_cross_entropy_with_logits: the mean over the n elements of logits of max(z, 0) - z * y + log1p(exp(-|z|)), with labels y broadcasting to the logits' shape (not range-checked); n = 0 gives NaN; gradients (sigmoid(z) - y) * dout / n to the logits and -z * dout / n to float64 labels."""
    return _apply('sigmoid_cross_entropy', [logits, labels], name, **attrs)


def one_hot(indices: NodeLike, *, depth: Optional[int] = None, name: Optional[str] = None, **attrs: Any) -> Node:
    """float64 one-hot encoding of int64 `indices` with `depth` classes (required, >= 0), of shape indices.shape + [depth]; an index outside [0, depth) is index_out_of_range; not differentiable.

    Attributes: depth (int, required).
    Not differentiable."""
    return _apply('one_hot', [indices], name, depth=depth, **attrs)


def stop_gradient(x: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Returns x unchanged and passes no gradient to it.
    Not differentiable."""
    return _apply('stop_gradient', [x], name, **attrs)


def where(cond: NodeLike, a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """Elementwise a where cond is nonzero, else b, with NumPy broadcasting. cond passes no gradient."""
    return _apply('where', [cond, a, b], name, **attrs)


def cond(pred: NodeLike, a: NodeLike, b: NodeLike, *, name: Optional[str] = None, **attrs: Any) -> Node:
    """a if the scalar pred is nonzero, else b. Only the taken branch is evaluated; the other gets no value and no gradient."""
    return _apply('cond', [pred, a, b], name, **attrs)

OPS = ('neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'square', 'abs', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'softplus', 'reciprocal', 'leaky_relu', 'clip', 'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'round', 'floor', 'ceil', 'sign', 'greater', 'greater_equal', 'less', 'less_equal', 'equal', 'not_equal', 'cast', 'sum', 'mean', 'max', 'min', 'logsumexp', 'argmax', 'argmin', 'reshape', 'transpose', 'broadcast_to', 'concat', 'slice', 'gather', 'matmul', 'softmax', 'log_softmax', 'softmax_cross_entropy', 'sigmoid_cross_entropy', 'one_hot', 'stop_gradient', 'where', 'cond')
