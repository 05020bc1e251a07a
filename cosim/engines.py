"""Stand-in (the engines branch provides the real module): the Verilated RTL behind the run interface."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..contract.engine import RunResult
from ..isa import Program
from .engine import run_rtl


class RTLEngine:
    """The accelerator's RTL on the Verilated C++ harness as an `Engine` (counts cycles)."""

    name = "rtl"

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        result = run_rtl(program, inputs)
        result.engine = self.name
        return result
