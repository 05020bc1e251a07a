"""The double-buffered GEMM workload: NumPy-exact on the functional simulator, race-free, and rejected when too big."""

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.cosim.gemm_workload import GemmShape, WorkloadError, default_shape, double_buffered_gemm
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.programs import unpack_rows
from tensorweave.sim.random_programs import find_races


def _reference(program, shift):
    a, w = unpack_rows(program.data["A"]), unpack_rows(program.data["W"])
    acc = a.astype(np.int64) @ w.astype(np.int64).T
    out = acc >> shift
    return ((out + 128) & 255) - 128  # STORE truncates to int8


@pytest.mark.parametrize("shape", [GemmShape(8, 16, 8, 2, 2, 1), GemmShape(12, 24, 16, 3, 3, 2)])
def test_matches_numpy_and_is_race_free(shape):
    config = load_config("tiny")
    program = assemble(double_buffered_gemm(config, shape, shift=3), config)
    assert find_races(program) == []
    result = run_functional(program)
    got = unpack_rows(result.outputs["C"])
    assert np.array_equal(got, _reference(program, 3))
    assert result.stats.gemm_iterations * config.macs_per_cycle == shape.macs()
    assert result.stats.tokens_left == {}


def test_default_shape_fits_vta_default():
    config = load_config("vta-default")
    shape = default_shape(config)
    assert (shape.tile_m, shape.tile_k, shape.tile_n) == (64, 16, 16)
    program = assemble(double_buffered_gemm(config, shape), config)
    assert len(program.insns) > 20


def test_too_big_tiles_are_rejected_naming_the_buffer():
    with pytest.raises(WorkloadError, match="accumulator"):
        double_buffered_gemm(load_config("tiny"), GemmShape(32, 4, 16, 32, 1, 4))
    with pytest.raises(WorkloadError, match="tile_k"):
        double_buffered_gemm(load_config("tiny"), GemmShape(8, 12, 8, 2, 2, 1))
