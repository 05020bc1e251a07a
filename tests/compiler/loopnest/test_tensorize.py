"""Before/expected tests of the UNIT-style tensorize pass.

Each case prints the mapping and compares it with tests/compiler/loopnest/golden/<case>.txt; run with
TENSORWEAVE_UPDATE_GOLDEN=1 to rewrite the files (then review the diff). Every accepted mapping is
also executed with the intrinsic's own semantics and must equal the operator nest bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tensorweave.compiler.loopnest import (
    Conv2dParams,
    TensorizeError,
    accel_alu,
    accel_gemm,
    conv2d_nest,
    evaluate,
    execute,
    gemm_nest,
    matmul_nest,
    tensorize,
    x86_avx2_dot,
    x86_vnni,
)
from tensorweave.compiler.loopnest.ir import Affine, Binary, Iterator, LoopNest, Operand, Read
from tensorweave.configs import load_config

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TENSORWEAVE_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"golden file {path} is missing; run with TENSORWEAVE_UPDATE_GOLDEN=1 to create it")
        path.write_text(text + "\n")
    assert path.read_text() == text + "\n", f"{name}: printed mapping differs from {path}"


def random_inputs(op: LoopNest, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for operand in op.inputs:
        lo, hi = (0, 256) if operand.dtype == "uint8" else (-128, 128)
        arrays[operand.tensor] = rng.integers(lo, hi, operand.shape)
    return arrays


def check_executes(op, intrinsic, mapping, seed=0):
    arrays = random_inputs(op, seed)
    expected = evaluate(op, arrays)
    assert np.array_equal(execute(mapping, op, intrinsic, arrays), expected)
    return arrays, expected


VTA = load_config("vta-default")
TINY = load_config("tiny")
BATCH2 = load_config("batch2-32x32")


def test_matmul_onto_accel_gemm():
    """Rule: matmul's rows, columns and reduction map to the GEMM's b, o, i by access mask; extents
    that the block does not divide are padded up."""
    op = matmul_nest(6, 40, 20)
    mapping = tensorize(op, accel_gemm(VTA))
    assert mapping.axis("b").operator == ("i",)
    assert mapping.axis("o").operator == ("j",) and mapping.axis("o").padded == 32
    assert mapping.axis("i").operator == ("l",) and mapping.axis("i").padded == 48
    check_golden("matmul_vta", str(mapping))
    _, expected = check_executes(op, accel_gemm(VTA), mapping)


def test_matmul_reference_is_numpy_matmul():
    """Rule: the matmul nest is y = a @ b in exact int32 arithmetic."""
    op = matmul_nest(7, 33, 9)
    arrays = random_inputs(op, 3)
    assert np.array_equal(evaluate(op, arrays), arrays["a"] @ arrays["b"])


def test_batched_matmul_fuses_batch_and_rows():
    """Rule: with a shared weight, the batch and row loops index the same operands (a, y), are both
    pure, and fuse onto the GEMM rows in order (bt outer)."""
    op = matmul_nest(5, 32, 16, batch=3)
    mapping = tensorize(op, accel_gemm(BATCH2))
    assert mapping.axis("b").operator == ("bt", "i") and mapping.axis("b").padded == 16
    check_golden("batched_matmul_batch2", str(mapping))
    check_executes(op, accel_gemm(BATCH2), mapping)


def test_batched_weight_keeps_batch_outside():
    """Rule: a loop that indexes all three operands (a batched weight) matches no intrinsic loop and
    stays outside."""
    op = matmul_nest(4, 16, 16, batch=2, batched_weight=True)
    mapping = tensorize(op, accel_gemm(VTA))
    assert [it.name for it in mapping.outer] == ["bt"]
    check_executes(op, accel_gemm(VTA), mapping)


def test_gemm_transposed_onto_accel():
    """Rule: access masks do not depend on dimension order, so Gemm with transB maps like MatMul."""
    op = gemm_nest(6, 20, 40, trans_b=True)
    mapping = tensorize(op, accel_gemm(VTA))
    assert mapping.axis("o").operator == ("j",) and mapping.axis("i").operator == ("l",)
    check_golden("gemm_transb_vta", str(mapping))
    check_executes(op, accel_gemm(VTA), mapping)


@pytest.mark.parametrize("name, params", [
    ("conv3x3_s1_p1", Conv2dParams(1, 8, 6, 6, 8, (3, 3), (1, 1), (1, 1, 1, 1))),
    ("conv3x3_s2_dil2", Conv2dParams(2, 8, 9, 7, 12, (3, 3), (2, 1), (1, 0, 1, 2), (2, 2))),
    ("conv1x1_s2", Conv2dParams(1, 6, 7, 7, 10, (1, 1), (2, 2))),
])
def test_conv_onto_accel_gemm_packed(name, params):
    """Rule (packed fusion): the GEMM reduction takes only the channel loop c (pure in x and w), the
    rows only n, the columns only k; the kernel window and output pixels stay outer loops, since a
    packed layout cannot make them innermost."""
    op = conv2d_nest(params)
    mapping = tensorize(op, accel_gemm(TINY))
    assert mapping.axis("i").operator == ("c",)
    assert mapping.axis("o").operator == ("k",)
    assert {"oh", "ow", "r", "s"} <= {it.name for it in mapping.outer}
    check_golden(f"{name}_tiny", str(mapping))
    check_executes(op, accel_gemm(TINY), mapping)


def test_conv_1x1_stride1_fuses_pixels_onto_rows():
    """Rule (packed fusion): in a 1x1, stride-1, unpadded conv the output pixels index x and y as
    dimensions of their own, so n, oh, ow fuse onto the GEMM rows (a matmul over pixels)."""
    op = conv2d_nest(Conv2dParams(1, 32, 3, 5, 32, (1, 1)))
    mapping = tensorize(op, accel_gemm(BATCH2))
    assert mapping.axis("b").operator == ("oh", "ow")
    check_executes(op, accel_gemm(BATCH2), mapping)


def test_grouped_conv_keeps_group_outside():
    """Rule: the group loop indexes x, w and y, so it stays an outer loop; the per-group channels
    (pure after splitting g*Cg + c) map onto the GEMM."""
    op = conv2d_nest(Conv2dParams(1, 32, 5, 5, 64, (3, 3), (1, 1), (1, 1, 1, 1), groups=2))
    mapping = tensorize(op, accel_gemm(VTA))
    assert mapping.axis("i").operator == ("c",) and mapping.axis("o").operator == ("k",)
    assert "g" in [it.name for it in mapping.outer]
    check_golden("grouped_conv_vta", str(mapping))
    check_executes(op, accel_gemm(VTA), mapping)


def test_depthwise_conv_refused_on_gemm():
    """Rule: a depthwise conv has one channel per group; padding it to block_in lanes leaves most
    of the GEMM idle, so tensorize refuses and says which loop."""
    op = conv2d_nest(Conv2dParams(1, 32, 8, 8, 32, (3, 3), (1, 1), (1, 1, 1, 1), groups=32))
    with pytest.raises(TensorizeError, match=r"intrinsic loop '[oi]' needs 16 lanes .* = 1; padding to 16"):
        tensorize(op, accel_gemm(VTA))


def test_float_body_refused_on_int8_intrinsic():
    """Rule: arithmetic isomorphism compares dtypes: a float conv does not match an int8 GEMM."""
    op = conv2d_nest(Conv2dParams(1, 16, 4, 4, 16, (3, 3)), input_dtype="float32", weight_dtype="float32",
                     acc_dtype="float32")
    with pytest.raises(TensorizeError, match="float32"):
        tensorize(op, accel_gemm(VTA))


def test_signed_activations_refused_on_vnni():
    """Rule: VNNI multiplies u8 by s8; an int8 x int8 body differs in a dtype and is refused."""
    with pytest.raises(TensorizeError, match="arithmetic differs.*read<uint8>"):
        tensorize(matmul_nest(4, 8, 16), x86_vnni())


def test_conv_onto_vnni_fuses_window_im2col():
    """Rule (gather fusion): the kernel window and the channels share the access mask {x, w}, so
    r, s, c fuse onto VNNI's 4-wide reduction (im2col as an index map, channels innermost)."""
    op = conv2d_nest(Conv2dParams(2, 8, 7, 6, 12, (3, 3), (2, 1), (1, 0, 1, 2), (1, 2)), input_dtype="uint8")
    mapping = tensorize(op, x86_vnni())
    assert mapping.axis("i").operator == ("r", "s", "c") and mapping.axis("i").fused == 72
    assert mapping.axis("o").operator == ("k",) and mapping.axis("o").padded == 16
    check_golden("conv_vnni", str(mapping))
    check_executes(op, x86_vnni(), mapping)


