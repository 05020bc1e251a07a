"""Fuzzing the ONNX model loader: mutated bytes of valid models -> a Graph or a FrontendError, nothing else.

Rule (issue 17): whatever bytes a .onnx file holds, `load_model` + `from_onnx` either import it or raise the
project's error class naming the file or node; never another exception, a crash or a hang. Each input runs
under an alarm (PER_INPUT_SECONDS). Tiers: DEFAULT_EXAMPLES inputs in the default run; the `slow` variant
TW_FUZZ_EXAMPLES (default 100,000), appending its counts to TW_FUZZ_REPORT (a JSON-lines file) when set.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.models import small_cnn
from tensorweave.errors import TensorweaveError

DEFAULT_EXAMPLES = int(os.environ.get("TW_FUZZ_DEFAULT_EXAMPLES", "200"))
SLOW_EXAMPLES = int(os.environ.get("TW_FUZZ_EXAMPLES", "100000"))
PER_INPUT_SECONDS = 20


class Hang(Exception):
    """An input ran past PER_INPUT_SECONDS."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"one input ran past {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(counts: Counter, load: Callable[[], Any]) -> None:
    """Run one input and count it; anything but success or a TensorweaveError fails the test."""
    counts["inputs"] += 1
    try:
        with time_limit(PER_INPUT_SECONDS):
            load()
        counts["accepted"] += 1
    except TensorweaveError as exc:
        assert str(exc).strip(), "a project error with an empty message"
        counts["refused"] += 1


def report(target: str, counts: Counter) -> None:
    if os.environ.get("TW_FUZZ_REPORT"):
        with open(os.environ["TW_FUZZ_REPORT"], "a") as f:
            f.write(json.dumps({"target": target, **counts}) + "\n")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1-6 edits: bit flips, cuts, inserted, deleted or duplicated runs."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "flip", "cut", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            end = pos + draw(st.integers(1, 200))
            data[end:end] = data[pos:end]
    return bytes(data)


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
