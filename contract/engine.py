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
    from ..isa import Program


class EngineError(TensorweaveError, LookupError):
    """An engine or cost-model name that is not registered, or a factory that cannot be imported."""


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


# name -> "module:factory"; the factory takes no arguments and returns the Engine / CostModel.
ENGINES: dict[str, str] = {
    "functional": "tensorweave.sim.engines:FunctionalEngine",
    "rtl": "tensorweave.cosim.engines:RTLEngine",
}
COST_MODELS: dict[str, str] = {
    "cycle": "tensorweave.sim.engines:CycleCostModel",
}


def _resolve(table: Mapping[str, str], kind: str, name: str) -> object:
    if name not in table:
        raise EngineError(f"unknown {kind} '{name}': one of {', '.join(sorted(table)) or '(none registered)'}")
    module, _, attr = table[name].partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise EngineError(f"{kind} '{name}' ({table[name]}) is not available: {exc}") from None
    return factory()


def get_engine(engine: str | Engine) -> Engine:
    """The engine named `engine` (a key of `ENGINES`), or `engine` itself when it already is one."""
    if isinstance(engine, str):
        found = _resolve(ENGINES, "engine", engine)
        assert isinstance(found, Engine), f"{ENGINES[engine]} did not return an Engine"
        return found
    return engine


def get_cost_model(model: str | CostModel) -> CostModel:
    """The cost model named `model` (a key of `COST_MODELS`), or `model` itself when it already is one."""
    if isinstance(model, str):
        found = _resolve(COST_MODELS, "cost model", model)
        assert isinstance(found, CostModel), f"{COST_MODELS[model]} did not return a CostModel"
        return found
    return model
