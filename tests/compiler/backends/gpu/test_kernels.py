"""GPU kernels from loop nests on shapes that exercise the big tiles, vector loads, padding and batching,
compared with onnxruntime: float within 1e-4 relative, every integer result exactly. All graphs of a test
share one OpenCL program (one compiler run); the `gpu` twins run the same checks on CUDA."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.backends.gpu.lower import Occupancy
from tensorweave.compiler.frontend import from_onnx

RNG = np.random.default_rng(7)
_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
         np.dtype(np.int8): TensorProto.INT8, np.dtype(np.int32): TensorProto.INT32}


def _model(op: str, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray], out_dtype, out_shape,
           **attrs) -> onnx.ModelProto:
    names = list(inputs) + list(consts)
    node = helper.make_node(op, [n if not n.startswith("_") else "" for n in names], ["y"], **attrs)
    graph = helper.make_graph(
        [node], op.lower(), [helper.make_tensor_value_info(n, _ONNX[a.dtype], a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", _ONNX[np.dtype(out_dtype)], out_shape)],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _reference(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape).astype(np.uint8)


def _s8(*shape: int) -> np.ndarray:
    # within -64..63: onnxruntime's AVX2 u8 x s8 kernels add product pairs into int16 with saturation
    # (vpmaddubsw), so full-range weights would make the reference itself inexact
    return RNG.integers(-64, 64, shape).astype(np.int8)


def float_cases() -> list[tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    a, b = _f(2, 130, 96), _f(96, 100)
    x, w, bias = _f(2, 8, 21, 19), _f(16, 4, 3, 3), _f(16)
    ga, gb, gc = _f(40, 70), _f(90, 40), _f(90)
    big, row, tall = _f(4, 64, 33), _f(33), _f(100, 37)
    deep, skinny = _f(1, 256, 7, 7), _f(8, 1000)
    return [
        (_model("MatMul", {"a": a, "b": b}, {}, np.float32, [2, 130, 100]), {"a": a, "b": b}),
        (_model("MatMul", {"a": _f(3, 1, 5, 7)}, {"b": _f(2, 7, 9)}, np.float32, [3, 2, 5, 9]),
         {"a": _f(3, 1, 5, 7)}),
        (_model("Gemm", {"a": ga, "b": gb, "c": gc}, {}, np.float32, [70, 90], transA=1, transB=1, alpha=0.5,
                beta=2.0), {"a": ga, "b": gb, "c": gc}),
        (_model("Conv", {"x": x}, {"w": w, "bias": bias}, np.float32, [2, 16, 11, 10], group=2,
                pads=[1, 1, 1, 1], strides=[2, 2]), {"x": x}),
        (_model("Conv", {"x": _f(1, 3, 30)}, {"w": _f(5, 3, 4)}, np.float32, [1, 5, 15], pads=[2, 1],
                strides=[2], dilations=[1]), {"x": _f(1, 3, 30)}),
        (_model("MatMul", {"a": tall}, {"b": _f(37, 12)}, np.float32, [100, 12]), {"a": tall}),  # 64x16 tiles
        (_model("Add", {"p": big, "q": row}, {}, np.float32, [4, 64, 33]), {"p": big, "q": row}),
        (_model("Mul", {"p": big, "q": big}, {}, np.float32, [4, 64, 33]), {"p": big, "q": big}),
        # few output tiles, deep K: split K (a batch-1 conv deep in a network; a skinny MatMul)
        (_model("Conv", {"x": deep}, {"w": _f(64, 256, 3, 3), "bias": _f(64)}, np.float32, [1, 64, 7, 7],
                pads=[1, 1, 1, 1]), {"x": deep}),
        (_model("MatMul", {"a": skinny}, {"b": _f(1000, 40)}, np.float32, [8, 40]), {"a": skinny}),
    ]


def int8_cases() -> list[tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    x, w = _u8(2, 16, 15, 13), _s8(32, 16, 3, 3)
    f32 = np.float32
    qconv = {"x_scale": np.array(0.02, f32), "x_zp": np.array(131, np.uint8), "w": w,
             "w_scale": (RNG.random(32) * 0.01 + 0.001).astype(f32), "w_zp": np.zeros(32, np.int8),
             "y_scale": np.array(0.3, f32), "y_zp": np.array(97, np.uint8),
             "bias": RNG.integers(-5000, 5000, 32).astype(np.int32)}
    a, b = _u8(100, 96), _s8(96, 84)
    qmm = {"a_scale": np.array(0.05, f32), "a_zp": np.array(120, np.uint8), "b": b,
           "b_scale": np.array(0.004, f32), "b_zp": np.array(3, np.int8), "y_scale": np.array(0.7, f32),
           "y_zp": np.array(10, np.uint8)}
    ma, mb = _u8(3, 50, 64), _s8(64, 72)
    cx, cw = _u8(1, 8, 9, 9), _s8(12, 8, 3, 3)
    dx, da, db = _u8(1, 128, 7, 7), _u8(3, 5, 512), _s8(512, 6)
    return [
        (_model("QLinearConv", {"x": x}, qconv, np.uint8, [2, 32, 8, 7], pads=[1, 1, 1, 1], strides=[2, 2]),
         {"x": x}),
        (_model("QLinearMatMul", {"a": a}, qmm, np.uint8, [100, 84]), {"a": a}),
        (_model("MatMulInteger", {"a": ma, "b": mb}, {"a_zp": np.array(7, np.uint8),
                                                    "b_zp": np.array(-2, np.int8)}, np.int32, [3, 50, 72]),
         {"a": ma, "b": mb}),
        (_model("ConvInteger", {"x": cx, "w": cw}, {"x_zp": np.array(100, np.uint8)}, np.int32, [1, 12, 9, 9],
                pads=[1, 1, 1, 1]), {"x": cx, "w": cw}),
        # split K: the chunks' int32 partial sums must add up exactly, then requantize (bias, zero points)
        (_model("QLinearConv", {"x": dx}, dict(qconv, w=_s8(32, 128, 3, 3)), np.uint8, [1, 32, 7, 7],
                pads=[1, 1, 1, 1]), {"x": dx}),
        (_model("MatMulInteger", {"a": da, "b": db}, {"a_zp": np.array(9, np.uint8), "b_zp": np.array(1, np.int8)},
                np.int32, [3, 5, 6]), {"a": da, "b": db}),
    ]


def s8_cases() -> list[tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    """int8 x int8 with zero points 0 (what `tensorweave quantize` makes): the forms Tensor Cores take."""
    f32 = np.float32
    x, deep = _s8(2, 16, 15, 13), _s8(1, 128, 7, 7)
    qconv = {"x_scale": np.array(0.02, f32), "x_zp": np.array(0, np.int8), "w": _s8(32, 16, 3, 3),
             "w_scale": (RNG.random(32) * 0.01 + 0.001).astype(f32), "w_zp": np.zeros(32, np.int8),
             "y_scale": np.array(0.3, f32), "y_zp": np.array(0, np.int8),
             "bias": RNG.integers(-5000, 5000, 32).astype(np.int32)}
    a = _s8(3, 40, 96)
    qmm = {"a_scale": np.array(0.05, f32), "a_zp": np.array(0, np.int8), "b": _s8(96, 70),
           "b_scale": np.array(0.004, f32), "b_zp": np.array(0, np.int8), "y_scale": np.array(0.7, f32),
           "y_zp": np.array(0, np.int8)}
    return [
        (_model("QLinearConv", {"x": x}, qconv, np.int8, [2, 32, 8, 7], pads=[1, 1, 1, 1], strides=[2, 2]),
         {"x": x}),
        (_model("QLinearConv", {"x": deep}, dict(qconv, w=_s8(32, 128, 3, 3)), np.int8, [1, 32, 7, 7],
                pads=[1, 1, 1, 1]), {"x": deep}),  # split K
        (_model("QLinearMatMul", {"a": a}, qmm, np.int8, [3, 40, 70]), {"a": a}),
    ]


def _run_all(api: str, cases: list[tuple[onnx.ModelProto, dict[str, np.ndarray]]], exact: bool,
             tensor_cores: bool = False) -> list:
    from tensorweave.compiler.backends.gpu import compile_graphs

    exes = compile_graphs([from_onnx(m) for m, _ in cases], api, tensor_cores=tensor_cores)
    for (model, feed), exe in zip(cases, exes):
        got, want = exe.run(feed)["y"], _reference(model, feed)
        assert got.dtype == want.dtype and got.shape == want.shape, model.graph.name
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=model.graph.name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=model.graph.name)
    return exes


def test_float_kernels_opencl(opencl: str) -> None:
    exes = _run_all(opencl, float_cases(), exact=False)
    matmul = exes[0].source
    assert "TW_VLOAD4(float" in matmul and "TW_LOCAL float As[16][64]" in matmul  # tiled, vector loads
    assert [len(exe.launches) for exe in exes[-2:]] == [2, 2]  # split K: partial sums + their sum
    if exes[0].runtime.occupancy == Occupancy():  # a CPU device (PoCL); a GPU gets more chunks
        assert "K in 18 chunks of 128" in exes[-2].launches[0].kernel.note


def test_int8_kernels_opencl(opencl: str) -> None:
    exes = _run_all(opencl, int8_cases(), exact=True)
    assert [len(exe.launches) for exe in exes[-2:]] == [2, 2]
    if exes[0].runtime.occupancy == Occupancy():
        assert "K in 9 chunks" in exes[-2].launches[0].kernel.note
        assert "K in 4 chunks" in exes[-1].launches[0].kernel.note


@pytest.mark.gpu
def test_float_kernels_cuda(cuda: str) -> None:
    _run_all(cuda, float_cases(), exact=False)


@pytest.mark.gpu
def test_int8_kernels_cuda(cuda: str) -> None:
    _run_all(cuda, int8_cases(), exact=True)


def test_s8_kernels_opencl(opencl: str) -> None:
    _run_all(opencl, s8_cases(), exact=True)


@pytest.mark.gpu
def test_s8_kernels_on_tensor_cores_cuda(cuda: str) -> None:
    exes = _run_all(cuda, s8_cases(), exact=True, tensor_cores=True)
    assert all("Tensor Cores" in exe.launches[0].kernel.note for exe in exes)
    assert len(exes[1].launches) == 2  # split K on Tensor Cores, partial sums added exactly
