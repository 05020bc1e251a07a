"""Choosing the tiling: an analytical cost model ranks every tiling that fits the scratchpads, the top
few are lowered and measured with the cost model the caller passes (a `contract.engine.CostModel`:
"cycle", the cycle model, by default; "analytical", `AnalyticalCostModel` below, needs no simulator),
and the winner is cached per (config digest, problem, cost model) in a JSON file in the project
cache (`tensorweave.cache`, kind `schedules`). A corrupted cache file is reported and rebuilt.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ...cache import atomic_write, cache_dir, locked
from ...configs import AccelConfig
from ...contract.engine import CostEstimate, CostModel, get_cost_model
from ...contract.topology import UNITS, unit_of
from ...isa import Program, build_isa
from ...isa.asm import element_bytes
from .lower import FIXED_CONSTS, POW2_CONSTS, Problem, Tiling, sram_needs
from .spec import AccelError

MEASURED = 8            # how many of the best-ranked tilings are lowered and measured (4 lost C6 once the
                        # ranking saw the true ALU count: 8 gives ResNet-18 9.34 M cycles, was 9.36 M)
CACHE_FILE = "accel-schedules.json"
CACHE_VERSION = 4       # bump when the lowering or the ranking changes what a cached tiling costs


def _splits(extent: int) -> list[int]:
    """Tile sizes worth trying: every distinct ceil(extent / parts)."""
    return sorted({math.ceil(extent / parts) for parts in range(1, extent + 1)})


@dataclass(frozen=True)
class Estimate:
    tiling: Tiling
    cycles: float
    compute: float
    load: float
    store: float
    dram_bytes: int


def analytical(config: AccelConfig, p: Problem, t: Tiling, alu_ops: int) -> Estimate:
    """Closed-form cycles: max(compute, load, store) over the run plus the exposed first load and last store."""
    kr, ks = p.kernel
    spatial = p.nb * p.groups * math.ceil(p.out_height / t.th) * math.ceil(p.out_width / t.tw)
    k_tiles = math.ceil(p.kb / t.kt)
    steps = math.ceil(p.cb / t.ct)
    ih = (t.th - 1) * p.stride[0] + (kr - 1) * p.dilation[0] + 1
    iw = (t.tw - 1) * p.stride[1] + (ks - 1) * p.dilation[1] + 1
    pixels = p.nb * p.groups * p.kb * p.out_height * p.out_width
    gemm = pixels * p.cb * kr * ks
    alu = pixels * alu_ops * 1.5
    tiles = spatial * k_tiles
    compute_insns = tiles * (steps * t.kt + alu_ops + 1)
    compute = gemm + alu + compute_insns * 6
    in_bytes = tiles * steps * t.ct * min(ih, p.height) * min(iw, p.width) * config.inp_row_bytes
    wgt_bytes = spatial * p.groups * p.kb * p.cb * kr * ks * config.wgt_row_bytes
    load_insns = tiles * steps * (t.ct + 1)
    load = (in_bytes + wgt_bytes) / config.bus_bytes + load_insns * 10 + tiles * steps * t.ct * min(ih, p.height)
    out_bytes = pixels * config.out_row_bytes
    store = out_bytes / config.bus_bytes + tiles * t.kt * (10 + t.th)
    first = (t.ct * ih * iw * config.inp_row_bytes + t.kt * t.ct * kr * ks * config.wgt_row_bytes) / config.bus_bytes
    last = t.kt * t.th * t.tw * (alu_ops * 1.5 + config.out_row_bytes / config.bus_bytes)
    cycles = max(compute, load, store) + first + last
    return Estimate(t, cycles, compute, load, store, in_bytes + wgt_bytes + out_bytes)


def candidates(config: AccelConfig, p: Problem, fixed: bool) -> list[Tiling]:
    names = FIXED_CONSTS if fixed else POW2_CONSTS
    found = []
    for kt in _splits(p.kb):
        for ct in _splits(p.cb):
            for th in _splits(p.out_height):
                for tw in _splits(p.out_width):
                    t = Tiling(th, tw, kt, ct)
                    if all(need <= have for need, have in sram_needs(config, p, t, names).values()):
                        found.append(t)
    return found


def analytical_busy(program: Program) -> dict[str, int]:
    """Per-unit work read off the instruction stream: fixed issue costs plus bus beats and loop iterations."""
    c = program.config
    isa = build_isa(c)
    busy = dict.fromkeys(UNITS, 0)
    for word in program.insns:
        insn = isa.decode(word)
        if insn.op in ("LOAD", "STORE"):
            memory = isa.enum_name("memory_id", insn.memory_id)
            beats = math.ceil(insn.x_size * element_bytes(c, memory) / c.bus_bytes)
            busy[unit_of(isa, insn)] += 10 + insn.y_size * (1 + beats)
        elif insn.op in ("GEMM", "ALU"):
            busy["compute"] += 6 + insn.iter_out * insn.iter_in * (insn.uop_end - insn.uop_begin)
    return busy


def analytical_cycles(program: Program) -> int:
    """The busiest unit's work (no overlap modelled)."""
    return max(analytical_busy(program).values())


