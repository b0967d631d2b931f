"""The graph builder: a Graph of named Nodes, with Python operators on nodes.

    g = gradd.Graph()
    x, w = g.input("x"), g.variable("w")
    loss = gradd.sum(gradd.square(x @ w - 1.0))

A node's name is its own when given (`name="loss"`), else the op and a
counter (`matmul_3`). A Python number or array met by an operator becomes a
constant node. `Graph.to_json()` is the wire graph, `{"nodes": [...]}`.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from .tensors import Encoder


class Node:
    """One node of a Graph. Build nodes with Graph.input/variable/constant and the op functions."""

    __array_priority__ = 1000  # numpy_array + node calls Node.__radd__

    def __init__(self, graph: "Graph", name: str, op: str, inputs: Sequence["Node"], attrs: Dict[str, Any]):
        self.graph, self.name, self.op = graph, name, op
        self.inputs: List[Node] = list(inputs)
        self.attrs = attrs

    def to_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"name": self.name, "op": self.op}
        if self.inputs:
            d["inputs"] = [i.name for i in self.inputs]
        for k, v in self.attrs.items():
            d[k] = Encoder(False).tensor(v) if k == "value" else v
        return d

    def __repr__(self) -> str:
        return f"<gradd.Node {self.name!r} ({self.op})>"

    def _bin(self, op: str, other: Any, swap: bool = False) -> "Node":
        o = self.graph.lift(other)
        return self.graph.apply(op, [o, self] if swap else [self, o])

    def __add__(self, o: Any) -> "Node": return self._bin("add", o)
    def __radd__(self, o: Any) -> "Node": return self._bin("add", o, True)
    def __sub__(self, o: Any) -> "Node": return self._bin("sub", o)
    def __rsub__(self, o: Any) -> "Node": return self._bin("sub", o, True)
    def __mul__(self, o: Any) -> "Node": return self._bin("mul", o)
    def __rmul__(self, o: Any) -> "Node": return self._bin("mul", o, True)
    def __truediv__(self, o: Any) -> "Node": return self._bin("div", o)
    def __rtruediv__(self, o: Any) -> "Node": return self._bin("div", o, True)
    def __pow__(self, o: Any) -> "Node": return self._bin("pow", o)
    def __rpow__(self, o: Any) -> "Node": return self._bin("pow", o, True)
    def __matmul__(self, o: Any) -> "Node": return self._bin("matmul", o)
    def __rmatmul__(self, o: Any) -> "Node": return self._bin("matmul", o, True)
    def __neg__(self) -> "Node": return self.graph.apply("neg", [self])
    def __abs__(self) -> "Node": return self.graph.apply("abs", [self])
    __hash__ = object.__hash__


class Graph:
    """An ordered set of uniquely named nodes."""

    def __init__(self) -> None:
        self.nodes: List[Node] = []
        self._names: Dict[str, Node] = {}
        self._counts: Dict[str, int] = {}

    def _name(self, op: str, name: Optional[str]) -> str:
        if name is not None:
            if name in self._names:
                raise ValueError(f"gradd.Graph: a node is already named {name!r}")
            return name
        while True:
            self._counts[op] = self._counts.get(op, 0) + 1
            n = f"{op}_{self._counts[op]}"
            if n not in self._names:
                return n

    def add(self, op: str, inputs: Sequence[Node] = (), name: Optional[str] = None, **attrs: Any) -> Node:
        """A new node of any op (attributes as keywords; None values are left out)."""
        for i in inputs:
            if not isinstance(i, Node) or i.graph is not self:
                raise ValueError(f"gradd.Graph: input {i!r} of a {op} node belongs to another graph")
        node = Node(self, self._name(op, name), op, inputs, {k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        self._names[node.name] = node
        return node

    def apply(self, op: str, inputs: Sequence[Any], name: Optional[str] = None, **attrs: Any) -> Node:
        return self.add(op, [self.lift(i) for i in inputs], name, **attrs)

    def lift(self, v: Any) -> Node:
        """v itself when it is a node of this graph, else a new constant node holding v."""
        if isinstance(v, Node):
            if v.graph is not self:
                raise ValueError(f"gradd.Graph: {v!r} belongs to another graph")
            return v
        return self.constant(v)

    def input(self, name: str, shape: Optional[Sequence[int]] = None, dtype: Optional[str] = None) -> Node:
        """A data leaf: its value comes with each request (`values`), and it gets no gradient by default."""
        return self.add("input", (), name, shape=list(shape) if shape is not None else None, dtype=dtype)

    def variable(self, name: str, shape: Optional[Sequence[int]] = None, dtype: Optional[str] = None) -> Node:
        """A trainable leaf: its value comes with each request, and its gradient comes back."""
        return self.add("variable", (), name, shape=list(shape) if shape is not None else None, dtype=dtype)

    def constant(self, value: Any, name: Optional[str] = None) -> Node:
        """A leaf whose value sits in the graph."""
        return self.add("constant", (), name, value=value)

    def __getitem__(self, name: str) -> Node:
        return self._names[name]

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def to_json(self) -> Dict[str, Any]:
        """The wire graph: {"nodes": [...]}, in the order the nodes were made."""
        return {"nodes": [n.to_json() for n in self.nodes]}

    def canonical(self) -> str:
        """A stable text of the graph (the client's registration cache key)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def apply_op(op: str, inputs: Sequence[Any], name: Optional[str] = None, **attrs: Any) -> Node:
    """A node of `op` in the graph of the first node among inputs (the op functions call this)."""
    for i in inputs:
        if isinstance(i, Node):
            return i.graph.apply(op, inputs, name, **attrs)
    raise ValueError(f"gradd.{op}: at least one input must be a gradd Node (made with a Graph)")
