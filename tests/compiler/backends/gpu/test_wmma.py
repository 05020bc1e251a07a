"""Tensor Core tensorization: `nvidia_wmma_s8` / `nvidia_wmma_f16` mappings from the shared tensorize pass,
their numbers executed with the intrinsic's semantics on the CPU (`execute` vs `evaluate`), the wmma
CUDA kernel rendered from the mapping compiled by nvcc (skips without nvcc), and run on a GPU (`gpu`)."""

from __future__ import annotations

import numpy as np
import pytest
from tensorweave.compiler.loopnest import (
    Conv2dParams,
    TensorizeError,
    conv2d_nest,
    evaluate,
    execute,
    matmul_nest,
    nvidia_wmma_f16,
    nvidia_wmma_s8,
    tensorize,
)

RNG = np.random.default_rng(3)
CONV = Conv2dParams(batch=2, in_channels=32, height=10, width=9, out_channels=40, kernel=(3, 3), stride=(1, 2),
                    pads=(1, 1, 1, 0))


def _cases():
    mm_s8 = matmul_nest(40, 70, 36, a_dtype="int8", b_dtype="int8")
    conv_s8 = conv2d_nest(CONV, "int8", "int8", "int32")
    mm_f16 = matmul_nest(33, 48, 20, a_dtype="float16", b_dtype="float16", acc_dtype="float32")
    return [(mm_s8, nvidia_wmma_s8()), (conv_s8, nvidia_wmma_s8()), (mm_f16, nvidia_wmma_f16())]


def _arrays(op) -> dict[str, np.ndarray]:
    out = {}
    for operand in op.inputs:
        if operand.dtype == "int8":
            out[operand.tensor] = RNG.integers(-128, 128, operand.shape).astype(np.int8)
        else:
            out[operand.tensor] = RNG.standard_normal(operand.shape).astype(operand.dtype)
    return out


def test_wmma_s8_mapping() -> None:
    mm = tensorize(matmul_nest(40, 70, 36, a_dtype="int8", b_dtype="int8"), nvidia_wmma_s8())
    assert dict(mm.operands) == {"a": "a", "w": "b", "c": "y"}
    assert (mm.axis("b").operator, mm.axis("o").operator, mm.axis("i").operator) == (("i",), ("j",), ("l",))
    assert (mm.axis("b").tiles, mm.axis("o").tiles, mm.axis("i").tiles) == (3, 3, 5)
    conv = tensorize(conv2d_nest(CONV, "int8", "int8", "int32"), nvidia_wmma_s8())
    # im2col as an index map: images and output pixels fuse onto the fragment rows
    assert conv.axis("b").operator == ("n", "oh", "ow") and conv.axis("o").operator == ("k",)
    assert conv.axis("i").operator == ("r", "s", "c") and conv.outer == ()
    # the fp16 intrinsic does not take an int8 operator, nor the int8 one a float operator
    with pytest.raises(TensorizeError, match="intrinsic writes float32"):
        tensorize(matmul_nest(16, 16, 16, a_dtype="int8", b_dtype="int8"), nvidia_wmma_f16())
    with pytest.raises(TensorizeError, match="arithmetic differs"):
        tensorize(matmul_nest(16, 16, 16, a_dtype="uint8", b_dtype="int8"), nvidia_wmma_s8())


@pytest.mark.parametrize("index", range(3))
def test_wmma_mapping_executes_like_the_operator(index: int) -> None:
    op, intrinsic = _cases()[index]
    arrays = _arrays(op)
    got = execute(tensorize(op, intrinsic), op, intrinsic, arrays)
    want = evaluate(op, arrays)
    if op.output.dtype == "int32":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_wmma_kernel_compiles_with_nvcc() -> None:
    from tensorweave.compiler.backends.gpu.cuda import compile_cuda, find_nvcc
    from tensorweave.compiler.backends.gpu.wmma import wmma_kernel, wmma_source

    if find_nvcc() is None:
        pytest.skip("nvcc not found (set $NVCC or put it on PATH)")
    for index, (op, intrinsic) in enumerate(_cases()):
        kernel = wmma_kernel(f"tw_wmma_{index}", tensorize(op, intrinsic), op, intrinsic)
        source = wmma_source(kernel)
        assert "wmma::mma_sync" in source
        cubin = compile_cuda(source, "sm_80", "cubin")
        assert cubin[:4] == b"\x7fELF" and kernel.name.encode() in cubin


@pytest.mark.gpu
@pytest.mark.parametrize("index", range(3))
def test_wmma_kernel_on_gpu(cuda: str, index: int) -> None:
    from tensorweave.compiler.backends.gpu.wmma import run_wmma

    op, intrinsic = _cases()[index]
    arrays = _arrays(op)
    got = run_wmma(tensorize(op, intrinsic), op, intrinsic, arrays)
    want = evaluate(op, arrays)
    if op.output.dtype == "int32":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
