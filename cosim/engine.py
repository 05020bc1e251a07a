"""Running Programs on the accelerator's RTL through the fast C++ harness, and what the cocotb path shares.

`run_on_harness(program)` places the program's DRAM image at `DRAM_BASE`, programs the registers over
AXI4-Lite, runs to done / error / the watchdog, and returns a `RunResult` (`contract/engine.py`:
outputs read back from the final DRAM, `cycles` = the CYCLES register; `stats` stays empty, the
RTL does not count instructions). A hardware error becomes `RTLError` naming the instruction and
error code; a run that does not finish becomes `RTLTimeout` naming each unit's instruction and state.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..configs import AccelConfig
from ..contract import error_codes
from ..contract.engine import DEFAULT_BUDGET, RunResult, Stats, charge_budget
from ..contract.registers import config_digest_value, unit_states
from ..contract.topology import UNITS, unit_of
from ..errors import TensorweaveError
from ..isa import ISAError, Program, build_isa
from ..isa.asm import disassemble_insn
from .build import HarnessBuild, build_harness, cxx_opt_default

DRAM_BASE = 0x1000_0000


class RTLError(TensorweaveError, RuntimeError):
    """The hardware raised STATUS.error; the message names the instruction and the error code."""

    def __init__(self, message: str, result: HarnessResult | None = None):
        super().__init__(message)
        self.result = result


class RTLTimeout(RTLError):
    """The watchdog fired: the message says which unit is stuck, at which instruction, waiting on what."""


@dataclass(frozen=True)
class HarnessJob:
    image: bytes
    insn_count: int
    max_cycles: int
    base: int = DRAM_BASE
    stall_percent: int = 0
    seed: int = 1
    waves: Path | None = None
    profile: bool = False


@dataclass(frozen=True)
class HarnessResult:
    status: str                 # done | error | timeout
    cycles: int                 # the CYCLES register
    error_code: int
    error_insn: int
    pcs: tuple[int, int, int]   # LOAD_PC, COMPUTE_PC, STORE_PC
    unit_state: int
    digest: int
    sim_cycles: int             # clock cycles the harness ran, reset and register accesses included
    violations: int             # AXI protocol violations the DRAM model saw
    dram: bytes
    # With HarnessJob.profile: cycles per unit (load, compute, store) spent busy, waiting for a
    # token, waiting for a command, idle (sampled from UNIT_STATE every few cycles).
    profile: tuple[tuple[int, int, int, int], ...] = ()


def watchdog_report(result: HarnessResult, program: Program | None = None) -> str:
    """Which unit is stuck at which instruction, from LOAD_PC / COMPUTE_PC / STORE_PC / UNIT_STATE."""
    states = unit_states(result.unit_state)
    parts = []
    for unit, pc in zip(UNITS, result.pcs):
        state = ", ".join(states[unit]) or "idle"
        where = f"instruction {pc}"
        if program is not None and 0 <= pc < len(program.insns):
            where += f" ({_describe(program, pc)})"
        parts.append(f"{unit} unit at {where}: {state}")
    return "; ".join(parts)


def _describe(program: Program, index: int) -> str:
    isa = build_isa(program.config)
    try:
        return disassemble_insn(isa, isa.decode(program.insns[index]))
    except (ValueError, KeyError):
        return f"word {program.insns[index]:#x}"


def run_harness(executable: Path, jobs: Sequence[HarnessJob], timeout_s: float | None = None) -> list[HarnessResult]:
    """Run `jobs` in one harness process; each gets a fresh model."""
    with tempfile.TemporaryDirectory(prefix="tw-harness-") as tmp:
        paths = []
        for i, job in enumerate(jobs):
            path = Path(tmp) / f"job{i}.in"
            waves = str(job.waves) if job.waves else "-"
            header = (f"tw-job base={job.base} insns={job.insn_count} max_cycles={job.max_cycles} "
                      f"stall={job.stall_percent} seed={job.seed} profile={int(job.profile)} bytes={len(job.image)} "
                      f"waves={waves}\n")
            path.write_bytes(header.encode() + bytes(job.image))
            paths.append(path)
        proc = subprocess.run([str(executable), *map(str, paths)], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        results = []
        for path in paths:
            out = path.with_name(path.name + ".out")
            if not out.is_file():
                raise RTLError(f"the harness wrote no result for a job (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
            results.append(parse_result(out.read_bytes()))
        return results


def parse_result(raw: bytes) -> HarnessResult:
    """A result file (`tw-result key=value ...` line, then the final DRAM bytes) as a HarnessResult."""
    header, _, dram = raw.partition(b"\n")
    fields = dict(kv.split("=", 1) for kv in header.decode().split()[1:])
    return HarnessResult(
        status=fields["status"], cycles=int(fields["cycles"]), error_code=int(fields["error_code"]),
        error_insn=int(fields["error_insn"]),
        pcs=(int(fields["load_pc"]), int(fields["compute_pc"]), int(fields["store_pc"])),
        unit_state=int(fields["unit_state"]), digest=int(fields["digest"]),
        sim_cycles=int(fields["sim_cycles"]), violations=int(fields["violations"]), dram=dram,
        profile=_profile(fields.get("profile", "")))


def _profile(text: str) -> tuple[tuple[int, int, int, int], ...]:
    values = [int(v) for v in text.split(",") if v]
    return tuple(tuple(values[4 * u:4 * u + 4]) for u in range(len(values) // 4))  # type: ignore[misc]


def cycle_budget(program: Program, budget: int = DEFAULT_BUDGET) -> int:
    """A generous watchdog limit: far above what any sane implementation needs for `program`.

    It grows with the work the program declares, so a program past `budget` micro-op iterations (the
    functional simulator's budget, `contract/engine.py`) is refused here with an `RTLError` naming the
    unit and instruction: the watchdog never waits longer than for a program within the budget."""
    isa, c = build_isa(program.config), program.config
    total = 20_000 + 64 * len(program.insns)
    row_bytes = max(c.inp_row_bytes, c.wgt_row_bytes, c.acc_row_bytes, c.uop_bytes)
    spent = 0
    for index, word in enumerate(program.insns):
        try:
            insn = isa.decode(word)
            unit = unit_of(isa, insn)
        except (ValueError, ISAError):
            continue
        spent = charge_budget(spent, budget, unit, index, insn, RTLError)
        f = insn.fields
        if insn.op in ("LOAD", "STORE"):
            rows = (f["y_size"] + f["y_pad_0"] + f["y_pad_1"]) * (f["x_size"] + f["x_pad_0"] + f["x_pad_1"])
            total += 64 * f["y_size"] + rows * (8 + 4 * row_bytes // c.bus_bytes)
        elif insn.op in ("GEMM", "ALU"):
            total += 64 + 8 * f["iter_out"] * f["iter_in"] * max(1, f["uop_end"] - f["uop_begin"])
        elif insn.op == "FINISH":
            break  # fetch stops here
    return 20 * total


@functools.cache
def _verilog(config: AccelConfig) -> Path:
    """Verilog of the accelerator for `config`, generated once per process."""
    out = Path(tempfile.mkdtemp(prefix=f"tw-rtl-{config.name}-"))
    atexit.register(shutil.rmtree, out, True)  # builds copy what they need; the folder goes with the process
    try:
        from ..hw.verilog import generate  # the RTL engineer's contract; imported late (hw is optional here)
    except ModuleNotFoundError as exc:
        if exc.name != "tensorweave.hw.verilog":
            raise
        # Until hw/verilog.py exists: convert the top level directly (same module and port names).
        from amaranth.back import verilog

        from ..hw.top import Accelerator

        path = out / "tensorweave_top.v"
        path.write_text(verilog.convert(Accelerator(config), name="tensorweave_top"))
        return path
    return Path(generate(config, out).verilog)


def harness_for(config: AccelConfig, waves: bool = False) -> HarnessBuild:
    """The (cached) harness build of the accelerator for `config`, at the default C++ optimisation level."""
    return _harness_for(config, waves, cxx_opt_default())


@functools.cache
def _harness_for(config: AccelConfig, waves: bool, cxx_opt: str) -> HarnessBuild:
    return build_harness(_verilog(config), waves=waves, cxx_opt=cxx_opt)


def to_run_result(program: Program, result: HarnessResult, check_digest: bool = True) -> RunResult:
    """The harness's answer as a `RunResult`, or the `RTLError` / `RTLTimeout` it stands for."""
    if check_digest and result.digest != config_digest_value(program.config):
        raise RTLError(f"the RTL reports config digest {result.digest:08x}, the program was built for "
                       f"'{program.config.name}' ({program.config.digest[:8]}): rebuild the RTL for this config")
    if result.violations:
        raise RTLError(f"the accelerator broke the AXI4 protocol {result.violations} time(s) (see stderr)", result)
    if result.status == "timeout":
        raise RTLTimeout(f"watchdog: no done or error after the cycle limit; {watchdog_report(result, program)}",
                         result)
    if result.status == "error":
        meaning = error_codes.message(result.error_code)
        where = result.error_insn
        shown = f" ({_describe(program, where)})" if 0 <= where < len(program.insns) else ""
        units = f"; {watchdog_report(result, program)}" if result.error_code == error_codes.DEADLOCK else ""
        raise RTLError(f"the accelerator flagged error {result.error_code} ({meaning}) at instruction {where}{shown}"
                       f"{units}", result)
    dram = bytearray(result.dram)
    outputs = {t.name: program.read_tensor(dram, t.name) for t in program.outputs}
    return RunResult(outputs, Stats(), dram, cycles=result.cycles)


def harness_jobs(programs: Sequence[Program], inputs: Sequence[Mapping[str, np.ndarray] | None] | None = None,
                 stall_percent: int = 0, max_cycles: int | None = None, waves: Path | None = None,
                 budget: int = DEFAULT_BUDGET) -> list[HarnessJob]:
    inputs = inputs or [None] * len(programs)
    return [HarnessJob(bytes(p.dram_image(i)), len(p.insns), max_cycles or cycle_budget(p, budget),
                       stall_percent=stall_percent, seed=n + 1, waves=waves)
            for n, (p, i) in enumerate(zip(programs, inputs))]


def run_rtl_outcomes(programs: Sequence[Program], config: AccelConfig,
                     inputs: Sequence[Mapping[str, np.ndarray] | None] | None = None, stall_percent: int = 0,
                     max_cycles: int | None = None, executable: Path | None = None) -> list[RunResult | RTLError]:
    """Every program on the harness in one process; each entry is a `RunResult` or the `RTLError` it raised."""
    for p in programs:
        if p.config != config:
            raise RTLError(f"a program was built for config '{p.config.name}', not '{config.name}'")
    exe = executable or harness_for(config).executable
    results = run_harness(exe, harness_jobs(programs, inputs, stall_percent, max_cycles))
    out: list[RunResult | RTLError] = []
    for program, result in zip(programs, results):
        try:
            out.append(to_run_result(program, result, check_digest=executable is None))
        except RTLError as exc:
            out.append(exc)
    return out


def run_rtl_many(programs: Sequence[Program], config: AccelConfig,
                 inputs: Sequence[Mapping[str, np.ndarray] | None] | None = None,
                 stall_percent: int = 0) -> list[RunResult]:
    """Run many programs for `config` on one harness build in one process (for cycle-model validation).

    Raises the first program's `RTLError` if any program fails on the hardware."""
    results = run_rtl_outcomes(programs, config, inputs, stall_percent)
    for r in results:
        if isinstance(r, RTLError):
            raise r
    return results  # type: ignore[return-value]


def run_on_harness(program: Program, inputs: Mapping[str, np.ndarray] | None = None,
                   waves: str | Path | None = None, stall_percent: int = 0, max_cycles: int | None = None,
                   budget: int = DEFAULT_BUDGET) -> RunResult:
    """Run `program` on the C++ harness of its config (`run_rtl(..., engine="harness")`); `waves`: a VCD file;
    `budget`: micro-op iterations, as the functional simulator's (`cycle_budget`)."""
    job = harness_jobs([program], [inputs], stall_percent, max_cycles,  # first: refuses a program past the budget
                       waves=Path(waves).resolve() if waves else None, budget=budget)
    build = harness_for(program.config, waves=waves is not None)
    (result,) = run_harness(build.executable, job)
    return to_run_result(program, result)
