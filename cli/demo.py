"""The main job on a built-in example (`make demo`): a blocked matrix multiply on the simulator."""

from __future__ import annotations

import time

import numpy as np

from ..configs import load_config
from ..isa import assemble
from ..sim import run_functional
from ..sim.programs import blocked_gemm, gemm_reference, unpack_rows


def run_demo(config_name: str) -> int:
    config = load_config(config_name)
    m, k, n, shift = 4 * config.batch * 4, 4 * config.block_in, 3 * config.block_out, 8
    print(f"tensorweave demo: C = clip(relu(A @ W^T) >> {shift}) with A {m}x{k}, W {n}x{k} "
          f"on config '{config.name}' ({config.macs_per_cycle} MAC/cycle)")
    program = assemble(blocked_gemm(config, m, k, n, shift), config, source="demo.s")
    print(f"assembled: {len(program.insns)} instructions, {len(program.uops)} micro-ops")
    start = time.perf_counter()
    result = run_functional(program)
    seconds = time.perf_counter() - start
    a, w = unpack_rows(program.data["A"]), unpack_rows(program.data["W"])
    expected = gemm_reference(a, w, shift, config.out_width)
    got = unpack_rows(result.outputs["C"])
    equal = int(np.sum(got == expected))
    s = result.stats
    print(f"functional simulator: {seconds * 1e3:.1f} ms, {s.gemm_iterations} GEMM micro-op iterations "
          f"({s.macs(config)} MACs), {s.alu_iterations} ALU iterations")
    print("instructions per unit: " + ", ".join(f"{u} {s.insns.get(u, 0)}" for u in ("load", "compute", "store")))
    print(f"check against NumPy: {equal}/{expected.size} elements equal "
          f"({'bit-exact' if equal == expected.size else 'MISMATCH'})")
    return 0 if equal == expected.size else 1