def test_matmul_onto_avx2_commutes_operands():
    """Rule: multiplication commutes, so b * a matches the intrinsic's a * b with the operands swapped."""
    op = matmul_nest(5, 9, 7, batch=3, a_dtype="uint8")
    swapped = LoopNest(op.name, op.iterators, op.inputs, op.output,
                       Binary("mul", op.body.right, op.body.left, "int32"))
    mapping = tensorize(swapped, x86_avx2_dot())
    assert mapping.operands[:2] == (("a", "a"), ("b", "b"))
    assert mapping.axis("i").padded == 12 and mapping.axis("o").padded == 8
    check_golden("batched_matmul_avx2", str(mapping))
    check_executes(swapped, x86_avx2_dot(), mapping)


def test_elementwise_max_onto_alu():
    """Rule: an element-wise max with a scalar matches the ALU's MAX-immediate; loops with equal
    masks are assigned innermost to innermost (o <- k of y[n, k]); the reduction kinds must agree."""
    y = Operand("y", "int32", (3, 32), (Affine.of("n"), Affine.of("k")))
    zero = Operand("zero", "int32", (), ())
    relu = LoopNest("relu", (Iterator("n", 3), Iterator("k", 32)), (y, zero),
                    Operand("z", "int32", (3, 32), y.index), Binary("max", Read(0, "int32"), Read(1, "int32"), "int32"),
                    reduce=None)
    alu = accel_alu(VTA, "MAX")
    mapping = tensorize(relu, alu)
    assert mapping.axis("o").operator == ("k",) and mapping.axis("b").operator == ("n",)
    arrays = {"y": np.arange(-48, 48).reshape(3, 32), "zero": np.array(0)}
    assert np.array_equal(execute(mapping, relu, alu, arrays), np.maximum(arrays["y"], 0))
    with pytest.raises(TensorizeError, match="update"):
        tensorize(relu, accel_gemm(VTA))


