"""The compiler takes its cost model and engine as parameters: "analytical" (the compiler's own), the
registered "cycle", or any object with `estimate(program)` / `run(program, inputs)`; and no module of
tensorweave.compiler imports sim, hw or cosim."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv, conv2d_int, requantize
from tensorweave.compiler.accel.schedule import AnalyticalCostModel, analytical_cycles
from tensorweave.configs import load_config
from tensorweave.contract.engine import CostEstimate, get_engine

TINY = load_config("tiny")
SPEC = ConvSpec(1, 8, 9, 9, 12, (3, 3), pads=(1, 1, 1, 1))
REQUANT = Requant(0.04, (0.006,), 0.11)
COMPILER = Path(__file__).resolve().parents[3] / "compiler"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))


def _weight():
    return np.random.default_rng(0).integers(-128, 128, SPEC.weight_shape)


class CountingModel:
    """A cost model that prefers programs with fewer instructions, and remembers what it measured."""

    name = "counting"

    def __init__(self) -> None:
        self.measured: list[int] = []

    def estimate(self, program):
        self.measured.append(len(program.insns))
        return CostEstimate(len(program.insns), {"compute": len(program.insns)}, "counting")


class RecordingEngine:
    """The functional engine, recording each program it runs."""

    name = "recording"

    def __init__(self) -> None:
        self.inner = get_engine("functional")
        self.runs = 0

    def run(self, program, inputs=None):
        self.runs += 1
        return self.inner.run(program, inputs)


def test_analytical_cost_model_by_name():
    kernel = compile_conv(TINY, SPEC, _weight(), None, REQUANT, cost_model="analytical")
    assert kernel.cycle_source == "analytical"
    assert kernel.estimated_cycles == analytical_cycles(kernel.program)
    estimate = AnalyticalCostModel().estimate(kernel.program)
    assert estimate.cycles == max(estimate.busy.values()) and set(estimate.busy) == {"load", "compute", "store"}


def test_a_cost_model_object_chooses_the_tiling_and_has_its_own_cache_entry():
    model = CountingModel()
    kernel = compile_conv(TINY, SPEC, _weight(), None, REQUANT, cost_model=model)
    assert kernel.cycle_source == "counting" and model.measured
    assert kernel.estimated_cycles == min(model.measured) == len(kernel.program.insns)
    assert "busy cycles per unit (they overlap): compute" in kernel.explain()
    cycle = compile_conv(TINY, SPEC, _weight(), None, REQUANT)  # another cost model: not the cached choice
    assert not cycle.cached and cycle.cycle_source == "sim.cycle"
    again = compile_conv(TINY, SPEC, _weight(), None, REQUANT, cost_model=CountingModel())
    assert again.cached and again.tiling == kernel.tiling


def test_an_engine_object_runs_the_kernel():
    engine = RecordingEngine()
    w = _weight()
    kernel = compile_conv(TINY, SPEC, w, None, REQUANT)
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 9, 9))
    y, _ = kernel.run(x, engine=engine)
    assert engine.runs == 1 and np.array_equal(y, requantize(conv2d_int(x, w, SPEC), kernel.plan))


def _imports(path: Path) -> set[str]:
    """Absolute names of the tensorweave modules `path` imports (relative imports resolved)."""
    package = ["tensorweave", *path.relative_to(COMPILER.parent).with_suffix("").parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_compiler_imports_no_engine():
    forbidden = ("tensorweave.sim", "tensorweave.hw", "tensorweave.cosim")
    bad = {str(p.relative_to(COMPILER)): sorted(m for m in _imports(p) if m.startswith(forbidden))
           for p in COMPILER.rglob("*.py")}
    assert {p: m for p, m in bad.items() if m} == {}
    # and at run time: compiling with the compiler's own cost model loads none of them
    code = ("import sys; from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv; "
            "from tensorweave.compiler import pipeline; from tensorweave.configs import load_config; import numpy as np; "
            "compile_conv(load_config('tiny'), ConvSpec(1, 8, 4, 4, 8, (1, 1)), np.ones((8, 8, 1, 1), int), None, "
            "Requant(0.04, (0.006,), 0.11), use_cache=False, cost_model='analytical'); "
            "print(sorted(m for m in sys.modules if m.startswith(('tensorweave.sim', 'tensorweave.hw', "
            "'tensorweave.cosim'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
