"""Graph -> kernels -> one program per graph (or per batch of graphs) -> `GPUExecutable`.

Every value (input, constant, intermediate, output) and scratch area is a device buffer owned by the
executable; constants are uploaded once. `run` uploads the inputs, launches the kernels in graph order on
one in-order queue / stream (on CUDA: recorded once as a CUDA graph and replayed) and downloads the
outputs. `profile` times each kernel on its own (where the time of a model goes, per kernel and per op
type: `tensorweave run MODEL --target gpu --profile`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import TensorweaveError
from ...graph import Graph, Node
from ..common import InputError, coerce_inputs
from .fuse import fuse_elementwise
from .lower import Occupancy
from .opencl import GPUUnavailable
from .ops import Launch, LowerOptions, lower_node
from .render import render
from .wmma import WMMA_HEADERS

__all__ = ["GPUExecutable", "GeneratedGPU", "InputError", "KernelTime", "compile_graph", "compile_graphs",
           "format_profile", "generate"]


@dataclass(frozen=True)
class GeneratedGPU:
    """The kernels of one graph, in launch order."""

    graph: Graph
    launches: tuple[Launch, ...]
    nodes: tuple[str, ...]  # the graph node of each launch

    def source(self, dialect: str) -> str:
        return render([launch.kernel for launch in self.launches], dialect)


def generate(graph: Graph, prefix: str = "tw", fuse: bool = True, tensor_cores: bool = False,
             occupancy: Occupancy | None = None) -> GeneratedGPU:
    """Lower every node of `graph` (raises UnsupportedOp naming the first node it cannot lower); `fuse`:
    trees of elementwise nodes run as one kernel (`fuse.fuse_elementwise`); `tensor_cores`: int8
    contractions that tensorize onto `nvidia_wmma_s8` run on Tensor Cores (CUDA only); `occupancy`: the
    device's (`lower.Occupancy`, the default suits a CPU device)."""
    options = LowerOptions(tensor_cores, occupancy or Occupancy())
    lowered = [lower_node(f"{prefix}_{index}", graph, node, options) for index, node in enumerate(graph.nodes)]
    if fuse:
        lowered = fuse_elementwise(graph, lowered)
    launches: list[Launch] = []
    nodes: list[str] = []
    for index, (node, node_launches) in enumerate(zip(graph.nodes, lowered)):
        launches.extend(node_launches)
        nodes.extend([_label(node, index)] * len(node_launches))
    names = [launch.kernel.name for launch in launches]
    assert len(set(names)) == len(names), "kernel names repeat"
    return GeneratedGPU(graph, tuple(launches), tuple(nodes))


def _label(node: Node, index: int) -> str:
    """How a launch names its graph node (the node's name, else op and position)."""
    return node.name or f"{node.op}_{index}"


# One kernel launch as the runtime takes it: (kernel, global size, local size, arguments)
Call = tuple[Any, tuple[int, ...], tuple[int, ...] | None, list[Any]]


@dataclass(frozen=True)
class KernelTime:
    """One kernel's time in `GPUExecutable.profile`: the node it serves, its op type, how it was lowered."""

    node: str
    op: str
    kernel: str
    note: str
    ms: float


