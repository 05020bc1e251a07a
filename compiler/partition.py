"""Partitioning: find the quantized layers the accelerator runs, and fuse each into one graph node.

The pattern (QDQ models as onnxruntime's quantize_static writes them; its QOperator format's QLinearConv
and QLinearMatMul nodes are layers as they are):

    DQ(x_q), DQ(w_q) [, DQ(b_q)] -> Conv | Gemm | MatMul [-> Relu] -> Q  ==>  tensorweave.accel.QConv / QMatMul
    DQ(x_q), DQ(w_q) [, DQ(b_q)] -> Conv | Gemm | MatMul -> Q -> DQ -> Relu -> Q  (both Qs with one scale
                                                                         and zero point: exactly max(q, zp))

Which float ops a layer is built around, how their weights and attributes are read and which fused op
they become is the accelerator-op table, `accel_ops.ACCEL_OPS`; this module only knows the QDQ pattern.

`fuse_accel_layers(graph, supports)` replaces each match that the accelerator can run (`supports(layer)`
returns None) by one node in domain `tensorweave.accel` that reads the int8 `x_q` and writes the int8
output of the Q node. Its attributes carry everything the accelerator compiler needs: int8 weights,
int32 bias, scales, zero point, ReLU, and the convolution geometry. Everything else (Q/DQ nodes, float
ops in between, layers the accelerator refuses) stays as ordinary ONNX nodes for the CPU back end.

A match requires: x_q int8 or uint8 with a scalar scale and a scalar zero point (onnxruntime's
defaults: asymmetric activations; the lowering shifts uint8 into int8, folds the zero point's term into
the bias and pads with it); constant int8 weights with zero points 0 and one scale per output channel
(or one scale); bias absent or the DequantizeLinear of a constant int32 with scale input_scale *
weight_scale (the quantizer's rule); the intermediate float values read by nothing outside the pattern;
Gemm with alpha = beta = 1, transA = 0; MatMul/Gemm weights of rank 2; a Q node to int8 or uint8 with a
scalar scale and zero point.

`match_layers(graph)` also says, for each Conv / Gemm / MatMul that is not such a layer, why not (the
reasons `fuse_accel_layers` returns with the accelerator's own refusals, and `--explain` prints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .accel_ops import accel_op, for_onnx
from .graph import Graph, Node

__all__ = ["ACCEL_DOMAIN", "LayerMatch", "find_layers", "fuse_accel_layers", "match_layers"]

ACCEL_DOMAIN = "tensorweave.accel"
ACTIVATION_TYPES = ("int8", "uint8")


@dataclass(frozen=True, eq=False)
class LayerMatch:
    """One DQ -> Conv/Gemm/MatMul [-> Relu] -> Q pattern, with its integer parameters decoded."""

    kind: str                      # the accelerator op's name (accel_ops.ACCEL_OPS): "conv", "matmul"
    op: Node                       # the Conv / Gemm / MatMul node
    nodes: tuple[Node, ...]        # every node the fused layer replaces (op, relu, Q, private DQs)
    x: str                         # int8 input value (the DQ's input)
    y: str                         # int8 output value (the Q's output)
    weight: np.ndarray             # in the op's layout: conv int8 (K, C/groups, R, S); matmul int8 (k, n)
    bias: np.ndarray | None        # int32 (K,) or None
    input_scale: float
    weight_scales: tuple[float, ...]
    output_scale: float
    output_zero_point: int
    relu: bool
    geometry: dict[str, Any] = field(default_factory=dict)  # attributes the fused node carries (conv geometry)
    input_zero_point: int = 0
    input_dtype: str = "int8"      # x's type: "int8" or "uint8"
    output_dtype: str = "int8"     # y's type

    @property
    def name(self) -> str:
        return self.op.name


def _scalar(graph: Graph, value: str) -> float | None:
    if value not in graph.constants or graph.constants[value].size != 1:
        return None
    return float(graph.constants[value].reshape(()))


def _zero_point(graph: Graph, node: Node) -> np.ndarray | None:
    """The zero point of a Q/DQ node as an array (absent -> 0), or None if it is not a constant."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(1, np.int8)
    return graph.constants.get(node.inputs[2])


def _dq_of(graph: Graph, value: str) -> Node | None:
    node = graph.producer(value)
    return node if node is not None and node.op == "DequantizeLinear" and not node.domain else None


