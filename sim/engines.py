"""Stand-in (the engines branch provides the real module): the functional simulator and the cycle model
behind the run interface of `contract/engine.py`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..contract.engine import CostEstimate, RunResult
from ..isa import Program
from .cycle import estimate_cycles
from .functional import run_functional


class FunctionalEngine:
    """The functional simulator as an `Engine` (counts instructions and traffic, not cycles)."""

    name = "functional"

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        result = run_functional(program, inputs)
        result.engine = self.name
        return result


class CycleCostModel:
    """`sim.cycle.estimate_cycles` as a `CostModel`: cycles and per-unit busy cycles."""

    name = "cycle"

    def estimate(self, program: Program) -> CostEstimate:
        report = estimate_cycles(program)
        busy = {unit: int(report.busy.get(unit, 0)) for unit in ("load", "compute", "store")}
        return CostEstimate(report.cycles, busy, "sim.cycle")
