"""The cycle model against the RTL: per-program cycles and error, and how much faster it is.

    python benchmarks/cycle_model.py [--configs tiny vta-default w4a8] [--random 40] [--no-rtl]

For each config it runs the validation set of tests/sim/test_cycle.py (blocked GEMMs, sim/programs.py;
tiled double-buffered GEMMs, dse/workloads.py and sim/rtl/gemm_workload.py; compiled conv layers,
compiler/accel; random programs, sim/random_programs.py) on the cycle model, the functional
simulator and, when tensorweave.sim.rtl is importable, the Verilator harness; prints one row per
program, the worst and mean error, and the wall-time ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
from tensorweave.compiler.accel import AccelError, ConvSpec, Requant, compile_conv
from tensorweave.configs import load_config
from tensorweave.dse.workloads import Tiles, tiled_gemm
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.cycle import estimate_cycles
from tensorweave.sim.programs import blocked_gemm
from tensorweave.sim.random_programs import random_program
from tensorweave.sim.rtl.gemm_workload import GemmShape, double_buffered_gemm

CONVS = ((1, 12, 4, 6, 20, (1, 1)), (1, 8, 11, 10, 8, (3, 3), (3, 2), (2, 2, 2, 1), (1, 1)),
         (1, 16, 8, 8, 16, (3, 3), (1, 1), (1, 1, 1, 1)))


def programs(config, random_count: int):
    """The validation set of tests/sim/test_cycle.py: blocked, tiled and double-buffered GEMMs, compiled
    conv layers (where the config can hold them) and random programs."""
    c = config
    out = [(f"blocked_gemm {m}x{k}x{n}", assemble(blocked_gemm(c, c.batch * m, c.block_in * k, c.block_out * n), c))
           for m, k, n in ((1, 1, 1), (4, 2, 3), (8, 4, 2), (2, 8, 2), (16, 1, 4))]
    for m, k, n, tiles in ((8, 4, 4, None), (16, 8, 4, Tiles(4, 2, 1)), (12, 6, 6, Tiles(3, 2, 2)), (32, 4, 2, None)):
        out.append((f"tiled_gemm {m}x{k}x{n}", assemble(tiled_gemm(c, c.batch * m, c.block_in * k, c.block_out * n,
                                                                   tiles=tiles), c)))
    for tm, tk, tn, f in ((2, 2, 1, 2), (4, 2, 2, 2), (1, 4, 1, 3)):
        shape = GemmShape(m=tm * c.batch * f, k=tk * c.block_in * f, n=tn * c.block_out * f,
                          tile_m=tm, tile_k=tk, tile_n=tn)
        out.append((f"double_buffered {shape.m}x{shape.k}x{shape.n}", assemble(double_buffered_gemm(c, shape), c)))
    for args in CONVS:
        spec = ConvSpec(*args)
        weight = np.random.default_rng(0).integers(-8, 8, spec.weight_shape)
        try:
            kernel = compile_conv(c, spec, weight, None, Requant(0.25, (0.125,), 1.0))
        except AccelError:
            continue
        out.append((f"conv {spec.kernel[0]}x{spec.kernel[1]} {spec.in_channels}->{spec.out_channels}", kernel.program))
    out += [(f"random seed {seed}", random_program(c, seed=seed)) for seed in range(random_count)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "vta-default", "w4a8"])
    parser.add_argument("--random", type=int, default=40, help="random programs per config")
    parser.add_argument("--no-rtl", action="store_true", help="skip the RTL even if it is available")
    args = parser.parse_args()
    use_rtl = not args.no_rtl and importlib.util.find_spec("tensorweave.sim.rtl") is not None
    errors, times = [], {"model": 0.0, "functional": 0.0, "rtl": 0.0}
    print(f"{'config':12} {'program':28} {'model':>8} {'RTL':>8} {'error':>8}")
    for name in args.configs:
        config = load_config(name)
        batch = programs(config, args.random)
        start = time.perf_counter()
        estimates = [estimate_cycles(p).cycles for _, p in batch]
        times["model"] += time.perf_counter() - start
        start = time.perf_counter()
        for _, p in batch:
            run_functional(p)
        times["functional"] += time.perf_counter() - start
        measured = [None] * len(batch)
        if use_rtl:
            from tensorweave.sim.rtl import run_rtl_many
            run_rtl_many([batch[0][1]], config)  # build (or find) the harness before timing
            start = time.perf_counter()
            measured = [r.cycles for r in run_rtl_many([p for _, p in batch], config)]
            times["rtl"] += time.perf_counter() - start
        for (label, _), estimate, rtl in zip(batch, estimates, measured):
            if rtl is None:
                print(f"{name:12} {label:28} {estimate:8} {'-':>8} {'-':>8}")
                continue
            error = (estimate - rtl) / rtl
            errors.append((abs(error), name, label))
            print(f"{name:12} {label:28} {estimate:8} {rtl:8} {error:+8.2%}")
    if errors:
        worst = max(errors)
        structured = max(e for e in errors if not e[2].startswith("random"))
        print(f"\nworst error {worst[0]:.2%} ({worst[1]} {worst[2]}); blocked/tiled worst {structured[0]:.2%} "
              f"({structured[1]} {structured[2]}); mean {sum(e[0] for e in errors) / len(errors):.2%} "
              f"over {len(errors)} programs")
    print(f"wall time: model {times['model']:.3f} s, functional {times['functional']:.3f} s"
          + (f", RTL {times['rtl']:.3f} s" if use_rtl else ""))
    print(f"model is {times['functional'] / times['model']:.1f}x faster than the functional simulator"
          + (f" and {times['rtl'] / times['model']:.1f}x faster than the RTL harness" if use_rtl else ""))


if __name__ == "__main__":
    main()
