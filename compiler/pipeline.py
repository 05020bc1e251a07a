"""The compile pipeline: ONNX -> graph IR -> partition -> accelerator kernels + CPU / GPU code -> a runnable model.

`compile_model` runs `PASSES`, a named list read top to bottom; each pass takes the compilation so far
and returns it, and runs only for the targets it names:

    frontend           ONNX (or a Graph) -> typed static graph                     all targets
    fuse_accel_layers  quantized layers the accelerator runs -> one fused node     accel
    prune              drop what no output reads                                   all targets
    split              graph order -> accelerator layers and maximal CPU segments  accel, cpu
    compile_accel      each fused node -> its kernel (accel_ops.ACCEL_OPS)         accel
    compile_cpu        each CPU segment -> C code (compiled in parallel, cached)   accel, cpu
    compile_gpu        the whole graph -> one GPU step                             gpu

The result is a `CompiledModel` (compiled.py: run, save; report.py: table, explain); `load_compiled(dir)`
compiles again from what `CompiledModel.save` wrote, with the same `TargetOptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..configs import AccelConfig, load_config
from ..contract.engine import CostModel, Engine
from ..errors import TensorweaveError
from . import accel
from .accel_ops import accel_op, for_node
from .compiled import CompiledModel, Step, read_settings
from .frontend import from_onnx, load_model, to_onnx
from .graph import Graph, Node
from .options import TARGETS, PipelineError, TargetOptions
from .partition import ACCEL_DOMAIN, LayerMatch, fuse_accel_layers
from .report import LayerReport, node_macs

__all__ = ["PASSES", "CompiledModel", "Compilation", "LayerReport", "Pass", "PipelineError", "Step", "TargetOptions",
           "compile_model", "load_compiled", "node_macs", "supported_on"]


@dataclass(frozen=True)
class Compilation:
    """What the passes hand each other: the source, the graphs, the steps so far."""

    source: onnx.ModelProto | str | Path | Graph
    options: TargetOptions
    config: AccelConfig | None
    input_shapes: Mapping[str, Sequence[int]] | None
    cost_model: str | CostModel
    progress: bool = False
    model: onnx.ModelProto | None = None                   # the ONNX model (frontend)
    graph: Graph | None = None                             # as the frontend read it
    fused: Graph | None = None                             # after the graph passes
    refused: dict[str, str] = field(default_factory=dict)  # matched layers left on the CPU, and why
    steps: tuple[Step, ...] = ()

    @property
    def current(self) -> Graph:
        assert self.fused is not None, "the frontend pass runs first"
        return self.fused


# ---- the passes, in order ----------------------------------------------------------------------------
def frontend(c: Compilation) -> Compilation:
    if isinstance(c.source, Graph):
        return replace(c, model=to_onnx(c.source), graph=c.source, fused=c.source)
    proto = load_model(c.source)
    graph = from_onnx(proto, c.input_shapes)
    return replace(c, model=proto, graph=graph, fused=graph)


def supported_on(config: AccelConfig) -> Callable[[Graph, LayerMatch], str | None]:
    """The partitioner's predicate: None when the accelerator can run a matched layer, else the reason."""
    def supports(graph: Graph, match: LayerMatch) -> str | None:
        why = accel.activation_types_reason(config, match.input_dtype, match.output_dtype, match.input_zero_point)
        shape = graph.types[match.x].shape
        return why or accel_op(match.kind).supports(config, shape, match.weight.shape, match.geometry)
    return supports


def fuse(c: Compilation) -> Compilation:
    assert c.config is not None, "target 'accel' has a config"
    fused, why = fuse_accel_layers(c.current, supported_on(c.config))
    return replace(c, fused=fused, refused={**c.refused, **why})


def prune(c: Compilation) -> Compilation:
    return replace(c, fused=c.current.prune())


def split(c: Compilation) -> Compilation:
    """Graph order, cut into accelerator nodes and maximal runs of CPU nodes between them."""
    parts: list[tuple[str, list[Node]]] = []
    for node in c.current.nodes:
        target = "accel" if node.domain == ACCEL_DOMAIN else "cpu"
        if target == "cpu" and parts and parts[-1][0] == "cpu":
            parts[-1][1].append(node)
        else:
            parts.append((target, [node]))
    steps = []
    for index, (where, nodes) in enumerate(parts):
        sub = c.current.subgraph(nodes, name=f"{c.current.name}.{index}")
        if where == "accel":
            name = nodes[0].name
        else:
            name = f"cpu.{index}" if len(parts) > 1 else "cpu"
        steps.append(Step(where, name, sub, sub.inputs, sub.outputs))
    return replace(c, steps=tuple(steps))


def _requant(node: Node) -> accel.Requant:
    return accel.Requant(input_scale=float(node.attrs["input_scale"]),
                         weight_scales=tuple(float(s) for s in node.attrs["weight_scales"]),
                         output_scale=float(node.attrs["output_scale"]),
                         output_zero_point=int(node.attrs["output_zero_point"]), relu=bool(node.attrs["relu"]),
                         input_zero_point=int(node.attrs.get("input_zero_point", 0)),
                         input_dtype=str(node.attrs.get("input_dtype", "int8")),
                         output_dtype=str(node.attrs.get("output_dtype", "int8")))


