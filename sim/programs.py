"""Example programs written as assembler text: used by the demo, tests and benchmarks.

`blocked_gemm(config, m, k, n, shift)` computes C = clip(relu(A @ W^T) >> shift, out range) with
A (m x k) and W (n x k) signed integers, in the accelerator's packed layouts:
A as (m/batch, k/block_in, batch, block_in), W as (n/block_out, k/block_in, block_out, block_in),
C as (m/batch, n/block_out, batch, block_out). `pack_*`/`unpack_*` convert from plain matrices.
"""

from __future__ import annotations

import numpy as np

from ..configs import AccelConfig
from ..errors import TensorweaveError
from ..isa.program import int_dtype


class ExampleError(TensorweaveError, ValueError):
    """The requested example does not fit the config."""


def pack_rows(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(R, C) matrix -> (R/rows, C/cols, rows, cols) tiles."""
    r, c = a.shape
    return a.reshape(r // rows, rows, c // cols, cols).transpose(0, 2, 1, 3)


def unpack_rows(t: np.ndarray) -> np.ndarray:
    """Inverse of pack_rows."""
    r, c, rows, cols = t.shape
    return t.transpose(0, 2, 1, 3).reshape(r * rows, c * cols)


def gemm_reference(a: np.ndarray, w: np.ndarray, shift: int, out_width: int) -> np.ndarray:
    """The NumPy definition of the example: clip(relu(A @ W^T) >> shift)."""
    acc = a.astype(np.int64) @ w.astype(np.int64).T
    hi = (1 << (out_width - 1)) - 1
    return np.minimum(np.maximum(acc, 0) >> shift, hi)


def blocked_gemm(config: AccelConfig, m: int, k: int, n: int, shift: int = 8) -> str:
    """Assembler text of the blocked GEMM + ReLU + shift + clip program for `config`."""
    b, bi, bo = config.batch, config.block_in, config.block_out
    for name, value, unit in (("m", m, b), ("k", k, bi), ("n", n, bo)):
        if value % unit or value <= 0:
            raise ExampleError(f"{name} = {value} must be a positive multiple of {unit} for config '{config.name}'")
    mt, kt, nt = m // b, k // bi, n // bo
    needs = {"input": (mt * kt, config.inp_depth), "weight": (nt * kt, config.wgt_depth),
             "accumulator": (mt * nt, config.acc_depth), "micro-op": (kt, config.uop_depth)}
    for buffer, (rows, depth) in needs.items():
        if rows > depth:
            raise ExampleError(f"{m}x{k}x{n} needs {rows} {buffer} rows; config '{config.name}' has {depth}")
    hi = (1 << (config.out_width - 1)) - 1
    inp, wgt = int_dtype(config.inp_width), int_dtype(config.wgt_width)
    out = int_dtype(config.out_width)
    uops = "\n".join(f".uop dst=0 src={i} wgt={i}" for i in range(kt))
    return f"""\
# Blocked GEMM {m}x{k} . ({n}x{k})^T with ReLU (MAX 0), >> {shift} (SHR) and a clip to {hi} (MIN),
# for config '{config.name}': {mt}x{nt} output tiles, {kt} reduction steps each.
.tensor A input {inp} {mt},{kt},{b},{bi} init=random:1
.tensor W weight {wgt} {nt},{kt},{bo},{bi} init=random:2
.tensor C output {out} {mt},{nt},{b},{bo}
{uops}
load.inp sram_base=0 dram_base=@A y_size=1 x_size={mt * kt} x_stride={mt * kt}
load.wgt sram_base=0 dram_base=@W y_size=1 x_size={nt * kt} x_stride={nt * kt} push_next
load.uop sram_base=0 dram_base=@uops y_size=1 x_size={kt} x_stride={kt}
gemm reset uop_begin=0 uop_end=1 iter_out={mt} iter_in={nt} dst_factor_out={nt} dst_factor_in=1
gemm pop_prev uop_begin=0 uop_end={kt} iter_out={mt} iter_in={nt} dst_factor_out={nt} dst_factor_in=1 src_factor_out={kt} wgt_factor_in={kt}
alu.max use_imm imm=0 uop_begin=0 uop_end=1 iter_out={mt * nt} iter_in=1 dst_factor_out=1 src_factor_out=1
alu.shr use_imm imm={shift} uop_begin=0 uop_end=1 iter_out={mt * nt} iter_in=1 dst_factor_out=1 src_factor_out=1
alu.min use_imm imm={hi} uop_begin=0 uop_end=1 iter_out={mt * nt} iter_in=1 dst_factor_out=1 src_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size={mt * nt} x_stride={mt * nt}
finish pop_next
"""
