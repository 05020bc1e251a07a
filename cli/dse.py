"""`tensorweave sweep`, `tensorweave cycles` and `tensorweave area`: design-space exploration and the
fast models it is built on."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..configs import load_config
from ..configs.config import PRESET_DIR
from ..dse.space import SweepError
from ..isa import Program
from .options import nonneg_int, positive_int
from .outputs import check_output

SPACES = PRESET_DIR / "sweeps"


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..dse.runner import run_sweep
    from ..dse.space import load_space

    space_file = space_path(args.space)
    space = load_space(space_file)
    # a results folder resumes (results.csv marks it); any other non-empty folder needs --force
    output = check_output(args.output or Path("out") / "dse" / space.name, "folder", force=args.force,
                          marker="results.csv", inputs=[space_file])
    result = run_sweep(space, output, workers=args.workers, ray_address=args.ray, fresh=args.fresh,
                       progress=not args.quiet, max_points=args.max_points)
    print(f"sweep {space.name}: {len(result.rows)} points in the table ({result.evaluated} evaluated now, "
          f"{result.reused} reused, {len(result.failed)} failed)" + ("" if result.complete else "; stopped early"))
    _print_front(result)
    for kind, path in result.paths.items():
        print(f"{kind:<8} {path}")
    return 0


def space_names() -> list[str]:
    return sorted(p.stem for p in SPACES.glob("*.yaml"))


def space_path(name_or_path: str) -> Path:
    """A sweep space file: an existing path, else a space shipped in configs/sweeps by name."""
    path = Path(name_or_path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path  # load_space names a missing file
    if (SPACES / f"{name_or_path}.yaml").is_file():
        return SPACES / f"{name_or_path}.yaml"
    raise SweepError(f"no sweep space named '{name_or_path}'; shipped spaces: {', '.join(space_names())} "
                     "(or give the path of a sweep space YAML file)")


def _print_front(result) -> None:
    from ..dse.report import pareto_front

    metrics = result.space.metrics
    if "latency_ms" not in metrics or "lut" not in metrics:
        return
    front = pareto_front(result.rows, ("latency_ms", "lut"))
    params = list(result.space.parameters)
    shown = [m for m in ("latency_ms", "utilization", "lut", "dsp", "bram") if m in metrics]
    header = ["#", *params, *shown]
    lines = [[str(r["index"]), *(str(r[p]) for p in params),
              *(_number(r[m]) for m in shown)] for r in front]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)] if lines else []
    print(f"\nPareto front, latency against LUTs ({len(front)} points):")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
    print()


def _number(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def cmd_cycles(args: argparse.Namespace) -> int:
    from ..sim.cycle import estimate_cycles

    report = estimate_cycles(Program.load(args.program))
    print(report.table())
    return 0


def cmd_area(args: argparse.Namespace) -> int:
    from ..dse.area import estimate_area, features

    config = load_config(args.config)
    estimate = estimate_area(config)
    rows = list(estimate.as_dict().items()) + [(f"feature {k}", round(v, 1)) for k, v in features(config).items()]
    width = max(len(k) for k, _ in rows)
    print(f"resource estimate for {config.name} (analytical model, dse/area.py)")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a design-space sweep (a shipped space by name, or a YAML file)",
                              description="Evaluate a sweep space's design points with the cycle and area models; "
                                          "writes results.csv/.parquet, pareto.png/.svg and report.html.")
    p.add_argument("space", help=f"a shipped space ({', '.join(space_names())}) or a sweep space YAML file")
    p.add_argument("-o", "--output", help="results folder (default out/dse/<space name>); reruns resume here")
    p.add_argument("-j", "--workers", type=positive_int, help="local worker processes (default: CPU count)")
    p.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster ('auto', 'local', or host:port); "
                                                    "needs tensorweave[ray]")
    p.add_argument("--fresh", action="store_true", help="discard earlier results in the output folder")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder that holds no results.csv")
    p.add_argument("--max-points", type=nonneg_int, help="stop after evaluating this many new points (resume later)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("cycles", help="estimate a program's cycles with the cycle model",
                              description="Cycle-model estimate of a program file: cycles, utilization, per-unit "
                                          "busy and stall cycles, DRAM traffic.")
    p.add_argument("program", help="program file (.twp)")
    p.set_defaults(func=cmd_cycles)

    p = subparsers.add_parser("area", help="estimate a config's FPGA resources (analytical model)")
    p.add_argument("config", help="preset name or config YAML")
    p.set_defaults(func=cmd_area)
