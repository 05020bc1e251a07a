"""The accelerator RTL against the functional simulator, bit for bit: random programs, examples, errors, engines."""

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.cosim import RTLError, RTLTimeout, run_rtl, run_rtl_many
from tensorweave.cosim.engine import run_rtl_outcomes
from tensorweave.cosim.fuzz import compare, fuzz
from tensorweave.isa import assemble
from tensorweave.sim import SimError, run_functional
from tensorweave.sim.programs import blocked_gemm
from tensorweave.sim.random_programs import random_program

pytestmark = pytest.mark.cosim


def test_200_random_programs_on_tiny_agree_bit_for_bit(tiny_harness):
    config = load_config("tiny")
    report = fuzz(config, 240)
    assert report.failures == [] and report.agreed == 240
    assert report.cycles > 0


def test_random_programs_agree_under_random_axi_stalls(tiny_harness):
    config = load_config("tiny")
    report = fuzz(config, 60, first_seed=10_000, stall_percent=35)
    assert report.failures == [] and report.agreed == 60


def test_random_programs_on_vta_default_agree(vta_harness):
    report = fuzz(load_config("vta-default"), 12)
    assert report.failures == [] and report.agreed == 12


def test_blocked_gemm_matches_numpy_and_reports_cycles(tiny_harness):
    config = load_config("tiny")
    program = assemble(blocked_gemm(config, 8, 16, 8, shift=4), config)
    rng = np.random.default_rng(0)
    inputs = {"A": rng.integers(-128, 128, (8, 4, 1, 4)), "W": rng.integers(-128, 128, (2, 4, 4, 4))}
    result = run_rtl(program, inputs)
    reference = run_functional(program, inputs)
    assert np.array_equal(result.outputs["C"], reference.outputs["C"])
    assert result.outputs["C"].any()
    # At least one cycle per GEMM micro-op iteration, and not absurdly more.
    assert reference.stats.gemm_iterations <= result.cycles < 50 * (reference.stats.gemm_iterations + 100)


def test_run_rtl_many_returns_one_result_per_program_with_cycles(tiny_harness):
    config = load_config("tiny")
    programs = [random_program(config, s) for s in range(5)]
    results = run_rtl_many(programs, config)
    assert [compare(p, r, run_functional(p)) for p, r in zip(programs, results)] == [None] * 5
    assert all(r.cycles and r.cycles > 10 for r in results)


@pytest.mark.parametrize(("text", "code"), [
    ("load.inp sram_base=62 dram_base=@x y_size=1 x_size=4 x_stride=4\nfinish\n", 3),
    ("load.uop sram_base=0 dram_base=@x y_size=1 x_size=1 x_stride=1 x_pad_0=1\nfinish\n", 6),
    ("gemm uop_begin=0 uop_end=200 iter_out=1 iter_in=1\nfinish\n", 4),
])
def test_hardware_errors_match_functional_errors(tiny_harness, text, code):
    config = load_config("tiny")
    program = assemble(".tensor x input int8 16,4 init=random:1\n" + text, config)
    with pytest.raises(SimError, match="instruction 0"):
        run_functional(program)
    (outcome,) = run_rtl_outcomes([program], config)
    assert isinstance(outcome, RTLError)
    assert outcome.result.error_code == code and outcome.result.error_insn == 0
    assert "at instruction 0" in str(outcome)


def test_cocotb_engine_matches_the_harness_cycle_for_cycle(tiny_harness):
    config = load_config("tiny")
    for program in (assemble(blocked_gemm(config, 4, 8, 8), config), random_program(config, 3)):
        fast = run_rtl(program)
        slow = run_rtl(program, engine="cocotb")
        assert compare(program, slow, run_functional(program)) is None
        assert slow.cycles == fast.cycles
        assert slow.dram == fast.dram


def test_deadlock_names_the_stuck_unit_and_instruction(tiny_harness):
    """A load waiting for a token nobody gives: the functional simulator calls it a deadlock, and so does the RTL
    (error 9), naming the same unit and instruction instead of hanging."""
    config = load_config("tiny")
    program = assemble(".tensor x input int8 16,4 init=random:1\n"
                       "load.inp pop_next sram_base=0 dram_base=@x y_size=1 x_size=1 x_stride=1\nfinish\n", config)
    with pytest.raises(SimError, match="load unit at instruction 0"):
        run_functional(program)
    (outcome,) = run_rtl_outcomes([program], config, max_cycles=3000)
    assert isinstance(outcome, RTLError) and outcome.result.error_code == 9
    assert "load unit at instruction 0 (load.inp pop_next" in str(outcome)


def test_watchdog_stops_a_long_run_and_reports_every_unit(tiny_harness):
    config = load_config("tiny")
    program = assemble(blocked_gemm(config, 8, 16, 8), config)
    (outcome,) = run_rtl_outcomes([program], config, max_cycles=40)
    assert isinstance(outcome, RTLTimeout)
    for unit, pc in zip(("load", "compute", "store"), outcome.result.pcs):
        assert f"{unit} unit at instruction {pc}" in str(outcome)
