"""Layers as programs: the tiled GEMM computes the right numbers, fits the scratchpads, and ResNet-18's
layers have the sizes of workloads.md."""

import numpy as np
import pytest
from tensorweave.configs import AccelConfig, load_config
from tensorweave.dse.workloads import (
    RESNET18,
    ConvLayer,
    MatmulLayer,
    Tiles,
    WorkloadError,
    choose_tiles,
    gemm_reference,
    layer_program,
    tiled_gemm,
)
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.cycle import estimate_cycles
from tensorweave.sim.programs import pack_rows, unpack_rows


def run_gemm(config, m, k, n, tiles=None, seed=0):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (config.inp_width - 1)), 1 << (config.inp_width - 1)
    a = rng.integers(lo, hi, (m, k))
    w = rng.integers(-(1 << (config.wgt_width - 1)), 1 << (config.wgt_width - 1), (n, k))
    program = assemble(tiled_gemm(config, m, k, n, shift=4, tiles=tiles), config)
    result = run_functional(program, {"A": pack_rows(a, config.batch, config.block_in),
                                      "W": pack_rows(w, config.block_out, config.block_in)})
    return unpack_rows(result.outputs["C"]), gemm_reference(config, a, w, shift=4), result, program


@pytest.mark.parametrize("preset,m,k,n,tiles", [
    ("tiny", 8, 16, 8, None),
    ("tiny", 20, 36, 12, Tiles(3, 2, 2)),       # ragged last tile in every dimension
    ("tiny", 4, 4, 4, Tiles(1, 1, 1)),          # one block per tile: many steps, both windows used
    ("tiny", 40, 64, 24, None),                 # several output tiles and reduction steps
    ("w4a8", 32, 64, 48, Tiles(2, 1, 2)),       # int4 weights, 16-bit accumulators, no MUL
    ("batch2-32x32", 8, 96, 64, Tiles(2, 2, 1)),
])
def test_tiled_gemm_matches_numpy(preset, m, k, n, tiles):
    config = load_config(preset)
    got, want, result, program = run_gemm(config, m, k, n, tiles)
    assert np.array_equal(got, want)
    assert result.stats.tokens_left == {}  # every token pushed was popped
    report = estimate_cycles(program)
    assert report.macs == m * k * n  # these shapes are whole blocks
    assert report.dram_read_bytes == result.stats.dram_read_bytes


def test_tiles_fit_half_of_each_scratchpad():
    for preset in ("tiny", "vta-default", "batch2-32x32", "w4a8"):
        c = load_config(preset)
        for layer in RESNET18:
            m, k, n = layer.gemm()
            mt, kt, nt = -(-m // c.batch), -(-k // c.block_in), -(-n // c.block_out)
            t = choose_tiles(c, mt, kt, nt)
            assert 2 * t.m * t.k <= c.inp_depth and 2 * t.n * t.k <= c.wgt_depth
            assert 2 * t.m * t.n <= c.acc_depth and 4 * t.k + 2 <= c.uop_depth
            assert t.m <= mt and t.k <= kt and t.n <= nt


def test_resnet18_layers_have_the_reference_sizes():
    # MMAC column of shared/reference/workloads.md
    mmac = {"C2": 115.6, "C3": 57.8, "C4": 6.4, "C5": 115.6, "C6": 57.8, "C7": 6.4, "C8": 115.6, "C9": 57.8,
            "C10": 6.4, "C11": 115.6}
    assert {layer.name: round(layer.macs / 1e6, 1) for layer in RESNET18} == mmac
    c2 = RESNET18[0]
    assert (c2.out_height, c2.out_width, c2.gemm()) == (56, 56, (3136, 576, 64))
    assert RESNET18[1].gemm() == (28 * 28, 64 * 9, 128)


def test_layer_program_on_vta_default_is_compute_bound_for_3x3_and_not_for_1x1():
    c = load_config("vta-default")
    util = {layer.name: estimate_cycles(layer_program(c, layer)).utilization for layer in RESNET18}
    # workloads.md: on the PYNQ's 8 B/cycle port, C4 and C10 (1x1) are memory-bound
    assert util["C2"] > 0.8 and util["C11"] > 0.8
    assert util["C4"] < 0.7 and util["C10"] < 0.7


def test_unpadded_shapes_round_up_to_blocks():
    tiny = estimate_cycles(layer_program(load_config("tiny"), MatmulLayer("odd", 3, 5, 7)))
    assert tiny.macs == 3 * 8 * 8  # batch 1 keeps m = 3; k 5 -> 8 and n 7 -> 8 (blocks of 4)
    wide = estimate_cycles(layer_program(load_config("batch2-32x32"), MatmulLayer("odd", 3, 5, 7)))
    assert wide.macs == 4 * 32 * 32  # m 3 -> 4 (batch 2), k and n -> 32


def test_a_config_too_small_for_one_tile_is_a_workload_error():
    c = AccelConfig.from_dict({**load_config("tiny").to_dict(), "acc_buffer_bytes": 16, "name": "small"})
    with pytest.raises(WorkloadError, match="layer x: config 'small' cannot hold one tile"):
        layer_program(c, MatmulLayer("x", 4, 4, 4))


def test_conv_output_size():
    layer = ConvLayer("s2", 56, 56, 64, 128, 3, stride=2, padding=1)
    assert (layer.out_height, layer.out_width) == (28, 28)


def test_compiler_programs_for_a_conv_layer():
    # the accelerator compiler's direct convolution, with its own tiling search over the cycle model
    c = load_config("vta-default")
    layer = ConvLayer("small", 8, 8, 32, 32, 3, stride=1, padding=1)
    program = layer_program(c, layer, "compiler")
    report = estimate_cycles(program)
    assert report.macs >= layer.macs and 0 < report.utilization <= 1
    assert run_functional(program).stats.macs(c) == report.macs
    with pytest.raises(WorkloadError, match="program source 'hls' is not one of gemm, compiler"):
        layer_program(c, layer, "hls")