def _activation(graph: Graph, value: str) -> tuple[Node, str, float, int] | str:
    """DQ(x_q) with int8 / uint8 x_q, a scalar scale and a scalar zero point: (dq node, x_q, scale, zero point),
    or why not."""
    dq = _dq_of(graph, value)
    if dq is None:
        producer = graph.producer(value)
        return (f"its input '{value}' is not dequantized int8/uint8 (it comes from "
                f"{'the graph input' if producer is None else producer.op})")
    dtype = graph.types[dq.inputs[0]].dtype
    if dtype not in ACTIVATION_TYPES:
        return f"its input is {dtype} (the accelerator takes int8 or uint8 activations)"
    scale, zp = _scalar(graph, dq.inputs[1]), _zero_point(graph, dq)
    if scale is None or zp is None or zp.size != 1:
        return "its input's scale and zero point are not constant scalars (per-tensor activations needed)"
    return dq, dq.inputs[0], scale, int(zp.reshape(-1)[0])


def _constant_dq(graph: Graph, value: str, dtype: str) -> tuple[Node, np.ndarray, np.ndarray, int] | str:
    """DQ of a constant of `dtype` with zero points 0: (dq node, integers, scales, axis), or why not."""
    dq = _dq_of(graph, value)
    if dq is None or dq.inputs[0] not in graph.constants or dq.inputs[1] not in graph.constants:
        return f"'{value}' is not the dequantization of a constant"
    q = graph.constants[dq.inputs[0]]
    zp = _zero_point(graph, dq)
    if q.dtype != np.dtype(dtype):
        return f"'{value}' dequantizes {q.dtype} (the accelerator takes {dtype})"
    if zp is None or np.any(zp != 0):
        return f"'{value}' has a nonzero zero point (the accelerator takes symmetric {dtype})"
    if dq.attr("block_size", 0):
        return f"'{value}' is block-quantized"
    scales = np.asarray(graph.constants[dq.inputs[1]], np.float32).reshape(-1)
    axis = int(dq.attr("axis", 1))
    return dq, q, scales, axis % max(q.ndim, 1)


def _single_consumer(graph: Graph, value: str, op: str) -> Node | None:
    users = graph.consumers(value)
    if len(users) == 1 and users[0].op == op and not users[0].domain and value not in graph.outputs:
        return users[0]
    return None


def _relu_requantized(graph: Graph, q: Node, scale: float, zero_point: np.ndarray) -> list[Node]:
    """Q(s, zp) -> DQ(s, zp) -> Relu -> Q(s, zp) with one scale and zero point: [DQ, Relu, Q] or [].

    onnxruntime's quantizer gives a Relu's output its input's scale, so this is how a Conv + Relu looks in
    a QDQ model. With equal parameters the tail is exactly max(q, zp): the Relu fuses into the layer.
    """
    dq = _single_consumer(graph, q.outputs[0], "DequantizeLinear")
    if dq is None or _scalar(graph, dq.inputs[1]) != scale:
        return []
    dtype = graph.types[q.outputs[0]].dtype
    zp = _zero_point(graph, dq)
    if zp is None or zp.shape != zero_point.shape or np.any(zp != zero_point):
        return []
    relu = _single_consumer(graph, dq.outputs[0], "Relu")
    q2 = relu and _single_consumer(graph, relu.outputs[0], "QuantizeLinear")
    if relu is None or not q2 or _scalar(graph, q2.inputs[1]) != scale or graph.types[q2.outputs[0]].dtype != dtype:
        return []
    zp2 = _zero_point(graph, q2)
    if zp2 is None or zp2.shape != zero_point.shape or np.any(zp2 != zero_point) or q2.attr("saturate", 1) != 1:
        return []
    return [dq, relu, q2]


