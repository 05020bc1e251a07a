"""Graph rewrites the CPU back end applies before generating C, in the order of CPU_PIPELINE:
`fold_batchnorm`, `fuse_qdq`, `fuse_relu` (their docstrings state each rule).

QDQ rule: `QuantizeLinear(Conv(DequantizeLinear(xq), DequantizeLinear(wq)[, DequantizeLinear(bq)]))` becomes
`QLinearConv(xq, ..., wq, ..., bq)`; the same with MatMul becomes `QLinearMatMul` (no bias) and with Gemm
(transA=0, alpha=1, beta=1, 1-D bias) ONNX Runtime's `com.microsoft.QGemm`. These are the patterns
onnxruntime's own QDQ transformer fuses, so the fused graph computes what onnxruntime computes: an exact
int32 accumulation and a float32 requantization. A pattern fuses only when every scale and zero point is
a constant, the weights are constant int8/uint8, the bias is a constant int32 with zero point 0, the float
result has no other reader and is not a graph output. The DequantizeLinear nodes left without readers are
pruned.
"""

from __future__ import annotations

from ...graph import Graph, Node

QUANTIZED = ("int8", "uint8")


def _dq(graph: Graph, value: str) -> Node | None:
    node = graph.producer(value) if value else None
    if node is None or node.op != "DequantizeLinear" or node.domain:
        return None
    if not all(v in graph.constants for v in node.inputs[1:] if v):
        return None
    return node


def _single_quantize(graph: Graph, value: str) -> Node | None:
    readers = graph.consumers(value)
    if value in graph.outputs or len(readers) != 1:
        return None
    q = readers[0]
    if q.op != "QuantizeLinear" or q.domain or q.inputs[0] != value:
        return None
    if not all(v in graph.constants for v in q.inputs[1:] if v) or graph.constants[q.inputs[1]].size != 1:
        return None
    if graph.types[q.outputs[0]].dtype not in QUANTIZED:
        return None
    return q


def _zero_point_or_default(graph: Graph, dq: Node, dtype: str) -> tuple[str, dict]:
    """The zero-point input of a DequantizeLinear (a new constant 0 when absent)."""
    if len(dq.inputs) > 2 and dq.inputs[2]:
        return dq.inputs[2], {}
    import numpy as np

    name = f"{dq.name}__zero_point"
    return name, {name: np.zeros((), dtype=dtype)}


def _fuse_one(graph: Graph, node: Node) -> tuple[list[Node], Node, dict] | None:
    """(nodes removed, the fused node, new constants) for one Conv/MatMul/Gemm, or None."""
    if node.domain or node.op not in ("Conv", "MatMul", "Gemm"):
        return None
    dx, dw = _dq(graph, node.inputs[0]), _dq(graph, node.inputs[1])
    if dx is None or dw is None or dw.inputs[0] not in graph.constants:
        return None
    if graph.types[dx.inputs[0]].dtype not in QUANTIZED or graph.types[dw.inputs[0]].dtype not in QUANTIZED:
        return None
    if graph.constants[dx.inputs[1]].size != 1:
        return None
    q = _single_quantize(graph, node.outputs[0])
    if q is None:
        return None
    bias = ""
    if len(node.inputs) > 2 and node.inputs[2]:
        db = _dq(graph, node.inputs[2])
        if db is None or db.inputs[0] not in graph.constants or graph.types[db.inputs[0]].dtype != "int32":
            return None
        if len(db.inputs) > 2 and db.inputs[2] and graph.constants[db.inputs[2]].any():
            return None
        bias = db.inputs[0]
    w_scale = graph.constants[dw.inputs[1]]
    xz, c1 = _zero_point_or_default(graph, dx, graph.types[dx.inputs[0]].dtype)
    wz, c2 = _zero_point_or_default(graph, dw, graph.types[dw.inputs[0]].dtype)
    yz = q.inputs[2] if len(q.inputs) > 2 and q.inputs[2] else ""
    consts = {**c1, **c2}
    x_part = (dx.inputs[0], dx.inputs[1], xz)
    w_part = (dw.inputs[0], dw.inputs[1], wz)
    name = f"{node.name}__qdq"
    if node.op == "Conv":
        if w_scale.size > 1 and int(dw.attrs.get("axis", 1)) not in (0, -4):
            return None
        fused = Node("QLinearConv", name, (*x_part, *w_part, q.inputs[1], yz, bias), q.outputs, node.attrs)
    elif node.op == "MatMul":
        rank = len(graph.types[dw.inputs[0]].shape)
        if bias or rank != 2 or (w_scale.size > 1 and int(dw.attrs.get("axis", 1)) not in (1, -1)):
            return None
        fused = Node("QLinearMatMul", name, (*x_part, *w_part, q.inputs[1], yz), q.outputs)
    else:
        trans_b = int(node.attrs.get("transB", 0))
        if int(node.attrs.get("transA", 0)) or float(node.attrs.get("alpha", 1.0)) != 1.0:
            return None
        if float(node.attrs.get("beta", 1.0)) != 1.0 or (bias and len(graph.types[bias].shape) != 1):
            return None
        if w_scale.size > 1 and int(dw.attrs.get("axis", 1)) % 2 != (0 if trans_b else 1):
            return None
        fused = Node("QGemm", name, (*x_part, *w_part, bias, q.inputs[1], yz), q.outputs, {"transB": trans_b},
                     domain="com.microsoft")
    return [node, q], fused, consts


