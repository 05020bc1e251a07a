"""Fuzzing the input-file loaders: mutated .npy / .npz bytes -> arrays or the project's error, nothing else.

Rule (issue 17): `run --input NAME=FILE.npy` (`compiler.run.load_inputs`) and `quantize --data FILE.npz`
(`compiler.quantize.load_samples`) read a user's file into the model's input or raise a TensorweaveError
naming the file; never another exception, a hang, or an unpickled object. Tiers and reporting as in
test_fuzz_onnx.py.
"""

from __future__ import annotations

import io
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fuzzing import DEFAULT_EXAMPLES, SLOW_EXAMPLES, mutated, outcome, report
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper
from tensorweave.compiler.pipeline import compile_model
from tensorweave.compiler.quantize import load_samples
from tensorweave.compiler.run import load_inputs

WORK = Path(tempfile.mkdtemp(prefix="tw-fuzz-"))




def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


MODEL = _model()
COMPILED = compile_model(MODEL, None, target="cpu")
X = np.array([[-1.5, 2, -3, 4]], dtype=np.float32)
NPY_SEEDS = [_npy(X), _npy(X.astype(np.float64)), _npy(X.astype(np.int8)), _npy(np.zeros((2, 2), np.float32)),
             _npz(x=X)]
NPZ_SEEDS = [_npz(x=np.stack([X, X])), _npz(x=np.zeros((3, 1, 4), np.float64), other=np.arange(3)), _npy(X)]
COUNTS: dict[str, Counter] = {"npy": Counter(), "npz": Counter()}


def load_npy(raw: bytes) -> None:
    path = WORK / "x.npy"
    path.write_bytes(raw)
    inputs = load_inputs(COMPILED, [f"x={path}"])
    assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (1, 4)


def load_npz(raw: bytes) -> None:
    path = WORK / "data.npz"
    path.write_bytes(raw)
    for sample in load_samples(path, MODEL):
        assert sample["x"].dtype == np.float32 and sample["x"].shape == (1, 4)


def test_seeds_load():
    load_npy(NPY_SEEDS[0])
    load_npz(NPZ_SEEDS[0])


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(NPY_SEEDS))
def test_fuzz_npy(raw):
    outcome(COUNTS["npy"], lambda: load_npy(raw))


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(NPZ_SEEDS))
def test_fuzz_npz(raw):
    outcome(COUNTS["npz"], lambda: load_npz(raw))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(NPY_SEEDS))
def test_fuzz_npy_slow(raw):
    outcome(COUNTS["npy"], lambda: load_npy(raw))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(NPZ_SEEDS))
def test_fuzz_npz_slow(raw):
    outcome(COUNTS["npz"], lambda: load_npz(raw))


def teardown_module() -> None:
    report("input .npy (run --input)", COUNTS["npy"])
    report("input .npz (quantize --data)", COUNTS["npz"])