def _match(graph: Graph, op: Node) -> LayerMatch | str | None:
    """The layer built around `op`, or why `op` (a Conv / Gemm / MatMul) is not one; None for other ops."""
    if op.op in QOPERATOR_OPS and not op.domain:
        return _match_qlinear(graph, op)
    kind = None if op.domain else for_onnx(op.op)
    if kind is None:
        return None
    act = _activation(graph, op.inputs[0])
    if isinstance(act, str):
        return act
    weight = _constant_dq(graph, op.inputs[1], "int8") if len(op.inputs) > 1 else "it has no weight input"
    if isinstance(weight, str):
        return f"its weight: {weight}"
    dq_x, x, s_in, zp_in = act
    dq_w, w, w_scales, w_axis = weight
    nodes = [op]
    # the optional Relu, then the Q
    tail = op.outputs[0]
    relu = _single_consumer(graph, tail, "Relu")
    if relu is not None:
        nodes.append(relu)
        tail = relu.outputs[0]
    q = _single_consumer(graph, tail, "QuantizeLinear")
    if q is None:
        users = graph.consumers(tail)
        return (f"its output is not quantized (read by {', '.join(sorted({u.op for u in users})) or 'no node'}"
                f"{', and a graph output' if tail in graph.outputs else ''}; the accelerator writes int8/uint8)")
    out_dtype = graph.types[q.outputs[0]].dtype
    if out_dtype not in ACTIVATION_TYPES:
        return f"its output is quantized to {out_dtype} (the accelerator writes int8 or uint8)"
    s_out, zp_out = _scalar(graph, q.inputs[1]), _zero_point(graph, q)
    if s_out is None or zp_out is None or zp_out.size != 1:
        return "its output's scale and zero point are not constant scalars"
    if q.attr("saturate", 1) != 1:
        return "its QuantizeLinear does not saturate"
    nodes.append(q)
    if relu is None:
        requantized_relu = _relu_requantized(graph, q, s_out, zp_out)
        if requantized_relu:
            nodes += requantized_relu
            q, relu = requantized_relu[-1], requantized_relu[1]

    matched = kind.match(graph, op, w, w_axis)
    if matched is None:
        return f"the accelerator's {kind.name} does not take this {op.op}'s attributes or weight rank"
    w, w_axis, out_axis, geometry = matched.weight, matched.weight_axis, matched.out_axis, matched.attrs
    k_out = w.shape[out_axis]
    if w_scales.size not in (1, k_out) or (w_scales.size > 1 and w_axis != out_axis):
        return "its weight scales are not per tensor or per output channel"

    bias = None
    bias_value = op.inputs[2] if len(op.inputs) > 2 else ""
    if bias_value:
        b = _constant_dq(graph, bias_value, "int32")
        if isinstance(b, str):
            return f"its bias: {b}"
        dq_b, bias, b_scales, _ = b
        want = np.float32(s_in) * np.broadcast_to(w_scales, (k_out,)).astype(np.float32)
        if bias.shape != (k_out,) or not np.allclose(np.broadcast_to(b_scales, (k_out,)), want, rtol=1e-6, atol=0):
            return "its bias scale is not input scale x weight scale"
        nodes.append(dq_b)
    nodes.append(dq_w)
    if all(c.name in {n.name for n in nodes} for c in graph.consumers(dq_x.outputs[0])):
        nodes.append(dq_x)
    # every float intermediate must stay inside the pattern
    inside = {n.name for n in nodes}
    for n in nodes:
        if n is q or n is dq_x:
            continue
        for v in n.outputs:
            if v in graph.outputs or any(c.name not in inside for c in graph.consumers(v)):
                return f"its float value '{v}' is also read outside the layer"
    ordered = tuple(n for n in graph.nodes if n.name in inside)
    return LayerMatch(kind=kind.name, op=op, nodes=ordered, x=x, y=q.outputs[0], weight=np.ascontiguousarray(w),
                      bias=None if bias is None else bias.astype(np.int32), input_scale=s_in,
                      weight_scales=tuple(float(s) for s in w_scales), output_scale=s_out,
                      output_zero_point=int(zp_out.reshape(-1)[0]), relu=relu is not None, geometry=geometry,
                      input_zero_point=zp_in, input_dtype=graph.types[x].dtype, output_dtype=out_dtype)


QOPERATOR_OPS = {"QLinearConv": "conv", "QLinearMatMul": "matmul"}


def _const_int(graph: Graph, value: str) -> int | None:
    """A scalar integer constant (an absent optional input is 0), or None."""
    if not value:
        return 0
    array = graph.constants.get(value)
    return int(array.reshape(-1)[0]) if array is not None and array.size == 1 else None


