"""Models built in code and their int8 QDQ quantization by onnxruntime's quantizer."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.models import build_model, main, resnet18, small_cnn
from tensorweave.compiler.quantize import QuantizeError, is_quantized, load_samples, quantize_model
from tensorweave.errors import TensorweaveError


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()  # QDQ semantics as written: see tensorweave.compiler.run
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_resnet18_has_torchvision_layout_and_parameter_count():
    model = resnet18()
    g = from_onnx(model)
    ops = g.ops()
    assert ops["Conv"] == 20 and ops["BatchNormalization"] == 20 and ops["Add"] == 8 and ops["Gemm"] == 1
    assert g.types[g.outputs[0]].shape == (1, 1000)
    stem = g.node("conv1")
    assert g.types[stem.inputs[1]].shape == (64, 3, 7, 7) and stem.attrs["strides"] == [2, 2]
    assert g.types["layer4.1.relu2_out"].shape == (1, 512, 7, 7)
    learnable = sum(a.size for k, a in g.constants.items() if not k.endswith((".mean", ".var")))
    assert learnable == 11_689_512  # torchvision.models.resnet18().parameters(), summed


def test_models_are_seeded(tmp_path):
    a, b, c = small_cnn(seed=1), small_cnn(seed=1), small_cnn(seed=2)
    assert a.SerializeToString() == b.SerializeToString() != c.SerializeToString()
    assert main(["small_cnn", "-o", str(tmp_path / "m.onnx")]) == 0
    assert onnx.load(str(tmp_path / "m.onnx")).SerializeToString() == small_cnn().SerializeToString()
    with pytest.raises(TensorweaveError, match="built-in models are small_cnn, resnet18, and from onnx.s test data bvlc_alexnet"):
        build_model("vgg")


def test_quantize_follows_the_convention():
    q = quantize_model(small_cnn(), samples=4)
    assert is_quantized(q) and not is_quantized(small_cnn())
    g = from_onnx(q)
    assert "BatchNormalization" not in g.ops()  # folded by quant_pre_process
    for node in g.nodes:
        if node.op != "QuantizeLinear":
            continue
        assert g.constants[node.inputs[2]].dtype == np.int8 and np.all(g.constants[node.inputs[2]] == 0)
        assert g.constants[node.inputs[1]].size == 1
    w = g.node("conv3.weight_DequantizeLinear")
    assert g.constants[w.inputs[0]].dtype == np.int8 and g.constants[w.inputs[1]].shape == (32,)
    assert w.attrs["axis"] == 0
    b = g.node("conv3.bias_DequantizeLinear")
    in_scale = g.constants["relu3_out_scale"]  # conv3 reads the max pool of relu3, quantized with its scale
    np.testing.assert_allclose(g.constants[b.inputs[1]], in_scale * g.constants[w.inputs[1]], rtol=1e-6)


def test_quantized_model_tracks_the_float_model():
    model = small_cnn()
    x = np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = _run(model, x)
    got = _run(quantize_model(model, samples=16, seed=1), x)
    assert np.linalg.norm(got - ref) < 0.05 * np.linalg.norm(ref)
    assert np.argmax(got) == np.argmax(ref)


def test_calibration_data_from_npz(tmp_path):
    model = small_cnn()
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3, 1, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", input=data)
    samples = load_samples(tmp_path / "calib.npz", model)
    assert len(samples) == 3 and samples[0]["input"].shape == (1, 3, 16, 16)
    from_file = quantize_model(model, data=samples, scales="onnxruntime")
    scaled = quantize_model(model, data=[{"input": s["input"] * 4} for s in samples], scales="onnxruntime")
    scale = from_onnx(from_file).constants["input_scale"]
    assert float(scale) == pytest.approx(np.abs(data).max() / 127, rel=1e-6)  # MinMax, symmetric
    assert float(from_onnx(scaled).constants["input_scale"]) == pytest.approx(4 * float(scale), rel=1e-6)
    pow2 = from_onnx(quantize_model(model, data=samples)).constants["input_scale"]   # the default
    assert float(pow2) == 2.0 ** np.ceil(np.log2(float(scale)))
    np.savez(tmp_path / "wrong.npz", image=data)
    with pytest.raises(QuantizeError, match="the model needs input"):
        load_samples(tmp_path / "wrong.npz", model)
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize_model(from_file)


def _is_pow2(values: np.ndarray) -> bool:
    mantissa, _ = np.frexp(np.asarray(values, dtype=np.float64))
    return bool(np.all(mantissa == 0.5))


def test_pow2_scales_rescale_weights_and_biases_from_the_float_model():
    model = small_cnn()
    exact = quantize_model(model, samples=4, scales="onnxruntime")
    g, ge = from_onnx(quantize_model(model, samples=4)), from_onnx(exact)
    scales = {n.inputs[1] for n in g.nodes if n.op in ("QuantizeLinear", "DequantizeLinear")}
    assert len(scales) > 10 and all(_is_pow2(g.constants[s]) for s in scales)
    for name in (s for s in scales if "bias" not in s):     # rounded up, by less than a factor of two
        ratio = g.constants[name].astype(np.float64) / ge.constants[name]
        assert np.all((ratio >= 1) & (ratio < 2)), name
    w = g.node("conv3.weight_DequantizeLinear")
    floats = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    w_scale = g.constants[w.inputs[1]].reshape(-1, 1, 1, 1)
    np.testing.assert_array_equal(g.constants[w.inputs[0]], np.rint(floats["conv3.weight"] / w_scale))
    b = g.node("conv3.bias_DequantizeLinear")
    b_scale = g.constants["relu3_out_scale"] * g.constants[w.inputs[1]]
    np.testing.assert_array_equal(g.constants[b.inputs[1]], b_scale)              # exactly, a product of powers of 2
    np.testing.assert_array_equal(g.constants[b.inputs[0]], np.rint(floats["conv3.bias"] / b_scale))


def test_unknown_scales_mode_is_refused():
    with pytest.raises(QuantizeError, match="scales must be one of onnxruntime, pow2, not 'log'"):
        quantize_model(small_cnn(), samples=1, scales="log")
