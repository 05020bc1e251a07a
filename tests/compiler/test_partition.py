"""Partitioning: which QDQ layers fuse into accelerator nodes, and with which integer parameters.

Each fused node's attributes are checked by computing the layer from them alone in NumPy (integer
convolution / matmul, then requantization) and comparing with onnxruntime on the original QDQ model.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.models import small_cnn
from tensorweave.compiler.partition import ACCEL_DOMAIN, find_layers, fuse_accel_layers, match_layers
from tensorweave.compiler.quantize import quantize_model


@pytest.fixture(scope="module")
def qdq() -> onnx.ModelProto:
    return quantize_model(small_cnn(), samples=8)


def _values(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def _conv_int(x: np.ndarray, w: np.ndarray, strides, pads) -> np.ndarray:
    x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    k, c, r, s = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (r, s), axis=(2, 3))[:, :, ::strides[0], ::strides[1]]
    return np.einsum("nchwrs,kcrs->nkhw", win, w.astype(np.int64))


def _requant(acc: np.ndarray, node, axis: int) -> np.ndarray:
    a = node.attrs
    shape = [1] * acc.ndim
    shape[axis] = -1
    scale = a["input_scale"] * np.asarray(a["weight_scales"], np.float64).reshape(shape) / a["output_scale"]
    y = np.rint(acc * scale) + a["output_zero_point"]
    if a["relu"]:
        y = np.maximum(y, a["output_zero_point"])
    return np.clip(y, -128, 127).astype(np.int8)


def test_small_cnn_layers_fuse_with_their_relus(qdq):
    g = from_onnx(qdq)
    assert [m.name for m in find_layers(g)] == ["conv1", "conv2", "conv3", "fc"]
    fused, refused = fuse_accel_layers(g, lambda graph, match: None)
    accel = [n for n in fused.nodes if n.domain == ACCEL_DOMAIN]
    assert [(n.op, n.name, n.attrs["relu"]) for n in accel] == [
        ("QConv", "conv1", 1), ("QConv", "conv2", 1), ("QConv", "conv3", 1), ("QMatMul", "fc", 0)]
    assert refused == {}
    assert fused.ops()["Relu"] == 1  # only the residual's ReLU is left, after the Add
    # conv2's input dequantization is also read by the Add: it stays for the CPU
    assert "relu1_out_DequantizeLinear" in {n.name for n in fused.nodes}
    fc = fused.node("fc")
    assert fc.attrs["weight"].shape == (32, 10) and fc.attrs["bias"].dtype == np.int32  # Gemm transB undone
    np.testing.assert_array_equal(fc.attrs["weight"].T, g.constants["fc.weight_quantized"])


def test_fused_parameters_reproduce_onnxruntime(qdq):
    fused, _ = fuse_accel_layers(from_onnx(qdq), lambda graph, match: None)
    layers = [n for n in fused.nodes if n.domain == ACCEL_DOMAIN]
    x = np.random.default_rng(7).standard_normal((1, 3, 16, 16)).astype(np.float32)
    values = _values(qdq, sorted({v for n in layers for v in (*n.inputs, *n.outputs)}), x)
    for node in layers:
        xq, want = values[node.inputs[0]], values[node.outputs[0]]
        a = node.attrs
        if node.op == "QConv":
            acc = _conv_int(xq, a["weight"], a["strides"], a["pads"]) + a["bias"].reshape(1, -1, 1, 1)
            got = _requant(acc, node, axis=1)
        else:
            got = _requant(xq.astype(np.int64) @ a["weight"].astype(np.int64) + a["bias"], node, axis=1)
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 1 and np.mean(diff == 0) >= 0.99, node.name
        assert np.count_nonzero(want) > want.size // 4  # the layer did compute something


def test_refused_layers_stay_as_onnx_nodes(qdq):
    g = from_onnx(qdq)
    fused, refused = fuse_accel_layers(g, lambda graph, m: "too wide" if m.name == "conv2" else None)
    assert refused == {"conv2": "too wide"}
    assert fused.node("conv2").op == "Conv" and fused.node("conv1").op == "QConv"
    assert fused.ops()[f"{ACCEL_DOMAIN}.QConv"] == 2


def _qdq_conv(zero_point: int, relu_scale: float) -> onnx.ModelProto:
    """DQ(x) -> Conv -> Q -> DQ -> Relu -> Q, by hand, with the given activation zero point and Relu scale."""
    w = numpy_helper.from_array(np.ones((16, 16, 1, 1), np.int8), "w")
    c = [numpy_helper.from_array(np.array(v, dtype), n) for n, v, dtype in [
        ("s", 0.1, np.float32), ("zp", zero_point, np.int8), ("ws", 0.01, np.float32), ("wz", 0, np.int8),
        ("rs", relu_scale, np.float32)]]
    nodes = [helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["xf"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"]),
             helper.make_node("Conv", ["xf", "wf"], ["y"], name="conv"),
             helper.make_node("QuantizeLinear", ["y", "s", "zp"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "zp"], ["yf"]),
             helper.make_node("Relu", ["yf"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "rs", "zp"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 16, 4, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.INT8, [1, 16, 4, 4])],
                              initializer=[w, *c])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_pattern_conditions():
    fused, _ = fuse_accel_layers(from_onnx(_qdq_conv(0, 0.1)), lambda g, m: None)
    assert [n.op for n in fused.nodes] == ["QConv"] and fused.nodes[0].attrs["relu"] == 1
    # a Relu quantized with another scale is not max(q, 0): the layer ends at the first Q
    fused, _ = fuse_accel_layers(from_onnx(_qdq_conv(0, 0.2)), lambda g, m: None)
    assert [n.op for n in fused.nodes] == ["QConv", "DequantizeLinear", "Relu", "QuantizeLinear"]
    assert fused.nodes[0].attrs["relu"] == 0
    # asymmetric activations (zero point 3, as onnxruntime's defaults write them) match; the zero point goes to
    # the fused node (the lowering folds it into the bias), the Relu is max(q, 3)
    (m,) = find_layers(from_onnx(_qdq_conv(3, 0.1)))
    assert (m.input_zero_point, m.output_zero_point, m.relu, m.input_dtype, m.output_dtype) == (3, 3, True, "int8",
                                                                                               "int8")
    fused, _ = fuse_accel_layers(from_onnx(_qdq_conv(3, 0.1)), lambda g, m: None)
    assert fused.nodes[0].attrs["input_zero_point"] == 3 and "conv" in fused.nodes[0].attrs["fuses"]
    # a zero point 0 int8 layer's fused node carries no zero-point attributes (as before)
    assert "input_zero_point" not in fuse_accel_layers(from_onnx(_qdq_conv(0, 0.1)), lambda g, m: None)[0].nodes[0].attrs


def test_every_conv_gemm_matmul_that_does_not_match_says_why():
    found, why = match_layers(from_onnx(small_cnn()))  # a float model
    assert found == [] and set(why) == {"conv1", "conv2", "conv3", "fc"}
    assert why["conv1"] == ("not a quantized layer the accelerator runs: its input 'input' is not dequantized "
                            "int8/uint8 (it comes from the graph input)")
    fused, refused = fuse_accel_layers(from_onnx(small_cnn()), lambda g, m: None)
    assert refused == why and not any(n.domain == ACCEL_DOMAIN for n in fused.nodes)
