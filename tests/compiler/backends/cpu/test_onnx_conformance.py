"""ONNX backend node conformance of the CPU back end.

Every `onnx.backend.test` node case (ONNX 1.23) whose single node is one of OPS runs through the
`onnx.backend.base.Backend` adapter (`prepare` = `from_onnx` + `compile_graph`); outputs are compared
with the case's expected values (float: the case's rtol / atol; integers and bools: exactly). The test
prints the pass count per op and in total, and fails if any case of a listed op fails. A case is left
out only when it is named in EXCLUDED, with the reason.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections import Counter

import numpy as np
import pytest
from tensorweave.compiler.backends.cpu.executable import generate_c
from tensorweave.compiler.backends.cpu.onnx_backend import CPUBackend
from tensorweave.compiler.backends.cpu.toolchain import build_libraries
from tensorweave.compiler.frontend import from_onnx

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
def _cases() -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = collect_testcases(None)
    return [c for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in OPS]


def _check(case, rep) -> None:
    for inputs, expected in case.data_sets:
        got = rep.run(list(inputs))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            e = np.asarray(e)
            assert g.shape == e.shape, f"shape {g.shape} != {e.shape}"
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g.astype(e.dtype), e, rtol=case.rtol, atol=case.atol)
            else:
                np.testing.assert_array_equal(g, e)


def test_every_listed_op_has_cases() -> None:
    assert len(OPS) >= 40
    covered = {c.model.graph.node[0].op_type for c in _cases()}
    assert set(OPS) - covered == set(), "ops without an ONNX node case"


def test_onnx_node_conformance(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    cases = [c for c in _cases() if c.name not in EXCLUDED]
    passed: Counter[str] = Counter()
    failures: list[str] = []
    graphs = {}
    for case in cases:
        try:
            graphs[case.name] = from_onnx(case.model)
        except Exception as exc:  # reported below as a failure of that case
            failures.append(f"{case.name}: frontend: {exc}")
    sources = []
    for case in cases:
        if case.name in graphs:
            try:
                sources.append(generate_c(graphs[case.name]).source)
            except Exception as exc:
                failures.append(f"{case.name}: codegen: {exc}")
                del graphs[case.name]
    build_libraries(sources, jobs=os.cpu_count())  # compile in parallel; prepare() below hits the cache
    for case in cases:
        if case.name not in graphs:
            continue
        try:
            _check(case, CPUBackend.prepare(case.model))
            passed[case.model.graph.node[0].op_type] += 1
        except Exception as exc:
            failures.append(f"{case.name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    with capsys.disabled():
        print(f"\nONNX node conformance of the CPU back end ({len(OPS)} op types, {len(EXCLUDED)} cases excluded):")
        for op in OPS:
            print(f"  {op:20s} {passed[op]:3d} passed")
        print(f"  {'total':20s} {sum(passed.values()):3d} passed, {len(failures)} failed "
              f"in {time.perf_counter() - start:.1f} s")
    assert not failures, "\n".join(failures)