def build_kernel(config: AccelConfig, graph: Graph, node: Node, cost_model: str | CostModel) -> accel.AccelKernel:
    """The accelerator kernel of a fused node, compiled by its accelerator op's record."""
    try:
        return for_node(node).compile(config, graph.types[node.inputs[0]].shape, np.asarray(node.attrs["weight"]),
                                      node.attrs.get("bias"), _requant(node), node.attrs, cost_model)
    except TensorweaveError as exc:
        raise PipelineError(f"layer '{node.name}' ({node.attrs['source_op']}): {exc}") from exc


def compile_accel(c: Compilation) -> Compilation:
    assert c.config is not None, "target 'accel' has a config"
    accel_steps = [s for s in c.steps if s.target == "accel"]
    iterator: Any = accel_steps
    if c.progress:
        from tqdm import tqdm
        iterator = tqdm(accel_steps, desc="compiling", unit="layer", leave=False, disable=None)
    for step in iterator:
        step.kernel = build_kernel(c.config, c.current, step.graph.nodes[0], c.cost_model)
    return c


def compile_cpu(c: Compilation) -> Compilation:
    from .backends import cpu  # onnx-heavy: imported when a CPU step is compiled

    cpu_steps = [s for s in c.steps if s.target == "cpu"]
    # the CPU segments compile in parallel (one C library each, cached by content hash)
    for step, executable in zip(cpu_steps, cpu.compile_graphs([s.graph for s in cpu_steps]), strict=True):
        step.executable = executable
    return c


def compile_gpu(c: Compilation) -> Compilation:
    from .backends.gpu import compile_graph  # imported only for target gpu

    fused = c.current
    executable = compile_graph(fused, c.options.gpu_api, tensor_cores=c.options.tensor_cores)
    return replace(c, steps=(Step("gpu", "gpu", fused, fused.inputs, fused.outputs, executable=executable),))


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Compilation], Compilation]
    targets: tuple[str, ...] = TARGETS


PASSES: tuple[Pass, ...] = (
    Pass("frontend", frontend),
    Pass("fuse_accel_layers", fuse, ("accel",)),
    Pass("prune", prune),
    Pass("split", split, ("accel", "cpu")),
    Pass("compile_accel", compile_accel, ("accel",)),
    Pass("compile_cpu", compile_cpu, ("accel", "cpu")),
    Pass("compile_gpu", compile_gpu, ("gpu",)),
)


def compile_model(model: onnx.ModelProto | str | Path | Graph, config: AccelConfig | str | None = "vta-default",
                  target: str = "accel", input_shapes: Mapping[str, Sequence[int]] | None = None,
                  progress: bool = False, gpu_api: str = "auto", tensor_cores: bool = False,
                  engine: str | Engine = "functional", cost_model: str | CostModel = "cycle") -> CompiledModel:
    """Compile a (QDQ-quantized, for the accelerator) ONNX model for `target` "accel", "cpu" or "gpu".

    `gpu_api`: auto, opencl or cuda; `tensor_cores`: int8 contractions on CUDA wmma kernels; `engine`: what
    `run` uses by default (a name or an `Engine`); `cost_model`: what measures the accelerator's tilings
    ("cycle", "analytical" or a `CostModel`). The settings are kept as `CompiledModel.options`.
    """
    cfg = load_config(config) if isinstance(config, str) else config
    options = TargetOptions(target=target, config=cfg.name if cfg else None, config_digest=cfg.digest if cfg else None,
                            gpu_api=gpu_api, tensor_cores=tensor_cores, engine=_name(engine),
                            cost_model=_name(cost_model))
    if target == "accel" and cfg is None:
        raise PipelineError("target 'accel' needs an accelerator config (--config NAME)")
    c = Compilation(model, options, cfg, input_shapes, cost_model, progress)
    for compiler_pass in PASSES:
        if target in compiler_pass.targets:
            c = compiler_pass.run(c)
    assert c.model is not None and c.graph is not None
    return CompiledModel(c.model, c.graph, c.current, list(c.steps), cfg, options, c.refused, input_shapes)


def _name(thing: str | Engine | CostModel) -> str:
    return thing if isinstance(thing, str) else thing.name


def load_compiled(path: str | Path, progress: bool = False) -> CompiledModel:
    """Rebuild a model written by `CompiledModel.save` (same model, config, options and input shapes)."""
    path = Path(path)
    settings = read_settings(path)
    if not (path / "model.onnx").is_file():
        raise PipelineError(f"compiled-model folder '{path}' has {path / 'settings.json'} but no model.onnx; "
                            "compile the model again with `tensorweave compile -o`")
    o = settings.options
    return compile_model(path / "model.onnx", settings.config, o.target, settings.input_shapes or None,
                         progress=progress, gpu_api=o.gpu_api, tensor_cores=o.tensor_cores, engine=o.engine,
                         cost_model=o.cost_model)
