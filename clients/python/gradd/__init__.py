"""gradd: a Python client for the gradd gradient service.

    import gradd, numpy as np
    g = gradd.Graph()
    x, w = g.input("x"), g.variable("w")
    loss = gradd.mean(gradd.square(x @ w - 1.0), name="loss")
    res = gradd.Client("http://localhost:8080").grad(loss, values={"x": np.ones((4, 3)), "w": np.zeros(3)})
    res.gradients["w"]

Graph and Node build graphs (with +, -, *, /, **, @ and one function per op,
generated from gradd's op table); Client sends them (graph registration,
binary framing for NumPy arrays, keep-alive, timeouts, deadline_ms) and
returns Results with decoded tensors and typed Diagnostics; errors are
GraddError subclasses carrying code, message, at and suggestion. Standard
library; NumPy when installed.
"""
from .client import Client, Result, closest
from .errors import (BadRequest, BlockedAt, ClientError, DeadlineExceeded, Diagnostic, GraddError, InternalError,
                     MethodNotAllowed, NodeRef, NoGradientError, NotFound, Origin, Overloaded, SameValueAs,
                     TooLarge, Unauthorized, UnknownGraph, UnsupportedMediaType, ZeroedAt, DIAGNOSTIC_TYPES)
from .errors import (Disconnected, StopGradient, NonDifferentiable, UntakenBranch, Mixed, IntegerDtype,
                     ZeroGradient, NonFiniteGradient, NonFiniteValue, NoVariables)
from .graph import Graph, Node
from .ops import *  # noqa: F401,F403  one function per op
from .ops import OPS

__version__ = "0.1.0"
API_VERSION = "1.1"
