"""Post-training int8 quantization of float ONNX models, by onnxruntime's own quantizer.

`quantize_model(model, samples=N | data=arrays)` runs `quant_pre_process` (shape inference, BatchNorm
folding) and then `quantize_static` with the project's convention: QDQ format, int8 symmetric
activations (zero point 0), per-channel int8 weights, int32 bias. Calibration (MinMax) uses the given
sample inputs, or `samples` seeded random ones (standard normal for floats). No calibration is written
here: the ranges are onnxruntime's.

Scales: by default (`scales="pow2"`, as VTA quantized) every scale is then rounded up to a power of two
(`pow2_scales`). The accelerator then requantizes with one rounding shift (RSHR) and reproduces
onnxruntime's execution of the QDQ model bit for bit, end to end (ResNet-18: 1,000 of 1,000 outputs
equal); the price is up to one bit of resolution (ResNet-18 with random weights: 3.3 % instead of 2.0 %
relative error against the float model). `scales="onnxruntime"` keeps onnxruntime's scales exactly: the
accelerator then uses fixed-point multipliers, exact per layer up to rare 1-LSB near-ties (`compiler/run.py`).

    tensorweave quantize model.onnx -o model.int8.onnx --samples 8
    tensorweave quantize model.onnx -o model.int8.onnx --data calib.npz     # arrays named like the inputs
    tensorweave quantize model.onnx -o model.int8.onnx --scales onnxruntime
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from ..errors import TensorweaveError
from .arrays import cast_to, read_npz
from .frontend import load_model

__all__ = ["SCALES", "QuantizeError", "is_quantized", "load_samples", "pow2_scales", "quantize_model", "random_samples"]


class QuantizeError(TensorweaveError):
    """A model or calibration data set that cannot be quantized (the message says why)."""


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the model already holds QuantizeLinear / DequantizeLinear nodes (a QDQ model)."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _runtime_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _input_spec(value: onnx.ValueInfoProto, shapes: Mapping[str, Sequence[int]]) -> tuple[tuple[int, ...], np.dtype]:
    t = value.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    if value.name in shapes:
        return tuple(int(d) for d in shapes[value.name]), dtype
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
    if not t.HasField("shape") or any(d <= 0 for d in dims):
        example = ",".join(str(d) if d > 0 else "1" for d in dims) or "1,3,224,224"
        raise QuantizeError(f"input '{value.name}' has a dynamic shape; give it, e.g. --input-shape "
                            f"{value.name}={example} (or pass --data)")
    return tuple(dims), dtype


def random_samples(model: onnx.ModelProto, count: int, seed: int = 0,
                   input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[dict[str, np.ndarray]]:
    """`count` seeded random input sets: standard normal floats, small non-negative integers."""
    if count < 1:
        raise QuantizeError(f"--samples must be at least 1, not {count}")
    rng = np.random.default_rng(seed)
    specs = {v.name: _input_spec(v, input_shapes or {}) for v in _runtime_inputs(model)}
    out = []
    for _ in range(count):
        sample = {}
        for name, (shape, dtype) in specs.items():
            if dtype.kind == "f":
                sample[name] = rng.standard_normal(shape).astype(dtype)
            elif dtype.kind in "iu":
                sample[name] = rng.integers(0, 8, shape).astype(dtype)
            else:
                sample[name] = rng.integers(0, 2, shape).astype(dtype)
        out.append(sample)
    return out


def load_samples(path: str | Path, model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    """Calibration inputs from an .npz file: one array per model input, the first axis indexing samples
    (for a batch-1 input of shape (1, 3, 224, 224) store (N, 3, 224, 224) or (N, 1, 3, 224, 224))."""
    path = Path(path)
    data = read_npz(path, "--data", QuantizeError)
    names = [v.name for v in _runtime_inputs(model)]
    missing = [n for n in names if n not in data]
    if missing:
        raise QuantizeError(f"'{path}' has arrays {', '.join(data) or 'none'}; the model needs {', '.join(names)}")
    specs = {v.name: _input_spec(v, {}) for v in _runtime_inputs(model)}
    for n in names:
        if data[n].ndim == 0:
            raise QuantizeError(f"'{path}': array '{n}' is a scalar; its first axis must index the samples")
        data[n] = cast_to(data[n], specs[n][1], f"'{path}': array '{n}'", QuantizeError)
    count = {data[n].shape[0] for n in names}
    if len(count) != 1:
        raise QuantizeError(f"'{path}': the arrays hold different numbers of samples ({sorted(count)})")
    samples = []
    for i in range(count.pop()):
        sample = {}
        for n in names:
            shape, dtype = specs[n]
            value = np.asarray(data[n][i], dtype=dtype)
            if value.size != int(np.prod(shape)):
                raise QuantizeError(f"'{path}': sample {i} of '{n}' has shape {value.shape}; the input is {shape}")
            sample[n] = value.reshape(shape)
        samples.append(sample)
    return samples


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of input dicts."""

    def __init__(self, samples: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._samples = iter([dict(s) for s in samples])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._samples, None)


SCALES = ("onnxruntime", "pow2")


