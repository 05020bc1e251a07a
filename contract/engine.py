"""One run interface for every engine, and one cost-model interface for the compiler.

Every engine that runs a `Program` (the functional simulator, the cycle model, the Amaranth
simulation, the Verilated C++ harness, cocotb, a board) implements `Engine`: `run(program, inputs)`
returns a `RunResult` (outputs read back from DRAM, instruction statistics where the engine counts
them, cycles where it counts them, per-unit busy cycles where it knows them) or raises the
project's error (`TensorweaveError`) naming the instruction.

The compiler never imports an engine: it receives an `Engine` or a `CostModel` as a parameter,
or a name that `get_engine` / `get_cost_model` resolve through `ENGINES` / `COST_MODELS`, a table
of "module:factory" strings imported on use (as entry points are).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..errors import TensorweaveError

if TYPE_CHECKING:
    from ..configs import AccelConfig
    from ..isa import Insn, Program


class EngineError(TensorweaveError, LookupError):
    """An engine or cost-model name that is not registered, or a factory that cannot be imported."""


# The default budget of a run, in micro-op iterations (GEMM and ALU loop bodies, reset included): far
# above any real model. The reference is ResNet-18, whose biggest layer program takes 0.51 M iterations
# on vta-default and 7.4 M on tiny (dse/workloads.py, gemm and compiler programs); 1 << 30 is ~145x
# the latter. A valid program can still declare 3 x 10^10 in one instruction (iter_out and iter_in at
# the loop_iter maximum): the budget stops it before it runs instead of hanging for minutes.
DEFAULT_BUDGET = 1 << 30


def loop_iterations(insn: Insn) -> int:
    """Micro-op iterations a GEMM / ALU instruction declares: iter_out x iter_in x (uop_end - uop_begin), else 0."""
    if insn.op not in ("GEMM", "ALU"):
        return 0
    return insn.iter_out * insn.iter_in * max(0, insn.uop_end - insn.uop_begin)


def charge_budget(spent: int, budget: int, unit: str, index: int, insn: Insn,
                  error: type[TensorweaveError]) -> int:
    """`spent` plus instruction `index`'s micro-op iterations, or `error` naming the unit and the instruction
    when that passes `budget` (checked before the instruction runs, so nothing runs past it)."""
    total = spent + loop_iterations(insn)
    if total > budget:
        raise error(f"budget exceeded: instruction {index} ({insn.op.lower()}) in the {unit} unit would bring the "
                    f"run to {total:,} micro-op iterations, past the budget of {budget:,} (run with a larger "
                    f"budget, e.g. --budget, if the program really needs it)")
    return total


def check_budget_value(budget: int) -> int:
    """`budget` if it is a positive integer, else `EngineError`."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise EngineError(f"budget must be a positive number of micro-op iterations, not {budget!r}")
    return budget


@dataclass
class Stats:
    """What an engine counted while it ran (the functional simulator counts all of it; RTL engines none)."""

    insns: Counter = field(default_factory=Counter)        # per unit
    ops: Counter = field(default_factory=Counter)          # per mnemonic, e.g. 'load.inp', 'alu.max'
    gemm_iterations: int = 0                               # micro-op executions on the GEMM core
    alu_iterations: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    tokens_left: dict[str, int] = field(default_factory=dict)

    def macs(self, config: AccelConfig) -> int:
        return self.gemm_iterations * config.macs_per_cycle


@dataclass
class RunResult:
    """The result every engine returns: outputs by name, stats, the final DRAM image, and timing where known."""

    outputs: dict[str, np.ndarray]
    stats: Stats
    dram: bytearray
    cycles: int | None = None                              # None: the engine does not count cycles
    busy: dict[str, int] | None = None                     # per unit: cycles spent running instructions
    engine: str = ""                                       # the name of the engine that produced it


@runtime_checkable
class Engine(Protocol):
    """Runs a Program: `run(program, inputs) -> RunResult`; errors are `TensorweaveError`s naming the instruction."""

    name: str

    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult: ...


@dataclass(frozen=True)
class CostEstimate:
    """What a cost model says of a Program without running it for its outputs."""

    cycles: int
    busy: dict[str, int] = field(default_factory=dict)     # per unit, where the model knows it
    source: str = ""                                       # the cost model's name


@runtime_checkable
class CostModel(Protocol):
    """Estimates a Program's cycles: `estimate(program) -> CostEstimate`."""

    name: str

    def estimate(self, program: Program) -> CostEstimate: ...


# name -> "module:factory"; the factory needs no arguments (it takes get_engine's options, e.g. budget=)
# and returns the Engine / CostModel.
# What each one counts (all return the same outputs, bit for bit; tests/contract/test_engine.py):
ENGINES: dict[str, str] = {
    "functional": "tensorweave.sim.engines:FunctionalEngine",  # the definition; stats, no cycles
    "cycle": "tensorweave.sim.engines:CycleEngine",            # functional outputs + the cycle model's estimate
    "amaranth": "tensorweave.hw.simulate:AmaranthEngine",      # the Amaranth model: CYCLES (slow)
    "rtl": "tensorweave.cosim.engines:HarnessEngine",          # Verilated RTL, C++ harness: CYCLES
    "cocotb": "tensorweave.cosim.engines:CocotbEngine",        # Verilated RTL under cocotb: CYCLES (slow)
    "board": "tensorweave.fpga.runtime:simulated_board",       # the board driver on the simulated bus: CYCLES
}
COST_MODELS: dict[str, str] = {
    "cycle": "tensorweave.sim.engines:CycleCostModel",         # sim/cycle.py: cycles and busy per unit
}


def _resolve(table: Mapping[str, str], kind: str, name: str, options: Mapping[str, object]) -> object:
    if name not in table:
        raise EngineError(f"unknown {kind} '{name}': one of {', '.join(sorted(table)) or '(none registered)'}")
    module, _, attr = table[name].partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise EngineError(f"{kind} '{name}' ({table[name]}) is not available: {exc}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        if not options:
            raise
        raise EngineError(f"{kind} '{name}' does not take the option(s) {', '.join(sorted(options))} ({exc})") from None


def get_engine(engine: str | Engine, **options: object) -> Engine:
    """The engine named `engine` (a key of `ENGINES`), or `engine` itself when it already is one.

    `options` go to the engine's factory, e.g. `budget=` (micro-op iterations, `DEFAULT_BUDGET`) for the
    functional and cycle engines and the RTL harness."""
    if isinstance(engine, str):
        found = _resolve(ENGINES, "engine", engine, options)
        assert isinstance(found, Engine), f"{ENGINES[engine]} did not return an Engine"
        return found
    return engine


def get_cost_model(model: str | CostModel, **options: object) -> CostModel:
    """The cost model named `model` (a key of `COST_MODELS`), or `model` itself when it already is one;
    `options` go to its factory."""
    if isinstance(model, str):
        found = _resolve(COST_MODELS, "cost model", model, options)
        assert isinstance(found, CostModel), f"{COST_MODELS[model]} did not return a CostModel"
        return found
    return model