class AnalyticalCostModel:
    """A `CostModel` that needs no simulator: the busiest unit's work, from the instruction stream alone."""

    name = "analytical"

    def estimate(self, program: Program) -> CostEstimate:
        busy = analytical_busy(program)
        return CostEstimate(max(busy.values()), busy, self.name)


def resolve_cost_model(model: str | CostModel) -> CostModel:
    """"analytical" (defined here, in the compiler), else a name registered in `contract.engine.COST_MODELS`
    ("cycle", ...) or a `CostModel` object."""
    return AnalyticalCostModel() if model == "analytical" else get_cost_model(model)


def cache_path() -> Path:
    """The schedule cache file: `<cache root>/schedules-v<CACHE_VERSION>/accel-schedules.json` (tensorweave.cache)."""
    return cache_dir("schedules", CACHE_VERSION) / CACHE_FILE


def _read_cache(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ValueError("no 'entries' table")
        return data["entries"]
    except (OSError, ValueError, AttributeError) as exc:
        warnings.warn(f"schedule cache {path} is unreadable ({exc}); rebuilding it", stacklevel=3)
        return {}


def _write_cache(path: Path, entries: dict) -> None:
    try:
        atomic_write(path, json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1, sort_keys=True))
    except OSError as exc:
        warnings.warn(f"could not write the schedule cache {path} ({exc})", stacklevel=3)


def cache_key(config: AccelConfig, p: Problem, fixed: bool, has_bias: bool, cost_model: str) -> str:
    return (f"{config.digest}|{'fixed' if fixed else 'pow2'}|{int(has_bias)}|{cost_model}|"
            + json.dumps(asdict(p), sort_keys=True))


@dataclass(frozen=True)
class Choice:
    tiling: Tiling
    program: Program
    cycles: int
    source: str                # the measuring cost model's CostEstimate.source ("sim.cycle", "analytical")
    ranked: tuple[Estimate, ...]
    cached: bool


def choose(config: AccelConfig, p: Problem, fixed: bool, has_bias: bool, alu_ops: int,
           build: Callable[[Tiling], Program], use_cache: bool = True,
           cost_model: str | CostModel = "cycle") -> Choice:
    """Rank tilings analytically (`alu_ops`: ALU instructions per output tile), lower the best few,
    measure them with `cost_model`, return the fastest (cached)."""
    model = resolve_cost_model(cost_model)
    key = cache_key(config, p, fixed, has_bias, model.name)
    path = cache_path()
    entries = _read_cache(path) if use_cache else {}
    hit = entries.get(key)
    if isinstance(hit, dict):
        try:
            t = Tiling(int(hit["th"]), int(hit["tw"]), int(hit["kt"]), int(hit["ct"]))
            program = build(t)
            return Choice(t, program, int(hit["cycles"]), str(hit["source"]), (), True)
        except (KeyError, TypeError, ValueError, AccelError):
            pass  # a stale or hand-edited entry: search again
    found = candidates(config, p, fixed)
    if not found:
        raise AccelError(f"no tiling of this layer fits config '{config.name}' (even one pixel, one block: "
                         f"{sram_needs(config, p, Tiling(1, 1, 1, 1), FIXED_CONSTS if fixed else POW2_CONSTS)} "
                         "rows needed/offered)")
    ranked = sorted((analytical(config, p, t, alu_ops) for t in found), key=lambda e: (e.cycles, e.dram_bytes))
    best: tuple[int, Tiling, Program, str] | None = None
    errors: list[str] = []
    measured = 0
    for estimate in ranked:
        if measured >= MEASURED or len(errors) > 50:
            break
        try:
            program = build(estimate.tiling)
        except AccelError as exc:  # e.g. too many micro-ops or a field too narrow
            errors.append(str(exc))
            continue
        measured += 1
        cost = model.estimate(program)
        cycles, source = cost.cycles, cost.source
        if best is None or cycles < best[0]:
            best = (cycles, estimate.tiling, program, source)
    if best is None:
        raise AccelError(f"no tiling of this layer lowers for config '{config.name}': {errors[0]}")
    cycles, tiling, program, source = best
    if use_cache:
        with locked(path.with_suffix(".lock")):  # read-modify-write: another process may add entries meanwhile
            entries = _read_cache(path)
            entries[key] = {**asdict(tiling), "cycles": cycles, "source": source}
            _write_cache(path, entries)
    return Choice(tiling, program, cycles, source, tuple(ranked[:MEASURED]), False)