def test_alu_mul_missing_from_w4a8():
    """Rule: intrinsics come from the config: w4a8 has no MUL."""
    with pytest.raises(Exception, match="no ALU MUL"):
        accel_alu(load_config("w4a8"), "MUL")


def test_commutative_pairing_prefers_efficiency_and_can_be_pinned():
    """Rule: with equal dtypes a * b also matches as b * a; the matcher keeps the pairing with the
    best lane efficiency (a matrix-vector product runs transposed: the weight streams as the GEMM
    input), and a lowering can pin the pairing it implements, which then refuses with the reason."""
    op = matmul_nest(8, 64, 1)
    mapping = tensorize(op, accel_gemm(VTA))
    assert mapping.operands[0] == ("inp", "b") and mapping.axis("o").operator == ("i",)
    check_golden("matvec_transposed_vta", str(mapping))
    check_executes(op, accel_gemm(VTA), mapping)
    with pytest.raises(TensorizeError, match="'o' needs 16 lanes but the operator offers j\\(1\\) = 1"):
        tensorize(op, accel_gemm(VTA), operands={"inp": "a", "wgt": "b"})


def test_int16_gemm_onto_avx2_vpmaddwd():
    """Rule: the same matcher maps an int16 GEMM (widened int8, as the CPU back end uses) onto
    vpmaddwd's 8 lanes x 2 products; rows stay outside as the register-tile loop."""
    from tensorweave.compiler.loopnest import x86_avx2_madd16
    op = gemm_nest(6, 13, 20, a_dtype="int16", b_dtype="int16")
    mapping = tensorize(op, x86_avx2_madd16())
    assert mapping.axis("o").operator == ("j",) and mapping.axis("o").padded == 24
    assert mapping.axis("i").operator == ("l",) and mapping.axis("i").padded == 14
    assert [it.name for it in mapping.outer] == ["i"]
    check_golden("gemm_int16_vpmaddwd", str(mapping))
    check_executes(op, x86_avx2_madd16(), mapping)


def test_same_matcher_onto_arm_sdot_and_tensor_core():
    """Rule: a new instruction is only a loop nest: the unchanged matcher maps an int8 conv onto ARM
    sdot (s8 x s8, im2col reduction) and a float16 matmul onto a Tensor Core wmma tile, and refuses
    the int8 conv on the Tensor Core because the dtypes differ."""
    from tensorweave.compiler.loopnest import arm_sdot, nvidia_wmma_f16
    conv = conv2d_nest(Conv2dParams(1, 6, 5, 5, 8, (3, 3), pads=(1, 1, 1, 1)))
    mapping = tensorize(conv, arm_sdot())
    assert mapping.axis("i").operator == ("r", "s", "c") and mapping.axis("o").operator == ("k",)
    check_executes(conv, arm_sdot(), mapping)
    op = matmul_nest(20, 40, 24, a_dtype="float16", b_dtype="float16", acc_dtype="float32")
    wmma = tensorize(op, nvidia_wmma_f16())
    assert wmma.axis("b").operator == ("i",) and wmma.axis("o").operator == ("j",)
    assert wmma.axis("i").padded == 48 and wmma.axis("b").padded == 32
    check_golden("matmul_wmma", str(wmma))
    rng = np.random.default_rng(0)
    arrays = {"a": rng.standard_normal((20, 40)).astype(np.float16), "b": rng.standard_normal((40, 24)).astype(np.float16)}
    got = execute(wmma, op, nvidia_wmma_f16(), arrays)
    assert np.allclose(got, arrays["a"].astype(np.float32) @ arrays["b"].astype(np.float32), atol=1e-3)
    with pytest.raises(TensorizeError, match="int32.*float32|float32.*int32"):
        tensorize(conv, nvidia_wmma_f16())
