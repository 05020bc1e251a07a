"""The cycle model's validation set: programs whose RTL cycle counts the model must match.

Used by tests/sim/test_cycle.py (the 5 % check against the RTL) and benchmarks/cycle_model.py. It lives
in dse/ because it draws on every layer below: blocked GEMMs (sim/programs.py), tiled and double-buffered
GEMMs (dse/workloads.py, cosim/gemm_workload.py), compiled conv layers (compiler/accel) and random
programs (sim/random_programs.py).
"""

from __future__ import annotations

import numpy as np

from ..compiler.accel import AccelError, ConvSpec, Requant, compile_conv
from ..configs import AccelConfig
from ..cosim.gemm_workload import GemmShape, double_buffered_gemm
from ..isa import Program, assemble
from ..sim.programs import blocked_gemm
from ..sim.random_programs import random_program
from .workloads import Tiles, tiled_gemm

VALIDATION_CONFIGS = ("tiny", "vta-default", "w4a8")
RANDOM_PROGRAMS = 40
CONVS = ((1, 12, 4, 6, 20, (1, 1)), (1, 8, 11, 10, 8, (3, 3), (3, 2), (2, 2, 2, 1), (1, 1)),
         (1, 16, 8, 8, 16, (3, 3), (1, 1), (1, 1, 1, 1)))


def validation_programs(config: AccelConfig, random_count: int = RANDOM_PROGRAMS) -> list[tuple[str, Program]]:
    """(name, program) pairs: 5 blocked, 4 tiled and 3 double-buffered GEMMs, the conv layers the config
    can hold, and `random_count` random programs."""
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
            kernel = compile_conv(c, spec, weight, None, Requant(0.25, (0.125,), 1.0))  # scale 2**-5
        except AccelError:     # w4a8: its 16-bit accumulators cannot hold this layer
            continue
        out.append((f"conv {spec.kernel[0]}x{spec.kernel[1]} {spec.in_channels}->{spec.out_channels}", kernel.program))
    out += [(f"random seed {seed}", random_program(c, seed=seed)) for seed in range(random_count)]
    return out
