"""Reports on a compiled model: the per-layer rows (`LayerReport`), the table and the explanation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..configs import AccelConfig
from .accel_ops import for_node
from .graph import Graph, Node
from .partition import ACCEL_DOMAIN

if TYPE_CHECKING:
    from .step import Step

COMPUTE_OPS = ("Conv", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul")  # what the matcher considers

__all__ = ["LayerReport", "explain", "layer_reports", "node_macs", "node_placements", "offload_warning", "table"]


def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of a Conv / ConvInteger / QLinearConv / Gemm / MatMul or fused accelerator node."""
    if node.domain == ACCEL_DOMAIN:
        out = graph.types[node.outputs[0]].shape
        return int(np.prod(out, dtype=np.int64)) * for_node(node).reduction(node.attrs["weight"].shape)
    if node.op in ("Conv", "ConvInteger", "QLinearConv"):
        w_shape = graph.types[node.inputs[3 if node.op == "QLinearConv" else 1]].shape
        out = graph.types[node.outputs[0]].shape
        return int(np.prod(out, dtype=np.int64) * np.prod(w_shape[1:], dtype=np.int64))
    if node.op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
        out = graph.types[node.outputs[0]].shape
        if node.op == "Gemm":
            a = graph.types[node.inputs[0]].shape
            k = a[0] if node.attr("transA", 0) else a[-1]
        else:
            k = graph.types[node.inputs[3 if node.op == "QLinearMatMul" else 0]].shape[-1]
        return int(np.prod(out, dtype=np.int64) * k)
    return 0


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


class ReportedModel(Protocol):
    """What the reports read of a compiled model (`compiled.CompiledModel`); a protocol, so that the model
    can use the reports without an import cycle."""

    steps: list[Step]
    layers: list[LayerReport]
    graph: Graph
    fused: Graph
    config: AccelConfig | None
    refused: dict[str, str]

    @property
    def target(self) -> str: ...

    @property
    def total_cycles(self) -> int: ...


def _accel_row(step: Step, fused: Graph, config: AccelConfig) -> LayerReport:
    node = step.graph.nodes[0]
    macs = node_macs(fused, node)
    kernel = step.kernel
    cycles = int(kernel.estimated_cycles)
    insns = {k.split(":", 1)[1]: v for k, v in kernel.instruction_counts().items() if k.startswith("unit:")}
    return LayerReport(node.name, node.attrs["source_op"] + (" + Relu" if node.attrs["relu"] else ""), "accel",
                       macs, cycles, macs / (cycles * config.macs_per_cycle), insns)


def layer_reports(steps: Sequence[Step], fused: Graph, config: AccelConfig | None,
                  refused: dict[str, str]) -> list[LayerReport]:
    """A row per accelerator layer, per CPU compute op, and one per CPU step for its other ops."""
    rows = []
    for step in steps:
        if step.target == "accel":
            assert config is not None, "accelerator steps need a config"
            rows.append(_accel_row(step, fused, config))
            continue
        others: dict[str, int] = {}
        for node in step.graph.nodes:
            macs = node_macs(step.graph, node)
            if macs:
                note = refused.get(node.name, "")
                rows.append(LayerReport(node.name, node.op, step.target, macs,
                                        note=f"not offloaded: {note}" if note else ""))
            else:
                others[node.op] = others.get(node.op, 0) + 1
        if others:
            total = sum(others.values())
            rows.append(LayerReport(step.name, f"{total} other op{'s' * (total > 1)}", step.target,
                                    note=", ".join(f"{n} {op}" for op, n in others.items())))
    return rows


def table(model: ReportedModel, timings: bool = False) -> str:
    """The per-layer table: layer, op, where it runs, MACs, estimated cycles, utilization."""
    layers = model.layers
    counted = timings and any(r.run_cycles is not None for r in layers)
    head = (["layer", "op", "where", "MACs", "est. cycles", "util."] + (["host s"] if timings else [])
            + (["RTL cycles"] if counted else []))
    rows = []
    for r in layers:
        row = [r.layer, r.op, r.target, f"{r.macs:,}" if r.macs else "",
               f"{r.cycles:,}" if r.cycles is not None else "",
               f"{r.utilization:.1%}" if r.utilization is not None else ""]
        row += [f"{r.seconds:.3f}"] if timings else []
        rows.append(row + ([f"{r.run_cycles:,}" if r.run_cycles is not None else ""] if counted else []))
    accel = [r for r in layers if r.target == "accel"]
    macs_accel = sum(r.macs for r in accel)
    macs_all = sum(r.macs for r in layers)
    total_cycles = model.total_cycles
    util = macs_accel / (total_cycles * model.config.macs_per_cycle) if model.config and total_cycles else None
    total = ["total", "", f"{len(accel)} accel", f"{macs_all:,}", f"{total_cycles:,}" if accel else "",
             f"{util:.1%}" if util is not None else ""]
    total += [f"{sum(r.seconds for r in layers):.3f}"] if timings else []
    rows.append(total + ([f"{sum(r.run_cycles or 0 for r in layers):,}"] if counted else []))
    share = f"{macs_accel / macs_all:.1%}" if macs_all else "0%"
    text = _format_table(head, rows) + f"\n{share} of the MACs run on the accelerator"
    warning = offload_warning(model)
    if warning:
        text = warning + "\n" + text + "\n" + warning
    for name, reason in model.refused.items():
        text += f"\n{name} stays on the CPU: {_clip(reason, 100)}"
    if model.target == "accel" and not any(n.op == "QuantizeLinear" for n in model.graph.nodes):
        text += " (the model is not quantized: run `tensorweave quantize` first to offload layers)"
    return text