def fuse_qdq(graph: Graph) -> Graph:
    """The graph with every fusable DQ -> Conv/MatMul/Gemm -> Q pattern replaced by one integer node."""
    replaced: dict[str, Node] = {}
    removed: set[str] = set()
    constants: dict = {}
    for node in graph.nodes:
        found = _fuse_one(graph, node)
        if found is None:
            continue
        gone, fused, consts = found
        removed.update(n.name for n in gone)
        replaced[gone[-1].name] = fused  # the fused node sits where the QuantizeLinear was
        constants.update(consts)
    if not replaced:
        return graph
    nodes = [replaced.get(n.name, n) for n in graph.nodes if n.name not in removed or n.name in replaced]
    types = dict(graph.types)
    fused_graph = graph.replace(nodes=tuple(nodes), constants={**graph.constants, **constants}, types=types)
    return fused_graph.prune()


def fold_batchnorm(graph: Graph) -> Graph:
    """Conv (constant weights) followed by an inference BatchNormalization with constant statistics, read
    only by it: scale the weights per output channel and fold the shift into the bias (in float32, as
    onnxruntime's ConvBNFusion does)."""
    import numpy as np

    nodes = list(graph.nodes)
    constants = dict(graph.constants)
    removed: set[str] = set()
    for i, conv in enumerate(nodes):
        if conv.op != "Conv" or conv.domain or conv.inputs[1] not in constants:
            continue
        readers = graph.consumers(conv.outputs[0])
        if conv.outputs[0] in graph.outputs or len(readers) != 1 or readers[0].op != "BatchNormalization":
            continue
        bn = readers[0]
        if bn.inputs[0] != conv.outputs[0] or not all(v in constants for v in bn.inputs[1:5]):
            continue
        if int(bn.attrs.get("training_mode", 0)) or len([v for v in bn.outputs if v]) != 1:
            continue
        if len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in constants:
            continue
        scale, shift, mean, var = (constants[v].astype(np.float32) for v in bn.inputs[1:5])
        eps = np.float32(bn.attrs.get("epsilon", 1e-5))
        factor = scale / np.sqrt(var + eps)
        w = constants[conv.inputs[1]]
        if w.dtype != np.float32 or factor.shape != (w.shape[0],):
            continue
        bias = constants[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(w.shape[0], w.dtype)
        w_name, b_name = f"{conv.name}__bn_weight", f"{conv.name}__bn_bias"
        constants[w_name] = (w * factor.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        constants[b_name] = ((bias - mean) * factor + shift).astype(np.float32)
        nodes[i] = conv.replace(inputs=(conv.inputs[0], w_name, b_name), outputs=bn.outputs)
        removed.add(bn.name)
    if not removed:
        return graph
    folded = graph.replace(nodes=tuple(n for n in nodes if n.name not in removed), constants=constants)
    return folded.prune()


def fuse_relu(graph: Graph) -> Graph:
    """A float Conv read only by a Relu computes the Relu in its epilogue (attribute FUSED_RELU)."""
    from .cgen import FUSED_RELU

    nodes = list(graph.nodes)
    removed: set[str] = set()
    for i, conv in enumerate(nodes):
        if conv.op != "Conv" or conv.domain or graph.types[conv.outputs[0]].dtype != "float32":
            continue
        readers = graph.consumers(conv.outputs[0])
        if conv.outputs[0] in graph.outputs or len(readers) != 1 or readers[0].op != "Relu" or readers[0].domain:
            continue
        relu = readers[0]
        nodes[i] = conv.replace(outputs=relu.outputs, attrs={**conv.attrs, FUSED_RELU: 1})
        removed.add(relu.name)
    if not removed:
        return graph
    return graph.replace(nodes=tuple(n for n in nodes if n.name not in removed)).prune()


# The CPU back end's rewrites, in order (each Graph -> Graph).
CPU_PIPELINE = (fold_batchnorm, fuse_qdq, fuse_relu)


def optimize(graph: Graph) -> Graph:
    for rewrite in CPU_PIPELINE:
        graph = rewrite(graph)
    return graph
