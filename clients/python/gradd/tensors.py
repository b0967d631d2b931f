"""Tensors on the wire: Python and NumPy values to gradd's forms and back.

Requests: a NumPy array of `BINARY_MIN_ELEMENTS` elements or more goes in the
binary section (binary framing), anything smaller, and every plain Python
value, as JSON. Answers: nested JSON or binary references, decoded to NumPy
arrays (float64, int64, or float32 where the leaf came as float32), or to
nested lists and floats when NumPy is absent. NaN and infinities travel as the
strings gradd uses. Standard library; NumPy when installed.
"""
from __future__ import annotations

import array
import math
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None  # type: ignore[assignment]

BINARY_MIN_ELEMENTS = 64
ALIGN = 64
_CODES = {"float64": "d", "float32": "f", "int64": "q"}
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _json_number(x: Any) -> Any:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int):
        return x
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _nested_json(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_nested_json(x) for x in v]
    return _json_number(v)


def _wire_dtype(a: Any) -> str:
    if a.dtype == np.float32:
        return "float32"
    if a.dtype.kind in "iub":
        return "int64" if a.dtype.kind != "b" else "float64"
    return "float64"


class Encoder:
    """Collects the binary section of one request while its values are encoded: the arrays'
    own bytes (memoryviews), sent one after the other without being joined into one copy."""

    def __init__(self, binary: Optional[bool]):
        self.binary = binary  # True: every array; None: large arrays; False: never
        self.parts: List[memoryview] = []
        self.size = 0

    def tensor(self, v: Any) -> Any:
        """The JSON form of one value (a reference into the binary section for a large array)."""
        if np is not None and isinstance(v, (np.ndarray, np.generic)):
            a = np.asarray(v)
            dt = _wire_dtype(a)
            a = a.astype({"float32": "<f4", "int64": "<i8", "float64": "<f8"}[dt], copy=False)
            if self.binary or (self.binary is None and a.size >= BINARY_MIN_ELEMENTS):
                raw = memoryview(np.ascontiguousarray(a).reshape(-1)).cast("B")
                ref = {"shape": list(a.shape), "dtype": dt, "offset": self.size, "nbytes": raw.nbytes}
                self.parts.append(raw)
                self.size += raw.nbytes
                return ref
            if dt == "float64" and a.ndim:
                return _nested_json(a.tolist())
            return {"shape": list(a.shape), "dtype": dt, "data": [_json_number(x) for x in a.ravel().tolist()]}
        return _nested_json(v)

    def section(self) -> List[memoryview]:
        """The binary section's pieces, in order (empty: no binary framing)."""
        return self.parts


def _nest(flat: List[Any], shape: List[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _number(x: Any) -> Any:
    return _NONFINITE[x] if isinstance(x, str) else x


def _numbers(v: Any) -> Any:
    if isinstance(v, list):
        return [_numbers(x) for x in v]
    return _number(v)


def _is_float_leafy(v: Any) -> bool:
    while isinstance(v, list):
        if not v:
            return True
        v = v[0]
    return isinstance(v, float) or isinstance(v, str)


def decode(t: Any, section: Union[bytes, memoryview] = b"", use_numpy: bool = True) -> Any:
    """A tensor of an answer: an ndarray (or nested lists/float without NumPy); None stays None."""
    if t is None:
        return None
    npy = np is not None and use_numpy
    if isinstance(t, dict):
        shape = [int(s) for s in t["shape"]]
        dt = t.get("dtype", "float64")
        if "offset" in t or "b64" in t:
            if "b64" in t:
                import base64
                raw = base64.b64decode(t["b64"])
            else:
                raw = section[t["offset"]:t["offset"] + t["nbytes"]]
            if npy:
                return np.frombuffer(raw, dtype={"float64": "<f8", "float32": "<f4", "int64": "<i8"}[dt]).reshape(shape).copy()
            arr = array.array(_CODES[dt])
            arr.frombytes(raw)
            if sys.byteorder != "little":
                arr.byteswap()
            return _nest(arr.tolist(), shape)
        flat = [_number(x) for x in t["data"]]
        if npy:
            return np.asarray(flat, dtype={"float64": np.float64, "float32": np.float32, "int64": np.int64}[dt]).reshape(shape)
        return _nest(flat, shape)
    v = _numbers(t)
    if npy:
        return np.asarray(v, dtype=np.float64 if _is_float_leafy(t) else np.int64)
    return v


def decode_map(m: Optional[Dict[str, Any]], section: Union[bytes, memoryview], use_numpy: bool) -> Dict[str, Any]:
    return {k: decode(v, section, use_numpy) for k, v in (m or {}).items()}


def frame(request_json: bytes, section: Sequence[memoryview]) -> Tuple[List[Any], Dict[str, str]]:
    """The body (its pieces, which http.client sends one by one: the arrays are not copied into
    one buffer) and headers of a binary-framed request."""
    size = len(request_json) + sum(p.nbytes for p in section)
    return [request_json, *section], {"Content-Type": "application/vnd.gradd.v1+binary",
                                      "Gradd-Json-Length": str(len(request_json)), "Content-Length": str(size)}
