"""Simulation engines: the functional simulator (the ISA's definition) and, later, cycle and RTL engines."""

from .functional import FunctionalSim, RunResult, SimError, Stats, alu_apply, run_functional

__all__ = ["FunctionalSim", "RunResult", "SimError", "Stats", "alu_apply", "run_functional"]
