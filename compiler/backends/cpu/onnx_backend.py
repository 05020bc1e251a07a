"""An `onnx.backend.base.Backend` over the CPU back end (`prepare` = `from_onnx` + `compile_graph`), so ONNX's
backend test cases and tools can drive it:

    >>> from tensorweave.compiler.backends.cpu.onnx_backend import CPUBackend
    >>> rep = CPUBackend.prepare(model)                # doctest: +SKIP
    >>> outputs = rep.run([x])                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
from onnx.backend.base import Backend

from ...frontend import from_onnx
from ..common import GraphRep
from .executable import compile_graph, compile_graphs

__all__ = ["CPUBackend", "CPUBackendRep"]


class CPUBackendRep(GraphRep):
    """A prepared model: `run(inputs)` with a list (graph input order) or a dict of arrays."""


class CPUBackend(Backend):
    """ONNX backend interface of tensorweave's CPU back end (device "CPU" only)."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> CPUBackendRep:
        graph = from_onnx(model)
        return CPUBackendRep(graph, compile_graph(graph))

    @classmethod
    def prepare_all(cls, models: Sequence[onnx.ModelProto], jobs: int | None = None) -> list[CPUBackendRep]:
        """Prepare several models, compiling their libraries in parallel."""
        graphs = [from_onnx(m) for m in models]
        return [CPUBackendRep(g, exe) for g, exe in zip(graphs, compile_graphs(graphs, jobs))]

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple:
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith("CPU")
