"""The accelerator's RTL behind the run interface of `contract/engine.py`, and `run_rtl`.

- `HarnessEngine` ("rtl"): the Verilated RTL in the C++ harness (`engine.run_on_harness`), fast.
- `CocotbEngine` ("cocotb"): the same Verilog under the cocotb testbench (`cocotb_runner.run_cocotb`),
  slow; cycle for cycle the harness's count (both drive the same AXI models).

Both return the RTL's CYCLES register as `cycles`; `stats` stays empty and `busy` None (the RTL
counts neither). A hardware error is an `RTLError` naming the instruction and the error code, a run
past the cycle budget an `RTLTimeout`.

Imports go one way: this module -> `cocotb_runner` -> `engine` (the harness and the shared result
handling), so neither of those two imports the other back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..contract.engine import DEFAULT_BUDGET, RunResult, check_budget_value
from ..isa import Program
from .cocotb_runner import run_cocotb
from .engine import RTLError, run_on_harness

RTL_ENGINES = ("harness", "cocotb")


def run_rtl(program: Program, inputs: Mapping[str, np.ndarray] | None = None, engine: str = "harness",
            waves: str | Path | None = None, stall_percent: int = 0, max_cycles: int | None = None) -> RunResult:
    """Run `program` on the accelerator RTL (`engine` is "harness" or "cocotb"); `waves` names a VCD file to dump."""
    if engine == "cocotb":
        return run_cocotb(program, inputs, waves=waves, stall_percent=stall_percent, max_cycles=max_cycles)
    if engine == "harness":
        return run_on_harness(program, inputs, waves=waves, stall_percent=stall_percent, max_cycles=max_cycles)
    raise RTLError(f"engine '{engine}' is not one of {', '.join(RTL_ENGINES)}")


class _RTLEngine:
    name = ""
    _backend = ""

    def __init__(self, stall_percent: int = 0, max_cycles: int | None = None, budget: int = DEFAULT_BUDGET):
        """`stall_percent`: the DRAM model's random AXI stalls; `max_cycles`: the watchdog (default: generous,
        from the work the program declares, refused past `budget` micro-op iterations on the harness)."""
        self.stall_percent, self.max_cycles, self.budget = stall_percent, max_cycles, check_budget_value(budget)

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        if self._backend == "harness":
            result = run_on_harness(program, inputs, stall_percent=self.stall_percent, max_cycles=self.max_cycles,
                                    budget=self.budget)
        else:
            result = run_rtl(program, inputs, engine=self._backend, stall_percent=self.stall_percent,
                             max_cycles=self.max_cycles)
        result.engine = self.name
        return result


class HarnessEngine(_RTLEngine):
    """The Verilated RTL in the C++ harness: outputs and the CYCLES register."""

    name = "rtl"
    _backend = "harness"


class CocotbEngine(_RTLEngine):
    """The Verilated RTL under the cocotb testbench: outputs and the CYCLES register (slow)."""

    name = "cocotb"
    _backend = "cocotb"
