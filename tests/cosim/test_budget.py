"""The RTL watchdog takes the simulators' budget: it grows with the declared work only up to it."""

import importlib.util
import time
from pathlib import Path

import pytest
from tensorweave.configs import load_config
from tensorweave.cosim.engine import RTLError, cycle_budget
from tensorweave.isa import assemble

_spec = importlib.util.spec_from_file_location("tw_sim_budget", Path(__file__).parents[1] / "sim" / "test_budget.py")
_budget = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_budget)


def test_watchdog_refuses_a_program_past_the_budget_naming_unit_and_instruction():
    tiny = load_config("tiny")
    start = time.perf_counter()
    with pytest.raises(RTLError, match=r"instruction 1 \(gemm\) in the compute unit .* budget of 1,073,741,824"):
        cycle_budget(assemble(_budget.bomb(tiny), tiny))
    assert time.perf_counter() - start < 2


def test_watchdog_grows_with_the_work_up_to_the_budget():
    tiny = load_config("tiny")
    loop = "alu.add use_imm imm=1 uop_begin=0 uop_end=1 iter_out={} iter_in=100\nfinish\n"
    small, large = (assemble(loop.format(n), tiny) for n in (1, 100))
    assert cycle_budget(small) < cycle_budget(large) == 20 * (20_000 + 64 * 2 + 64 + 8 * 10_000)
    with pytest.raises(RTLError, match=r"instruction 0 \(alu\) in the compute unit .* budget of 9,999"):
        cycle_budget(large, budget=9_999)
    # Instructions after FINISH are never fetched: they do not count.
    tail = assemble("finish\n" + loop.format(100), tiny)
    assert cycle_budget(tail, budget=1) == 20 * (20_000 + 64 * 3)


def test_the_rtl_engine_takes_the_budget_option():
    from tensorweave.contract.engine import get_engine

    tiny = load_config("tiny")
    program = assemble("alu.add use_imm imm=1 uop_begin=0 uop_end=1 iter_out=100 iter_in=100\nfinish\n", tiny)
    with pytest.raises(RTLError, match=r"instruction 0 \(alu\) in the compute unit .* budget of 5,000"):
        get_engine("rtl", budget=5_000).run(program)  # refused before the harness is built or run