def _match_qlinear(graph: Graph, op: Node) -> LayerMatch | str:
    """A QOperator-format layer (QLinearConv / QLinearMatMul): one node holding the same parameters as a QDQ
    layer, read off its inputs (x, x scale, x zero point, w, w scale, w zero point, y scale, y zero point[, B])."""
    kind = accel_op(QOPERATOR_OPS[op.op])
    ins = [*op.inputs, *[""] * (9 - len(op.inputs))]
    x, y = ins[0], op.outputs[0]
    in_dtype, out_dtype = graph.types[x].dtype, graph.types[y].dtype
    if in_dtype not in ACTIVATION_TYPES or out_dtype not in ACTIVATION_TYPES:
        return f"it reads {in_dtype} and writes {out_dtype} (the accelerator takes int8 or uint8)"
    s_in, s_out = _scalar(graph, ins[1]), _scalar(graph, ins[6])
    zp_in, zp_out = _const_int(graph, ins[2]), _const_int(graph, ins[7])
    if s_in is None or s_out is None or zp_in is None or zp_out is None:
        return "its activation scales and zero points are not constant scalars"
    w, w_scales = graph.constants.get(ins[3]), graph.constants.get(ins[4])
    if w is None or w_scales is None or w.dtype != np.int8:
        return "its weight is not a constant int8 tensor with constant scales"
    w_zp = graph.constants.get(ins[5]) if ins[5] else np.zeros(1, np.int8)
    if w_zp is None or np.any(w_zp != 0):
        return "its weight has a nonzero zero point (the accelerator takes symmetric int8)"
    axis = 0 if kind.name == "conv" else 1  # per output channel: conv's first axis, matmul's columns
    matched = kind.match(graph, op, w, axis)
    if matched is None:
        return f"the accelerator's {kind.name} does not take this {op.op}'s attributes or weight rank"
    weight, out_axis = matched.weight, matched.out_axis
    scales = np.asarray(w_scales, np.float32).reshape(-1)
    if scales.size not in (1, weight.shape[out_axis]):
        return "its weight scales are not per tensor or per output channel"
    bias = graph.constants.get(ins[8]) if ins[8] else None
    if ins[8] and (bias is None or bias.dtype != np.int32 or bias.shape != (weight.shape[out_axis],)):
        return "its bias is not a constant int32 per output channel"
    return LayerMatch(kind=kind.name, op=op, nodes=(op,), x=x, y=y, weight=np.ascontiguousarray(weight),
                      bias=bias, input_scale=s_in, weight_scales=tuple(float(v) for v in scales),
                      output_scale=s_out, output_zero_point=zp_out, relu=False, geometry=matched.attrs,
                      input_zero_point=zp_in, input_dtype=in_dtype, output_dtype=out_dtype)


def match_layers(graph: Graph) -> tuple[list[LayerMatch], dict[str, str]]:
    """Every quantized Conv/Gemm/MatMul layer of the pattern in graph order, and for each Conv/Gemm/MatMul
    that is not one, why not (by node name)."""
    found, why = [], {}
    for node in graph.nodes:
        m = _match(graph, node)
        if isinstance(m, LayerMatch):
            found.append(m)
        elif m is not None:
            why[node.name] = (f"{m}" if node.op in QOPERATOR_OPS
                              else f"not a quantized layer the accelerator runs: {m}")
    return found, why


def find_layers(graph: Graph) -> list[LayerMatch]:
    """Every quantized Conv/Gemm/MatMul layer of the pattern, in graph order."""
    return match_layers(graph)[0]


def fused_node(match: LayerMatch) -> Node:
    """The single `tensorweave.accel` node that stands for a matched layer."""
    attrs: dict[str, Any] = {"weight": match.weight, "input_scale": match.input_scale,
                             "weight_scales": list(match.weight_scales), "output_scale": match.output_scale,
                             "output_zero_point": match.output_zero_point, "relu": int(match.relu),
                             "source_op": match.op.op, "fuses": [n.name for n in match.nodes]}
    if (match.input_dtype, match.output_dtype, match.input_zero_point) != ("int8", "int8", 0):
        # only where they differ from the int8 / zero point 0 convention: fused nodes of such models stay as before
        attrs.update(input_zero_point=match.input_zero_point, input_dtype=match.input_dtype,
                     output_dtype=match.output_dtype)
    if match.bias is not None:
        attrs["bias"] = match.bias
    for key, value in match.geometry.items():
        attrs[key] = list(value) if isinstance(value, tuple) else value
    return Node(accel_op(match.kind).node_op, match.name, (match.x,), (match.y,), attrs, domain=ACCEL_DOMAIN)


Supports = Callable[[Graph, LayerMatch], "str | None"]


def fuse_accel_layers(graph: Graph, supports: Supports) -> tuple[Graph, dict[str, str]]:
    """Replace each matched layer that `supports` accepts (returns None) by its fused node.

    Returns the new graph and, for each Conv / Gemm / MatMul left on the CPU, why: the reason `supports` gave
    for a matched layer, or why the node is not a layer of the pattern (`match_layers`).
    The fused node takes the place of the layer's Q node, after everything the layer reads.
    """
    matches, refused = match_layers(graph)
    replace: dict[str, Node] = {}     # name of a layer's Q node -> fused node
    drop: set[str] = set()
    for match in matches:
        reason = supports(graph, match)
        if reason is not None:
            refused[match.name] = reason
            continue
        names = {n.name for n in match.nodes}
        if names & drop:
            refused[match.name] = "it shares nodes with a layer fused before it"
            continue
        drop |= names
        replace[match.nodes[-1].name] = fused_node(match)  # nodes are in graph order: the Q node is last
    nodes = []
    for node in graph.nodes:
        if node.name in replace:
            nodes.append(replace[node.name])
        elif node.name not in drop:
            nodes.append(node)
    return graph.replace(nodes=tuple(nodes)).prune(), refused