class GPUExecutable:
    """A compiled graph on one runtime: `run({input: array}) -> {output: array}`."""

    def __init__(self, generated: GeneratedGPU, runtime: Any, program: Any, source: str) -> None:
        # first, so that `close` (also from __del__) frees what a failing __init__ allocated
        self._owned: list[Any] = []  # every device buffer allocated here, freed by `close`
        self._recorded: Any = None
        self._calls: list[Call] | None = []
        self.graph = generated.graph
        self.launches = generated.launches
        self._nodes = generated.nodes
        self.runtime = runtime
        self.source = source
        self.device = runtime.description
        graph = self.graph
        names = [launch.kernel.name for launch in self.launches]
        kernels = runtime.kernels(program, names)
        self._buffers: dict[str, Any] = {}
        values = dict.fromkeys(v for n in graph.nodes for v in (*n.inputs, *n.outputs) if v)
        for v in (*graph.inputs, *values):
            if v not in self._buffers:
                self._buffers[v] = self._alloc(graph.types[v].size * np.dtype(graph.types[v].dtype).itemsize)
        for name, value in graph.constants.items():
            if name in self._buffers:
                runtime.upload(self._buffers[name], np.asarray(value, dtype=graph.types[name].dtype))
        self._dummy = self._alloc(16)
        for launch, name in zip(self.launches, names):
            scratch = [self._alloc(n) for n in launch.scratch]
            for temp, nbytes in launch.temps:
                if temp not in self._buffers:
                    self._buffers[temp] = self._alloc(nbytes)
            args = [self._dummy if not a else scratch[int(a[2:])] if a.startswith("#s") else self._buffers[a]
                    for a in launch.args]
            self._calls.append((kernels[name], launch.kernel.global_size, launch.kernel.local_size, args))
        runtime.finish()

    def _alloc(self, nbytes: int) -> Any:
        buffer = self.runtime.alloc(nbytes)
        self._owned.append(buffer)
        return buffer

    def close(self) -> None:
        """Give the device memory and the recorded CUDA graph back (also when the executable is collected);
        `run` is an error afterwards. Calling it again does nothing."""
        if self._calls is None:
            return
        recorded, owned = self._recorded, self._owned
        self._calls, self._recorded, self._owned, self._buffers = None, None, [], {}
        self.runtime.finish()
        if recorded is not None:
            self.runtime.forget(recorded)
        for buffer in owned:
            self.runtime.free(buffer)

    def __enter__(self) -> GPUExecutable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the driver may be gone; nothing left to free
            pass

    def _live_calls(self) -> list[Call]:
        if self._calls is None:
            raise TensorweaveError("this GPU executable was closed: compile the model again to run it")
        return self._calls

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        graph = self.graph
        self._live_calls()
        for name, array in coerce_inputs(graph, inputs).items():
            self.runtime.upload(self._buffers[name], array)
        self._launch_all()
        result = {}
        for name in graph.outputs:
            t = graph.types[name]
            out = np.empty(t.shape, dtype=t.dtype)
            if name in graph.constants:
                out[...] = graph.constants[name]
            else:
                self.runtime.download(self._buffers[name], out)
            result[name] = out
        self.runtime.finish()
        return result

    def _launch_all(self) -> None:
        calls = self._live_calls()
        record = getattr(self.runtime, "record", None)
        if record is not None and self._recorded is None and calls:
            self._recorded = record(calls)
        if self._recorded is not None:
            self.runtime.replay(self._recorded)
            return
        for kernel, global_size, local_size, args in calls:
            self.runtime.launch(kernel, global_size, local_size, args)

    @property
    def launch_mode(self) -> str:
        """How `run` launches the kernels: "graph" (recorded once, CUDA) or "stream" (one by one)."""
        return "graph" if self._recorded is not None else "stream"

    def profile(self, inputs: Mapping[str, np.ndarray], repeats: int = 10) -> list[KernelTime]:
        """Each kernel's time in launch order: the graph runs once (so every buffer holds its real data), then
        each kernel runs `repeats` times back to back between two waits for the device; its time is the wall
        time over `repeats`. On CUDA the repeats are one CUDA graph, so the time is the kernel's own and not
        Python's launch overhead; elsewhere each repeat is a launch (its overhead included, amortized)."""
        self.run(inputs)
        ops = {_label(n, i): n.op for i, n in enumerate(self.graph.nodes)}
        record = getattr(self.runtime, "record", None)
        times = []
        for call, launch, node in zip(self._live_calls(), self.launches, self._nodes):
            recorded = record([call] * repeats) if record is not None else None
            if recorded is not None:
                run = functools.partial(self.runtime.replay, recorded)
            else:
                run = functools.partial(self._launch_repeats, call, repeats)
            try:
                run()  # warm-up
                self.runtime.finish()
                start = time.perf_counter()
                run()
                self.runtime.finish()
            finally:
                if recorded is not None:
                    self.runtime.forget(recorded)
            ms = (time.perf_counter() - start) * 1e3 / repeats
            times.append(KernelTime(node, ops.get(node, "?"), launch.kernel.name, launch.kernel.note, ms))
        self.run(inputs)  # leave every buffer as a plain run leaves it
        return times

    def _launch_repeats(self, call: Call, repeats: int) -> None:
        for _ in range(repeats):
            self.runtime.launch(*call)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(inputs)