def explain(model: ReportedModel) -> str:
    """Which op runs where, the accelerator's tiles and instruction counts, cycles per layer and a total."""
    config = model.config
    cfg = f"config {config.name}, {config.macs_per_cycle} MAC/cycle" if config else "no accelerator"
    warning = offload_warning(model)
    lines = [warning] if warning else []
    lines += [f"model {model.graph.name}: {len(model.graph.nodes)} nodes, target {model.target} ({cfg})", ""]
    for step in model.steps:
        if step.target == "accel":
            node = step.graph.nodes[0]
            lines.append(f"[accel] {node.name}: {node.attrs['source_op']} "
                         f"{model.fused.types[node.inputs[0]]} -> {model.fused.types[node.outputs[0]]}")
            lines += ["    " + line for line in str(step.kernel.explain()).rstrip().splitlines()]
        else:
            ops = ", ".join(f"{n.op}" for n in step.graph.nodes)
            lines.append(f"{f'[{step.target}]':8s}{step.name}: {len(step.graph.nodes)} nodes: {_clip(ops, 100)}")
        lines.append("")
    if model.refused:
        lines.append("Conv/Gemm/MatMul layers left on the CPU, and why:")
        lines += [f"    {name}: {reason}" for name, reason in model.refused.items()]
        lines.append("")
    placements = node_placements(model)
    lines.append(f"every node ({len(placements)}), where it runs and why:")
    width = max((len(n.name) for n, _, _ in placements), default=0)
    lines += [f"    {n.name.ljust(width)}  {n.op:20s} {where:7s} {why}" for n, where, why in placements]
    lines.append("")
    lines.append(table(model))
    return "\n".join(lines)


def node_placements(model: ReportedModel) -> list[tuple[Node, str, str]]:
    """(node, where, why) for every node of the model as read: "accel" (in which accelerator layer), the
    step's target ("cpu", "gpu") with the reason it is not on the accelerator, or "removed" (read by no output)."""
    where: dict[str, tuple[str, str]] = {}
    for step in model.steps:
        for node in step.graph.nodes:
            if node.domain == ACCEL_DOMAIN:
                for name in node.attrs.get("fuses", [node.name]):
                    where[name] = ("accel", f"accelerator layer {node.name} ({node.op})")
            elif model.target != "accel":
                where[node.name] = (step.target, f"target {model.target}")
            elif node.name in model.refused:
                where[node.name] = (step.target, model.refused[node.name])
            elif node.op in COMPUTE_OPS and not node.domain:
                where[node.name] = (step.target, "not part of an accelerator layer")
            else:
                where[node.name] = (step.target, f"no accelerator op for {node.op}")
    return [(n, *where.get(n.name, ("removed", "no graph output reads it (folded or pruned)")))
            for n in model.graph.nodes]


def offload_warning(model: ReportedModel) -> str | None:
    """A loud line when a compile for the accelerator offloaded no MACs (or the model has none), saying why."""
    if model.target != "accel":
        return None
    macs_all = sum(r.macs for r in model.layers)
    if any(r.target == "accel" and r.macs for r in model.layers):
        return None
    head = "WARNING: 0% of the MACs run on the accelerator (everything runs on the CPU): "
    if not any(n.op == "QuantizeLinear" for n in model.graph.nodes):
        return head + ("the model is not quantized: quantize it first (`tensorweave quantize`, or onnxruntime's "
                       "quantize_static)")
    if not macs_all:
        return head + "the model has no Conv, Gemm or MatMul"
    compute = [n for n in model.graph.nodes if n.op in COMPUTE_OPS and not n.domain]
    refused = [(n.name, model.refused[n.name]) for n in compute if n.name in model.refused]
    if not refused:
        return head + "no layer matched the accelerator's patterns"
    name, reason = refused[0]
    more = f" ({len(refused) - 1} more of {len(compute)} Conv/Gemm/MatMul refused; see --explain)" if len(refused) > 1 \
        else ""
    return head + f"{name}: {_clip(reason, 160)}{more}"


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
