"""An `onnx.backend.base.Backend` over the GPU back end (`prepare` = `from_onnx` + `compile_graph`), so ONNX's
backend test cases can drive it. `GPUBackend.api` picks the API ("auto", "opencl" or "cuda")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
from onnx.backend.base import Backend

from ...frontend import from_onnx
from ...graph import Graph
from ..common import GraphRep
from .executable import compile_graph, compile_graphs

__all__ = ["GPUBackend", "GPUBackendRep"]


class GPUBackendRep(GraphRep):
    """A prepared model: `run(inputs)` with a list (graph input order) or a dict of arrays."""


class GPUBackend(Backend):
    """ONNX backend interface of tensorweave's GPU back end."""

    api = "auto"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "GPU", **kwargs: Any) -> GPUBackendRep:
        graph = from_onnx(model)
        return GPUBackendRep(graph, compile_graph(graph, kwargs.get("api", cls.api)))

    @classmethod
    def prepare_all(cls, graphs: Sequence[Graph], api: str | None = None,
                    optimize_kernels: bool = True) -> list[GPUBackendRep]:
        """Prepare several graphs with ONE program build for all their kernels."""
        exes = compile_graphs(graphs, api or cls.api, optimize_kernels=optimize_kernels)
        return [GPUBackendRep(g, exe) for g, exe in zip(graphs, exes)]

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "GPU", **kwargs: Any) -> tuple:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper().startswith(("GPU", "CUDA", "CPU"))
