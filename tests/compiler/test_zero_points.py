"""Models quantized by onnxruntime's `quantize_static` with its defaults (QDQ, asymmetric int8 activations;
QUInt8 activations; per-tensor or per-channel int8 weights; float scales) run on the accelerator.

The zero-point algebra is the lowering's: a uint8 x enters shifted by -128, the input zero point's term
is folded into the bias, a padded conv is padded with the zero point on the host, and a uint8 y leaves
shifted by +128. Checked per kernel against the exact integer definition, per layer against onnxruntime's
reference execution of the QDQ model (BASIC level), and end to end; every output equal where the scales
are powers of two.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_static
from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv, compile_matmul, conv2d_int, requantize
from tensorweave.compiler.accel.requant import requantize_float
from tensorweave.compiler.pipeline import compile_model
from tensorweave.compiler.quantize import pow2_scales
from tensorweave.compiler.report import node_placements
from tensorweave.compiler.run import compare_outputs, reference_outputs, step_agreement
from tensorweave.configs import load_config

VTA = load_config("vta-default")


# ---- kernels: the integer definition, zero points included ----------------------------------------------
def _reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, spec: ConvSpec, rq: Requant, plan):
    """requantize(sum w * (x - zp_x) + bias) in the output type, padding with the zero point (= 0 after the
    subtraction, which conv2d_int pads with)."""
    acc = conv2d_int(x.astype(np.int64) - rq.input_zero_point, w, spec, bias)
    return requantize(acc, plan) + rq.output_offset, acc


@pytest.mark.parametrize("dtype, zp_in, zp_out, relu", [
    ("uint8", 20, 3, False),      # zero point far from 128: the padding would be off by -108 * w with 0-padding
    ("uint8", 231, 0, True),      # the ReLU's lower clamp at the uint8 zero point 0
    ("int8", -100, 17, False),    # onnxruntime's default: int8 activations with a zero point
])
def test_padded_conv_with_zero_points_is_exact(dtype, zp_in, zp_out, relu):
    rng = np.random.default_rng(zp_in & 0xFF)
    spec = ConvSpec(1, 16, 7, 7, 32, (3, 3), stride=(1, 1), pads=(1, 1, 1, 1))
    w = rng.integers(-127, 128, spec.weight_shape)
    bias = rng.integers(-3000, 3000, 32)
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    x = rng.integers(lo, hi + 1, (1, 16, 7, 7))
    rq = Requant(0.02, tuple(rng.uniform(0.002, 0.004, 32)), 0.9, output_zero_point=zp_out, relu=relu,
                 input_zero_point=zp_in, input_dtype=dtype, output_dtype=dtype)
    kernel = compile_conv(VTA, spec, w, bias, rq, use_cache=False, cost_model="analytical")
    assert kernel.host_pads == (1, 1, 1, 1) and "padded on the host" in kernel.description
    y, _ = kernel.run(x.astype(dtype))
    want, acc = _reference(x, w, bias, spec, rq, kernel.plan)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y.astype(np.int64), want)
    # and within 1 LSB of onnxruntime's float requantization, on at least 99 % of the elements
    diff = np.abs(y.astype(np.int64) - requantize_float(acc, rq))
    assert diff.max() <= 1 and np.mean(diff == 0) >= 0.99
    # the border is where padding with 0 instead of the zero point would differ: it does here
    zero_padded = conv2d_int(x.astype(np.int64), w, spec, bias) - rq.input_zero_point * w.reshape(32, -1).sum(1)[
        None, :, None, None]
    wrong = requantize(zero_padded, kernel.plan) + rq.output_offset
    assert np.any(wrong[:, :, 0] != want[:, :, 0]) and np.array_equal(wrong[:, :, 1:-1, 1:-1], want[:, :, 1:-1, 1:-1])
    assert len(set(y.reshape(-1).tolist())) > 20  # the layer computed something, not a clamped constant


def test_unpadded_conv_and_matmul_fold_the_zero_point_into_the_bias():
    rng = np.random.default_rng(5)
    spec = ConvSpec(1, 32, 6, 6, 16, (1, 1))
    w = rng.integers(-127, 128, spec.weight_shape)
    rq = Requant(0.05, (0.003,), 0.4, output_zero_point=128, input_zero_point=60, input_dtype="uint8",
                 output_dtype="uint8")
    kernel = compile_conv(VTA, spec, w, None, rq, use_cache=False, cost_model="analytical")
    assert kernel.host_pads == (0, 0, 0, 0) and kernel.has_bias  # the zero point made a bias
    x = rng.integers(0, 256, (1, 32, 6, 6))
    y, _ = kernel.run(x.astype(np.uint8))
    np.testing.assert_array_equal(y.astype(np.int64), _reference(x, w, None, spec, rq, kernel.plan)[0])
    # matmul: uint8 rows in, int8 out
    wm = rng.integers(-127, 128, (48, 24))
    rq = Requant(0.05, tuple(rng.uniform(0.002, 0.004, 24)), 0.3, output_zero_point=-7, input_zero_point=200,
                 input_dtype="uint8", output_dtype="int8")
    mm = compile_matmul(VTA, 3, 48, 24, wm, np.arange(24), rq, use_cache=False, cost_model="analytical")
    a = rng.integers(0, 256, (3, 48))
    y, _ = mm.run(a.astype(np.uint8))
    acc = (a - 200) @ wm + np.arange(24)
    np.testing.assert_array_equal(y.reshape(3, 24), requantize(acc, mm.plan, channel_axis=1))
    with pytest.raises(Exception, match=r"x spans -1\.\.255, outside uint8 \(0\.\.255\)"):
        mm.run(np.where(a == a.min(), -1, a))  # a uint8 kernel given int8-range values


def test_requant_refuses_a_zero_point_outside_its_type():
    with pytest.raises(Exception, match=r"Requant.input_zero_point = 300 is outside uint8"):
        Requant(0.1, (0.1,), 0.1, input_zero_point=300, input_dtype="uint8")
    with pytest.raises(Exception, match=r"Requant.output_dtype = 'int16'"):
        Requant(0.1, (0.1,), 0.1, output_dtype="int16")


# ---- models: quantize_static defaults, compiled and checked -------------------------------------------------
def _cnn(seed: int = 0) -> onnx.ModelProto:
    """16 input channels (the first conv offloads: no 3-channel stem), two padded 3x3 convs with ReLU, a
    residual Add, max pool, a strided 3x3 conv, a 1x1 conv, global average pool and a Gemm."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(x, cin, cout, k, stride=1, relu=True, name=""):
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}.w"), numpy_helper.from_array(b, f"{name}.b")])
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.y"], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        if not relu:
            return f"{name}.y"
        nodes.append(helper.make_node("Relu", [f"{name}.y"], [f"{name}.r"], name=f"{name}.relu"))
        return f"{name}.r"

    a = conv("input", 16, 32, 3, name="conv1")
    b = conv(a, 32, 32, 3, name="conv2", relu=False)
    nodes += [helper.make_node("Add", [a, b], ["sum"], name="add"),
              helper.make_node("Relu", ["sum"], ["sum.r"], name="add.relu"),
              helper.make_node("MaxPool", ["sum.r"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2])]
    c = conv("pool", 32, 48, 3, stride=2, name="conv3")
    d = conv(c, 48, 64, 1, name="conv4")
    w = (rng.standard_normal((10, 64)) * 0.2).astype(np.float32)
    inits += [numpy_helper.from_array(w, "fc.w"), numpy_helper.from_array(np.zeros(10, np.float32), "fc.b")]
    nodes += [helper.make_node("GlobalAveragePool", [d], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "zp_cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               [1, 16, 12, 12])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


class _Reader:
    def __init__(self, samples):
        self._it = iter(samples)

    def get_next(self):
        return next(self._it, None)


def _samples(count: int, seed: int, shift: float = 0.0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"input": (rng.standard_normal((1, 16, 12, 12)) + shift).astype(np.float32)} for _ in range(count)]


def _quantize(model: onnx.ModelProto, tmp_path, name: str, shift: float = 0.0, **options) -> onnx.ModelProto:
    """onnxruntime's quantize_static with its defaults and `options`, calibrated on 4 random inputs."""
    src, out = tmp_path / f"{name}.float.onnx", tmp_path / f"{name}.onnx"
    onnx.save(model, str(src))
    quantize_static(str(src), str(out), _Reader(_samples(4, 1, shift)), **options)
    return onnx.load(str(out))


def _accel_share(compiled) -> float:
    macs = sum(r.macs for r in compiled.layers)
    return sum(r.macs for r in compiled.layers if r.target == "accel") / macs


def _check(qdq: onnx.ModelProto, seeds=(0, 1)):
    compiled = compile_model(qdq, "vta-default", target="accel", cost_model="analytical")
    for seed in seeds:
        inputs = {"input": _samples(1, 100 + seed)[0]["input"]}
        outputs = compiled.run(inputs)
        (agreement,) = compare_outputs(compiled.graph, outputs, reference_outputs(qdq, inputs))
        rows = step_agreement(compiled, inputs)
        yield compiled, agreement, rows


@pytest.mark.parametrize("name, options", [
    ("defaults", {}),                                                       # QInt8 activations with zero points
    ("quint8", {"activation_type": QuantType.QUInt8}),                      # the documented QUInt8 default
    ("quint8_per_channel", {"activation_type": QuantType.QUInt8, "per_channel": True}),
])
def test_quantize_static_models_offload_and_agree_per_layer(tmp_path, name, options):
    qdq = _quantize(_cnn(), tmp_path, name, **options)
    act = "uint8" if options else "int8"
    zps = [numpy_helper.to_array(i) for i in qdq.graph.initializer if i.name.endswith("_zero_point")]
    assert any(z.dtype == np.dtype(act) and z.reshape(-1)[0] not in (0, 128) for z in zps)  # truly asymmetric
    for compiled, agreement, rows in _check(qdq):
        assert compiled.refused == {} and _accel_share(compiled) == 1.0
        assert {r.layer for r in compiled.layers if r.target == "accel"} == {"conv1", "conv2", "conv3", "conv4", "fc"}
        accel = [r for r in rows if r.target == "accel"]
        assert len(accel) == 5 and all(r.max_difference <= 1 for r in accel)
        total = sum(r.elements for r in accel)
        assert sum(r.differing for r in accel) <= 1e-4 * total + 1  # >= 99.99 % equal per layer
        assert agreement.max_difference <= 1 and agreement.equal >= 9


def test_power_of_two_scales_with_zero_points_equal_onnxruntime(tmp_path):
    """pow2 scales (`tensorweave.compiler.quantize.pow2_scales`) over onnxruntime's uint8 / int8 zero points: the
    float reference is exact and every layer's output and every final output equal onnxruntime's."""
    for options in ({"activation_type": QuantType.QUInt8}, {}):
        qdq = pow2_scales(_quantize(_cnn(), tmp_path, "p2", **options))
        for compiled, agreement, rows in _check(qdq, seeds=(0, 1, 2)):
            assert _accel_share(compiled) == 1.0
            assert all(s.kernel.plan.mode == "pow2" for s in compiled.steps if s.target == "accel")
            assert agreement.equal == agreement.elements, agreement
            assert sum(r.differing for r in rows) == 0 and len([r for r in rows if r.target == "accel"]) == 5


def test_padding_with_a_zero_point_far_from_128(tmp_path):
    """A single padded conv whose uint8 input zero point is small (inputs mostly positive), so that padding
    with 0 - 128 instead of the zero point would show on every border pixel."""
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3])],
        "pad", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 12, 12])], initializer=[
            numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    qdq = pow2_scales(_quantize(model, tmp_path, "pad", shift=2.5, activation_type=QuantType.QUInt8))
    compiled = compile_model(qdq, "vta-default", target="accel", cost_model="analytical")
    (step,) = [s for s in compiled.steps if s.target == "accel"]
    assert step.kernel.requant.input_dtype == "uint8" and step.kernel.requant.input_zero_point < 64
    assert step.kernel.host_pads == (1, 1, 1, 1)
    inputs = {"input": _samples(1, 9, shift=2.5)[0]["input"]}
    (agreement,) = compare_outputs(compiled.graph, compiled.run(inputs), reference_outputs(qdq, inputs))
    assert agreement.equal == agreement.elements == 32 * 144
    rows = step_agreement(compiled, inputs)
    assert sum(r.differing for r in rows) == 0 and any(r.target == "accel" for r in rows)


def test_explain_lists_every_node_with_a_reason(tmp_path):
    qdq = _quantize(_cnn(), tmp_path, "explain", activation_type=QuantType.QUInt8)
    compiled = compile_model(qdq, "vta-default", target="accel", cost_model="analytical")
    text = compiled.explain()
    assert "every node" in text and compiled.offload_warning() is None
    listed = text.split("every node", 1)[1]
    for node in compiled.graph.nodes:
        assert f"    {node.name} " in listed, node.name
    placements = {n.name: (where, why) for n, where, why in node_placements(compiled)}
    assert placements["conv1"][0] == "accel" and placements["add"] == ("cpu", "no accelerator op for Add")
    assert placements["pool"] == ("cpu", "no accelerator op for MaxPool")
    assert all(why for _, why in placements.values())


def test_a_model_that_offloads_nothing_says_why_first(tmp_path):
    """Weights quantized as uint8 (not the accelerator's int8): nothing offloads, and the first line of
    --explain, the table and --check say so with the matcher's reason."""
    qdq = _quantize(_cnn(), tmp_path, "u8w", activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8)
    compiled = compile_model(qdq, "vta-default", target="accel", cost_model="analytical")
    assert _accel_share(compiled) == 0.0
    first = compiled.explain().splitlines()[0]
    assert first.startswith("WARNING: 0% of the MACs run on the accelerator") and "conv1:" in first
    assert "dequantizes uint8 (the accelerator takes int8)" in first and "4 more of 5" in first
    for name in ("conv1", "conv2", "conv3", "conv4", "fc"):
        assert "not a quantized layer the accelerator runs" in compiled.refused[name]
    assert compiled.table().splitlines()[0] == first


def test_cli_run_check_warns_when_nothing_offloads(tmp_path, capsys):
    from tensorweave.cli import main
    path = tmp_path / "f.onnx"
    onnx.save(_cnn(), str(path))
    assert main(["run", str(path), "--check"]) == 0  # a float model: --check agrees, on the CPU
    out = capsys.readouterr().out
    assert out.count("WARNING: 0% of the MACs run on the accelerator") >= 2 and "not quantized" in out
    assert out.rstrip().splitlines()[-1].startswith("WARNING: 0% of the MACs")


def _conv_matmul_net(seed: int = 2) -> onnx.ModelProto:
    """Convs (padded, ReLU), a max pool, a strided conv, Flatten and a MatMul: ops whose QOperator forms
    (QLinearConv, QLinearMatMul, MaxPool and Flatten on integers) the CPU back end also runs."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    x = "input"
    for i, (cin, cout, stride) in enumerate(((16, 32, 1), (32, 32, 1), (32, 48, 2))):
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(
            (rng.standard_normal(cout) * 0.1).astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", kernel_shape=[3, 3],
                                   pads=[1, 1, 1, 1], strides=[stride, stride]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
        if i == 1:
            nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
            x = "pool"
    inits.append(numpy_helper.from_array((rng.standard_normal((432, 10)) * 0.05).astype(np.float32), "fc.w"))
    nodes += [helper.make_node("Flatten", [x], ["flat"], name="flatten"),
              helper.make_node("MatMul", ["flat", "fc.w"], ["logits"], name="fc")]
    graph = helper.make_graph(nodes, "qop", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            [1, 16, 12, 12])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("activation_type", [QuantType.QUInt8, QuantType.QInt8])
def test_qoperator_format_offloads_and_agrees_per_layer(tmp_path, activation_type):
    from onnxruntime.quantization import QuantFormat
    # reduce_range (7-bit weights), as onnxruntime advises for u8 x s8 on x86: its reference QLinearConv kernel
    # (the BASIC level runs it as written) apparently sums u8 x s8 product pairs in saturating int16; with
    # full-range weights an element of this net came out 4 LSB below the exact result (73.28 -> 69; we give 73)
    qop = _quantize(_conv_matmul_net(), tmp_path, "qop", quant_format=QuantFormat.QOperator,
                    activation_type=activation_type, reduce_range=True)
    assert {n.op_type for n in qop.graph.node} >= {"QLinearConv", "QLinearMatMul"}
    for compiled, agreement, rows in _check(qop):
        assert compiled.refused == {} and _accel_share(compiled) == 1.0
        accel = [r for r in rows if r.target == "accel"]
        assert len(accel) == 4 and all(r.max_difference <= 1 for r in accel)
        assert sum(r.differing for r in accel) <= 1e-4 * sum(r.elements for r in accel) + 1
        assert agreement.max_difference <= 1
