"""The loop-nest IR: validation with errors that name the part, builders, and the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from tensorweave.compiler.accel import ConvSpec, conv2d_int
from tensorweave.compiler.loopnest import (
    Affine,
    Binary,
    Cast,
    Conv2dParams,
    Iterator,
    LoopNest,
    LoopNestError,
    Operand,
    Read,
    conv2d_nest,
    evaluate,
    gemm_nest,
    matmul_nest,
)
from tensorweave.compiler.loopnest.ir import wrap


@pytest.mark.parametrize("spec", [
    ConvSpec(2, 6, 7, 9, 10, (3, 3), (2, 1), (1, 0, 1, 2), (1, 2)),
    ConvSpec(1, 8, 5, 5, 12, (3, 3), pads=(1, 1, 1, 1), groups=4),
    ConvSpec(1, 3, 6, 6, 3, (3, 3), pads=(1, 1, 1, 1), groups=3),
])
def test_conv2d_nest_is_the_conv(spec):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (spec.batch, spec.in_channels, spec.height, spec.width))
    w = rng.integers(-128, 128, spec.weight_shape)
    assert np.array_equal(evaluate(conv2d_nest(spec), {"x": x, "w": w}), conv2d_int(x, w, spec))


def test_gemm_and_batched_matmul_nests():
    rng = np.random.default_rng(1)
    a, b = rng.integers(-128, 128, (7, 5)), rng.integers(-128, 128, (9, 7))
    assert np.array_equal(evaluate(gemm_nest(5, 7, 9, trans_a=True, trans_b=True), {"a": a, "b": b}), a.T @ b.T)
    a3, b3 = rng.integers(-128, 128, (2, 3, 4)), rng.integers(-128, 128, (2, 4, 5))
    nest = matmul_nest(3, 4, 5, batch=2, batched_weight=True)
    assert np.array_equal(evaluate(nest, {"a": a3, "b": b3}), a3 @ b3)


def test_arithmetic_wraps_to_the_result_dtype():
    """int8 products summed into int16 wrap exactly like the hardware's two's complement."""
    nest = matmul_nest(1, 4, 1, acc_dtype="int16")
    a, b = np.full((1, 4), 127), np.full((4, 1), 127)
    assert evaluate(nest, {"a": a, "b": b})[0, 0] == wrap(np.array(4 * 127 * 127), "int16")


def test_printing_shows_loops_and_body():
    text = str(matmul_nest(2, 3, 4))
    assert text == ("matmul: for i<2>, j<4>, l<3 reduce>:\n"
                    "  y[i, j] += cast<int32>(a[i, l]) * cast<int32>(b[l, j])")


def test_validation_names_the_problem():
    i, k = Iterator("i", 4), Iterator("k", 4, "reduce")
    a = Operand("a", "int8", (4, 4), (Affine.of("i"), Affine.of("k")))
    out = Operand("y", "int32", (4,), (Affine.of("i"),))
    body = Cast("int32", Read(0, "int8"))
    with pytest.raises(LoopNestError, match="spatial iterator 'k' does not index the output"):
        LoopNest("n", (i, Iterator("k", 4)), (a,), out, body)
    with pytest.raises(LoopNestError, match="body has dtype int8 but output 'y' is int32"):
        LoopNest("n", (i, k), (a,), out, Read(0, "int8"))
    with pytest.raises(LoopNestError, match="unknown iterator"):
        LoopNest("n", (i,), (a,), out, body)
    with pytest.raises(LoopNestError, match="mul of int8 and int32"):
        LoopNest("n", (i, k), (a,), out, Binary("mul", Read(0, "int8"), body, "int32"))
    with pytest.raises(LoopNestError, match="kind 'parallel'"):
        Iterator("j", 3, "parallel")
    with pytest.raises(LoopNestError, match="groups 3 must divide"):
        conv2d_nest(Conv2dParams(1, 4, 4, 4, 6, (1, 1), groups=3))
