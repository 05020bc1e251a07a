"""The simulators of `sim/` behind the run interface of `contract/engine.py`.

- `FunctionalEngine` ("functional"): `run_functional`, the definition of every instruction. It
  counts instructions, micro-op iterations and DRAM bytes (`stats`) but not cycles: `cycles` and
  `busy` stay None.
- `CycleEngine` ("cycle"): the outputs, stats and DRAM image are the functional simulator's (the
  cycle model computes no data); `cycles` and `busy` (load, compute, store) are the cycle model's
  estimate (`estimate_cycles`), not a measurement. On the validation set of `tests/sim/test_cycle.py`
  the estimate equals the RTL's CYCLES on most programs and is within 2.5 % on all of them.
- `CycleCostModel` ("cycle"): `estimate_cycles` as a `CostModel`, for the compiler's scheduler;
  it does not run the program (no addresses checked, no outputs).

All three are constructible without arguments, as the registries of `contract/engine.py` need; each
takes `budget=` (micro-op iterations a run may execute, default `DEFAULT_BUDGET` of `contract/engine.py`),
passed by `get_engine(name, budget=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..contract.engine import DEFAULT_BUDGET, CostEstimate, RunResult, check_budget_value
from ..isa import Program
from .cycle import DEFAULT_TIMING, CycleReport, Timing, estimate_cycles
from .functional import run_functional


def unit_busy(report: CycleReport) -> dict[str, int]:
    """The cycle model's busy cycles per unit (load, compute, store); fetch, which runs no instruction, left out."""
    return {unit: int(cycles) for unit, cycles in report.busy.items() if unit != "fetch"}


class FunctionalEngine:
    """The functional simulator as an `Engine`: outputs and stats, no cycles."""

    name = "functional"

    def __init__(self, budget: int = DEFAULT_BUDGET):
        self.budget = check_budget_value(budget)

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        result = run_functional(program, inputs, self.budget)
        result.engine = self.name
        return result


class CycleEngine:
    """The functional simulator's outputs with the cycle model's cycles and per-unit busy cycles."""

    name = "cycle"

    def __init__(self, timing: Timing = DEFAULT_TIMING, budget: int = DEFAULT_BUDGET):
        self.timing, self.budget = timing, check_budget_value(budget)

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        result = run_functional(program, inputs, self.budget)  # first: it checks what the cycle model does not
        report = estimate_cycles(program, self.timing, budget=self.budget)
        result.cycles, result.busy, result.engine = report.cycles, unit_busy(report), self.name
        return result


class CycleCostModel:
    """`estimate_cycles` as a `CostModel`: cycles and busy cycles per unit, source "sim.cycle"."""

    name = "cycle"

    def __init__(self, timing: Timing = DEFAULT_TIMING, budget: int = DEFAULT_BUDGET):
        self.timing, self.budget = timing, check_budget_value(budget)

    def estimate(self, program: Program) -> CostEstimate:
        report = estimate_cycles(program, self.timing, budget=self.budget)
        return CostEstimate(report.cycles, unit_busy(report), "sim.cycle")
