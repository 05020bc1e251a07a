"""The accelerator's RTL as a simulation engine: Verilator builds (cached), a fast C++ harness,
a cocotb testbench, and random-program differential testing against the functional simulator.

`run_rtl(program, inputs=None, engine="harness" | "cocotb", waves=None) -> RunResult` with `cycles`
set; `run_rtl_many(programs, config)` runs many programs on one build in one process. As engines of
`contract/engine.py`: "rtl" (`engines.HarnessEngine`) and "cocotb" (`engines.CocotbEngine`).
"""

from .build import BuildError, build_harness, cache_root
from .engine import (
    DRAM_BASE,
    HarnessJob,
    HarnessResult,
    RTLError,
    RTLTimeout,
    run_harness,
    run_rtl_many,
    run_rtl_outcomes,
    watchdog_report,
)
from .engines import CocotbEngine, HarnessEngine, run_rtl

__all__ = ["BuildError", "DRAM_BASE", "HarnessJob", "HarnessResult", "RTLError", "RTLTimeout",
           "build_harness", "cache_root", "run_harness", "run_rtl", "run_rtl_many", "run_rtl_outcomes",
           "watchdog_report", "CocotbEngine", "HarnessEngine"]
