"""The int8 path: QuantizeLinear rounding, QLinearConv / QLinearMatMul / QGemm through the tensorized
AVX2 kernel, and QDQ fusion — bit-exact against an integer NumPy reference and against onnxruntime
where onnxruntime is exact (its AVX2 u8s8 kernels saturate int16 pair sums; with 7-bit weights they cannot).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.backends.cpu import compile_graph, detect_toolchain
from tensorweave.compiler.backends.cpu.fuse import fuse_qdq
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.quantize import quantize_model


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "m", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model, feed):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _ours(model, feed):
    graph = from_onnx(model)
    exe = compile_graph(graph)
    return [exe.run(feed)[name] for name in graph.outputs], exe


def conv_int_ref(x, w, stride, pads, dilation, groups):
    """Exact int64 conv of (already zero-point-corrected) NCHW x and KCRS w."""
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dilation[0] * (r - 1) - 1) // stride[0] + 1
    ow = (wd + pl + pr - dilation[1] * (s - 1) - 1) // stride[1] + 1
    y = np.zeros((n, k, oh, ow), np.int64)
    kg = k // groups
    for g in range(groups):
        for i in range(r):
            for j in range(s):
                hi, wj = i * dilation[0], j * dilation[1]
                patch = xp[:, g * cg:(g + 1) * cg, hi:hi + stride[0] * oh:stride[0], wj:wj + stride[1] * ow:stride[1]]
                y[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, w[g * kg:(g + 1) * kg, :, i, j].astype(np.int64))
    return y


def requant_ref(acc, scale, zp, dtype):
    """onnxruntime's requantization: float32 multiply, round half to even, add zero point, saturate."""
    info = np.iinfo(dtype)
    v = np.rint(acc.astype(np.float32) * scale.astype(np.float32)) + np.float32(zp)
    return np.clip(v, info.min, info.max).astype(dtype)


def test_quantize_linear_rounds_half_to_even_and_saturates() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, 1e6, -1e6, 126.5, 127.5, -128.5, 0.0], np.float32)
    for dtype, zp in (("int8", 0), ("int8", -3), ("uint8", 128), ("uint8", 0)):
        elem = TensorProto.INT8 if dtype == "int8" else TensorProto.UINT8
        model = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [13])],
                       [helper.make_tensor_value_info("y", elem, [13])],
                       {"s": np.array(1.0, np.float32), "z": np.array(zp, dtype)})
        (ours,), _ = _ours(model, {"x": x})
        info = np.iinfo(dtype)
        expected = np.clip(np.rint(x) + zp, info.min, info.max).astype(dtype)
        np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(ours, _ort(model, {"x": x})[0])


def _qlinearconv_model(x_dtype, shape, w, w_scale, bias, stride, pads, dilation, groups, x_zp, y_zp, out_shape):
    elem = TensorProto.INT8 if x_dtype == "int8" else TensorProto.UINT8
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            strides=list(stride), pads=list(pads), dilations=list(dilation), group=groups)
    inits = {"xs": np.array(0.05, np.float32), "xz": np.array(x_zp, x_dtype), "w": w, "ws": w_scale,
             "wz": np.zeros(w.shape[0], np.int8), "ys": np.array(0.37, np.float32), "yz": np.array(y_zp, x_dtype),
             "b": bias}
    return _model([node], [helper.make_tensor_value_info("x", elem, shape)],
                  [helper.make_tensor_value_info("y", elem, out_shape)], inits)