def _runtime(api: str) -> Any:
    from .runtime import runtime_for

    return runtime_for(api)


def optimize(graph: Graph) -> Graph:
    """The CPU back end's graph rewrites (`cpu.fuse.CPU_PIPELINE`): BatchNormalization folded into the conv
    before it, QDQ groups fused into QLinearConv / QLinearMatMul / com.microsoft.QGemm (so QDQ models run
    the int8 kernels, as onnxruntime does), and a float Conv's Relu computed in its epilogue."""
    from ..cpu.fuse import optimize as cpu_rewrites

    return cpu_rewrites(graph)


def compile_graphs(graphs: Sequence[Graph], api: str = "auto", rewrite: bool = True,
                   optimize_kernels: bool = True, fuse: bool = True,
                   tensor_cores: bool = False) -> list[GPUExecutable]:
    """Compile several graphs into ONE program (one compiler invocation for all their kernels);
    `rewrite` applies `optimize` first; `optimize_kernels=False` builds OpenCL without compiler
    optimizations (same results, quicker builds, slower kernels: for many tiny test graphs); `fuse`
    runs trees of elementwise nodes as one kernel; `tensor_cores` puts the int8 contractions that
    tensorize onto `nvidia_wmma_s8` on CUDA wmma kernels (exact; off by default until they win clearly:
    ResNet-18 int8 on an H100 0.76 vs 0.85 ms, see docs/gpu.md)."""
    runtime = _runtime(api)
    if tensor_cores and not getattr(runtime, "tensor_cores", False):
        raise GPUUnavailable(f"Tensor Core kernels need CUDA on sm_72 or newer; this runtime is {runtime.description}")
    graphs = [optimize(g) for g in graphs] if rewrite else list(graphs)
    occupancy = getattr(runtime, "occupancy", None)
    generated = [generate(g, prefix=f"tw{i}", fuse=fuse, tensor_cores=tensor_cores, occupancy=occupancy)
                 for i, g in enumerate(graphs)]
    dialect = runtime.api
    source = render([launch.kernel for gen in generated for launch in gen.launches], dialect, WMMA_HEADERS)
    program = runtime.build(source, optimize_kernels)
    return [GPUExecutable(gen, runtime, program, source) for gen in generated]


def compile_graph(graph: Graph, api: str = "auto", rewrite: bool = True, fuse: bool = True,
                  tensor_cores: bool = False) -> GPUExecutable:
    """Lower, render for the runtime's dialect, build (or fetch from the cache) and load `graph`."""
    return compile_graphs([graph], api, rewrite, fuse=fuse, tensor_cores=tensor_cores)[0]


def format_profile(times: Sequence[KernelTime], device: str, top: int = 12) -> str:
    """The kernels that take the most time, then the time per op type, as text tables."""
    total = sum(t.ms for t in times) or 1.0
    lines = [f"GPU kernel profile on {device}: {len(times)} kernels, {total:.3f} ms in all (each timed on its own)",
             f"{'ms':>9s} {'%':>6s}  {'node':28s} {'op':18s} lowering"]
    for t in sorted(times, key=lambda t: -t.ms)[:top]:
        lines.append(f"{t.ms:9.3f} {100 * t.ms / total:5.1f}%  {t.node[:28]:28s} {t.op[:18]:18s} {t.note}")
    per_op: dict[str, list[float]] = {}
    for t in times:
        per_op.setdefault(t.op, []).append(t.ms)
    lines.append(f"{'op':18s} {'kernels':>7s} {'ms':>9s} {'%':>6s}")
    for op, values in sorted(per_op.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"{op[:18]:18s} {len(values):7d} {sum(values):9.3f} {100 * sum(values) / total:5.1f}%")
    return "\n".join(lines)
