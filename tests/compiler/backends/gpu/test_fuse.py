"""Elementwise fusion: which nodes fuse (single consumer, not a graph output, same shape), and that the fused
kernels compute exactly what the unfused ones do and what onnxruntime does (integers bit for bit)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.frontend import from_onnx

RNG = np.random.default_rng(11)
SHAPE = [2, 3, 4, 5]


def _model():
    f32 = np.float32
    consts = {
        "s1": np.array(0.05, f32), "z1": np.array(3, np.int8),
        "s2": np.array([0.02, 0.03, 0.07], f32), "z2": np.array([-4, 0, 9], np.int8),  # per channel (axis 1)
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s1", "z1"], ["d"]),
        helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["y1"], axis=1),
        helper.make_node("Mul", ["x", "x"], ["m"]),            # m is a graph output: stays its own kernel
        helper.make_node("Add", ["m", "x"], ["a"]),            # a has two consumers: not absorbed
        helper.make_node("Sigmoid", ["a"], ["b"]),
        helper.make_node("Abs", ["a"], ["c"]),
        helper.make_node("Add", ["b", "c"], ["y2"]),           # absorbs Sigmoid and Abs
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "fuse", [value("x", TensorProto.FLOAT, SHAPE)],
        [value("y1", TensorProto.INT8, SHAPE), value("y2", TensorProto.FLOAT, SHAPE),
         value("m", TensorProto.FLOAT, SHAPE)],
        [numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_fusion_groups_and_results(opencl: str) -> None:
    from tensorweave.compiler.backends.gpu import compile_graph, generate

    model = _model()
    graph = from_onnx(model)
    fused = generate(graph)
    groups = sorted(launch.kernel.note.split(":")[0] for launch in fused.launches)
    assert groups == ["Add", "Mul", "QuantizeLinear+DequantizeLinear+Relu+QuantizeLinear", "Sigmoid+Abs+Add"]
    assert len(generate(graph, fuse=False).launches) == len(graph.nodes)

    x = (RNG.standard_normal(SHAPE) * 4).astype(np.float32)
    x.flat[:4] = [0.025, -0.075, 0.125, 6.2]  # ties of the first quantization (0.5 and 1.5 steps)
    got = compile_graph(graph, opencl, rewrite=False).run({"x": x})
    plain = compile_graph(graph, opencl, rewrite=False, fuse=False).run({"x": x})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(["y1", "y2", "m"], session.run(["y1", "y2", "m"], {"x": x})))
    for name in ("y1", "y2", "m"):
        np.testing.assert_array_equal(got[name], plain[name], err_msg=name)  # fusion changes no bit
    np.testing.assert_array_equal(got["y1"], want["y1"])
    np.testing.assert_allclose(got["y2"], want["y2"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got["m"], want["m"])


def test_quantized_model_runs_with_fewer_kernels(opencl: str) -> None:
    from tensorweave.compiler.backends.gpu import compile_graph
    from tensorweave.compiler.models import small_cnn
    from tensorweave.compiler.quantize import quantize_model
    from tensorweave.compiler.run import reference_outputs

    model = quantize_model(small_cnn(seed=2), samples=2)
    graph = from_onnx(model)
    x = RNG.standard_normal(graph.types[graph.inputs[0]].shape).astype(np.float32)
    fused, plain = compile_graph(graph, opencl), compile_graph(graph, opencl, fuse=False)
    assert len(fused.launches) < len(plain.launches)
    out = graph.outputs[0]
    got = fused.run({graph.inputs[0]: x})[out]
    np.testing.assert_array_equal(got, plain.run({graph.inputs[0]: x})[out])
    np.testing.assert_array_equal(got, reference_outputs(model, {graph.inputs[0]: x})[out])


@pytest.mark.gpu
def test_fusion_on_cuda_changes_no_bit(cuda: str) -> None:
    from tensorweave.compiler.backends.gpu import compile_graph

    graph = from_onnx(_model())
    x = (RNG.standard_normal(SHAPE) * 4).astype(np.float32)
    got = compile_graph(graph, cuda, rewrite=False).run({"x": x})
    plain = compile_graph(graph, cuda, rewrite=False, fuse=False).run({"x": x})
    for name in ("y1", "y2", "m"):
        np.testing.assert_array_equal(got[name], plain[name], err_msg=name)


def test_float_conv_computes_its_relu_and_add_relu_fuse(opencl: str) -> None:
    from tensorweave.compiler.backends.cpu.cgen import FUSED_RELU
    from tensorweave.compiler.backends.gpu import compile_graph
    from tensorweave.compiler.models import small_cnn
    from tensorweave.compiler.run import reference_outputs

    model = small_cnn(seed=4)
    graph = from_onnx(model)
    exe = compile_graph(graph, opencl)
    ops = [n.op for n in exe.graph.nodes]
    # conv -> BN -> relu three times: BN folds, the relu runs in the conv's epilogue; the relu after the
    # residual add fuses with it into one elementwise kernel
    assert ops.count("Relu") == 1 and all(n.attrs.get(FUSED_RELU) for n in exe.graph.nodes if n.op == "Conv")
    sums = [lc for lc in exe.launches if lc.kernel.name.endswith("_sum")]  # split K (on a GPU device)
    assert "Add+Relu: " in exe.source and len(exe.launches) - len(sums) == len(exe.graph.nodes) - 1
    x = RNG.standard_normal(graph.types[graph.inputs[0]].shape).astype(np.float32)
    out = graph.outputs[0]
    np.testing.assert_allclose(exe.run({graph.inputs[0]: x})[out], reference_outputs(model, {graph.inputs[0]: x})[out],
                               rtol=1e-4, atol=1e-4)
