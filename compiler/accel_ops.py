"""The operations the accelerator runs: one record each, read by the partitioner and the pipeline.

A record says which float ONNX ops a quantized layer of its kind is built around, how the partitioner
reads the op's weight and attributes (`match`), the fused node it becomes (`node_op`, in domain
`tensorweave.accel`), whether a config can run it (`supports`), how to compile it (`compile`, the
accelerator compiler's `compile_conv` / `compile_matmul`), and its MACs per output element (for reports).
Adding an operation to the accelerator is one record in `ACCEL_OPS` (and its kernel in compiler/accel).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..configs import AccelConfig
from ..contract.engine import CostModel
from . import accel
from .graph import Graph, Node

__all__ = ["ACCEL_OPS", "AccelOp", "Matched", "accel_op", "for_node", "for_onnx"]


@dataclass(frozen=True)
class Matched:
    """What `AccelOp.match` reads off a float op: the int8 weight in the kernel's layout, its quantization axis
    in that layout, the output-channel axis, and the attributes the fused node carries (conv geometry)."""

    weight: np.ndarray
    weight_axis: int
    out_axis: int
    attrs: dict[str, Any]


Match = Callable[[Graph, Node, np.ndarray, int], "Matched | None"]
Supports = Callable[[AccelConfig, Sequence[int], Sequence[int], Mapping[str, Any]], "str | None"]
Compile = Callable[[AccelConfig, Sequence[int], np.ndarray, "np.ndarray | None", accel.Requant, Mapping[str, Any],
                    "str | CostModel"], accel.AccelKernel]


@dataclass(frozen=True)
class AccelOp:
    """One accelerator operation (see the module docstring)."""

    name: str                                  # LayerMatch.kind
    node_op: str                               # the fused node's op type (domain tensorweave.accel)
    onnx_ops: tuple[str, ...]                  # the float ops of the quantized layers it matches
    match: Match                               # (graph, op, int8 weight, its axis) -> Matched, or None
    supports: Supports                         # (config, x shape, weight shape, attrs) -> None or why not
    compile: Compile                           # (config, x shape, weight, bias, requant, attrs, cost model)
    reduction: Callable[[Sequence[int]], int]  # MACs per output element, from the weight's shape


# ---- conv --------------------------------------------------------------------------------------------
def _conv_match(graph: Graph, op: Node, weight: np.ndarray, axis: int) -> Matched | None:
    if weight.ndim != 4 or op.attr("auto_pad", "NOTSET") != "NOTSET":
        return None
    attrs = {"strides": tuple(op.attr("strides", [1, 1])), "pads": tuple(op.attr("pads", [0, 0, 0, 0])),
             "dilations": tuple(op.attr("dilations", [1, 1])), "group": int(op.attr("group", 1))}
    return Matched(weight, axis, 0, attrs)


def conv_spec(x_shape: Sequence[int], weight_shape: Sequence[int], attrs: Mapping[str, Any]) -> accel.ConvSpec:
    """The accelerator's ConvSpec of an NCHW conv with ONNX attributes `attrs`."""
    n, c, h, w = x_shape
    k, _, r, s = weight_shape
    # ONNX pads are (top, left, bottom, right) for 2-D: x1_begin, x2_begin, x1_end, x2_end
    return accel.ConvSpec(batch=n, in_channels=c, height=h, width=w, out_channels=k, kernel=(r, s),
                          stride=tuple(attrs.get("strides", (1, 1))), pads=tuple(attrs.get("pads", (0, 0, 0, 0))),
                          dilation=tuple(attrs.get("dilations", (1, 1))), groups=int(attrs.get("group", 1)))


def _conv_supports(config: AccelConfig, x_shape: Sequence[int], weight_shape: Sequence[int],
                   attrs: Mapping[str, Any]) -> str | None:
    if len(x_shape) != 4:
        return f"a {len(x_shape) - 2}-D convolution (the accelerator runs 2-D ones)"
    return accel.unsupported_reason(config, conv_spec(x_shape, weight_shape, attrs))


def _conv_compile(config: AccelConfig, x_shape: Sequence[int], weight: np.ndarray, bias: np.ndarray | None,
                  requant: accel.Requant, attrs: Mapping[str, Any], cost_model: str | CostModel) -> accel.AccelKernel:
    return accel.compile_conv(config, conv_spec(x_shape, weight.shape, attrs), weight, bias, requant,
                              cost_model=cost_model)


# ---- matmul (Gemm, MatMul) ---------------------------------------------------------------------------
def _matmul_match(graph: Graph, op: Node, weight: np.ndarray, axis: int) -> Matched | None:
    if weight.ndim != 2:
        return None
    if op.op == "Gemm":
        if op.attr("transA", 0) or op.attr("alpha", 1.0) != 1.0 or op.attr("beta", 1.0) != 1.0:
            return None
        if graph.types[op.inputs[0]].rank != 2:
            return None
        if op.attr("transB", 0):
            weight, axis = weight.T, 1 - axis
    return Matched(weight, axis, 1, {})


def matmul_dims(x_shape: Sequence[int], weight_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(m, k, n, batch) of x (batch, m, k) or (m, k) times a (k, n) weight."""
    batch = x_shape[0] if len(x_shape) == 3 else 1
    return x_shape[-2], x_shape[-1], weight_shape[1], batch


def _matmul_supports(config: AccelConfig, x_shape: Sequence[int], weight_shape: Sequence[int],
                     attrs: Mapping[str, Any]) -> str | None:
    if len(x_shape) not in (2, 3):
        return f"a MatMul input of rank {len(x_shape)} (the accelerator runs rank 2 or 3)"
    return accel.unsupported_matmul_reason(config, *matmul_dims(x_shape, weight_shape))


def _matmul_compile(config: AccelConfig, x_shape: Sequence[int], weight: np.ndarray, bias: np.ndarray | None,
                    requant: accel.Requant, attrs: Mapping[str, Any],
                    cost_model: str | CostModel) -> accel.AccelKernel:
    m, k, n, batch = matmul_dims(x_shape, weight.shape)
    return accel.compile_matmul(config, m, k, n, weight, bias, requant, batch=batch, cost_model=cost_model)


ACCEL_OPS: tuple[AccelOp, ...] = (
    AccelOp("conv", "QConv", ("Conv",), _conv_match, _conv_supports, _conv_compile,
            lambda w: int(np.prod(w[1:], dtype=np.int64))),
    AccelOp("matmul", "QMatMul", ("Gemm", "MatMul"), _matmul_match, _matmul_supports, _matmul_compile,
            lambda w: int(w[0])),
)


def for_onnx(op_type: str) -> AccelOp | None:
    """The record whose layers are built around the ONNX op `op_type`, or None."""
    return next((op for op in ACCEL_OPS if op_type in op.onnx_ops), None)


def for_node(node: Node) -> AccelOp:
    """The record of a fused accelerator node."""
    found = next((op for op in ACCEL_OPS if op.node_op == node.op), None)
    if found is None:
        raise accel.AccelError(f"node '{node.name}': '{node.op}' is not an accelerator op "
                               f"({', '.join(op.node_op for op in ACCEL_OPS)})")
    return found


def accel_op(name: str) -> AccelOp:
    """The record named `name` ("conv", "matmul")."""
    found = next((op for op in ACCEL_OPS if op.name == name), None)
    if found is None:
        raise accel.AccelError(f"no accelerator op '{name}' (one of {', '.join(op.name for op in ACCEL_OPS)})")
    return found
