"""A large blocked GEMM with double-buffered tiles: the MAC-utilization workload for the RTL.

C = (A @ W^T) >> shift, truncated to out_width on store; A is m x k, W is n x k, in the packed
layouts of `sim/programs.py` (A (m/batch, k/block_in, batch, block_in), W (n/block_out, k/block_in,
block_out, block_in), C (m/batch, n/block_out, batch, block_out)).

The output is cut into tiles of tile_m batch-rows x tile_n weight blocks, the reduction into
chunks of tile_k blocks. Chunk g of inputs and weights goes to scratchpad half g % 2, output tile
o to accumulator half o % 2, so the load of chunk g + 1 overlaps the GEMM of chunk g and the store
of tile o overlaps the compute of tile o + 1. Tokens: load pops a compute token before reusing a
half (g >= 2) and pushes one per chunk; compute pushes a token back after each chunk's GEMM, pops
a store token before reusing an accumulator half (o >= 2) and pushes one per finished tile.
One GEMM instruction per chunk runs tile_m x tile_n x tile_k micro-op iterations back to back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..configs import AccelConfig
from ..errors import TensorweaveError
from ..isa.program import int_dtype


class WorkloadError(TensorweaveError, ValueError):
    """The requested GEMM or tiling does not fit the config."""


@dataclass(frozen=True)
class GemmShape:
    m: int
    k: int
    n: int
    tile_m: int   # batch-rows of A per output tile (each `batch` rows)
    tile_k: int   # block_in blocks per reduction chunk
    tile_n: int   # block_out blocks per output tile

    def macs(self) -> int:
        return self.m * self.k * self.n


def default_shape(config: AccelConfig) -> GemmShape:
    """A shape that fills half of each scratchpad per buffer and is compute-bound on a 64-bit bus."""
    tile_n = max(1, min(16, config.wgt_depth // 64))
    tile_m = max(1, min(64, config.acc_depth // (2 * tile_n)))
    tile_k = max(1, min(16, config.inp_depth // (2 * tile_m), config.wgt_depth // (2 * tile_n)))
    m = tile_m * config.batch * 4
    return GemmShape(m=m, k=tile_k * config.block_in * 4, n=tile_n * config.block_out, tile_m=tile_m,
                     tile_k=tile_k, tile_n=tile_n)


def double_buffered_gemm(config: AccelConfig, shape: GemmShape, shift: int = 8) -> str:
    """Assembler text of the double-buffered blocked GEMM for `config` (see the module docstring)."""
    c, s = config, shape
    mt, kt, nt = s.m // c.batch, s.k // c.block_in, s.n // c.block_out
    for name, total, tile in (("m", mt, s.tile_m), ("k", kt, s.tile_k), ("n", nt, s.tile_n)):
        if total <= 0 or total % tile:
            raise WorkloadError(f"{name} in blocks ({total}) must be a positive multiple of tile_{name} ({tile})")
    inp_half, wgt_half, acc_half = s.tile_m * s.tile_k, s.tile_n * s.tile_k, s.tile_m * s.tile_n
    for buffer, rows, depth in (("input", inp_half, c.inp_depth), ("weight", wgt_half, c.wgt_depth),
                                ("accumulator", acc_half, c.acc_depth), ("micro-op", 4 * s.tile_k, c.uop_depth)):
        if 2 * rows > depth and buffer != "micro-op" or rows > depth:
            raise WorkloadError(f"two {buffer} buffers of {rows} rows do not fit config '{c.name}' ({depth} rows)")
    lines = [f"# double-buffered GEMM {s.m}x{s.k} . ({s.n}x{s.k})^T >> {shift}, tiles "
             f"{s.tile_m}x{s.tile_k}x{s.tile_n} blocks, config '{c.name}'",
             f".tensor A input {int_dtype(c.inp_width)} {mt},{kt},{c.batch},{c.block_in} init=random:1",
             f".tensor W weight {int_dtype(c.wgt_width)} {nt},{kt},{c.block_out},{c.block_in} init=random:2",
             f".tensor C output {int_dtype(c.out_width)} {mt},{nt},{c.batch},{c.block_out}"]
    # Micro-op sets, one per (input/weight half, accumulator half): uop u = set * tile_k + b.
    for h in range(2):
        for a in range(2):
            lines += [f".uop dst={a * acc_half} src={h * inp_half + b} wgt={h * wgt_half + b}" for b in range(s.tile_k)]
    body = [f"load.uop sram_base=0 dram_base=@uops y_size=1 x_size={4 * s.tile_k} x_stride={4 * s.tile_k}"]
    tiles = [(i, j) for i in range(mt // s.tile_m) for j in range(nt // s.tile_n)]
    chunks_per_tile = kt // s.tile_k
    total_chunks = len(tiles) * chunks_per_tile
    g = 0
    for o, (i, j) in enumerate(tiles):
        a = o % 2
        pop_store = " pop_next" if o >= 2 else ""
        body.append(f"gemm reset{pop_store} uop_begin={a * s.tile_k} uop_end={a * s.tile_k + 1} "
                    f"iter_out={acc_half} iter_in=1 dst_factor_out=1")
        for ck in range(chunks_per_tile):
            h = g % 2
            pop = " pop_next" if g >= 2 else ""
            body.append(f"load.inp{pop} sram_base={h * inp_half} dram_base=@A+{i * s.tile_m * kt + ck * s.tile_k} "
                        f"y_size={s.tile_m} x_size={s.tile_k} x_stride={kt}")
            body.append(f"load.wgt push_next sram_base={h * wgt_half} "
                        f"dram_base=@W+{j * s.tile_n * kt + ck * s.tile_k} y_size={s.tile_n} x_size={s.tile_k} "
                        f"x_stride={kt}")
            begin = (2 * h + a) * s.tile_k
            push = " push_prev" if g + 2 < total_chunks else ""
            body.append(f"gemm pop_prev{push} uop_begin={begin} uop_end={begin + s.tile_k} iter_out={s.tile_m} "
                        f"iter_in={s.tile_n} dst_factor_out={s.tile_n} dst_factor_in=1 src_factor_out={s.tile_k} "
                        f"wgt_factor_in={s.tile_k}")
            g += 1
        body.append(f"alu.shr use_imm imm={shift} push_next uop_begin={a * s.tile_k} uop_end={a * s.tile_k + 1} "
                    f"iter_out={acc_half} iter_in=1 dst_factor_out=1 src_factor_out=1")
        push = " push_prev" if o + 2 < len(tiles) or o == len(tiles) - 1 else ""
        out = i * s.tile_m * nt + j * s.tile_n
        body.append(f"store.out pop_prev{push} sram_base={a * acc_half} dram_base=@C+{out} "
                    f"y_size={s.tile_m} x_size={s.tile_n} x_stride={nt}")
    body.append("finish pop_next")
    return "\n".join(lines + body) + "\n"
