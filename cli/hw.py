"""`tensorweave hw ...`: Verilog generation, lint, and runs on the Amaranth model of the accelerator."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ..configs import load_config
from ..isa import Program
from .options import address, positive_int
from .outputs import check_output, new_folder


def cmd_verilog(args: argparse.Namespace) -> int:
    from ..hw.verilog import TOP_NAME, generate

    output = check_output(args.output, "folder", force=None, marker=f"{TOP_NAME}.json")
    config = load_config(args.config)
    with new_folder(output) as tmp:
        rtl = generate(config, tmp)
    rtl = replace(rtl, verilog=output / rtl.verilog.name, metadata=output / rtl.metadata.name)
    print(f"config   {config.name} ({rtl.digest})")
    print(f"verilog  {rtl.verilog}  (sha256 {rtl.verilog_sha256[:16]})")
    print(f"metadata {rtl.metadata}")
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from ..hw.lint import lint
    from ..hw.verilog import TOP_NAME

    output = check_output(args.output, "folder", force=None, marker=f"{TOP_NAME}.json") if args.output else None
    config = load_config(args.config)
    result = lint(config, output)
    for line in result.warnings:
        print(line)
    print(f"verilator --lint-only -Wall on {config.name}: {'clean' if result.ok else 'FAILED'} "
          f"({len(result.warnings)} messages after waivers)")
    return 0 if result.ok else 1


def cmd_sim(args: argparse.Namespace) -> int:
    from ..hw.simulate import simulate
    from ..sim import run_functional

    program = Program.load(args.program)
    run = simulate(program, dram_base=args.dram_base, max_cycles=args.max_cycles)
    rows = [("status", f"{'done' if run.done else 'error'} ({run.status:#x})"), ("cycles", run.cycles)]
    if run.error:
        from ..contract.error_codes import message
        rows += [("error_code", f"{run.error_code} ({message(run.error_code)})"),
                 ("error_insn", run.error_insn)]
    same = None
    if run.done and not args.no_check:
        reference = run_functional(program)
        same = bytes(reference.dram) == bytes(run.dram)
        rows.append(("matches functional", "yes, bit for bit" if same else "NO"))
    width = max(len(k) for k, _ in rows)
    print(f"Amaranth model of {program.config.name}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0 if run.done and same is not False else 1


def register(subparsers) -> None:
    hw = subparsers.add_parser("hw", help="the accelerator in Amaranth: Verilog, lint, simulation")
    sub = hw.add_subparsers(dest="hw_command", required=True)
    p = sub.add_parser("verilog", help="write tensorweave_top.v and tensorweave_top.json for a config")
    p.add_argument("--config", default="vta-default")
    p.add_argument("-o", "--output", required=True,
                   help="output folder: new, empty, or an earlier `hw verilog` output (replaced)")
    p.set_defaults(func=cmd_verilog)
    p = sub.add_parser("lint", help="verilator --lint-only -Wall on the generated Verilog "
                                    "(waivers: hw/lint_waivers.vlt)")
    p.add_argument("--config", default="tiny")
    p.add_argument("-o", "--output", help="keep the generated files in this directory")
    p.set_defaults(func=cmd_lint)
    p = sub.add_parser("sim", help="run a program file on the Amaranth model (slow: small programs) "
                                   "and compare DRAM with the functional simulator")
    p.add_argument("program")
    p.add_argument("--dram-base", type=address, default=0x1000, help="byte address (4096, 0x1000)")
    p.add_argument("--max-cycles", type=positive_int, default=200_000)
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the functional simulator")
    p.set_defaults(func=cmd_sim)
