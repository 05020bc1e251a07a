"""The store unit in the accelerator: narrowing to out_width, strides, sub-word slots with byte
strobes (tiny: 4-byte outputs on an 8-byte bus) and multi-beat outputs (vta-default: 16 bytes)."""

import numpy as np
from tensorweave.configs import load_config


def test_narrowing_and_strides_at_odd_element_offsets(tiny, check, fmt):
    acc = np.array([[[300, -129, 127, -128]], [[2**31 - 1, -2**31, 255, 1]], [[7, -7, 70, -70]],
                    [[1, 2, 3, 4]]])
    reference, _ = check(f"""
.tensor B const int32 4,1,4 init=values:{fmt(acc)}
.tensor C output int8 24,4
load.acc sram_base=0 dram_base=@B y_size=1 x_size=4 x_stride=4 push_next
store.out pop_prev sram_base=0 dram_base=@C+1 y_size=2 x_size=2 x_stride=5
store.out sram_base=1 dram_base=@C+12 y_size=3 x_size=1 x_stride=3
store.out sram_base=0 dram_base=@C+20 y_size=1 x_size=3 x_stride=3
finish
""", tiny)
    low_byte = ((acc.reshape(4, 4) + 128) % 256) - 128       # two's complement truncation
    c = reference.outputs["C"]
    assert np.array_equal(c[1], low_byte[0]) and np.array_equal(c[2], low_byte[1])
    assert np.array_equal(c[6], low_byte[2]) and np.array_equal(c[7], low_byte[3])
    assert not c[0].any() and not c[3].any()


def test_store_of_multi_beat_outputs_on_vta_default(check, fmt):
    config = load_config("vta-default")
    acc = np.random.default_rng(5).integers(-2**31, 2**31, size=(3, 1, 16))
    check(f"""
.tensor B const int32 3,1,16 init=values:{fmt(acc)}
.tensor C output int8 8,16
load.acc sram_base=0 dram_base=@B y_size=1 x_size=3 x_stride=3 push_next
store.out pop_prev sram_base=0 dram_base=@C+1 y_size=3 x_size=1 x_stride=2
store.out sram_base=1 dram_base=@C+6 y_size=1 x_size=2 x_stride=2
finish
""", config)
