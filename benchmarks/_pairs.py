"""Shared by the benchmarks that compare a tensorweave back end with onnxruntime on the same model."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx
    from tensorweave.compiler.graph import Graph


def time_pair(first: Callable[[], object], second: Callable[[], object],
              runs: int) -> tuple[float, float, float, float]:
    """Median wall seconds and median process-CPU seconds of two functions (first's, second's), timed
    alternately so that a busy machine slows both alike. CPU time (all threads of the process) is what a
    loaded machine disturbs least; with one thread it is the better comparison."""
    first(), second()  # warm up (page faults, thread pools, kernel JIT)
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, w, c in ((first, wall[0], cpu[0]), (second, wall[1], cpu[1])):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            w.append(time.perf_counter() - start)
            c.append(time.process_time() - start_cpu)
    return (statistics.median(wall[0]), statistics.median(wall[1]), statistics.median(cpu[0]),
            statistics.median(cpu[1]))


def lsb_note(ours: np.ndarray, theirs: np.ndarray) -> str:
    """How many dequantized int8 outputs differ, counted in steps of the reference's smallest nonzero value."""
    step = float(np.abs(theirs[theirs != 0]).min()) if np.any(theirs != 0) else 1.0
    steps = np.rint(np.abs(ours - theirs) / step)
    return f"{int((steps > 0).sum())}/{steps.size} outputs differ"


def benchmark_model(name: str, precision: str) -> tuple[onnx.ModelProto, Graph]:
    """The seeded model `name` of `tensorweave.compiler.models` (its int8 QDQ form from `quantize_model`,
    the project convention, when `precision` is "int8") and its graph."""
    from tensorweave.compiler.frontend import from_onnx
    from tensorweave.compiler.models import MODELS
    from tensorweave.compiler.quantize import quantize_model

    model = MODELS[name](seed=0)
    if precision == "int8":
        model = quantize_model(model, samples=4)
    return model, from_onnx(model)
