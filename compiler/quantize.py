"""Post-training int8 quantization of float ONNX models, by onnxruntime's own quantizer.

`quantize_model(model, samples=N | data=arrays)` runs `quant_pre_process` (shape inference, BatchNorm
folding) and then `quantize_static` with the project's convention: QDQ format, int8 symmetric
activations (zero point 0), per-channel int8 weights, int32 bias. Calibration (MinMax) uses the given
sample inputs, or `samples` seeded random ones (standard normal for floats). No calibration is written
here: the scales are onnxruntime's, so the QDQ model is exactly what onnxruntime users would get.

    tensorweave quantize model.onnx -o model.int8.onnx --samples 8
    tensorweave quantize model.onnx -o model.int8.onnx --data calib.npz     # arrays named like the inputs
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from ..errors import TensorweaveError
from .frontend import load_model

__all__ = ["QuantizeError", "is_quantized", "load_samples", "quantize_model", "random_samples"]


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
    if not path.is_file():
        raise QuantizeError(f"calibration data '{path}' does not exist")
    data = np.load(path)
    names = [v.name for v in _runtime_inputs(model)]
    missing = [n for n in names if n not in data.files]
    if missing:
        raise QuantizeError(f"'{path}' has arrays {', '.join(data.files)}; the model needs {', '.join(names)}")
    specs = {v.name: _input_spec(v, {}) for v in _runtime_inputs(model)}
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


def quantize_model(model_or_path: onnx.ModelProto | str | Path, *, samples: int = 8,
                   data: Sequence[Mapping[str, np.ndarray]] | None = None, seed: int = 0,
                   input_shapes: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """A QDQ int8 model (project convention) calibrated on `data`, or on `samples` random inputs."""
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
        return onnx.load(str(out))
