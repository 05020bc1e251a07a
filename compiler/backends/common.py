"""What the CPU and GPU back ends share: checking a run's inputs, and the ONNX `BackendRep` over a compiled graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from onnx.backend.base import BackendRep

from ...errors import TensorweaveError
from ..graph import Graph

__all__ = ["GraphRep", "InputError", "coerce_inputs"]


class InputError(TensorweaveError):
    """A run was given a missing, misnamed or mis-shaped input."""


def coerce_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's inputs as contiguous arrays of its shapes and dtypes; InputError names a bad one.

    A one-element input may come as a scalar or as [x]; integer inputs may come in another integer width
    (and floats in another float width), never across kinds.
    """
    missing = [name for name in graph.inputs if name not in inputs]
    if missing:
        raise InputError(f"graph '{graph.name}' needs input(s) {', '.join(missing)}")
    out = {}
    for name in graph.inputs:
        t = graph.types[name]
        array = np.ascontiguousarray(inputs[name])
        if tuple(array.shape) != tuple(t.shape) and array.size == 1 and t.size == 1:
            array = array.reshape(t.shape)  # a scalar given as [x] or the other way round
        if tuple(array.shape) != tuple(t.shape):
            raise InputError(f"input '{name}' has shape {tuple(array.shape)}; the graph was compiled for "
                             f"{tuple(t.shape)}")
        if array.dtype != np.dtype(t.dtype):
            if array.dtype.kind != np.dtype(t.dtype).kind:
                raise InputError(f"input '{name}' is {array.dtype}; the graph expects {t.dtype}")
            array = array.astype(t.dtype)
        out[name] = array
    return out


class _Runs(Protocol):
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class GraphRep(BackendRep):
    """A prepared model for `onnx.backend`: `run(inputs)` with a list (graph input order) or a dict of arrays."""

    def __init__(self, graph: Graph, executable: _Runs) -> None:
        self.graph = graph
        self.executable = executable

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, Mapping):
            feed = dict(inputs)
        else:
            values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            feed = dict(zip(self.graph.inputs, values))
        out = self.executable.run(feed)
        return tuple(out[name] for name in self.graph.outputs)
