"""Client: gradd over HTTP, with registration, binary framing and typed answers.

    client = gradd.Client("http://localhost:8080", token=None)
    res = client.grad(loss, values={"x": x_np, "w": w_np})
    res.gradients["w"]      # numpy.ndarray (nested lists without NumPy)

One keep-alive connection per Client (guarded by a lock, so a Client may be
shared by threads; requests then take turns). Graphs are registered once
(POST /v1/graphs) and sent by id afterwards; a replica that does not hold the
id (404 unknown_graph: restarted, another replica, evicted) gets the graph
again and the request is retried once. NumPy arrays of 64 elements or more
travel in binary framing, answers come back binary-framed when NumPy is
there. Before the first request the client reads GET /v1/ops and checks every
node's op and attribute names, answering a misspelling as gradd would
(ClientError with `suggestion`).
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import tensors
from .errors import (ClientError, Diagnostic, GraddError, NoGradientError, UnknownGraph,
                     diagnostic_from_json, error_from_answer)
from .graph import Graph, Node

BINARY = "application/vnd.gradd.v1+binary"
NodeOrName = Union[Node, str]


@dataclass
class Result:
    """An answer of /v1/grad or /v1/eval: tensors decoded, diagnostics typed."""
    target: Dict[str, Any] = field(default_factory=dict)
    gradients: Dict[str, Any] = field(default_factory=dict)
    values: Dict[str, Any] = field(default_factory=dict)
    diagnostics: List[Diagnostic] = field(default_factory=list)
    stats: Dict[str, int] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The value of the only target, as a float (for a scalar loss)."""
        if len(self.target) != 1:
            raise ValueError("Result.loss needs exactly one target")
        v = next(iter(self.target.values()))
        while isinstance(v, list):
            v = v[0]
        return float(v)

    @property
    def missing(self) -> List[str]:
        """The `wrt` names whose gradient is null."""
        return [k for k, v in self.gradients.items() if v is None]


def closest(word: str, candidates: Iterable[str]) -> Optional[str]:
    """The closest candidate as gradd chooses it (core/error.c): optimal string alignment
    distance at most 1 (words of up to 3 characters), 2 (up to 6) or 3; the first best wins."""
    allowed = 1 if len(word) <= 3 else 2 if len(word) <= 6 else 3
    best, bestd = None, allowed + 1
    for c in candidates:
        if len(word) > 64 or len(c) > 64 or abs(len(word) - len(c)) > bestd - 1:
            continue
        d = [[0] * (len(c) + 1) for _ in range(len(word) + 1)]
        for i in range(len(word) + 1):
            d[i][0] = i
        for j in range(len(c) + 1):
            d[0][j] = j
        for i in range(1, len(word) + 1):
            for j in range(1, len(c) + 1):
                v = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (word[i - 1] != c[j - 1]))
                if i > 1 and j > 1 and word[i - 1] == c[j - 2] and word[i - 2] == c[j - 1]:
                    v = min(v, d[i - 2][j - 2] + 1)
                d[i][j] = v
        if d[-1][-1] < bestd:
            best, bestd = c, d[-1][-1]
    return best


def _names(xs: Union[None, NodeOrName, Sequence[NodeOrName]]) -> Optional[List[str]]:
    if xs is None:
        return None
    if isinstance(xs, (Node, str)):
        xs = [xs]
    return [x.name if isinstance(x, Node) else x for x in xs]


