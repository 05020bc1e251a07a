"""Simulation speed of the three engines on the same program, side by side, as ratios.

    python benchmarks/rtl_speed.py [--config tiny] [--repeat 20]

Engines: the Verilator C++ harness (whole program in C++, many jobs per process), the cocotb
testbench (Python AXI models every cycle), and the functional simulator (no cycles of its own:
its rate is the RTL's cycle count divided by its wall time, i.e. RTL cycles covered per second).
Builds are made (or taken from the cache) before timing; wall times include process start-up.
"""

from __future__ import annotations

import argparse
import time

from tensorweave.configs import load_config
from tensorweave.cosim.cocotb_runner import run_cocotb_raw
from tensorweave.cosim.engine import _verilog, harness_for, harness_jobs, run_harness, to_run_result
from tensorweave.cosim.gemm_workload import GemmShape, double_buffered_gemm
from tensorweave.isa import assemble
from tensorweave.sim import run_functional


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--repeat", type=int, default=20, help="harness jobs per process")
    args = parser.parse_args()
    config = load_config(args.config)
    shape = GemmShape(m=64 * config.batch, k=32 * config.block_in, n=8 * config.block_out, tile_m=8, tile_k=4,
                      tile_n=4)
    program = assemble(double_buffered_gemm(config, shape), config)
    exe = harness_for(config).executable
    run_cocotb_raw(_verilog(config), program, max_cycles=1)  # build (or reuse) the cocotb model first

    start = time.perf_counter()
    results = run_harness(exe, harness_jobs([program] * args.repeat))
    harness_wall = (time.perf_counter() - start) / args.repeat
    cycles = to_run_result(program, results[0]).cycles or 1
    sim_cycles = results[0].sim_cycles

    start = time.perf_counter()
    cocotb = run_cocotb_raw(_verilog(config), program)
    cocotb_wall = time.perf_counter() - start
    empty = assemble("finish\n", config)
    start = time.perf_counter()
    startup = run_cocotb_raw(_verilog(config), empty)
    cocotb_startup = time.perf_counter() - start
    assert cocotb.cycles == cycles and cocotb.dram == results[0].dram, "cocotb and harness disagree"

    start = time.perf_counter()
    runs = 5
    for _ in range(runs):
        reference = run_functional(program)
    functional_wall = (time.perf_counter() - start) / runs
    assert all((reference.outputs[t.name] == to_run_result(program, results[0]).outputs[t.name]).all()
               for t in program.outputs)

    rates = {"verilator C++ harness": sim_cycles / harness_wall, "cocotb + verilator": cocotb.sim_cycles / cocotb_wall,
             "functional simulator": cycles / functional_wall}
    walls = {"verilator C++ harness": harness_wall, "cocotb + verilator": cocotb_wall,
             "functional simulator": functional_wall}
    base = rates["functional simulator"]
    print(f"program: double-buffered GEMM {shape.m}x{shape.k}x{shape.n} on '{config.name}', "
          f"{len(program.insns)} instructions, {cycles:,} RTL cycles ({sim_cycles:,} with reset and register setup)")
    print(f"{'engine':<24} {'wall s/run':>11} {'cycles/s':>12} {'vs functional':>14} {'vs cocotb':>10}")
    for name, rate in rates.items():
        print(f"{name:<24} {walls[name]:>11.3f} {rate:>12,.0f} {rate / base:>13.2f}x "
              f"{rate / rates['cocotb + verilator']:>9.2f}x")
    steady = (cocotb.sim_cycles - startup.sim_cycles) / max(cocotb_wall - cocotb_startup, 1e-9)
    print(f"cocotb start-up (a FINISH-only program): {cocotb_startup:.2f} s; without it cocotb runs "
          f"{steady:,.0f} cycles/s, the harness is {rates['verilator C++ harness'] / steady:.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
