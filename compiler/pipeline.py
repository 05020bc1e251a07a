"""The compile pipeline: ONNX -> graph IR -> partition -> accelerator kernels + CPU code -> a runnable model.

Read top to bottom, `compile_model` is:

    graph = from_onnx(model, input_shapes)                      # frontend: typed static graph
    for name, graph_pass in graph_passes(config, target, refused):  # fuse_accel_layers (accel), prune
        graph = graph_pass(graph)
    steps = split into accelerator layers and CPU segments      # in graph order
    accel layer -> compile_conv / compile_matmul (tensorweave.compiler.accel)
    CPU segment -> compile_graph(subgraph)     (tensorweave.compiler.backends.cpu)

The result, `CompiledModel`, runs with `.run(inputs, engine=...)`; `.explain()` prints which op runs
where, the accelerator's tiling and instruction counts, estimated cycles per layer and a total.
`.save(dir)` writes the model, the settings and each accelerator layer's program; `load_compiled(dir)`
rebuilds from them (compiling is deterministic and the CPU code is cached by content hash).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..configs import AccelConfig, load_config
from ..errors import TensorweaveError
from .frontend import from_onnx, load_model
from .graph import Graph, Node
from .partition import ACCEL_DOMAIN, LayerMatch, fuse_accel_layers

__all__ = ["CompiledModel", "LayerReport", "PipelineError", "Step", "compile_model", "load_compiled", "node_macs"]

TARGETS = ("accel", "cpu", "gpu")
ENGINES = ("functional", "rtl")


class PipelineError(TensorweaveError):
    """A model that cannot be compiled or run as asked (the message names the layer or setting)."""


def _accel():
    try:
        from . import accel
    except ImportError as exc:
        raise PipelineError(f"the accelerator compiler (tensorweave.compiler.accel) is not available: {exc}") from exc
    return accel


def _cpu():
    try:
        from .backends import cpu
    except ImportError as exc:
        raise PipelineError(f"the CPU back end (tensorweave.compiler.backends.cpu) is not available: {exc}") from exc
    return cpu


# ---- MACs of compute ops (for reports; CPU and accelerator alike) -----------------------------------
def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of a Conv / ConvInteger / QLinearConv / Gemm / MatMul or fused accelerator node."""
    if node.op in ("Conv", "ConvInteger", "QLinearConv", "QConv"):
        w_index = 3 if node.op == "QLinearConv" else 1
        w_shape = node.attrs["weight"].shape if node.op == "QConv" else graph.types[node.inputs[w_index]].shape
        out = graph.types[node.outputs[0]].shape
        return int(np.prod(out, dtype=np.int64) * np.prod(w_shape[1:], dtype=np.int64))
    if node.op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "QMatMul"):
        out = graph.types[node.outputs[0]].shape
        if node.op == "QMatMul":
            k = node.attrs["weight"].shape[0]
        elif node.op == "Gemm":
            a = graph.types[node.inputs[0]].shape
            k = a[0] if node.attr("transA", 0) else a[-1]
        else:
            k = graph.types[node.inputs[3 if node.op == "QLinearMatMul" else 0]].shape[-1]
        return int(np.prod(out, dtype=np.int64) * k)
    return 0


# ---- building accelerator kernels from fused nodes ---------------------------------------------------
def _requant(accel, node: Node):
    return accel.Requant(input_scale=float(node.attrs["input_scale"]),
                         weight_scales=tuple(float(s) for s in node.attrs["weight_scales"]),
                         output_scale=float(node.attrs["output_scale"]),
                         output_zero_point=int(node.attrs["output_zero_point"]), relu=bool(node.attrs["relu"]))


def _conv_spec(accel, x_shape: Sequence[int], weight_shape: Sequence[int], attrs: Mapping[str, Any]):
    n, c, h, w = x_shape
    k, _, r, s = weight_shape
    pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
    # ONNX pads are (top, left, bottom, right) for 2-D: x1_begin, x2_begin, x1_end, x2_end
    return accel.ConvSpec(batch=n, in_channels=c, height=h, width=w, out_channels=k, kernel=(r, s),
                          stride=tuple(attrs.get("strides", (1, 1))), pads=pads,
                          dilation=tuple(attrs.get("dilations", (1, 1))), groups=int(attrs.get("group", 1)))


