"""Conv and matmul kernels on the functional simulator: bit-exact to the NumPy integer definition
(requantize(conv2d_int(...))) and within 1 LSB of onnxruntime's QLinearConv / QLinearMatMul on
>= 99.9 % of the elements."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.accel import (
    AccelError,
    ConvSpec,
    Requant,
    compile_conv,
    compile_matmul,
    conv2d_int,
    requantize,
    requantize_float,
    unsupported_matmul_reason,
    unsupported_reason,
)
from tensorweave.compiler.loopnest import TensorizeError
from tensorweave.configs import load_config

ORIGINAL_CACHE = os.environ.get("TENSORWEAVE_CACHE")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))


def _session(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def ort_conv(x, w, bias, spec: ConvSpec, rq: Requant) -> np.ndarray:
    """onnxruntime's QLinearConv; ReLU as max(y, zero point) (= quantize(relu(float)))."""
    k = spec.out_channels
    scales = np.broadcast_to(np.asarray(rq.weight_scales, np.float32), (k,)).copy()
    inits = [numpy_helper.from_array(np.array(rq.input_scale, np.float32), "xs"),
             numpy_helper.from_array(np.array(0, np.int8), "xz"),
             numpy_helper.from_array(w.astype(np.int8), "w"), numpy_helper.from_array(scales, "ws"),
             numpy_helper.from_array(np.zeros(k, np.int8), "wz"),
             numpy_helper.from_array(np.array(rq.output_scale, np.float32), "ys"),
             numpy_helper.from_array(np.array(rq.output_zero_point, np.int8), "yz")]
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.int32), "b"))
        names.append("b")
    node = helper.make_node("QLinearConv", names, ["y"], kernel_shape=list(spec.kernel), strides=list(spec.stride),
                            pads=list(spec.pads), dilations=list(spec.dilation), group=spec.groups)
    sess = _session([node], [helper.make_tensor_value_info("x", TensorProto.INT8, list(x.shape))],
                    [helper.make_tensor_value_info("y", TensorProto.INT8, None)], inits)
    y = sess.run(None, {"x": x.astype(np.int8)})[0].astype(np.int64)
    return np.maximum(y, rq.output_zero_point) if rq.relu else y


def ort_matmul(a, w, rq: Requant) -> np.ndarray:
    n = w.shape[1]
    scales = np.broadcast_to(np.asarray(rq.weight_scales, np.float32), (n,)).copy()
    inits = [numpy_helper.from_array(np.array(rq.input_scale, np.float32), "as"),
             numpy_helper.from_array(np.array(0, np.int8), "az"), numpy_helper.from_array(w.astype(np.int8), "b"),
             numpy_helper.from_array(scales, "bs"), numpy_helper.from_array(np.zeros(n, np.int8), "bz"),
             numpy_helper.from_array(np.array(rq.output_scale, np.float32), "ys"),
             numpy_helper.from_array(np.array(rq.output_zero_point, np.int8), "yz")]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    sess = _session([node], [helper.make_tensor_value_info("a", TensorProto.INT8, list(a.shape))],
                    [helper.make_tensor_value_info("y", TensorProto.INT8, None)], inits)
    y = sess.run(None, {"a": a.astype(np.int8)})[0].astype(np.int64)
    return np.maximum(y, rq.output_zero_point) if rq.relu else y


def random_requant(rng, channels: int, per_channel: bool = True, relu: bool = False, zp: int = 0) -> Requant:
    scales = tuple(rng.uniform(0.002, 0.01, channels if per_channel else 1))
    return Requant(float(rng.uniform(0.02, 0.06)), scales, float(rng.uniform(0.08, 0.2)), zp, relu)


def check_close_to_ort(y, expected) -> None:
    diff = np.abs(y - expected)
    assert diff.max() <= 1, f"an element differs from onnxruntime by {diff.max()} LSB"
    assert (diff == 0).mean() >= 0.999, f"only {(diff == 0).mean():.4%} of elements equal onnxruntime"


CONVS = [
    ConvSpec(1, 8, 6, 6, 8, (3, 3), pads=(1, 1, 1, 1)),                                  # same-size 3x3
    ConvSpec(2, 6, 7, 9, 10, (3, 3), (2, 1), (1, 0, 1, 2), (1, 2)),                       # stride, asym pads, dilation
    ConvSpec(1, 16, 5, 5, 12, (3, 3), pads=(1, 1, 1, 1), groups=2),                       # grouped
    ConvSpec(1, 5, 9, 9, 7, (1, 1), (2, 2)),                                              # 1x1 stride 2, odd channels
    ConvSpec(1, 12, 4, 6, 20, (1, 1)),                                                    # 1x1 stride 1: matmul rows
    ConvSpec(1, 8, 11, 10, 8, (3, 3), (3, 2), (2, 2, 2, 1), (1, 1)),                      # stride 3, pads 2
]