def quantize_model(model_or_path: onnx.ModelProto | str | Path, *, samples: int = 8,
                   data: Sequence[Mapping[str, np.ndarray]] | None = None, seed: int = 0,
                   input_shapes: Mapping[str, Sequence[int]] | None = None,
                   scales: str = "pow2") -> onnx.ModelProto:
    """A QDQ int8 model (project convention) calibrated on `data`, or on `samples` random inputs.

    `scales="pow2"` then rounds every scale up to a power of two (`pow2_scales`), requantizing the weights
    and biases from their float values.
    """
    if scales not in SCALES:
        raise QuantizeError(f"scales must be one of {', '.join(SCALES)}, not '{scales}'")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_model(model_or_path)
    if is_quantized(model):
        raise QuantizeError("the model is already quantized (it has QuantizeLinear/DequantizeLinear nodes)")
    if input_shapes:
        from .frontend import _fix_input_shapes
        model = _fix_input_shapes(model, input_shapes)
    calibration = list(data) if data is not None else random_samples(model, samples, seed, input_shapes)
    with tempfile.TemporaryDirectory(prefix="tensorweave-quant-") as tmp:
        src, pre, out = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, str(src))
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), _Reader(calibration), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": True})
        except TensorweaveError:
            raise
        except Exception as exc:
            raise QuantizeError(f"onnxruntime could not quantize the model: {str(exc).strip().splitlines()[-1]}") \
                from exc
        qdq = onnx.load(str(out))
        return pow2_scales(qdq, onnx.load(str(pre))) if scales == "pow2" else qdq


def _pow2_ceil(scale: np.ndarray) -> np.ndarray:
    """The smallest power of two >= each scale (float32; exact)."""
    scale = np.asarray(scale, dtype=np.float64)
    if (scale <= 0).any() or not np.isfinite(scale).all():
        raise QuantizeError(f"a scale is not a positive finite number: {scale.reshape(-1)[:4]}")
    mantissa, exponent = np.frexp(scale)                       # scale = mantissa * 2^exponent, 0.5 <= m < 1
    return np.ldexp(1.0, exponent - (mantissa == 0.5)).astype(np.float32)


def pow2_scales(qdq: onnx.ModelProto, float_model: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """The same QDQ model with every scale rounded up to a power of two (VTA's quantization).

    With power-of-two scales, dequantized int8 values and their products are exact in float32, so the QDQ
    model's float reference computes integer sums exactly, and requantization is a single rounding shift
    (ALU RSHR: to nearest, ties to even, like QuantizeLinear): the accelerator then reproduces onnxruntime
    bit for bit. Rounding a scale up keeps every calibrated value in range and costs at most one bit.
    Weights are requantized from their float values in `float_model` where it has them (by onnxruntime's
    `<name>_quantized` naming), else from their int8 values; int32 biases get scale input_scale *
    weight_scale again, so they stay exact.
    """
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    inits = {i.name: i for i in model.graph.initializer}
    floats = {i.name: i for i in float_model.graph.initializer} if float_model is not None else {}
    producer = {o: n for n in model.graph.node for o in n.output}

    def value(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    def store(name: str, array: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(array, name))

    def source(name: str, quantized: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
        base = name[:-len("_quantized")] if name.endswith("_quantized") else None
        if base in floats and tuple(floats[base].dims) == quantized.shape:
            return numpy_helper.to_array(floats[base]).astype(np.float64)
        return quantized.astype(np.float64) * _along(scale, axis, quantized.ndim)

    snapped: dict[str, np.ndarray] = {}
    biases = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 2:
            continue
        data, scale = node.input[0], node.input[1]
        if scale not in inits:
            raise QuantizeError(f"node '{node.name or node.output[0]}': scale '{scale}' is not a constant")
        if node.op_type == "DequantizeLinear" and data in inits and inits[data].data_type == onnx.TensorProto.INT32:
            biases.append(node)
            continue
        if scale not in snapped:
            snapped[scale] = _pow2_ceil(value(scale))
        if node.op_type == "DequantizeLinear" and data in inits:          # a constant weight
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            old = value(data)
            weights = source(data, old, value(scale), axis)
            bits = np.iinfo(old.dtype)
            limit = min(bits.max, -bits.min) if bits.min < 0 else bits.max
            new = np.clip(np.rint(weights / _along(snapped[scale], axis, old.ndim)), -limit if bits.min < 0 else 0,
                          limit)
            store(data, new.astype(old.dtype))
    for scale, array in snapped.items():
        store(scale, array.astype(np.float32))
    consumers = {i: n for n in model.graph.node for i in n.input}
    for node in biases:
        user = consumers.get(node.output[0])
        if user is None or user.op_type not in ("Conv", "Gemm", "MatMul") or len(user.input) < 2:
            raise QuantizeError(f"int32 constant '{node.input[0]}' feeds no Conv/Gemm bias input; cannot rescale it")
        x_dq, w_dq = producer.get(user.input[0]), producer.get(user.input[1])
        if x_dq is None or w_dq is None or "DequantizeLinear" not in (x_dq.op_type, w_dq.op_type) \
                or x_dq.op_type != w_dq.op_type:
            raise QuantizeError(f"node '{user.name}': the bias needs dequantized data and weights")
        new_scale = (value(x_dq.input[1]).astype(np.float64) * value(w_dq.input[1])).astype(np.float32)
        old = value(node.input[0])
        bias = source(node.input[0], old, value(node.input[1]), 0)
        q = np.clip(np.rint(bias / new_scale.astype(np.float64)), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
        store(node.input[0], q)
        store(node.input[1], new_scale.reshape(value(node.input[1]).shape))
    return model


def _along(scale: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A per-axis scale broadcast against an ndim tensor (a scalar scale as is)."""
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim == 0:
        return scale
    shape = [1] * ndim
    shape[axis % ndim] = scale.size
    return scale.reshape(shape)
