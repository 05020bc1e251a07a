"""The load unit (and its DMA engines) in the accelerator: LOADs with strides, padding, sub-word and
multi-beat elements, checked through GEMMs with identity weights against the functional simulator."""

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.isa import assemble


def test_input_tile_with_stride_and_padding_on_four_sides(tiny, check, fmt):
    x = np.random.default_rng(0).integers(-128, 128, size=(12, 4))
    reference, _ = check(f"""
.tensor X input int8 12,4 init=values:{fmt(x)}
.tensor W weight int8 1,4,4 init=values:{fmt(np.eye(4, dtype=int))}
.tensor C output int8 33,4
.uop dst=0 src=0 wgt=0
load.inp sram_base=3 dram_base=@X+1 y_size=2 x_size=3 x_stride=5 y_pad_0=1 y_pad_1=2 x_pad_0=2 x_pad_1=1
load.wgt sram_base=0 dram_base=@W y_size=1 x_size=1 x_stride=1 push_next
load.uop sram_base=0 dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev reset uop_begin=0 uop_end=1 iter_out=33 iter_in=1 dst_factor_out=1
gemm uop_begin=0 uop_end=1 iter_out=33 iter_in=1 dst_factor_out=1 src_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=33 x_stride=33
finish pop_next
""", tiny)
    expected = np.zeros((5, 6, 4), dtype=np.int64)   # independent definition of the padded tile
    for y in range(2):
        for xx in range(3):
            expected[1 + y, 2 + xx] = x[1 + y * 5 + xx]
    assert np.array_equal(reference.outputs["C"][3:33], expected.reshape(30, 4))


def test_weight_tiles_with_padding_multi_beat_elements(tiny, check, fmt):
    """WGT elements are 16 bytes = 2 beats on tiny's 64-bit bus; padding writes whole zero tiles."""
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, size=(6, 4, 4))
    a = rng.integers(-128, 128, size=(1, 1, 4))
    check(f"""
.tensor A input int8 1,1,4 init=values:{fmt(a)}
.tensor W weight int8 6,4,4 init=values:{fmt(w)}
.tensor C output int8 12,4
.uop dst=0 src=0 wgt=0
load.inp sram_base=0 dram_base=@A y_size=1 x_size=1 x_stride=1
load.wgt sram_base=1 dram_base=@W+1 y_size=2 x_size=2 x_stride=3 x_pad_0=1 x_pad_1=1 y_pad_1=1 push_next
load.uop sram_base=0 dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev reset uop_begin=0 uop_end=1 iter_out=12 iter_in=1 dst_factor_out=1
gemm uop_begin=0 uop_end=1 iter_out=12 iter_in=1 dst_factor_out=1 wgt_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=12 x_stride=12
finish pop_next
""", tiny)


def test_long_row_is_split_into_bursts_at_4kib(tiny, check, fmt):
    """A 256-byte input row placed across a 4 KiB boundary is read in two bursts, none crossing it."""
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, size=(64, 1, 4))
    text = f"""
.tensor A input int8 64,1,4 init=values:{fmt(x)}
.tensor W weight int8 1,4,4 init=values:{fmt(np.eye(4, dtype=int))}
.tensor C output int8 64,4
.uop dst=0 src=0 wgt=0
load.inp sram_base=0 dram_base=@A y_size=1 x_size=64 x_stride=64
load.wgt dram_base=@W y_size=1 x_size=1 x_stride=1 push_next
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev reset uop_begin=0 uop_end=1 iter_out=64 iter_in=1 dst_factor_out=1
gemm uop_begin=0 uop_end=1 iter_out=64 iter_in=1 dst_factor_out=1 src_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=64 x_stride=64
finish pop_next
"""
    offset = assemble(text, tiny).tensor("A").offset
    base = 0x2000 - offset - 128
    _, hardware = check(text, tiny, dram_base=base)
    rows = [(addr, beats) for kind, addr, beats in hardware.bursts if kind == "read" and beats > 1]
    assert (base + offset, 16) in rows and (0x2000, 16) in rows


@pytest.mark.parametrize("name", ["w4a8"])
def test_int4_weights_packed_lsb_first(name, check, fmt):
    config = load_config(name)
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(1, 1, 16))
    w = rng.integers(-8, 8, size=(2, 16, 16))
    check(f"""
.tensor A input int8 1,1,16 init=values:{fmt(a)}
.tensor W weight int4 2,16,16 init=values:{fmt(w)}
.tensor C output int8 2,16
.uop dst=0 src=0 wgt=0
load.inp dram_base=@A y_size=1 x_size=1 x_stride=1
load.wgt dram_base=@W y_size=1 x_size=2 x_stride=2 push_next
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev reset uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1
gemm uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1 wgt_factor_out=1
alu.shr use_imm imm=3 uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=2 x_stride=2
finish pop_next
""", config)