@pytest.mark.parametrize("config_name", ["tiny", "vta-default"])
@pytest.mark.parametrize("index", range(len(CONVS)))
def test_conv_matches_integer_reference_and_onnxruntime(config_name, index):
    spec = CONVS[index]
    config = load_config(config_name)
    rng = np.random.default_rng(index)
    w = rng.integers(-128, 128, spec.weight_shape)
    bias = rng.integers(-3000, 3000, spec.out_channels) if index % 2 == 0 else None
    rq = random_requant(rng, spec.out_channels, per_channel=index != 3, relu=index % 3 == 0, zp=[0, 5, -3][index % 3])
    kernel = compile_conv(config, spec, w, bias, rq)
    x = rng.integers(-128, 128, (spec.batch, spec.in_channels, spec.height, spec.width))
    y, stats = kernel.run(x)
    acc = conv2d_int(x, w, spec, bias)
    assert np.array_equal(y, requantize(acc, kernel.plan))
    check_close_to_ort(y, ort_conv(x, w, bias, spec, rq))
    assert stats.macs == spec.macs and stats.gemm_macs >= spec.macs
    assert stats.insns["compute"] > 0 and stats.cycles > 0 and 0 < stats.utilization <= 1
    if not kernel._pack_rows:  # padding comes from LOAD: the DRAM activations are not padded
        assert kernel.program.tensor("x").shape[3:5] == (spec.height, spec.width)


@pytest.mark.parametrize("spec", [ConvSpec(3, 40, 6, 5, 36, (3, 3), (1, 2), (1, 1, 1, 1)),
                                  ConvSpec(1, 64, 4, 4, 64, (1, 1))])
def test_conv_on_batched_config(spec):
    """batch2-32x32: images pair up in the GEMM rows (3 images -> 2 row blocks, one lane padded);
    a 1x1 conv pairs pixels instead."""
    config = load_config("batch2-32x32")
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, spec.weight_shape)
    bias = rng.integers(-3000, 3000, spec.out_channels)
    rq = random_requant(rng, spec.out_channels, relu=True)
    kernel = compile_conv(config, spec, w, bias, rq)
    x = rng.integers(-128, 128, (spec.batch, spec.in_channels, spec.height, spec.width))
    y, stats = kernel.run(x)
    assert np.array_equal(y, requantize(conv2d_int(x, w, spec, bias), kernel.plan))
    check_close_to_ort(y, ort_conv(x, w, bias, spec, rq))
    assert stats.gemm_macs >= spec.macs


@pytest.mark.parametrize("config_name", ["tiny", "vta-default", "batch2-32x32"])
@pytest.mark.parametrize("m, k, n, batch", [(6, 40, 20, 1), (3, 17, 9, 2), (1, 64, 48, 1)])
def test_matmul_matches_integer_reference_and_onnxruntime(config_name, m, k, n, batch):
    config = load_config(config_name)
    rng = np.random.default_rng(m * 100 + k)
    w = rng.integers(-128, 128, (k, n))
    rq = random_requant(rng, n, zp=2)
    kernel = compile_matmul(config, m, k, n, w, None, rq, batch=batch)
    x = rng.integers(-128, 128, (batch, m, k))
    y, stats = kernel.run(x)
    acc = x @ w
    assert np.array_equal(y, requantize(acc, kernel.plan, channel_axis=-1))
    check_close_to_ort(y, ort_matmul(x.reshape(-1, k), w, rq).reshape(batch, m, n))
    assert stats.macs == batch * m * k * n


def test_large_kernel_on_vta_and_refusal_on_tiny():
    """A 5x5 kernel fits vta-default; on tiny its 25 weight tiles exceed half the weight buffer
    (16 rows), which unsupported_reason says."""
    spec = ConvSpec(1, 8, 10, 10, 8, (5, 5), (2, 2), (2, 2, 2, 2))
    assert "25 weight rows" in unsupported_reason(load_config("tiny"), spec)
    rng = np.random.default_rng(11)
    w = rng.integers(-128, 128, spec.weight_shape)
    rq = random_requant(rng, 8)
    kernel = compile_conv(load_config("vta-default"), spec, w, None, rq)
    x = rng.integers(-128, 128, (1, 8, 10, 10))
    y, _ = kernel.run(x)
    assert np.array_equal(y, requantize(conv2d_int(x, w, spec), kernel.plan))
    check_close_to_ort(y, ort_conv(x, w, None, spec, rq))


def test_matmul_bias_relu_and_2d_input():
    config = load_config("tiny")
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (24, 8))
    bias = rng.integers(-20000, 20000, 8)
    rq = random_requant(rng, 8, relu=True)
    kernel = compile_matmul(config, 5, 24, 8, w, bias, rq)
    x = rng.integers(-128, 128, (5, 24))
    y, _ = kernel.run(x)
    assert y.shape == (5, 8) and y.dtype == np.int8
    assert np.array_equal(y, requantize(x @ w + bias, kernel.plan, channel_axis=-1))
    assert y.min() >= 0


