"""Differential random testing: random valid programs on the RTL harness against the functional simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..configs import AccelConfig
from ..isa import Program
from ..sim.functional import RunResult, SimError, run_functional
from ..sim.random_programs import random_program
from .engine import RTLError, run_rtl_outcomes


@dataclass
class Failure:
    seed: int
    reason: str
    saved: Path | None = None


@dataclass
class FuzzReport:
    config: str
    count: int = 0
    agreed: int = 0
    cycles: int = 0
    failures: list[Failure] = field(default_factory=list)


def compare(program: Program, rtl: RunResult | RTLError, reference: RunResult) -> str | None:
    """None if the RTL's outputs equal the reference's bit for bit, else what differs."""
    if isinstance(rtl, RTLError):
        return f"RTL: {rtl}"
    problems = []
    for t in program.outputs:
        got, want = rtl.outputs[t.name], reference.outputs[t.name]
        if not np.array_equal(got, want):
            flat = np.flatnonzero(got.ravel() != want.ravel())
            first = int(flat[0])
            problems.append(f"output '{t.name}': {flat.size} of {want.size} values differ, first at flat index "
                            f"{first} (RTL {int(got.ravel()[first])}, functional {int(want.ravel()[first])})")
    if rtl.dram != reference.dram and not problems:
        problems.append("DRAM outside the outputs differs")
    return "; ".join(problems) or None


def fuzz(config: AccelConfig, count: int, first_seed: int = 0, batch: int = 200, stall_percent: int = 0,
         save_dir: Path | None = None, progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Run `count` random programs (seeds first_seed...) on the harness; save each failing program."""
    report = FuzzReport(config.name)
    for start in range(first_seed, first_seed + count, batch):
        seeds = list(range(start, min(start + batch, first_seed + count)))
        programs = [random_program(config, s) for s in seeds]
        outcomes = run_rtl_outcomes(programs, config, stall_percent=stall_percent)
        for seed, program, outcome in zip(seeds, programs, outcomes):
            report.count += 1
            try:
                reference = run_functional(program)
            except SimError as exc:  # a generator bug, not a hardware one
                reason: str | None = f"the generator made an invalid program: {exc}"
            else:
                reason = compare(program, outcome, reference)
            if reason is None:
                report.agreed += 1
                report.cycles += outcome.cycles or 0  # type: ignore[union-attr]
            else:
                saved = None
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    saved = save_dir / f"{config.name}-seed{seed}.twp"
                    program.save(saved)
                report.failures.append(Failure(seed, reason, saved))
        if progress:
            progress(len(seeds))
    return report
