"""The ONNX node conformance set shared by the CPU and GPU back ends: which op types, which cases.

`OPS` lists the op types (80); `node_cases()` collects every `onnx.backend.test` node case (ONNX 1.23)
whose single node is one of them, minus those `EXCLUDED` names with the reason; `check_case(case, rep)`
runs one case on a prepared `onnx.backend.base.BackendRep` and raises AssertionError unless every
output equals the expected one (float: within the case's rtol / atol; integers and bools: exactly),
or onnxruntime's (`onnxruntime_outputs`) where it is given;
`format_report` prints the pass counts per op. `tests/compiler/backends/*/test_onnx_conformance.py`
drive them.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["EXCLUDED", "OPS", "check_case", "format_report", "freeze_shape_inputs", "node_cases",
           "onnxruntime_outputs"]

OPS = (
    # elementwise arithmetic, comparison and logic
    "Add", "Sub", "Mul", "Div", "Pow", "Neg", "Abs", "Reciprocal", "Sqrt", "Exp", "Log", "Floor", "Ceil", "Round",
    "Sign", "Sin", "Cos", "Erf", "Max", "Min", "Sum", "Mean", "Equal", "Less", "Greater", "Not", "And", "Or", "Xor",
    "Where", "Identity",
    # activations
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign",
    "PRelu", "Clip", "Gelu", "Softmax", "LogSoftmax",
    # shape and data movement
    "Reshape", "Transpose", "Concat", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather", "Expand", "Tile",
    "Shape", "Size", "Pad",
    # reductions
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ArgMax", "ArgMin",
    # neural-network ops
    "Conv", "MatMul", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization",
    # quantized ops
    "QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "MatMulInteger", "ConvInteger",
)

_NARROW = "16-bit and narrower float types and sub-byte integers are not supported (float32/float64 and 8-64 bit ints)"
EXCLUDED: dict[str, str] = {
    "test_max_float16": _NARROW,
    "test_min_float16": _NARROW,
    **{f"test_qlinearmatmul_{d}_{t}_float16": _NARROW for d in ("2D", "3D") for t in ("uint8", "int8")},
    **{f"test_quantizelinear_{t}": _NARROW for t in ("e4m3fn", "e5m2", "uint4", "int4", "uint2", "int2", "float4e2m1")},
    **{f"test_dequantizelinear_{t}": _NARROW for t in ("e4m3fn", "e4m3fn_float16", "e4m3fn_zero_point", "e5m2",
                                                       "uint4", "int4", "uint2", "int2", "float4e2m1")},
    "test_quantizelinear_blocked_asymmetric": "blocked quantization (block_size) is not supported",
    "test_quantizelinear_blocked_symmetric": "blocked quantization (block_size) is not supported",
    "test_dequantizelinear_blocked": "blocked quantization (block_size) is not supported",
    "test_equal_string": "string tensors are not supported",
    "test_equal_string_broadcast": "string tensors are not supported",
    "test_identity_sequence": "sequence values are not supported (tensors only)",
    "test_identity_opt": "optional values are not supported (tensors only)",
    "test_batchnorm_example_training_mode": "BatchNormalization is inference only (no running-statistics outputs)",
    "test_batchnorm_epsilon_training_mode": "BatchNormalization is inference only (no running-statistics outputs)",
}


@functools.cache
def _all_cases() -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = collect_testcases(None)
    return tuple(freeze_shape_inputs(c) for c in cases if c.model is not None and len(c.model.graph.node) == 1
                 and c.model.graph.node[0].op_type in OPS)


def freeze_shape_inputs(case: Any) -> Any:
    """The case with every input whose value decides the output shape (Reshape's shape, Slice's starts, Pad's
    pads, ...) made an initializer holding the case's value: back ends compile static shapes and refuse such
    inputs at run time. Cases whose input sets disagree on that value are returned unchanged."""
    import onnx
    from onnx import numpy_helper

    from ..shapes import value_shaped_inputs

    node = case.model.graph.node[0]
    names = [v.name for v in case.model.graph.input]
    shaped = {node.input[i] for i, _ in value_shaped_inputs(node.op_type, node.domain) if i < len(node.input)}
    positions = [names.index(v) for v in sorted(shaped) if v in names]
    if not positions or not case.data_sets:
        return case
    values = {}
    for pos in positions:
        first = np.asarray(case.data_sets[0][0][pos])
        if any(not np.array_equal(np.asarray(inputs[pos]), first) for inputs, _ in case.data_sets[1:]):
            return case
        values[names[pos]] = first
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    kept = [v for v in model.graph.input if v.name not in values]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(a, name) for name, a in values.items())
    data_sets = [([x for i, x in enumerate(inputs) if i not in positions], outputs)
                 for inputs, outputs in case.data_sets]
    return dataclasses.replace(case, model=model, data_sets=data_sets)


def node_cases(excluded: bool = False) -> list[Any]:
    """The node cases of OPS, without those in EXCLUDED (with them if `excluded`)."""
    return [c for c in _all_cases() if excluded or c.name not in EXCLUDED]


def onnxruntime_outputs(case: Any) -> list[list[np.ndarray]] | None:
    """onnxruntime's outputs for each of the case's input sets, or None where it cannot run the case (an
    opset or type it does not implement)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(case.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return [session.run(None, dict(zip(names, (np.asarray(v) for v in inputs)))) for inputs, _ in case.data_sets]
    except Exception:  # noqa: BLE001 - any refusal means: no onnxruntime reference for this case
        return None


def check_case(case: Any, rep: Any, reference: list[list[np.ndarray]] | None = None) -> None:
    """Run `case` on the prepared model `rep` and compare with the case's expected outputs (or with
    `reference`, e.g. `onnxruntime_outputs(case)`); AssertionError names the first mismatch."""
    sets = case.data_sets if reference is None else [(i, r) for (i, _), r in zip(case.data_sets, reference)]
    for inputs, expected in sets:
        got = rep.run(list(inputs))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            e = np.asarray(e)
            assert g.shape == e.shape, f"shape {g.shape} != {e.shape}"
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g.astype(e.dtype), e, rtol=case.rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)


def format_report(backend: str, passed: Counter[str], failures: Sequence[str], seconds: float) -> str:
    """The per-op pass counts and the total, as the conformance tests print them."""
    lines = [f"ONNX node conformance of the {backend} ({len(OPS)} op types, {len(EXCLUDED)} cases excluded):"]
    lines += [f"  {op:20s} {passed[op]:3d} passed" for op in OPS]
    lines.append(f"  {'total':20s} {sum(passed.values()):3d} passed, {len(failures)} failed in {seconds:.1f} s")
    return "\n".join(lines)