CONVS = [  # (x dtype, x shape, K, kernel, stride, pads, dilation, groups, x_zp, y_zp)
    ("int8", (1, 16, 10, 10), 32, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 0, 0),
    ("uint8", (2, 8, 9, 11), 16, (3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2, 7, 128),
    ("int8", (1, 12, 7, 7), 24, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, -2, 5),
    ("int8", (1, 4, 6, 6), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 0, 0),  # 1 channel: tensorizer refuses
]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c[0]}-{c[1]}-K{c[2]}-g{c[7]}")
def test_qlinearconv_is_exact(case) -> None:
    x_dtype, shape, k, (r, s), stride, pads, dilation, groups, x_zp, y_zp = case
    rng = np.random.default_rng(sum(shape) + k)
    info = np.iinfo(x_dtype)
    x = rng.integers(info.min, info.max + 1, shape).astype(x_dtype)
    cg = shape[1] // groups
    bias = rng.integers(-2000, 2000, k).astype(np.int32)
    w_scale = rng.uniform(0.002, 0.02, k).astype(np.float32)
    ref_acc = None
    for label, lo, hi in (("7-bit", -64, 63), ("full", -128, 127)):
        w = rng.integers(lo, hi + 1, (k, cg, r, s)).astype(np.int8)
        acc = conv_int_ref(x.astype(np.int64) - x_zp, w, stride, pads, dilation, groups) + bias[None, :, None, None]
        scale = (np.float32(0.05) * w_scale / np.float32(0.37)).astype(np.float32)
        expected = requant_ref(acc, scale[None, :, None, None], y_zp, x_dtype)
        model = _qlinearconv_model(x_dtype, shape, w, w_scale, bias, stride, pads, dilation, groups, x_zp, y_zp,
                                   expected.shape)
        (ours,), exe = _ours(model, {"x": x})
        np.testing.assert_array_equal(ours, expected, err_msg=f"{label} weights vs the integer reference")
        if label == "7-bit":  # no int16 saturation possible in onnxruntime's kernels: it must agree exactly
            np.testing.assert_array_equal(ours, _ort(model, {"x": x})[0], err_msg="7-bit weights vs onnxruntime")
        ref_acc = acc
    # both weight sets have the same shapes, so they share one cached library: no state may live in it
    assert ref_acc is not None
    if detect_toolchain().avx2:
        if k >= 8:
            assert "tensorize conv2d onto x86.avx2" in exe.source and "tw_igemm_mapped_8_4" in exe.source
            assert "tw_prepare_0(" in exe.source  # constant weights are packed once, at load time
        else:
            assert "tensorizer refused" in exe.source


def _float_model(kind: str, rng: np.random.Generator):
    if kind == "conv":
        w = (rng.standard_normal((16, 8, 3, 3)) * 0.3).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
        xs, ys = [1, 8, 12, 12], [1, 16, 12, 12]
        b = (rng.standard_normal(16) * 0.1).astype(np.float32)
    elif kind == "gemm":
        w = (rng.standard_normal((10, 40)) * 0.3).astype(np.float32)
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
        xs, ys = [3, 40], [3, 10]
        b = (rng.standard_normal(10) * 0.1).astype(np.float32)
    else:
        w = (rng.standard_normal((40, 24)) * 0.3).astype(np.float32)
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        xs, ys = [2, 5, 40], [2, 5, 24]
        b = None
    inits = {"w": w} if b is None else {"w": w, "b": b}
    return _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, xs)],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ys)], inits)


@pytest.mark.parametrize("kind,fused_op", [("conv", "QLinearConv"), ("gemm", "com.microsoft.QGemm"),
                                           ("matmul", "QLinearMatMul")])
def test_qdq_models_fuse_and_match_integer_reference(kind: str, fused_op: str) -> None:
    rng = np.random.default_rng(5)
    model = quantize_model(_float_model(kind, rng), samples=4)
    graph = from_onnx(model)
    fused = fuse_qdq(graph)
    assert fused.ops().get(fused_op) == 1 and kind.capitalize() not in fused.ops()
    node = next(n for n in fused.nodes if n.op == fused_op.split(".")[-1])
    c = fused.constants
    x = rng.standard_normal(graph.types["x"].shape).astype(np.float32)
    out = compile_graph(graph).run({"x": x})["y"]
    # integer reference: quantize x as QuantizeLinear does, exact product, float32 requantization
    q_in = next(n for n in fused.nodes if n.op == "QuantizeLinear")
    xq = np.clip(np.rint(x / c[q_in.inputs[1]]), -128, 127).astype(np.int64)
    w, w_scale = c[node.inputs[3]].astype(np.int64), c[node.inputs[4]]
    y_scale_name = node.inputs[7] if kind == "gemm" else node.inputs[6]
    if kind == "conv":
        acc = conv_int_ref(xq, w, (1, 1), (1, 1, 1, 1), (1, 1), 1) + c[node.inputs[8]][None, :, None, None]
        scale = (np.float32(c[node.inputs[1]]) * w_scale / np.float32(c[y_scale_name]))[None, :, None, None]
    elif kind == "gemm":
        acc = xq @ w.T + c[node.inputs[6]][None, :]
        scale = (np.float32(c[node.inputs[1]]) * w_scale / np.float32(c[y_scale_name]))[None, :]
    else:
        acc = xq @ w
        scale = np.float32(c[node.inputs[1]]) * w_scale / np.float32(c[y_scale_name])
    yq = requant_ref(acc, np.asarray(scale, np.float32), 0, np.int8)
    np.testing.assert_array_equal(np.rint(out / c[y_scale_name]).astype(np.int64), yq.astype(np.int64))
