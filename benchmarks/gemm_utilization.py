"""MAC utilization of the RTL on a large double-buffered blocked GEMM (target: >= 90 % of peak).

    python benchmarks/gemm_utilization.py [--config vta-default] [--m 256 --k 1024 --n 256]

Prints measured MACs / (CYCLES x macs_per_cycle), checks the outputs against the functional
simulator bit for bit, and shows where each unit's cycles went (busy / waiting for a token /
waiting for a command / idle, sampled from UNIT_STATE by the harness) so a miss can be located.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from tensorweave.configs import load_config
from tensorweave.cosim.engine import HarnessJob, cycle_budget, harness_for, run_harness, to_run_result
from tensorweave.cosim.gemm_workload import default_shape, double_buffered_gemm
from tensorweave.isa import assemble
from tensorweave.sim import run_functional


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vta-default")
    parser.add_argument("--m", type=int)
    parser.add_argument("--k", type=int)
    parser.add_argument("--n", type=int)
    parser.add_argument("--stall", type=int, default=0, help="percent of cycles the DRAM model stalls")
    args = parser.parse_args()
    config = load_config(args.config)
    shape = default_shape(config)
    shape = replace(shape, **{k: v for k, v in (("m", args.m), ("k", args.k), ("n", args.n)) if v})
    program = assemble(double_buffered_gemm(config, shape), config)
    build = harness_for(config)
    start = time.perf_counter()
    (raw,) = run_harness(build.executable, [HarnessJob(bytes(program.dram_image()), len(program.insns),
                                                       cycle_budget(program), stall_percent=args.stall)])
    wall = time.perf_counter() - start
    (profiled,) = run_harness(build.executable, [HarnessJob(bytes(program.dram_image()), len(program.insns),
                                                            cycle_budget(program), stall_percent=args.stall,
                                                            profile=True)])
    result = to_run_result(program, raw)
    reference = run_functional(program)
    exact = all((result.outputs[t.name] == reference.outputs[t.name]).all() for t in program.outputs)
    cycles = result.cycles or 1
    ideal = shape.macs() // config.macs_per_cycle
    utilization = shape.macs() / (cycles * config.macs_per_cycle)
    print(f"GEMM {shape.m}x{shape.k}x{shape.n} on '{config.name}' ({config.macs_per_cycle} MAC/cycle, "
          f"{config.bus_width}-bit bus), tiles {shape.tile_m}x{shape.tile_k}x{shape.tile_n} blocks, double-buffered")
    rows = [("MACs", f"{shape.macs():,}"), ("ideal cycles (MACs / peak)", f"{ideal:,}"),
            ("measured cycles (CYCLES register)", f"{cycles:,}"),
            ("MAC utilization (measured / peak)", f"{100 * utilization:.1f} %  (target >= 90 %)"),
            ("outputs equal the functional simulator", "yes" if exact else "NO"),
            ("harness wall time", f"{wall:.2f} s ({raw.sim_cycles / wall / 1e3:.0f} k cycles/s)")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    print("\nwhere the cycles go (sampled UNIT_STATE, % of the run):")
    print(f"{'unit':<8} {'busy':>8} {'token wait':>11} {'cmd wait':>9} {'idle':>7}")
    for unit, counts in zip(("load", "compute", "store"), profiled.profile):
        total = sum(counts) or 1
        print(f"{unit:<8} " + " ".join(f"{100 * v / total:>{w}.1f}" for v, w in zip(counts, (8, 11, 9, 7))))
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
