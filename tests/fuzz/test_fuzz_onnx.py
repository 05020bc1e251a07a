"""Fuzzing the ONNX model loader: mutated bytes of valid models -> a Graph or a FrontendError, nothing else.

Rule (issue 17): whatever bytes a .onnx file holds, `load_model` + `from_onnx` either import it or raise the
project's error class naming the file or node; never another exception, a crash or a hang. Each input runs
under an alarm (PER_INPUT_SECONDS). Tiers: DEFAULT_EXAMPLES inputs in the default run; the `slow` variant
TW_FUZZ_EXAMPLES (default 100,000), appending its counts to TW_FUZZ_REPORT (a JSON-lines file) when set.
"""

from __future__ import annotations

from collections import Counter

import onnx
import pytest
from fuzzing import DEFAULT_EXAMPLES, SLOW_EXAMPLES, mutated, outcome, report
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.models import small_cnn


def _small_graphs() -> list[bytes]:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    relu = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu", [x], [y])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.5] * 16)
    gemm = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["t"], name="mm"),
                              helper.make_node("Add", ["t", "x"], ["y"], name="add")], "mm", [x], [y], [w])
    models = [helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8) for g in (relu, gemm)]
    return [m.SerializeToString() for m in models]


SEEDS = [*_small_graphs(), small_cnn(image=8, classes=4).SerializeToString()]
COUNTS: Counter = Counter()


def test_seeds_import():
    for seed in SEEDS:
        assert from_onnx(onnx.load_from_string(seed)).nodes


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SEEDS))
def test_fuzz_onnx(raw):
    outcome(COUNTS, lambda: from_onnx(raw))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SEEDS))
def test_fuzz_onnx_slow(raw):
    outcome(COUNTS, lambda: from_onnx(raw))


def teardown_module() -> None:
    report("onnx model (from_onnx of bytes)", COUNTS)