def test_power_of_two_requant_on_w4a8():
    """w4a8 has no MUL: power-of-two scales take the RSHR path (no bias: no ADD); the result is exact, and
    equals onnxruntime's float requantization everywhere, ties included."""
    config = load_config("w4a8")
    spec = ConvSpec(1, 4, 6, 6, 16, (3, 3), pads=(1, 1, 1, 1))
    rng = np.random.default_rng(3)
    w = rng.integers(-2, 3, spec.weight_shape)  # small enough that 16-bit accumulators cannot overflow
    rq = Requant(2.0 ** -4, (2.0 ** -3,), 2.0 ** -1, relu=True)
    kernel = compile_conv(config, spec, w, None, rq)
    assert kernel.plan.mode == "pow2"
    x = rng.integers(-128, 128, (1, 4, 6, 6))
    y, stats = kernel.run(x)
    assert np.array_equal(y, requantize(conv2d_int(x, w, spec), kernel.plan))
    assert "alu.mul" not in stats.ops and "alu.add" not in stats.ops and stats.ops["alu.rshr"] > 0
    acc = conv2d_int(x, w, spec)
    ties = (acc % 64) == 32  # v * 2^-6 has fraction exactly .5
    assert ties.any() and np.array_equal(y, requantize_float(acc, rq))


def test_w4a8_refuses_non_power_of_two_scale():
    config = load_config("w4a8")
    spec = ConvSpec(1, 4, 4, 4, 16, (1, 1))
    w = np.ones(spec.weight_shape, dtype=np.int64)
    with pytest.raises(AccelError, match="no ALU MUL.*power of two"):
        compile_conv(config, spec, w, None, Requant(0.03, (0.01,), 0.1))


def test_depthwise_refused_with_reason():
    config = load_config("vta-default")
    spec = ConvSpec(1, 32, 8, 8, 32, (3, 3), pads=(1, 1, 1, 1), groups=32)
    reason = unsupported_reason(config, spec)
    assert reason is not None and "needs 16 lanes" in reason
    with pytest.raises(TensorizeError):
        compile_conv(config, spec, np.zeros(spec.weight_shape, np.int64), None, Requant(0.1, (0.1,), 0.1))
    assert unsupported_reason(config, ConvSpec(1, 64, 56, 56, 64, (3, 3), pads=(1, 1, 1, 1))) is None


def test_unsupported_matmul_reason():
    vta = load_config("vta-default")
    assert unsupported_matmul_reason(vta, 8, 64, 32) is None
    assert "needs 16 lanes" in unsupported_matmul_reason(vta, 8, 64, 1)        # a matrix-vector product
    assert "overflow the 16-bit" in unsupported_matmul_reason(load_config("w4a8"), 8, 64, 32)


def test_bad_inputs_name_the_field():
    config = load_config("tiny")
    spec = ConvSpec(1, 4, 4, 4, 4, (3, 3), pads=(1, 1, 1, 1))
    with pytest.raises(AccelError, match="weight has shape"):
        compile_conv(config, spec, np.zeros((4, 4, 1, 1), np.int64), None, Requant(0.1, (0.1,), 0.1))
    with pytest.raises(AccelError, match="weight spans"):
        compile_conv(config, spec, np.full(spec.weight_shape, 300), None, Requant(0.1, (0.1,), 0.1))
    with pytest.raises(AccelError, match="weight_scales has 3 entries"):
        compile_conv(config, spec, np.zeros(spec.weight_shape, np.int64), None, Requant(0.1, (0.1, 0.2, 0.3), 0.1))
    kernel = compile_conv(config, spec, np.zeros(spec.weight_shape, np.int64), None, Requant(0.1, (0.1,), 0.1))
    with pytest.raises(AccelError, match="x has shape"):
        kernel.run(np.zeros((1, 4, 5, 5), np.int64))
    with pytest.raises(AccelError, match="engine 'gpu'"):
        kernel.run(np.zeros((1, 4, 4, 4), np.int64), engine="gpu")
    with pytest.raises(AccelError, match="padding 4 is wider"):
        compile_conv(config, ConvSpec(1, 4, 4, 4, 4, (3, 3), pads=(4, 0, 0, 0)), np.zeros(spec.weight_shape, np.int64),
                     None, Requant(0.1, (0.1,), 0.1))


@pytest.mark.cosim
def test_rtl_engine_matches_functional(monkeypatch):
    """engine='rtl' runs the same Program on the Verilated RTL (tensorweave.cosim) bit for bit."""
    # The RTL harness build is cached under TENSORWEAVE_CACHE too: keep the user's cache for it.
    if ORIGINAL_CACHE is None:
        monkeypatch.delenv("TENSORWEAVE_CACHE")
    else:
        monkeypatch.setenv("TENSORWEAVE_CACHE", ORIGINAL_CACHE)
    config = load_config("tiny")
    spec = ConvSpec(1, 8, 6, 6, 8, (3, 3), pads=(1, 1, 1, 1))
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, spec.weight_shape)
    bias = rng.integers(-3000, 3000, 8)
    kernel = compile_conv(config, spec, w, bias, random_requant(rng, 8, relu=True), use_cache=False)
    x = rng.integers(-128, 128, (1, 8, 6, 6))
    y_func, _ = kernel.run(x)
    y_rtl, stats = kernel.run(x, engine="rtl")
    assert np.array_equal(y_rtl, y_func)
    assert stats.cycle_source == "engine" and stats.cycles > 0