class Client:
    """A connection to one gradd.

    url: "http://host:port" (https works too; default: $GRADD_URL, else http://localhost:8080); token: the bearer token of a
    gradd started with --token-file; timeout: seconds for connecting and for
    each read (a request's compute deadline is `deadline_ms`); register: send
    graphs by id after registering them once (A3); binary: None (default) frames
    NumPy arrays of 64+ elements in binary, True every array, False none
    (plain JSON both ways); use_numpy: decode answers to NumPy arrays when NumPy
    is installed.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 60.0,
                 register: bool = True, binary: Optional[bool] = None, use_numpy: bool = True,
                 check_attributes: bool = True):
        url = url or os.environ.get("GRADD_URL", "http://localhost:8080")
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"gradd.Client: not an http(s) URL: {url!r}")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._https, self._host, self._port = u.scheme == "https", u.hostname, u.port
        self.register_graphs, self.binary = register, binary
        self.use_numpy = use_numpy and tensors.np is not None
        self.check_attributes = check_attributes
        self._conn: Optional[http.client.HTTPConnection] = None
        self._lock = threading.RLock()
        self._ids: Dict[str, str] = {}
        self._ops: Optional[Dict[str, Dict[str, Any]]] = None
        self.registrations = 0  # graphs registered by this client (re-registrations included)

    # ---- transport ---------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        """Close the keep-alive connection (a later request opens a new one)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, body: Union[bytes, Sequence[Any], None] = None,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        """One HTTP exchange on the kept-alive connection: (status, headers (lowercase names), body).
        body: bytes, or a list of bytes-like pieces sent one after the other (then headers must
        give its Content-Length). A connection the server closed while idle is reopened and the
        request sent once more."""
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        with self._lock:
            for attempt in (0, 1):
                fresh = self._conn is None
                conn = self._connect()
                try:
                    conn.request(method, path, body=body, headers=h)
                    r = conn.getresponse()
                    data = r.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                        http.client.CannotSendRequest, http.client.BadStatusLine) as e:
                    self.close()
                    if attempt == 0 and not fresh:
                        continue  # the idle connection was closed by the server: once more, fresh
                    raise GraddError(0, "connection", f"{method} {self.url}{path}: {e!r}") from e
                except socket.timeout as e:
                    self.close()
                    raise GraddError(0, "timeout", f"{method} {self.url}{path}: no answer in {self.timeout} s") from e
                except OSError as e:
                    self.close()
                    raise GraddError(0, "connection", f"{method} {self.url}{path}: {e}") from e
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return r.status, hdrs, data
        raise AssertionError("unreachable")

    def _json_call(self, method: str, path: str, payload: Any = None,
                   section: Sequence[memoryview] = ()) -> Tuple[Any, Union[bytes, memoryview]]:
        """Send payload (binary-framed when section, the binary section's pieces, is not empty);
        the parsed JSON answer and its binary section (a view into the answer, not a copy), or the
        GraddError of an error answer raised."""
        body = headers = None
        if payload is not None:
            text = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
            if section:
                body, headers = tensors.frame(text, section)
            else:
                body = text
        status, hdrs, data = self.request(method, path, body, headers)
        answer_section: Union[bytes, memoryview] = b""
        if hdrs.get("content-type", "").lower().startswith(BINARY):
            n = int(hdrs.get("gradd-json-length", len(data)))
            data, answer_section = data[:n], memoryview(data)[n:]
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        if status >= 400:
            ra = hdrs.get("retry-after")
            raise error_from_answer(status, parsed, hdrs.get("x-request-id"), int(ra) if ra and ra.isdigit() else None)
        return parsed, answer_section

    # ---- ops and graphs ----------------------------------------------------------------

    def ops(self) -> Dict[str, Dict[str, Any]]:
        """GET /v1/ops, by op name (read once per Client)."""
        if self._ops is None:
            answer, _ = self._json_call("GET", "/v1/ops")
            self._ops = {op["name"]: op for op in answer["ops"]}
        return self._ops

    def check(self, graph: Graph) -> None:
        """Raise ClientError for an unknown op or attribute, with gradd's suggestion."""
        ops = self.ops()
        for i, n in enumerate(graph.nodes):
            if n.op not in ops:
                raise ClientError(0, "unknown_op", f"Node '{n.name}': unknown op '{n.op}'.",
                                  f"$.graph.nodes[{i}].op", closest(n.op, ops))
            keys = ["name", "op", "inputs"] + (["value"] if n.op == "constant" else []) + list(ops[n.op]["attributes"])
            for k in n.attrs:
                if k not in keys:
                    raise ClientError(0, "unknown_key", f"Node '{n.name}' ({n.op}) has an unknown key \"{k}\".",
                                      f"$.graph.nodes[{i}].{k}", closest(k, keys))

    def register(self, graph: Graph) -> str:
        """Register graph (POST /v1/graphs) and return its id; cached per graph text."""
        key = graph.canonical()
        if key not in self._ids:
            answer, _ = self._json_call("POST", "/v1/graphs", {"graph": graph.to_json()})
            self._ids[key] = answer["graph_id"]
            self.registrations += 1
        return self._ids[key]

    # ---- requests ----------------------------------------------------------------------

    def _send(self, path: str, graph: Graph, req: Dict[str, Any], values: Dict[str, Any]) -> Result:
        if self.check_attributes:
            self.check(graph)
        enc = tensors.Encoder(self.binary)
        req["values"] = {(k.name if isinstance(k, Node) else k): enc.tensor(v) for k, v in values.items()}
        section = enc.section()
        if self.use_numpy and self.binary is not False:
            req.setdefault("tensor_format", "binary")
        for attempt in (0, 1):
            if self.register_graphs:
                req["graph_id"] = self.register(graph)
            else:
                req["graph"] = graph.to_json()
            try:
                answer, sec = self._json_call("POST", path, req, section)
                break
            except UnknownGraph:
                if attempt or not self.register_graphs:
                    raise
                self._ids.pop(graph.canonical(), None)  # the replica lost it: register again, retry once
        dec = lambda m: tensors.decode_map(m, sec, self.use_numpy)  # noqa: E731
        return Result(target=dec(answer.get("target")), gradients=dec(answer.get("gradients")),
                      values=dec(answer.get("values")),
                      diagnostics=[diagnostic_from_json(d) for d in answer.get("diagnostics", [])],
                      stats=answer.get("stats", {}), raw=answer)

    @staticmethod
    def _options(req: Dict[str, Any], **kw: Any) -> Dict[str, Any]:
        req.update({k: v for k, v in kw.items() if v is not None})
        return req

    def grad(self, target: Union[NodeOrName, Sequence[NodeOrName]], values: Dict[Any, Any], *,
             graph: Optional[Graph] = None, wrt: Optional[Sequence[NodeOrName]] = None,
             fetch: Optional[Sequence[NodeOrName]] = None, target_grad: Any = None,
             unconnected: Optional[str] = None, check_numerics: Optional[bool] = None,
             deadline_ms: Optional[int] = None, tensor_format: Optional[str] = None,
             raise_on_missing: bool = False) -> Result:
        """POST /v1/grad: the gradient of target (the sum of several) with respect to `wrt`
        (default: every variable). values: leaf name (or node) -> number, list or ndarray.
        raise_on_missing: raise NoGradientError when some `wrt` gets no gradient."""
        graph = graph or self._graph_of(target)
        if target_grad is not None and not isinstance(target_grad, dict):
            target_grad = tensors.Encoder(False).tensor(target_grad)
        elif isinstance(target_grad, dict):
            target_grad = {(k.name if isinstance(k, Node) else k): tensors.Encoder(False).tensor(v)
                           for k, v in target_grad.items()}
        t = _names(target)
        req = self._options({}, target=t[0] if isinstance(target, (Node, str)) else t, wrt=_names(wrt),
                            fetch=_names(fetch), target_grad=target_grad, unconnected=unconnected,
                            check_numerics=check_numerics, deadline_ms=deadline_ms, tensor_format=tensor_format)
        res = self._send("/v1/grad", graph, req, values)
        if raise_on_missing and res.missing:
            diags = [d for d in res.diagnostics if d.is_error and d.wrt in res.missing] or res.diagnostics
            raise NoGradientError(200, "no_gradient", "No gradient for " + ", ".join(res.missing) + ".",
                                  diagnostics=diags, missing=res.missing)
        return res

    def eval(self, target: Union[NodeOrName, Sequence[NodeOrName]], values: Dict[Any, Any], *,
             graph: Optional[Graph] = None, fetch: Optional[Sequence[NodeOrName]] = None,
             check_numerics: Optional[bool] = None, deadline_ms: Optional[int] = None,
             tensor_format: Optional[str] = None) -> Result:
        """POST /v1/eval: forward values of `fetch` (default: the targets) in Result.values."""
        graph = graph or self._graph_of(target)
        t = _names(target)
        req = self._options({}, target=t[0] if isinstance(target, (Node, str)) else t, fetch=_names(fetch),
                            check_numerics=check_numerics, deadline_ms=deadline_ms, tensor_format=tensor_format)
        return self._send("/v1/eval", graph, req, values)

    def request_json(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """POST a ready-made JSON request (a /v1/grad or /v1/eval body) and return the parsed answer."""
        answer, _ = self._json_call("POST", path, body)
        return answer

    @staticmethod
    def _graph_of(target: Any) -> Graph:
        for t in ([target] if isinstance(target, (Node, str)) else list(target)):
            if isinstance(t, Node):
                return t.graph
        raise ValueError("gradd.Client: name the graph (graph=...) when the target is given by name")
