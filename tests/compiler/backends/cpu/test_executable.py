"""compile_graph / compile_node / supported_ops / errors, on graphs built in code and a float CNN vs onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from tensorweave.compiler.backends.cpu import (
    InputError,
    UnsupportedOp,
    compile_graph,
    compile_node,
    supported_ops,
)
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.graph import Graph, Node, TensorType
from tensorweave.compiler.models import small_cnn
from tensorweave.errors import TensorweaveError


def _conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    y = np.zeros((n, k, oh, ow))
    for i in range(r):
        for j in range(s):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j])
    return y + b[None, :, None, None]


def _graph(rng: np.random.Generator) -> Graph:
    w = rng.standard_normal((20, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    fc = rng.standard_normal((7, 20 * 4 * 4)).astype(np.float32)
    nodes = (
        Node("Conv", "conv", ("x", "w", "b"), ("c",), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        Node("Relu", "relu", ("c",), ("r",)),
        Node("MaxPool", "pool", ("r",), ("p",), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        Node("Flatten", "flat", ("p",), ("f",), {"axis": 1}),
        Node("Gemm", "fc", ("f", "fc"), ("y",), {"transB": 1, "alpha": 0.5}),
        Node("Softmax", "softmax", ("y",), ("z",), {"axis": -1}),
    )
    types = {"x": TensorType((2, 3, 15, 15), "float32"), "c": TensorType((2, 20, 8, 8), "float32"),
             "r": TensorType((2, 20, 8, 8), "float32"), "p": TensorType((2, 20, 4, 4), "float32"),
             "f": TensorType((2, 320), "float32"), "y": TensorType((2, 7), "float32"),
             "z": TensorType((2, 7), "float32")}
    return Graph("net", nodes, ("x",), ("y", "z"), types, {"w": w, "b": b, "fc": fc}, 17)


def test_compile_graph_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    graph = _graph(rng)
    x = rng.standard_normal((2, 3, 15, 15)).astype(np.float32)
    out = compile_graph(graph).run({"x": x})
    c = np.maximum(_conv_ref(x, graph.constants["w"], graph.constants["b"], 2, 1), 0)
    p = c.reshape(2, 20, 4, 2, 4, 2).max(axis=(3, 5))
    y = 0.5 * p.reshape(2, -1) @ graph.constants["fc"].T.astype(np.float64)
    z = np.exp(y - y.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out["y"], y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["z"], z, rtol=1e-4, atol=1e-6)


def test_compile_node_runs_one_node() -> None:
    rng = np.random.default_rng(1)
    graph = _graph(rng)
    conv = compile_node(graph, graph.node("conv"))
    x = rng.standard_normal((2, 3, 15, 15)).astype(np.float32)
    (y,) = conv(x, graph.constants["w"], graph.constants["b"])
    np.testing.assert_allclose(y, _conv_ref(x, graph.constants["w"], graph.constants["b"], 2, 1), rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(InputError, match="takes 3 arrays"):
        conv(x)


def test_unsupported_op_names_node_and_op() -> None:
    graph = Graph("g", (Node("LSTM", "rnn_7", ("x",), ("y",)),), ("x",), ("y",),
                  {"x": TensorType((1, 2, 3), "float32"), "y": TensorType((1, 2, 3), "float32")}, {}, 17)
    with pytest.raises(UnsupportedOp, match="node 'rnn_7'.*LSTM") as info:
        compile_graph(graph)
    assert isinstance(info.value, TensorweaveError)
    graph = Graph("g", (Node("Exp", "exp_1", ("x",), ("y",)),), ("x",), ("y",),
                  {"x": TensorType((4,), "int32"), "y": TensorType((4,), "int32")}, {}, 17)
    with pytest.raises(UnsupportedOp, match="'exp_1' \\(Exp\\).*int32"):
        compile_graph(graph)


def test_wrong_input_shape_is_an_error() -> None:
    exe = compile_graph(_graph(np.random.default_rng(2)))
    with pytest.raises(InputError, match="input 'x' is float32\\[1,3,15,15\\]; .* float32\\[2,3,15,15\\]"):
        exe.run({"x": np.zeros((1, 3, 15, 15), np.float32)})
    with pytest.raises(InputError, match="needs input"):
        exe.run({})


def test_supported_ops_cover_the_brief() -> None:
    wanted = {"Conv", "MatMul", "Gemm", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "DequantizeLinear",
              "Add", "Relu", "MaxPool", "AveragePool", "ReduceMean", "Reshape", "Transpose", "Concat", "Flatten",
              "Squeeze", "Unsqueeze", "Slice", "Gather", "Softmax", "BatchNormalization", "Pad"}
    assert wanted <= supported_ops()


def test_small_cnn_matches_onnxruntime() -> None:
    model = small_cnn(seed=3)
    graph = from_onnx(model)
    x = np.random.default_rng(4).standard_normal(graph.types[graph.inputs[0]].shape).astype(np.float32)
    exe = compile_graph(graph)
    # the CPU pipeline folded BatchNorm into the convs and ReLU into their epilogues
    assert "BatchNormalization" not in exe.graph.ops() and exe.graph.ops()["Relu"] == 1
    ours = exe.run({graph.inputs[0]: x})[graph.outputs[0]]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {graph.inputs[0]: x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
