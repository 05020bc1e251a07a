"""Tensorized instructions described by their semantics, as loop nests (UNIT-style).

An `Intrinsic` is a `LoopNest` (the instruction's semantics, which is also the pattern the
tensorizer matches) plus how its operands reach it:

- fusion "packed": operands arrive as packed tiles (the accelerator's LOAD moves whole scratchpad
  rows), so an intrinsic loop may only take operator loops that own an operand dimension alone
  (a "pure" dimension, e.g. the channel c of x[n, c, ...]); other loops stay outside.
- fusion "gather": operands are read through computed addresses (CPU vector loads), so several
  operator loops with the same access pattern fuse onto one intrinsic loop (im2col as an index map).

A new instruction is added by writing its loop nest here (plus an emitter where it is lowered).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...configs import AccelConfig
from ...contract import alu
from .ir import Affine, Binary, Cast, Iterator, LoopNest, LoopNestError, Operand, Read, mul

FUSIONS = ("packed", "gather")


@dataclass(frozen=True)
class Intrinsic:
    name: str
    nest: LoopNest
    fusion: str = "gather"
    note: str = ""

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise LoopNestError(f"intrinsic '{self.name}': fusion '{self.fusion}' is not one of {', '.join(FUSIONS)}")

    def __str__(self) -> str:
        text = f"intrinsic {self.name} ({self.fusion}): {self.nest}"
        return text + (f"\n  note: {self.note}" if self.note else "")


def _dot_nest(name: str, rows: int, cols: int, red: int, a_dtype: str, b_dtype: str, acc_dtype: str,
              a_name: str, b_name: str, c_name: str) -> LoopNest:
    """c[p, q] += cast(a[p, t]) * cast(b[q, t]) over p < rows, q < cols, t < red (p omitted if rows == 0)."""
    rows_it = (Iterator("b", rows),) if rows else ()
    p = (Affine.of("b"),) if rows else ()
    iters = (*rows_it, Iterator("o", cols), Iterator("i", red, "reduce"))
    a = Operand(a_name, a_dtype, ((rows,) if rows else ()) + (red,), (*p, Affine.of("i")))
    b = Operand(b_name, b_dtype, (cols, red), (Affine.of("o"), Affine.of("i")))
    c = Operand(c_name, acc_dtype, ((rows,) if rows else ()) + (cols,), (*p, Affine.of("o")))
    body = mul(Cast(acc_dtype, Read(0, a_dtype)), Cast(acc_dtype, Read(1, b_dtype)))
    return LoopNest(name, iters, (a, b), c, body)


def accel_gemm(config: AccelConfig) -> Intrinsic:
    """The GEMM core: acc[b, o] += inp[b, i] * wgt[o, i], b < batch, o < block_out, i < block_in."""
    c = config
    nest = _dot_nest(f"{c.name}.gemm", c.batch, c.block_out, c.block_in, f"int{c.inp_width}",
                     f"int{c.wgt_width}", f"int{c.acc_width}", "inp", "wgt", "acc")
    return Intrinsic(nest.name, nest, "packed",
                     f"{c.macs_per_cycle} MACs per micro-op iteration, accumulators wrap at {c.acc_width} bits")


def accel_alu(config: AccelConfig, op: str, use_imm: bool = True) -> Intrinsic:
    """One vector-ALU operation on a batch x block_out accumulator tile: acc[b, o] = op(acc[b, o], imm or src[b, o]).

    The operation's record (`contract/alu.py`) names the loop-nest operation with its semantics;
    operations without one (SHR, RSHR: shifts have no counterpart in operator bodies) are used by
    the lowering for requantization only.
    """
    record = next((r for r in alu.ALU_OPS if r.name == op and r.loopnest is not None), None)
    if record is None or record.loopnest is None:
        forms = ", ".join(r.name for r in alu.ALU_OPS if r.loopnest is not None)
        raise LoopNestError(f"ALU operation '{op}' has no loop-nest form; forms exist for {forms}")
    if not config.alu_has(op):
        raise LoopNestError(f"config '{config.name}' has no ALU {op} (alu_ops: {', '.join(config.alu_ops)})")
    dtype = f"int{config.acc_width}"
    iters = (Iterator("b", config.batch), Iterator("o", config.block_out))
    tile = (Affine.of("b"), Affine.of("o"))
    shape = (config.batch, config.block_out)
    a = Operand("acc", dtype, shape, tile)
    second = Operand("imm", dtype, (), ()) if use_imm else Operand("src", dtype, shape, tile)
    out = Operand("dst", dtype, shape, tile)
    body = Binary(record.loopnest, Read(0, dtype), Read(1, dtype), dtype)
    name = f"{config.name}.alu.{op.lower()}" + (".imm" if use_imm else "")
    return Intrinsic(name, LoopNest(name, iters, (a, second), out, body, reduce=None), "packed")


def accel_alu_ops(config: AccelConfig) -> list[Intrinsic]:
    """Every loop-nest ALU form the config has (in opcode order), with an immediate and with a second tile."""
    return [accel_alu(config, r.name, imm) for r in alu.ALU_OPS
            if r.loopnest is not None and config.alu_has(r.name) for imm in (True, False)]


def x86_vnni() -> Intrinsic:
    """AVX-512 VNNI vpdpbusd (zmm): c[o] += sum_i a[i] * b[o, i], o < 16 int32 lanes, i < 4, u8 x s8 -> s32.

    `a` is the 4 bytes broadcast to every lane, `b` the 64 bytes of the other register (lane o holds
    b[o, 0..3]); the sum into int32 does not saturate (vpdpbusds would).
    """
    nest = _dot_nest("x86.avx512.vpdpbusd", 0, 16, 4, "uint8", "int8", "int32", "a", "b", "c")
    return Intrinsic(nest.name, nest, "gather", "u8 x s8 products summed in groups of 4 into 16 int32 lanes")


def x86_avx2_dot() -> Intrinsic:
    """AVX2 vpmaddubsw + vpmaddwd(ones) (ymm): c[o] += sum_i a[i] * b[o, i], o < 8 int32 lanes, i < 4, u8 x s8.

    vpmaddubsw adds adjacent u8 x s8 products into int16 with saturation, so the nest is exact only
    while each pair sum a[2t]*b[o,2t] + a[2t+1]*b[o,2t+1] stays within int16 (e.g. a < 128, or weights
    within -64..63): the emitter must guarantee that range.
    """
    nest = _dot_nest("x86.avx2.vpmaddubsw_vpmaddwd", 0, 8, 4, "uint8", "int8", "int32", "a", "b", "c")
    return Intrinsic(nest.name, nest, "gather",
                     "exact while adjacent u8*s8 pair sums fit int16 (vpmaddubsw saturates)")


def x86_avx2_madd16() -> Intrinsic:
    """AVX2 vpmaddwd (ymm): c[o] += sum_i a[i] * b[o, i], o < 8 int32 lanes, i < 2, s16 x s16 -> s32.

    Exact for int8/uint8 values widened to int16 (a pair of products cannot overflow int32), which is
    why the CPU back end's int8 GEMM uses it on zero-point-corrected operands.
    """
    nest = _dot_nest("x86.avx2.vpmaddwd", 0, 8, 2, "int16", "int16", "int32", "a", "b", "c")
    return Intrinsic(nest.name, nest, "gather", "int16 pairs into 8 int32 lanes; exact for widened int8")


def arm_sdot() -> Intrinsic:
    """ARM dot product sdot (128-bit): c[o] += sum_i a[i] * b[o, i], o < 4 int32 lanes, i < 4, s8 x s8 -> s32."""
    nest = _dot_nest("arm.neon.sdot", 0, 4, 4, "int8", "int8", "int32", "a", "b", "c")
    return Intrinsic(nest.name, nest, "gather", "indexed form: a is one 4-byte group broadcast to the lanes")


def nvidia_wmma_f16() -> Intrinsic:
    """Tensor Core wmma m16n16k16: c[b, o] += a[b, i] * w[o, i], fp16 x fp16 -> fp32 (b, o, i < 16)."""
    nest = _dot_nest("nvidia.wmma.m16n16k16.f16", 16, 16, 16, "float16", "float16", "float32", "a", "w", "c")
    return Intrinsic(nest.name, nest, "gather", "fp32 accumulation: sums are exact only up to rounding order")


def nvidia_wmma_s8() -> Intrinsic:
    """Tensor Core wmma m16n16k16, int8: c[b, o] += a[b, i] * w[o, i], s8 x s8 -> s32 (b, o, i < 16), exact.

    The int32 accumulation of 16 products per step is exact (the wmma s8 path does not saturate); sm_72+.
    """
    nest = _dot_nest("nvidia.wmma.m16n16k16.s8", 16, 16, 16, "int8", "int8", "int32", "a", "w", "c")
    return Intrinsic(nest.name, nest, "gather", "s8 x s8 products summed exactly into int32")
