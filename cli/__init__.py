"""The `tensorweave` command: thin subcommands over the library functions."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..configs import AccelConfig, load_config, preset_names
from ..contract.codegen import check_all, write_all
from ..contract.engine import DEFAULT_BUDGET
from ..errors import TensorweaveError
from ..isa import Program, ProgramError, assemble, build_isa, disassemble
from ..isa.codegen import markdown
from ..sim import run_functional
from .options import positive_int

USER_ERRORS = (TensorweaveError, FileNotFoundError)


def _table(rows: Sequence[tuple[str, object]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"{k:<{width}}  {v}" for k, v in rows])


def cmd_config_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    isa = build_isa(config)
    fields = [(k, ", ".join(v) if isinstance(v, list) else v) for k, v in config.to_dict().items()]
    print(_table(fields, f"config {config.name} ({config.digest})"))
    print()
    derived = list(config.derived().items()) + [("instruction_width", isa.instruction_width),
                                                ("uop_width", isa.uop.word_width)]
    print(_table(derived, "derived"))
    return 0


def cmd_config_list(args: argparse.Namespace) -> int:
    for name in preset_names():
        c = load_config(name)
        print(f"{name:<14} batch {c.batch}, block {c.block_in}x{c.block_out}, "
              f"int{c.inp_width} x int{c.wgt_width} -> int{c.acc_width}, {c.macs_per_cycle} MAC/cycle")
    return 0


def cmd_isa_doc(args: argparse.Namespace) -> int:
    text = markdown(build_isa(load_config(args.config)))
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_isa_generate(args: argparse.Namespace) -> int:
    if args.check:
        stale = check_all()
        for path in stale:
            print(f"out of date: {path}")
        if stale:
            print("run `tensorweave isa generate` to refresh them")
        return 1 if stale else 0
    for path in write_all():
        print(f"wrote {path}")
    return 0


def _program_config(program: Program, name: str | None) -> AccelConfig:
    if name is None:
        return program.config
    config = load_config(name)
    if config != program.config:
        raise ProgramError(f"the program was built for config '{program.config.name}' "
                           f"({program.config.digest}), not '{config.name}' ({config.digest})")
    return config


def cmd_asm(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if not source.is_file():
        raise FileNotFoundError(f"assembler source '{source}' does not exist")
    program = assemble(source.read_text(), load_config(args.config), source=str(source))
    output = Path(args.output or source.with_suffix(".twp"))
    program.save(output)
    print(f"wrote {output}: {len(program.insns)} instructions, {len(program.uops)} micro-ops, "
          f"{len(program.tensors)} tensors, {program.dram_bytes} bytes of DRAM")
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    print(disassemble(Program.load(args.program)), end="")
    return 0


def _print_counts(result, config: AccelConfig) -> None:
    s = result.stats
    rows = [(f"{unit} unit", f"{s.insns.get(unit, 0)} instructions") for unit in ("load", "compute", "store")]
    rows += [(op, n) for op, n in sorted(s.ops.items())]
    rows += [("GEMM micro-op iterations", s.gemm_iterations), ("MACs", s.macs(config)),
             ("ALU iterations", s.alu_iterations), ("DRAM bytes read", s.dram_read_bytes),
             ("DRAM bytes written", s.dram_write_bytes)]
    if s.tokens_left:
        rows.append(("tokens left in queues", ", ".join(f"{q}: {n}" for q, n in s.tokens_left.items())))
    print(_table(rows, "counts"))


def cmd_sim(args: argparse.Namespace) -> int:
    program = Program.load(args.program)
    config = _program_config(program, args.config)
    result = run_functional(program, budget=args.budget)
    np.set_printoptions(threshold=64, linewidth=110)
    for name, value in result.outputs.items():
        print(f"output {name} {program.tensor(name).dtype} {value.shape}:\n{value}\n")
    _print_counts(result, config)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.isa:
        from .demo import run_demo as run_isa_demo
        return run_isa_demo(args.config)
    from ..compiler.demo import run_demo
    return run_demo(args.config, engine=args.engine)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tensorweave", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, into=sub) -> argparse.ArgumentParser:
        p = into.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    config = sub.add_parser("config", help="show accelerator configs").add_subparsers(dest="what", required=True)
    add("show", cmd_config_show, "print a config's fields and derived values", config).add_argument(
        "config", help="preset name or path to a YAML file")
    add("list", cmd_config_list, "list the presets", config)

    isa = sub.add_parser("isa", help="the instruction set").add_subparsers(dest="what", required=True)
    p = add("doc", cmd_isa_doc, "print the ISA reference (Markdown) for a config", isa)
    p.add_argument("--config", default="vta-default")
    p.add_argument("-o", "--output", help="write to this file instead of printing")
    p = add("generate", cmd_isa_generate, "regenerate isa/generated/ (C headers, Markdown)", isa)
    p.add_argument("--check", action="store_true", help="only report files that are out of date")

    p = add("asm", cmd_asm, "assemble a program (.s) into a program file (.twp)")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    p.add_argument("--config", default="vta-default")
    add("disasm", cmd_disasm, "print a program file as assembler text").add_argument("program")
    p = add("sim", cmd_sim, "run a program file on the functional simulator")
    p.add_argument("program")
    p.add_argument("--config", help="check the program was built for this config")
    p.add_argument("--budget", "--max-iterations", type=positive_int, default=DEFAULT_BUDGET, metavar="N",
                   help=f"stop with an error before the run passes N GEMM/ALU micro-op iterations "
                        f"(default {DEFAULT_BUDGET:,}, far above any real model)")
    p = add("demo", cmd_demo, "quantize a small CNN, run it on the simulated accelerator, check it against "
                              "onnxruntime")
    p.add_argument("--config", default="vta-default")
    p.add_argument("--engine", default="functional", choices=["functional", "rtl"])
    p.add_argument("--isa", action="store_true",
                   help="instead: assemble a blocked matrix multiply by hand and check it against NumPy")
    for module in PLUGIN_MODULES:
        _register_plugin(module, sub)
    return parser


# Each area's subcommands live in its own module here: cli/<area>.py defines
# `register(subparsers)`, adding parsers whose `func(args) -> int` is set with set_defaults.
PLUGIN_MODULES = ("hw", "rtl", "compiler", "fpga", "dse")


def _register_plugin(module: str, sub) -> None:
    import importlib
    importlib.import_module(f"{__name__}.{module}").register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors print one line. Exit status: the command's, 2 for a user error or a bad
    option, 130 after Ctrl-C ("interrupted", no traceback), 141 when stdout's reader went away (quietly)."""
    try:
        args = build_parser().parse_args(argv)
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that left shows up here, not in the interpreter's exit
        return code
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tensorweave isa doc | head -1`: nothing more can be written; point stdout at /dev/null so the
        # interpreter's final flush stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
