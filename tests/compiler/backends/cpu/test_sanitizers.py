"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer (issue 17, item 1).

Each test runs `tensorweave.compiler.backends.cpu.sanitize` in a subprocess with libasan preloaded and every
library built with `-fsanitize=address,undefined -fno-sanitize-recover=all`: any report aborts that process.
The default tier runs a few ops' ONNX node cases (those reading shape parameters at run time, pooling,
convolution, BitShift at and past the width) and the small CNN; the slow tier every listed op's cases, the
small CNN and ResNet-18 (32x32 images).
"""

from __future__ import annotations

import subprocess

import pytest
from tensorweave.compiler.backends.cpu.sanitize import run_sanitized, sanitized_env
from tensorweave.compiler.backends.cpu.toolchain import CompileError

FAST_OPS = ("Add", "BitShift", "Conv", "Gather", "MaxPool", "Pad", "ReduceSum", "Slice", "Tile")


@pytest.fixture(scope="module")
def sanitizers() -> None:
    try:
        sanitized_env()
    except CompileError as exc:
        pytest.skip(str(exc))


def _clean(result: subprocess.CompletedProcess) -> str:
    reports = [line for line in result.stderr.splitlines() if "Sanitizer" in line or "runtime error" in line]
    assert result.returncode == 0 and not reports, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.model
def test_sanitizers_catch_an_out_of_bounds_write(sanitizers: None) -> None:
    """The set-up works: a library writing one element past its output is stopped with a report."""
    script = ("import numpy as np\n"
              "from tensorweave.compiler.graph import Graph, Node, TensorType\n"
              "from tensorweave.compiler.backends.cpu.executable import CPUExecutable, GeneratedC\n"
              "from tensorweave.compiler.backends.cpu.toolchain import load_library\n"
              "src = 'void tw_run(void **b){ float *y = b[1]; for (int i = 0; i <= 4; i++) y[i] = 1; }\\n"
              "void tw_set_threads(int n){(void)n;}\\nvoid tw_prepare(void **b){(void)b;}\\n'\n"
              "t = TensorType((4,), 'float32')\n"
              "g = Graph('g', (Node('Relu', 'r', ('x',), ('y',)),), ('x',), ('y',), {'x': t, 'y': t}, {}, 17)\n"
              "exe = CPUExecutable(g, GeneratedC(src, {'x': 0, 'y': 1}, []), load_library(src))\n"
              "exe.run({'x': np.zeros(4, np.float32)})\n")
    import sys

    result = subprocess.run([sys.executable, "-c", script], env=sanitized_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode != 0 and "heap-buffer-overflow" in result.stderr, result.stderr[-2000:]


@pytest.mark.model
def test_node_cases_and_small_cnn_are_sanitizer_clean(sanitizers: None) -> None:
    last = _clean(run_sanitized(FAST_OPS, ["small_cnn"]))
    assert last.startswith("sanitized: ") and last.endswith(" node cases, 1 models, 0 failures")
    assert int(last.split()[1]) >= 40


@pytest.mark.slow
def test_every_node_case_and_two_models_are_sanitizer_clean(sanitizers: None) -> None:
    last = _clean(run_sanitized(["all", "BitShift"], ["small_cnn", "resnet18"], timeout=3600))
    assert last.endswith(" node cases, 2 models, 0 failures") and int(last.split()[1]) >= 450
