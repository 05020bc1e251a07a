"""`tensorweave rtl ...`: build the Verilated accelerator, run programs on it, fuzz it against the functional sim."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..configs import load_config
from ..isa import Program
from ..sim import run_functional
from .options import nonneg_int, percent_below_100, positive_int
from .outputs import OutputError, check_output


def cmd_build(args: argparse.Namespace) -> int:
    from ..cosim.engine import harness_for

    start = time.perf_counter()
    build = harness_for(load_config(args.config), waves=args.waves)
    state = "cached" if build.cached else f"built in {time.perf_counter() - start:.1f} s"
    print(f"harness for '{args.config}': {build.executable} ({state})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..cosim import run_rtl
    from ..cosim.fuzz import compare

    waves = None
    if args.waves:
        waves = check_output(args.waves, force=args.force, inputs=[args.program], ours=_is_vcd, option="--waves")
        waves.parent.mkdir(parents=True, exist_ok=True)
    program = Program.load(args.program)
    start = time.perf_counter()
    result = run_rtl(program, engine=args.engine, waves=waves, stall_percent=args.stall)
    seconds = time.perf_counter() - start
    print(f"{args.program}: done on the {args.engine} engine in {result.cycles} cycles ({seconds:.2f} s wall)")
    if waves:
        if not waves.is_file():
            raise OutputError(f"--waves {waves}: the {args.engine} engine wrote no waveform file there")
        print(f"waveforms: {waves}")
    if args.compare:
        reason = compare(program, result, run_functional(program))
        print("outputs equal the functional simulator's, bit for bit" if reason is None else f"MISMATCH: {reason}")
        return 0 if reason is None else 1
    return 0


def _is_vcd(path: Path) -> bool:
    """A VCD file (what --waves writes, so it may replace it): it starts with a $date/$version/... keyword."""
    with open(path, "rb") as f:
        return f.read(64).lstrip().startswith((b"$date", b"$version", b"$timescale", b"$comment", b"$scope"))


def cmd_fuzz(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..cosim.engine import harness_for
    from ..cosim.fuzz import fuzz

    config = load_config(args.config)
    harness_for(config)  # build first, so the progress bar measures runs only
    start = time.perf_counter()
    with tqdm(total=args.count, desc=f"fuzz {config.name}", unit="prog") as bar:
        report = fuzz(config, args.count, first_seed=args.seed, stall_percent=args.stall,
                      save_dir=Path(args.save_dir), progress=bar.update)
    seconds = time.perf_counter() - start
    rows = [("config", config.name), ("programs", report.count), ("agreed", report.agreed),
            ("failed", len(report.failures)), ("seeds", f"{args.seed}..{args.seed + args.count - 1}"),
            ("AXI stall percent", args.stall), ("RTL cycles (agreeing runs)", report.cycles),
            ("wall time", f"{seconds:.1f} s ({report.count / max(seconds, 1e-9):.0f} programs/s)")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    print(f"{report.agreed} of {report.count} programs agreed with the functional simulator")
    for failure in report.failures[:20]:
        print(f"seed {failure.seed}: {failure.reason}")
        if failure.saved:
            print(f"  reproduce: tensorweave rtl run {failure.saved} --compare --stall {args.stall}")
    return 0 if not report.failures else 1


def register(subparsers) -> None:
    rtl = subparsers.add_parser("rtl", help="the accelerator RTL on Verilator (harness, cocotb, fuzzing)")
    sub = rtl.add_subparsers(dest="what", required=True)

    p = sub.add_parser("build", help="build (or find in the cache) the Verilator harness for a config")
    p.add_argument("--config", default="tiny")
    p.add_argument("--waves", action="store_true", help="the build that can dump VCD waveforms")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run a program file on the RTL and report the cycle count")
    p.add_argument("program")
    p.add_argument("--engine", choices=("harness", "cocotb"), default="harness")
    p.add_argument("--waves", help="dump VCD waveforms to this file (its folder is created; an existing VCD file "
                                   "is replaced, any other file only with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --waves file that is not a VCD file")
    p.add_argument("--stall", type=percent_below_100, default=0,
                   help="percent of cycles the DRAM model stalls ready/valid (0 to 99)")
    p.add_argument("--compare", action="store_true", help="check the outputs against the functional simulator")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("fuzz", help="random valid programs on the RTL, each compared with the functional simulator")
    p.add_argument("--config", default="tiny")
    p.add_argument("--count", type=positive_int, default=1000)
    p.add_argument("--seed", type=nonneg_int, default=0, help="first seed")
    p.add_argument("--stall", type=percent_below_100, default=0,
                   help="percent of cycles the DRAM model stalls ready/valid (0 to 99)")
    p.add_argument("--save-dir", default="rtl-fuzz-failures", help="where failing programs are saved (.twp)")
    p.set_defaults(func=cmd_fuzz)
