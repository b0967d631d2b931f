"""Exceptions and diagnostics: what gradd says when something is wrong or suspect.

Every error answer of gradd becomes a GraddError (or a subclass chosen by its
code) carrying the HTTP status, the code, the message, the JSON path `at` of
the culprit and the `suggestion` (the closest valid spelling), as gradd sent
them. Diagnostics become Diagnostic objects (a subclass per code) whose str()
is the message, the path and the hint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class NodeRef:
    """A node and its op (`consumers`, `candidates`)."""
    node: str
    op: str


@dataclass
class BlockedAt:
    """A stopping point: the node, its op, why, and which input (plus a cond's predicate)."""
    node: str
    op: str
    reason: str
    input: int
    predicate: Optional[str] = None


@dataclass
class ZeroedAt:
    """Where a nonzero cotangent became all zero: `mask`, `value` or `cancellation`."""
    node: str
    op: str
    cause: str


@dataclass
class Origin:
    """Where NaN/Inf was born: the node, its op and the multi-index of the first such element."""
    node: str
    op: str
    index: List[int]


@dataclass
class SameValueAs:
    """A2: the input whose value equals the forward value of `node`."""
    input: str
    node: str


@dataclass
class Diagnostic:
    """One diagnostic of an answer (docs/diagnostics.md). Evidence fields are None when absent."""
    code: str
    severity: str
    message: str
    hint: str
    wrt: Optional[str] = None
    node: Optional[str] = None
    consumers: Optional[List[NodeRef]] = None
    blocked_at: Optional[List[BlockedAt]] = None
    path: Optional[List[str]] = None
    dtype: Optional[str] = None
    made_by: Optional[str] = None
    zeroed_at: Optional[List[ZeroedAt]] = None
    origin: Optional[Origin] = None
    candidates: Optional[List[NodeRef]] = None
    same_value_as: Optional[SameValueAs] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        """True when the diagnostic means there is no gradient (severity "error")."""
        return self.severity == "error"

    def __str__(self) -> str:
        lines = [f"{self.code} ({self.severity}): {self.message}"]
        if self.path:
            lines.append("  path: " + " -> ".join(self.path))
        if self.hint:
            lines.append("  hint: " + self.hint)
        return "\n".join(lines)


class Disconnected(Diagnostic): """No path of any kind from the `wrt` to the target."""
class StopGradient(Diagnostic): """Every path passes a stop_gradient."""
class NonDifferentiable(Diagnostic): """Every path passes a non-differentiable op."""
class UntakenBranch(Diagnostic): """Every path passes the untaken branch of a cond."""
class Mixed(Diagnostic): """Every path is blocked, for different reasons."""
class IntegerDtype(Diagnostic): """The `wrt` is int64."""
class ZeroGradient(Diagnostic): """A computed gradient is all zero."""
class NonFiniteGradient(Diagnostic): """A gradient holds NaN or Infinity."""
class NonFiniteValue(Diagnostic): """A forward value holds NaN or Infinity."""
class NoVariables(Diagnostic): """A1: the graph has no variable and no `wrt` was given."""


DIAGNOSTIC_TYPES = {
    "disconnected": Disconnected, "stop_gradient": StopGradient, "non_differentiable": NonDifferentiable,
    "untaken_branch": UntakenBranch, "mixed": Mixed, "integer_dtype": IntegerDtype,
    "zero_gradient": ZeroGradient, "non_finite_gradient": NonFiniteGradient,
    "non_finite_value": NonFiniteValue, "no_variables": NoVariables,
}
_LISTS = {"consumers": NodeRef, "candidates": NodeRef, "blocked_at": BlockedAt, "zeroed_at": ZeroedAt}
_OBJECTS = {"origin": Origin, "same_value_as": SameValueAs}
_PLAIN = {"wrt", "node", "path", "dtype", "made_by"}


def diagnostic_from_json(d: Dict[str, Any]) -> Diagnostic:
    """A Diagnostic (of the subclass of its code) from gradd's JSON object."""
    kw: Dict[str, Any] = {"extra": {}}
    for k, v in d.items():
        if k in ("code", "severity", "message", "hint") or k in _PLAIN:
            kw[k] = v
        elif k in _LISTS and isinstance(v, list):
            kw[k] = [_LISTS[k](**x) for x in v]
        elif k in _OBJECTS and isinstance(v, dict):
            kw[k] = _OBJECTS[k](**v)
        elif k in _OBJECTS and v is None:
            kw[k] = None
        else:
            kw["extra"][k] = v
    kw.setdefault("message", "")
    kw.setdefault("hint", "")
    return DIAGNOSTIC_TYPES.get(d.get("code"), Diagnostic)(**kw)


class GraddError(Exception):
    """An error answer of gradd: status, code, message, at (JSON path) and suggestion."""

    def __init__(self, status: int, code: str, message: str, at: Optional[str] = None,
                 suggestion: Optional[str] = None, diagnostics: Optional[List[Diagnostic]] = None,
                 request_id: Optional[str] = None, retry_after: Optional[int] = None):
        self.status, self.code, self.message = status, code, message
        self.at, self.suggestion = at, suggestion
        self.diagnostics = diagnostics or []
        self.request_id, self.retry_after = request_id, retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        s = f"{self.status} {self.code}: {self.message}"
        if self.at:
            s += f" (at {self.at})"
        if self.suggestion:
            s += f" Did you mean '{self.suggestion}'?"
        return s


class BadRequest(GraddError): """400: the request is malformed (JSON, structure, names, shapes, dtypes, values)."""
class Unauthorized(GraddError): """401: a bearer token is missing or wrong."""
class NotFound(GraddError): """404 not_found: no such route."""
class UnknownGraph(GraddError): """404 unknown_graph: this replica does not hold the graph id."""
class MethodNotAllowed(GraddError): """405."""
class TooLarge(GraddError): """413: over the server's limits."""
class UnsupportedMediaType(GraddError): """415."""
class InternalError(GraddError): """500: a bug in gradd."""
class Overloaded(GraddError): """503: retry after `retry_after` seconds."""
class DeadlineExceeded(GraddError): """504: the request's deadline passed."""


class NoGradientError(GraddError):
    """No gradient where one was wanted: gradd's 422 no_gradients, or a missing
    gradient with raise_on_missing=True. `diagnostics` say why; `missing` names
    the `wrt` nodes without a gradient."""

    def __init__(self, *args: Any, missing: Optional[List[str]] = None, **kw: Any):
        super().__init__(*args, **kw)
        self.missing = missing or [d.wrt for d in self.diagnostics if d.is_error and d.wrt]

    def __str__(self) -> str:
        return "\n".join([super().__str__()] + [str(d) for d in self.diagnostics])


class ClientError(GraddError):
    """Found by the client before sending (status 0): e.g. an unknown attribute."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed, 413: TooLarge,
              415: UnsupportedMediaType, 422: NoGradientError, 500: InternalError, 503: Overloaded,
              504: DeadlineExceeded}


def error_from_answer(status: int, body: Any, request_id: Optional[str] = None,
                      retry_after: Optional[int] = None) -> GraddError:
    """The exception for an error answer (body: the parsed JSON, or None)."""
    e = body.get("error") if isinstance(body, dict) else None
    if not isinstance(e, dict):
        return GraddError(status, "http_error", f"HTTP {status} without a gradd error body", request_id=request_id)
    cls = UnknownGraph if e.get("code") == "unknown_graph" else _BY_STATUS.get(status, GraddError)
    diags = [diagnostic_from_json(d) for d in e.get("diagnostics", [])]
    return cls(status, e.get("code", ""), e.get("message", ""), e.get("at"), e.get("suggestion"), diags,
               request_id, retry_after)
