"""Loop nests of operators, built from their parameters: conv2d, matmul (batched) and gemm.

Each builds `out += cast<acc>(a) * cast<acc>(b)` with the operands' dtypes as given (int8 x int8 ->
int32 by default; a float body is built the same way with float dtypes). Reduction iterators are
ordered with the channel innermost (conv: r, s, c) so that fusing them keeps channels contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import Affine, Cast, Iterator, LoopNest, LoopNestError, Operand, Read, mul


@dataclass(frozen=True)
class Conv2dParams:
    """The parameters conv2d_nest reads (anything with these attributes works, e.g. accel.ConvSpec)."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def _product_body(a_dtype: str, b_dtype: str, acc_dtype: str):
    return mul(Cast(acc_dtype, Read(0, a_dtype)), Cast(acc_dtype, Read(1, b_dtype)))


def conv2d_nest(spec, input_dtype: str = "int8", weight_dtype: str = "int8", acc_dtype: str = "int32",
                name: str = "conv2d") -> LoopNest:
    """NCHW conv2d: y[n, g*Kg+k, oh, ow] += x[n, g*Cg+c, oh*sh + r*dh - pt, ow*sw + s*dw - pl] * w[g*Kg+k, c, r, s].

    Iterators n, g, k, oh, ow (spatial) and r, s, c (reduce); the group iterator is left out when
    groups == 1. Padding is the zero read outside x.
    """
    n, c_in, h, w = spec.batch, spec.in_channels, spec.height, spec.width
    k_out, (kr, ks), (sh, sw) = spec.out_channels, spec.kernel, spec.stride
    (pt, pl, pb, pr), (dh, dw), groups = spec.pads, spec.dilation, spec.groups
    if groups < 1 or c_in % groups or k_out % groups:
        raise LoopNestError(f"conv2d: groups {groups} must divide in_channels {c_in} and out_channels {k_out}")
    oh = conv_output_size(h, kr, sh, pt, pb, dh)
    ow = conv_output_size(w, ks, sw, pl, pr, dw)
    if oh < 1 or ow < 1:
        raise LoopNestError(f"conv2d: output would be {oh}x{ow}; the kernel does not fit the padded input")
    cg, kg = c_in // groups, k_out // groups
    grouped = groups > 1
    iters = [Iterator("n", n)] + ([Iterator("g", groups)] if grouped else []) + [
        Iterator("k", kg), Iterator("oh", oh), Iterator("ow", ow),
        Iterator("r", kr, "reduce"), Iterator("s", ks, "reduce"), Iterator("c", cg, "reduce")]
    g_in = (("g", cg),) if grouped else ()
    g_out = (("g", kg),) if grouped else ()
    x = Operand("x", input_dtype, (n, c_in, h, w), (
        Affine.of("n"), Affine.of(*g_in, "c"), Affine.of(("oh", sh), ("r", dh), constant=-pt),
        Affine.of(("ow", sw), ("s", dw), constant=-pl)))
    wt = Operand("w", weight_dtype, (k_out, cg, kr, ks), (
        Affine.of(*g_out, "k"), Affine.of("c"), Affine.of("r"), Affine.of("s")))
    y = Operand("y", acc_dtype, (n, k_out, oh, ow), (
        Affine.of("n"), Affine.of(*g_out, "k"), Affine.of("oh"), Affine.of("ow")))
    return LoopNest(name, tuple(iters), (x, wt), y, _product_body(input_dtype, weight_dtype, acc_dtype))


def matmul_nest(m: int, k: int, n: int, batch: int = 1, a_dtype: str = "int8", b_dtype: str = "int8",
                acc_dtype: str = "int32", batched_weight: bool = False, name: str = "matmul") -> LoopNest:
    """y[bt, i, j] += a[bt, i, l] * b[l, j] (b[bt, l, j] with batched_weight); no bt loop when batch == 1."""
    has_batch = batch > 1
    bt = (Affine.of("bt"),) if has_batch else ()
    iters = ([Iterator("bt", batch)] if has_batch else []) + [
        Iterator("i", m), Iterator("j", n), Iterator("l", k, "reduce")]
    a = Operand("a", a_dtype, ((batch,) if has_batch else ()) + (m, k), (*bt, Affine.of("i"), Affine.of("l")))
    b_batch = bt if batched_weight else ()
    b = Operand("b", b_dtype, ((batch,) if has_batch and batched_weight else ()) + (k, n),
                (*b_batch, Affine.of("l"), Affine.of("j")))
    y = Operand("y", acc_dtype, ((batch,) if has_batch else ()) + (m, n), (*bt, Affine.of("i"), Affine.of("j")))
    return LoopNest(name, tuple(iters), (a, b), y, _product_body(a_dtype, b_dtype, acc_dtype))


def gemm_nest(m: int, k: int, n: int, trans_a: bool = False, trans_b: bool = False, a_dtype: str = "int8",
              b_dtype: str = "int8", acc_dtype: str = "int32", name: str = "gemm") -> LoopNest:
    """ONNX Gemm's product: y[i, j] += A'[i, l] * B'[l, j] with A' = A^T if trans_a, B' = B^T if trans_b."""
    iters = (Iterator("i", m), Iterator("j", n), Iterator("l", k, "reduce"))
    a_index = (Affine.of("l"), Affine.of("i")) if trans_a else (Affine.of("i"), Affine.of("l"))
    b_index = (Affine.of("j"), Affine.of("l")) if trans_b else (Affine.of("l"), Affine.of("j"))
    a = Operand("a", a_dtype, (k, m) if trans_a else (m, k), a_index)
    b = Operand("b", b_dtype, (n, k) if trans_b else (k, n), b_index)
    y = Operand("y", acc_dtype, (m, n), (Affine.of("i"), Affine.of("j")))
    return LoopNest(name, iters, (a, b), y, _product_body(a_dtype, b_dtype, acc_dtype))