def supported_on(config: AccelConfig):
    """The partitioner's predicate: None when the accelerator can run a matched layer, else the reason."""
    def supports(graph: Graph, match: LayerMatch) -> str | None:
        accel = _accel()
        x_shape = graph.types[match.x].shape
        if match.kind == "conv":
            if len(x_shape) != 4:
                return f"a {len(x_shape) - 2}-D convolution (the accelerator runs 2-D ones)"
            return accel.unsupported_reason(config, _conv_spec(accel, x_shape, match.weight.shape, match.geometry))
        if len(x_shape) not in (2, 3):
            return f"a MatMul input of rank {len(x_shape)} (the accelerator runs rank 2 or 3)"
        reason = getattr(accel, "unsupported_matmul_reason", None)
        return reason(config, *_matmul_dims(x_shape, match.weight.shape)) if reason else None
    return supports


def _matmul_dims(x_shape: Sequence[int], w_shape: Sequence[int]) -> tuple[int, int, int, int]:
    batch = x_shape[0] if len(x_shape) == 3 else 1
    return x_shape[-2], x_shape[-1], w_shape[1], batch


def _build_kernel(config: AccelConfig, graph: Graph, node: Node):
    accel = _accel()
    x_shape = graph.types[node.inputs[0]].shape
    bias = node.attrs.get("bias")
    requant = _requant(accel, node)
    try:
        if node.op == "QConv":
            spec = _conv_spec(accel, x_shape, node.attrs["weight"].shape, node.attrs)
            return accel.compile_conv(config, spec, np.asarray(node.attrs["weight"]), bias, requant)
        m, k, n, batch = _matmul_dims(x_shape, node.attrs["weight"].shape)
        return accel.compile_matmul(config, m, k, n, np.asarray(node.attrs["weight"]), bias, requant, batch=batch)
    except TensorweaveError as exc:
        raise PipelineError(f"layer '{node.name}' ({node.attrs['source_op']}): {exc}") from exc


# ---- the plan ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class Step:
    """One unit of execution: an accelerator layer (one fused node) or a CPU segment (a subgraph)."""

    target: str                              # "accel" or "cpu"
    name: str
    graph: Graph                             # the nodes this step runs, as a graph
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kernel: Any = None                       # AccelKernel (accel steps)
    executable: Any = None                   # CPUExecutable (cpu steps)


@dataclass
class LayerReport:
    """One row of the per-layer table: a compute op (or other op group) and where it ran."""

    layer: str
    op: str
    target: str
    macs: int = 0
    cycles: int | None = None                # estimated accelerator cycles
    utilization: float | None = None
    insns: dict[str, int] = field(default_factory=dict)
    note: str = ""
    seconds: float = 0.0                     # host time of the last run (simulation or CPU code)
    run_cycles: int | None = None            # cycles the engine counted in the last run (RTL), if it counts


def _estimate(kernel, macs: int, config: AccelConfig) -> tuple[int | None, float | None, dict[str, int]]:
    """Estimated cycles, utilization (useful MACs / (cycles x MACs per cycle)) and instructions per unit."""
    if getattr(kernel, "estimated_cycles", None):
        counts = kernel.instruction_counts() if hasattr(kernel, "instruction_counts") else {}
        cycles = int(kernel.estimated_cycles)
        insns = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("unit:")}
        return cycles, macs / (cycles * config.macs_per_cycle), insns
    from ..sim.cycle import estimate_cycles
    report = estimate_cycles(kernel.program)
    cycles, insns = report.cycles, dict(report.insns)
    utilization = macs / (cycles * config.macs_per_cycle) if cycles else None
    return cycles, utilization, insns


