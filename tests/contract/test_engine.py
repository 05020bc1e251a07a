"""One run interface: every registered engine runs the same Program through `get_engine(name).run`.

Each returns a `RunResult` with the same outputs, bit for bit; the engines that simulate the hardware
(Amaranth, the Verilated RTL in the C++ harness and under cocotb, the board driver on the simulated
bus) report the same CYCLES, and the cycle model's estimate matches it on this program. Every
registered engine runs without a board or a vendor tool (the "board" engine is the driver on the
simulated bus); one whose factory cannot be imported skips with the reason.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.contract.engine import (
    COST_MODELS,
    ENGINES,
    CostEstimate,
    CostModel,
    Engine,
    EngineError,
    RunResult,
    get_cost_model,
    get_engine,
)
from tensorweave.errors import TensorweaveError
from tensorweave.isa import Program, assemble
from tensorweave.sim import run_functional
from tensorweave.sim.cycle import estimate_cycles
from tensorweave.sim.programs import blocked_gemm

# As tests/cosim/conftest.py: behaviour, not speed, so the Verilated models build at -O0.
os.environ.setdefault("TENSORWEAVE_RTL_CXX_OPT", "-O0")

VERILATED = {"rtl", "cocotb"}                       # need Verilator builds: marked cosim, as tests/cosim
HARDWARE = ("amaranth", "rtl", "cocotb", "board")   # simulate the accelerator itself: they count CYCLES


def _param(name: str):
    return pytest.param(name, marks=pytest.mark.cosim) if name in VERILATED else name


@functools.cache
def _program() -> tuple[Program, dict[str, np.ndarray]]:
    tiny = load_config("tiny")
    program = assemble(blocked_gemm(tiny, 4, 8, 8, shift=3), tiny)
    rng = np.random.default_rng(7)
    inputs = {t.name: rng.integers(-128, 128, size=t.shape).astype(t.dtype) for t in program.inputs}
    return program, inputs


def _engine(name: str) -> Engine:
    if name == "cocotb" and importlib.util.find_spec("cocotb_tools") is None:
        pytest.skip("engine 'cocotb' needs cocotb (cocotb_tools), which is not installed")
    try:
        return get_engine(name)
    except EngineError as exc:
        pytest.skip(str(exc))


@functools.cache
def _result(name: str) -> RunResult:
    program, inputs = _program()
    return _engine(name).run(program, inputs)


@pytest.mark.parametrize("name", [_param(n) for n in sorted(ENGINES)])
def test_every_engine_gives_the_functional_outputs_bit_for_bit(name):
    program, inputs = _program()
    reference = run_functional(program, inputs)
    assert reference.outputs["C"].any()  # a program whose outputs show a difference
    result = _result(name)
    assert isinstance(result, RunResult) and result.engine == name
    assert result.outputs.keys() == reference.outputs.keys()
    for key, expected in reference.outputs.items():
        assert result.outputs[key].dtype == expected.dtype
        np.testing.assert_array_equal(result.outputs[key], expected)
    for tensor in program.outputs:  # the output region of the final DRAM image, too
        end = tensor.offset + tensor.nbytes
        assert result.dram[tensor.offset:end] == reference.dram[tensor.offset:end]


def test_the_issue_s_six_engines_are_registered():
    assert set(ENGINES) >= {"functional", "cycle", "amaranth", "rtl", "cocotb", "board"}
    assert "cycle" in COST_MODELS


def test_engines_that_simulate_the_hardware_count_the_same_cycles():
    """Amaranth and the board driver (on the Amaranth RTL), with the harness's DRAM timing."""
    cycles = {name: _result(name).cycles for name in ("amaranth", "board")}
    assert cycles["amaranth"] == cycles["board"] == 132, cycles
    assert _result("functional").cycles is None  # the definition counts instructions, not cycles


@pytest.mark.cosim
def test_verilated_engines_count_the_cycles_of_the_amaranth_model():
    cycles = {name: _result(name).cycles for name in HARDWARE}
    assert len(set(cycles.values())) == 1, cycles


def test_cycle_engine_and_cost_model_report_the_cycle_model():
    """The cycle engine's numbers are `estimate_cycles`'; on this program they equal the RTL's CYCLES
    (the model is exact on most of the validation programs of tests/sim/test_cycle.py)."""
    program, _ = _program()
    report = estimate_cycles(program)
    busy = {u: report.busy[u] for u in ("load", "compute", "store")}
    result = _result("cycle")
    assert (result.cycles, result.busy) == (report.cycles, busy)
    assert result.stats.gemm_iterations == run_functional(program).stats.gemm_iterations > 0
    model = get_cost_model("cycle")
    assert isinstance(model, CostModel) and model.name == "cycle"
    assert model.estimate(program) == CostEstimate(report.cycles, busy, "sim.cycle")
    assert result.cycles == _result("amaranth").cycles == 132
    assert busy["compute"] > busy["load"] > busy["store"] > 0


def _illegal_opcode() -> Program:
    """The example with opcode 7 (none) in instruction 3."""
    from dataclasses import replace

    program, _ = _program()
    insns = list(program.insns)
    insns[3] |= 0b111
    return replace(program, insns=tuple(insns))


@pytest.mark.parametrize("name", [_param(n) for n in sorted(ENGINES)])
def test_every_engine_raises_the_project_error_naming_the_instruction(name):
    with pytest.raises(TensorweaveError, match=r"instruction 3\b"):
        _engine(name).run(_illegal_opcode())


def test_names_resolve_through_the_registry():
    engine = get_engine("functional")
    assert isinstance(engine, Engine) and engine.name == "functional"
    assert get_engine(engine) is engine
    with pytest.raises(EngineError, match="unknown engine 'nope': one of amaranth, board, cocotb"):
        get_engine("nope")
    with pytest.raises(EngineError, match="unknown cost model 'nope'"):
        get_cost_model("nope")
