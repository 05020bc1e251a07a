"""The compute unit in the accelerator: GEMM loops, every ALU op, read-after-write in the pipelines,
ACC loads; each run compared byte for byte with the functional simulator (and int32 results stored
raw through an int32 output view so no narrowing hides a difference)."""

import numpy as np
import pytest

ACC = np.array([5, -7, 2**31 - 1, -2**31, 100, -100, 3, 0, 17, -17, 1 << 20, -(1 << 20),
                2**30, 12345, -1, 64, 1, -1, 31, 32, -31, -32, 40, -40, 2, -2, 0, 7, 9, -9, 77, 2]).reshape(8, 1, 4)


def _bytes_of(acc_rows: np.ndarray, shift_steps: int) -> str:
    """Store each int32 in four int8 passes (>> 8 between them): every bit of the accumulators is checked."""
    lines = []
    for k in range(shift_steps):
        lines.append(f"store.out pop_prev push_prev sram_base=0 dram_base=@C+{8 * k} y_size=1 x_size=8 x_stride=8")
        if k + 1 < shift_steps:
            lines.append("alu.shr use_imm imm=8 pop_next uop_begin=0 uop_end=1 iter_out=8 iter_in=1 "
                         "dst_factor_out=1 push_next")
    return "\n".join(lines)


def _alu_text(op: str, operand: str, fmt) -> str:
    return f"""
.tensor B const int32 8,1,4 init=values:{fmt(ACC)}
.tensor C output int8 32,4
.uop dst=0 src=4 wgt=0
.uop dst=0 src=0 wgt=0
load.acc sram_base=0 dram_base=@B y_size=1 x_size=8 x_stride=8
load.uop dram_base=@uops y_size=1 x_size=2 x_stride=2
alu.{op} {operand} uop_begin=0 uop_end=1 iter_out=4 iter_in=1 dst_factor_out=1 src_factor_out=1
alu.add use_imm imm=0 uop_begin=1 uop_end=2 iter_out=8 iter_in=1 dst_factor_out=1 push_next
{_bytes_of(ACC, 4)}
finish pop_next
"""


@pytest.mark.parametrize("op", ["min", "max", "add", "mul", "shr"])
def test_alu_with_accumulator_operand(tiny, check, fmt, op):
    check(_alu_text(op, "", fmt), tiny)


@pytest.mark.parametrize("op, imm", [("min", -3), ("max", 0), ("add", -32768), ("mul", 32767), ("shr", 3),
                                     ("shr", -5), ("shr", 40), ("shr", -40)])
def test_alu_with_immediate(tiny, check, fmt, op, imm):
    check(_alu_text(op, f"use_imm imm={imm}", fmt), tiny)


def test_alu_read_after_write_runs_in_order(tiny, check, fmt):
    """Each micro-op reads the row the previous one wrote (a chain) and rows are written repeatedly."""
    check(f"""
.tensor B const int32 8,1,4 init=values:{fmt(ACC)}
.tensor C output int8 32,4
.uop dst=1 src=0 wgt=0
.uop dst=2 src=1 wgt=0
.uop dst=0 src=0 wgt=0
load.acc sram_base=0 dram_base=@B y_size=2 x_size=4 x_stride=4
load.uop dram_base=@uops y_size=1 x_size=3 x_stride=3
alu.add uop_begin=0 uop_end=2 iter_out=3 iter_in=2 dst_factor_out=1 src_factor_out=1
alu.mul uop_begin=0 uop_end=1 iter_out=1 iter_in=5
alu.add use_imm imm=0 uop_begin=2 uop_end=3 iter_out=8 iter_in=1 dst_factor_out=1 push_next
{_bytes_of(ACC, 4).replace("uop_begin=0 uop_end=1", "uop_begin=2 uop_end=3")}
finish pop_next
""", tiny)


def test_gemm_loops_factors_and_repeated_destinations(tiny, check, fmt):
    rng = np.random.default_rng(2)
    inp = rng.integers(-128, 128, size=(40, 1, 4))
    wgt = rng.integers(-128, 128, size=(20, 4, 4))
    uops = [(1, 0, 2), (1, 5, 0), (1, 2, 1), (3, 4, 4)]   # back-to-back micro-ops on one accumulator row
    uop_text = "\n".join(f".uop dst={d} src={s} wgt={w}" for d, s, w in uops)
    check(f"""
.tensor I input int8 40,1,4 init=values:{fmt(inp)}
.tensor W weight int8 20,4,4 init=values:{fmt(wgt)}
.tensor C output int8 80,4
.uop dst=0 src=0 wgt=0
{uop_text}
load.inp dram_base=@I y_size=1 x_size=40 x_stride=40
load.wgt dram_base=@W y_size=1 x_size=20 x_stride=20 push_next
load.uop dram_base=@uops y_size=1 x_size=5 x_stride=5
gemm reset uop_begin=0 uop_end=1 iter_out=20 iter_in=1 dst_factor_out=1
gemm pop_prev uop_begin=1 uop_end=5 iter_out=3 iter_in=2 dst_factor_out=6 dst_factor_in=2 src_factor_out=7 src_factor_in=1 wgt_factor_out=5 wgt_factor_in=3
gemm uop_begin=1 uop_end=3 iter_out=1 iter_in=3
alu.add use_imm imm=0 uop_begin=0 uop_end=1 iter_out=20 iter_in=1 dst_factor_out=1 push_next
{_bytes_of(None, 4).replace("iter_out=8", "iter_out=20").replace("x_size=8 x_stride=8", "x_size=20 x_stride=20").replace("@C+8", "@C+20").replace("@C+16", "@C+40").replace("@C+24", "@C+60")}
finish pop_next
""", tiny)


def test_acc_load_with_padding(tiny, check, fmt):
    a = np.random.default_rng(4).integers(-2**31, 2**31, size=(4, 1, 4))
    check(f"""
.tensor B const int32 4,1,4 init=values:{fmt(a)}
.tensor C output int8 40,4
.uop dst=0 src=0 wgt=0
load.acc sram_base=1 dram_base=@B+1 y_size=3 x_size=1 x_stride=1 x_pad_0=1 x_pad_1=2 y_pad_0=1 y_pad_1=1
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1 push_next
{_bytes_of(None, 4).replace("iter_out=8", "iter_out=10").replace("x_size=8 x_stride=8", "x_size=10 x_stride=10").replace("@C+8", "@C+10").replace("@C+16", "@C+20").replace("@C+24", "@C+30")}
finish pop_next
""", tiny)