class CompiledModel:
    """A model compiled for one target: the steps in order, runnable and explainable."""

    def __init__(self, model: onnx.ModelProto, graph: Graph, fused: Graph, steps: list[Step],
                 config: AccelConfig | None, target: str, refused: Mapping[str, str],
                 input_shapes: Mapping[str, Sequence[int]] | None) -> None:
        self.model, self.graph, self.fused, self.steps = model, graph, fused, steps
        self.config, self.target, self.refused = config, target, dict(refused)
        self.input_shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()}
        self.layers = self._layers()

    # -- reports --
    def _layers(self) -> list[LayerReport]:
        rows = []
        for step in self.steps:
            if step.target == "accel":
                assert self.config is not None, "accelerator steps need a config"
                node = step.graph.nodes[0]
                macs = node_macs(self.fused, node)
                cycles, util, insns = _estimate(step.kernel, macs, self.config)
                rows.append(LayerReport(node.name, node.attrs["source_op"] + (" + Relu" if node.attrs["relu"] else ""),
                                        "accel", macs, cycles, util, insns))
                continue
            others: dict[str, int] = {}
            for node in step.graph.nodes:
                macs = node_macs(step.graph, node)
                if macs:
                    note = self.refused.get(node.name, "")
                    rows.append(LayerReport(node.name, node.op, step.target, macs,
                                            note=f"not offloaded: {note}" if note else ""))
                else:
                    others[node.op] = others.get(node.op, 0) + 1
            if others:
                total = sum(others.values())
                rows.append(LayerReport(step.name, f"{total} other op{'s' * (total > 1)}", step.target,
                                        note=", ".join(f"{n} {op}" for op, n in others.items())))
        return rows

    @property
    def total_cycles(self) -> int:
        return sum(r.cycles or 0 for r in self.layers)

    def table(self, timings: bool = False) -> str:
        """The per-layer table: layer, op, where it runs, MACs, estimated cycles, utilization."""
        counted = timings and any(r.run_cycles is not None for r in self.layers)
        head = (["layer", "op", "where", "MACs", "est. cycles", "util."] + (["host s"] if timings else [])
                + (["RTL cycles"] if counted else []))
        rows = []
        for r in self.layers:
            row = [r.layer, r.op, r.target, f"{r.macs:,}" if r.macs else "",
                   f"{r.cycles:,}" if r.cycles is not None else "",
                   f"{r.utilization:.1%}" if r.utilization is not None else ""]
            row += [f"{r.seconds:.3f}"] if timings else []
            rows.append(row + ([f"{r.run_cycles:,}" if r.run_cycles is not None else ""] if counted else []))
        accel = [r for r in self.layers if r.target == "accel"]
        macs_accel = sum(r.macs for r in accel)
        macs_all = sum(r.macs for r in self.layers)
        util = (macs_accel / (self.total_cycles * self.config.macs_per_cycle)
                if self.config and self.total_cycles else None)
        total = ["total", "", f"{len(accel)} accel", f"{macs_all:,}", f"{self.total_cycles:,}" if accel else "",
                 f"{util:.1%}" if util is not None else ""]
        total += [f"{sum(r.seconds for r in self.layers):.3f}"] if timings else []
        rows.append(total + ([f"{sum(r.run_cycles or 0 for r in self.layers):,}"] if counted else []))
        share = f"{macs_accel / macs_all:.1%}" if macs_all else "0%"
        text = _format_table(head, rows) + f"\n{share} of the MACs run on the accelerator"
        for name, reason in self.refused.items():
            text += f"\n{name} stays on the CPU: {_clip(reason, 100)}"
        if self.target == "accel" and not any(n.op == "QuantizeLinear" for n in self.graph.nodes):
            text += " (the model is not quantized: run `tensorweave quantize` first to offload layers)"
        return text

    def explain(self) -> str:
        """Which op runs where, the accelerator's tiles and instruction counts, cycles per layer and a total."""
        cfg = f"config {self.config.name}, {self.config.macs_per_cycle} MAC/cycle" if self.config else "no accelerator"
        lines = [f"model {self.graph.name}: {len(self.graph.nodes)} nodes, target {self.target} ({cfg})", ""]
        for step in self.steps:
            if step.target == "accel":
                assert self.config is not None, "accelerator steps need a config"
                node = step.graph.nodes[0]
                lines.append(f"[accel] {node.name}: {node.attrs['source_op']} "
                             f"{self.fused.types[node.inputs[0]]} -> {self.fused.types[node.outputs[0]]}")
                lines += ["    " + line for line in str(step.kernel.explain()).rstrip().splitlines()]
            else:
                ops = ", ".join(f"{n.op}" for n in step.graph.nodes)
                lines.append(f"{f'[{step.target}]':8s}{step.name}: {len(step.graph.nodes)} nodes: {_clip(ops, 100)}")
            lines.append("")
        if self.refused:
            lines.append("matched layers left on the CPU:")
            lines += [f"    {name}: {reason}" for name, reason in self.refused.items()]
            lines.append("")
        lines.append(self.table())
        return "\n".join(lines)

    # -- running --
    def run(self, inputs: Mapping[str, np.ndarray], engine: str = "functional", progress: bool = False
            ) -> dict[str, np.ndarray]:
        """Run every step in order; returns the graph outputs. Per-layer host times land in `layers`."""
        if engine not in ENGINES:
            raise PipelineError(f"engine must be one of {', '.join(ENGINES)}, not '{engine}'")
        values = self._check_inputs(inputs)
        iterator: Any = self.steps
        if progress:
            from tqdm import tqdm
            iterator = tqdm(self.steps, desc="layers", unit="step", leave=False, disable=None)
        seconds: dict[str, float] = {}
        counted: dict[str, int] = {}
        for step in iterator:
            start = time.perf_counter()
            if step.target == "accel":
                (x,) = (values[v] for v in step.inputs)
                y, stats = step.kernel.run(x, engine=engine)
                if getattr(stats, "cycle_source", "") == "engine":
                    counted[step.name] = int(stats.cycles)
                values[step.outputs[0]] = np.asarray(y).reshape(self.fused.types[step.outputs[0]].shape)
            else:
                results = step.executable.run({v: values[v] for v in step.inputs})
                for v in step.outputs:
                    values[v] = results[v]
            seconds[step.name] = time.perf_counter() - start
        for row in self.layers:
            row.seconds = seconds.get(row.layer, 0.0)
            row.run_cycles = counted.get(row.layer)
        return {v: values[v] for v in self.graph.outputs}

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for name in self.graph.inputs:
            if name not in inputs:
                raise PipelineError(f"missing input '{name}' (the model's inputs are {', '.join(self.graph.inputs)})")
            t = self.graph.types[name]
            array = np.asarray(inputs[name])
            if array.shape != t.shape or array.dtype.name != t.dtype:
                raise PipelineError(f"input '{name}' is {array.dtype.name}{list(array.shape)}; the model wants {t}")
            values[name] = array
        return values

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded random inputs: standard normal floats, small non-negative integers."""
        rng = np.random.default_rng(seed)
        out = {}
        for name in self.graph.inputs:
            t = self.graph.types[name]
            kind = np.dtype(t.dtype).kind
            values = rng.standard_normal(t.shape) if kind == "f" else rng.integers(0, 8, t.shape)
            out[name] = values.astype(t.dtype)
        return out

    # -- saving --
    def save(self, path: str | Path) -> Path:
        """Write a directory: model.onnx, settings.json, plan.txt and layers/<name>.twp per accelerator layer."""
        path = Path(path)
        (path / "layers").mkdir(parents=True, exist_ok=True)
        onnx.save(self.model, str(path / "model.onnx"))
        settings = {"target": self.target, "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
                    "config": self.config.to_dict() if self.config else None}
        (path / "settings.json").write_text(json.dumps(settings, indent=1))
        (path / "plan.txt").write_text(self.explain() + "\n")
        for i, step in enumerate(s for s in self.steps if s.target == "accel"):
            step.kernel.program.save(path / "layers" / f"{i:03d}_{_safe(step.name)}.twp")
        return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _format_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    right = {3, 4, 5, 6, 7}

    def fmt(row: Sequence[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(cells)).rstrip()

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows[:-1]),
                      "  ".join("-" * w for w in widths), fmt(rows[-1])])


# ---- the pipeline ------------------------------------------------------------------------------------
def _split(fused: Graph) -> list[tuple[str, list[Node]]]:
    """Graph order, cut into accelerator nodes and maximal runs of CPU nodes between them."""
    steps: list[tuple[str, list[Node]]] = []
    for node in fused.nodes:
        target = "accel" if node.domain == ACCEL_DOMAIN else "cpu"
        if target == "cpu" and steps and steps[-1][0] == "cpu":
            steps[-1][1].append(node)
        else:
            steps.append((target, [node]))
    return steps


GraphPass = Callable[[Graph], Graph]


def graph_passes(config: AccelConfig | None, target: str, refused: dict[str, str]) -> list[tuple[str, GraphPass]]:
    """The graph-level passes for a target, in order, by name; `refused` collects why matched layers stay on the CPU."""
    def fuse(graph: Graph) -> Graph:
        fused, why = fuse_accel_layers(graph, supported_on(config))  # type: ignore[arg-type]
        refused.update(why)
        return fused

    passes: list[tuple[str, GraphPass]] = [("fuse_accel_layers", fuse)] if target == "accel" else []
    return passes + [("prune", Graph.prune)]


def compile_model(model: onnx.ModelProto | str | Path | Graph, config: AccelConfig | str | None = "vta-default",
                  target: str = "accel", input_shapes: Mapping[str, Sequence[int]] | None = None,
                  progress: bool = False, gpu_api: str = "auto", tensor_cores: bool = False) -> CompiledModel:
    """Compile a (QDQ-quantized, for the accelerator) ONNX model for `target` "accel", "cpu" or "gpu"
    (`gpu_api`: auto, opencl or cuda; `tensor_cores`: int8 contractions on CUDA wmma kernels)."""
    if target not in TARGETS:
        raise PipelineError(f"target must be one of {', '.join(TARGETS)}, not '{target}'")
    if isinstance(model, Graph):
        from .frontend import to_onnx
        graph, proto = model, to_onnx(model)
    else:
        proto = load_model(model)
        graph = from_onnx(proto, input_shapes)
    cfg = load_config(config) if isinstance(config, str) else config
    if target == "accel" and cfg is None:
        raise PipelineError("target 'accel' needs an accelerator config (--config NAME)")
    refused: dict[str, str] = {}
    fused = graph
    for _name, graph_pass in graph_passes(cfg, target, refused):
        fused = graph_pass(fused)
    if target == "gpu":  # the whole graph is one GPU step (compiler/backends/gpu; gpu_api: auto, opencl or cuda)
        from .backends.gpu import compile_graph as compile_gpu
        executable = compile_gpu(fused, gpu_api, tensor_cores=tensor_cores)
        gpu_step = Step("gpu", "gpu", fused, fused.inputs, fused.outputs, executable=executable)
        return CompiledModel(proto, graph, fused, [gpu_step], cfg, target, refused, input_shapes)
    cpu = _cpu()
    steps: list[Step] = []
    parts = _split(fused)
    iterator: Any = parts
    if progress:
        from tqdm import tqdm
        iterator = tqdm(parts, desc="compiling", unit="step", leave=False, disable=None)
    for index, (where, nodes) in enumerate(iterator):
        sub = fused.subgraph(nodes, name=f"{fused.name}.{index}")
        if where == "accel":
            node = nodes[0]
            steps.append(Step("accel", node.name, sub, sub.inputs, sub.outputs,
                              kernel=_build_kernel(cfg, fused, node)))  # type: ignore[arg-type]
        else:
            name = f"cpu.{index}" if len(parts) > 1 else "cpu"
            steps.append(Step("cpu", name, sub, sub.inputs, sub.outputs))
    # the CPU segments compile in parallel (one C library each, cached by content hash)
    cpu_steps = [s for s in steps if s.target == "cpu"]
    for step, executable in zip(cpu_steps, cpu.compile_graphs([s.graph for s in cpu_steps]), strict=True):
        step.executable = executable
    return CompiledModel(proto, graph, fused, steps, cfg, target, refused, input_shapes)


def load_compiled(path: str | Path, progress: bool = False) -> CompiledModel:
    """Rebuild a model written by `CompiledModel.save` (same model, config, target and input shapes)."""
    path = Path(path)
    settings_file = path / "settings.json"
    if not settings_file.is_file():
        raise PipelineError(f"'{path}' is not a compiled-model directory (no settings.json)")
    settings = json.loads(settings_file.read_text())
    config = AccelConfig.from_dict(settings["config"], source=str(settings_file)) if settings.get("config") else None
    return compile_model(path / "model.onnx", config, settings["target"], settings.get("input_shapes") or None,
                         progress=progress)
