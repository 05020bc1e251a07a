"""ONNX nodes -> GPU kernels (`Launch`es): the compute-heavy and elementwise ops as loop nests through
`lower.py`, everything else through the CPU emitters (`fallback.py`).

Loop nests used: float MatMul (any batch broadcasting) and Gemm (`gemm_nest`), Conv 1-D / 2-D with groups
(`conv2d_nest`), and the int8 forms MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv on the same
nests with uint8 / int8 operands and an int32 accumulator: zero points are subtracted on load (padding
reads zero, i.e. the zero point of the QDQ semantics), bias, scales and requantization
(`tw_requant`: ONNX Runtime's float32 `acc * (sx * sw / sy)`, rounded half to even, saturated) run in
the epilogue, so integer results are bit-exact. Elementwise, broadcasting, Where, QuantizeLinear and
DequantizeLinear are elementwise nests whose scalar formula comes from the CPU back end's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np

from ...graph import Graph, Node
from ...loopnest import (
    Affine,
    Cast,
    Conv2dParams,
    Iterator,
    LoopNest,
    Operand,
    Read,
    TensorizeError,
    conv2d_nest,
    gemm_nest,
    mul,
    nvidia_wmma_s8,
    tensorize,
)
from ..cpu.cgen import FUSED_RELU, INT_RANGES, KernelContext, UnsupportedOp, c_literal, is_float
from ..cpu.elementwise import BINARY, FLOAT_ONLY, UNARY, VARIADIC
from ..cpu.nn import conv_geometry, gemm_dims
from .fallback import fallback_kernel, kernel_context
from .lower import CTYPES, PARTIALS, Occupancy, broadcast_nest, contraction_kernels, elementwise_kernel
from .render import Kernel, Param

__all__ = ["Elementwise", "Launch", "LowerOptions", "lower_node", "native_ops"]


@dataclass(frozen=True)
class Launch:
    """One kernel and the buffers bound to its parameters: graph values, '' absent, '#s<j>' scratch of this
    launch (`scratch` bytes), '#t<name>' a temporary shared by the launches of one node (`temps` bytes)."""

    kernel: Kernel
    args: tuple[str, ...]
    scratch: tuple[int, ...] = ()
    temps: tuple[tuple[str, int], ...] = ()
    elementwise: Elementwise | None = None  # what an elementwise kernel computes (for fusion, fuse.py)


@dataclass(frozen=True)
class Elementwise:
    """An elementwise node as a formula: `letters[i]` is graph value `inputs[i]` read with `shapes[i]`
    (broadcast to `out_shape`)."""

    op: str
    formula: str
    letters: tuple[str, ...]
    inputs: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    in_dtypes: tuple[str, ...]
    output: str
    out_shape: tuple[int, ...]
    out_dtype: str


Lowering = Callable[[str, KernelContext], list[Launch]]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return register


def native_ops() -> set[str]:
    """Op types lowered from loop nests (the rest use the CPU emitters)."""
    return set(LOWERINGS)


def _present(k: KernelContext) -> list[int]:
    return [i for i, v in enumerate(k.node.inputs) if v]


def _launch(kernel: Kernel, k: KernelContext, inputs: list[int], temps: tuple[tuple[str, int], ...] = ()) -> Launch:
    """Bind x<i> params to the node's inputs, y0 to its output and `PARTIALS` to the temporary in `temps`, in
    the kernel's parameter order."""
    names = {f"x{i}": k.node.inputs[i] for i in inputs}
    names["y0"] = k.node.outputs[0]
    if temps:
        names[PARTIALS] = temps[0][0]
    return Launch(kernel, tuple(names[p.name] for p in kernel.params), temps=temps)


@dataclass(frozen=True)
class LowerOptions:
    """What the lowering knows of the device: whether int8 contractions may use Tensor Cores, and how many
    work-groups a contraction should give it (split K)."""

    tensor_cores: bool = False
    occupancy: Occupancy = Occupancy()


# The options of the `lower_node` call in progress (set by it for the duration of one lowering)
OPTIONS: ContextVar[LowerOptions | None] = ContextVar("tensorweave_gpu_lower_options", default=None)


def _options() -> LowerOptions:
    return OPTIONS.get() or LowerOptions()


def _on_tensor_cores(k: KernelContext, nest: LoopNest, zero_points: Sequence[int | None]) -> bool:
    """Tensor Cores compute this int8 contraction: they are on, both operands are int8 with zero points absent
    or constant zeros, and the tensorize pass maps the nest onto `nvidia_wmma_s8` (s8 x s8 -> s32, exact)."""
    if not _options().tensor_cores or any(op.dtype != "int8" for op in nest.inputs):
        return False
    for i in zero_points:
        if i is not None and k.has_input(i):
            value = k.graph.constants.get(k.node.inputs[i])
            if value is None or np.any(value):
                return False
    try:
        tensorize(nest, nvidia_wmma_s8())
    except TensorizeError:
        return False
    return True


def _contraction(name: str, k: KernelContext, inputs: list[int], nest: LoopNest, params: list[str],
                 transforms: tuple[str, str] = ("{v}", "{v}"), epilogue: str = "acc", extra: Sequence[Param] = (),
                 out_ctype: str | None = None, wmma: bool = False) -> list[Launch]:
    """The launches of a contraction (two with split K, sharing the partial sums as a temporary)."""
    kernels, partial_bytes = contraction_kernels(name, nest, params, transforms=transforms, epilogue=epilogue,
                                                 extra=extra, out_ctype=out_ctype, wmma=wmma,
                                                 occupancy=_options().occupancy)
    temps = ((f"#t{name}", partial_bytes),) if partial_bytes else ()
    return [_launch(kernel, k, inputs, temps) for kernel in kernels]


def _elementwise(name: str, k: KernelContext, formula: str, letters: list[str], inputs: list[int],
                 shapes: list[tuple[int, ...]] | None = None) -> list[Launch]:
    out = k.out_type()
    if out.size == 0:
        return []
    in_shapes = shapes or [k.in_shape(i) for i in inputs]
    in_dtypes = [k.in_type(i).dtype for i in inputs]
    nest = broadcast_nest(k.op, out.shape, in_shapes, in_dtypes, out.dtype)
    kernel = elementwise_kernel(name, nest, formula, letters, [f"x{i}" for i in inputs],
                                out_ctype=CTYPES[out.dtype], in_ctypes=[CTYPES[d] for d in in_dtypes])
    spec = Elementwise(k.op, formula, tuple(letters), tuple(k.node.inputs[i] for i in inputs),
                       tuple(tuple(s) for s in in_shapes), tuple(in_dtypes), k.node.outputs[0], tuple(out.shape),
                       out.dtype)
    return [replace(_launch(kernel, k, inputs), elementwise=spec)]


def _ocl_formula(formula: str) -> str:
    # the CPU tables call fabs/fmax/fmin on values typed as the output: valid in both dialects
    return formula


@lowering(*UNARY)
def lower_unary(name: str, k: KernelContext) -> list[Launch]:
    if k.op in FLOAT_ONLY and not is_float(k.in_type(0).dtype):
        k.unsupported(f"{k.op} on {k.in_type(0).dtype} (float32 or float64 only)")
    return _elementwise(name, k, _ocl_formula(UNARY[k.op](k, "a")), ["a"], [0])


@lowering(*BINARY)
def lower_binary(name: str, k: KernelContext) -> list[Launch]:
    if k.op == "BitShift" and is_float(k.in_type(0).dtype):
        k.unsupported("BitShift on floats")
    return _elementwise(name, k, BINARY[k.op](k, "a", "b"), ["a", "b"], [0, 1])


@lowering(*VARIADIC)
def lower_variadic(name: str, k: KernelContext) -> list[Launch]:
    n = len(k.node.inputs)
    names = [f"v{j}" for j in range(n)]
    expr = names[0]
    for v in names[1:]:
        if k.op in ("Max", "Min"):
            cmp = ">" if k.op == "Max" else "<"
            expr = f"({expr} {cmp} {v} || {expr} != {expr} ? {expr} : {v})"
        else:
            expr = f"({expr} + {v})"
    if k.op == "Mean":
        expr = f"({expr} / {n})"
    return _elementwise(name, k, expr, names, list(range(n)))


@lowering("Where")
def lower_where(name: str, k: KernelContext) -> list[Launch]:
    return _elementwise(name, k, "(c ? a : b)", ["c", "a", "b"], [0, 1, 2])


@lowering("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze")
def lower_copy(name: str, k: KernelContext) -> list[Launch]:
    size = k.out_type().size
    if size == 0:
        return []
    if k.in_type(0).size != size:
        raise UnsupportedOp(f"node '{k.node.name}' ({k.op}): input and output sizes differ")
    return _elementwise(name, k, "a", ["a"], [0], shapes=[k.out_shape()])


def _axis_shape(k: KernelContext, shape: tuple[int, ...], i: int) -> tuple[int, ...]:
    """Input i (a scale or zero point) as a broadcastable shape: per tensor or along the op's axis."""
    size = k.in_type(i).size
    if size == 1:
        return ()
    if len(k.in_shape(i)) != 1 or k.attr("block_size", 0):
        k.unsupported("blocked quantization (per-tensor or per-axis scales only)")
    axis = k.axis(int(k.attr("axis", 1)), len(shape))
    return tuple(size if d == axis else 1 for d in range(len(shape)))


@lowering("QuantizeLinear")
def lower_quantize(name: str, k: KernelContext) -> list[Launch]:
    dst = k.out_type().dtype
    if dst not in ("int8", "uint8", "int16", "uint16") or k.in_type(0).dtype != "float32":
        k.unsupported(f"QuantizeLinear from {k.in_type(0).dtype} to {dst}")
    lo, hi = INT_RANGES[dst]
    inputs, shapes, letters, z = _linear_operands(k, "0.0f", "(float)z")
    return _elementwise(name, k, f"tw_quantize(a, s, {z}, {lo}.0f, {hi}.0f)", letters, inputs, shapes)


@lowering("DequantizeLinear")
def lower_dequantize(name: str, k: KernelContext) -> list[Launch]:
    if k.in_type(0).dtype not in ("int8", "uint8", "int16", "uint16", "int32") or k.out_type().dtype != "float32":
        k.unsupported(f"DequantizeLinear from {k.in_type(0).dtype} to {k.out_type().dtype}")
    inputs, shapes, letters, z = _linear_operands(k, "0", "(int32_t)z")
    return _elementwise(name, k, f"(float)((int32_t)a - {z}) * s", letters, inputs, shapes)


def _linear_operands(k: KernelContext, no_zero: str, zero: str) -> tuple[list[int], list, list[str], str]:
    """Quantize/DequantizeLinear's operands for `_elementwise`: x as `a`, the scale as `s` and, when given,
    the zero point as `z` (each scale and zero point along the op's axis); the zero-point expression."""
    shape = k.in_shape(0)
    inputs, shapes, letters = [0, 1], [shape, _axis_shape(k, shape, 1)], ["a", "s"]
    if not k.has_input(2):
        return inputs, shapes, letters, no_zero
    return [*inputs, 2], [*shapes, _axis_shape(k, shape, 2)], [*letters, "z"], zero


# ---- contractions ------------------------------------------------------------------------------------
def _product(a_dtype: str, b_dtype: str, acc: str):
    return mul(Cast(acc, Read(0, a_dtype)), Cast(acc, Read(1, b_dtype)))


def matmul_nd_nest(a: list[int], b: list[int], a_dtype: str, b_dtype: str, acc: str) -> LoopNest:
    """ONNX MatMul with NumPy batch broadcasting as one loop nest: batch iterators t0.., then i, j, l."""
    a2 = [1] + a if len(a) == 1 else a
    b2 = b + [1] if len(b) == 1 else b
    m, kd, n = a2[-2], a2[-1], b2[-1]
    batch = list(np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2])))
    iters = [Iterator(f"t{d}", max(1, e)) for d, e in enumerate(batch)]
    iters += [Iterator("i", m), Iterator("j", n), Iterator("l", kd, "reduce")]

    def batch_index(shape: list[int]) -> tuple[Affine, ...]:
        pad = len(batch) - (len(shape) - 2)
        return tuple(Affine.of(f"t{pad + d}") if shape[d] != 1 else Affine() for d in range(len(shape) - 2))

    ao = Operand("a", a_dtype, tuple(a2), (*batch_index(a2), Affine.of("i"), Affine.of("l")))
    bo = Operand("b", b_dtype, tuple(b2), (*batch_index(b2), Affine.of("l"), Affine.of("j")))
    y = Operand("y", acc, (*[max(1, e) for e in batch], m, n),
                (*(Affine.of(f"t{d}") for d in range(len(batch))), Affine.of("i"), Affine.of("j")))
    return LoopNest("matmul", tuple(iters), (ao, bo), y, _product(a_dtype, b_dtype, acc))


def _conv_nest(k: KernelContext, xi: int, wi: int, in_dtype: str, w_dtype: str, acc: str) -> tuple[LoopNest, int]:
    x, w, y = k.in_shape(xi), k.in_shape(wi), k.out_shape()
    g = conv_geometry(k, x, w, y)
    groups = int(k.attr("group", 1))
    spec = Conv2dParams(batch=x[0], in_channels=x[1], height=g["H"], width=g["W"], out_channels=w[0],
                        kernel=(g["R"], g["S"]), stride=(g["sh"], g["sw"]), pads=(g["ph"], g["pw"], g["pb"], g["pr"]),
                        dilation=(g["dh"], g["dw"]), groups=groups)
    nest = conv2d_nest(spec, in_dtype, w_dtype, acc)
    if int(np.prod(nest.output.shape)) != k.out_type().size:
        k.unsupported(f"a conv whose loop nest gives {nest.output.shape}, not {k.out_shape()}")
    return nest, w[0] // groups


def _channel(groups: bool, kg: int) -> str:
    return f"(it_g * {kg} + it_k)" if groups else "it_k"


@lowering("MatMul")
def lower_matmul(name: str, k: KernelContext) -> list[Launch]:
    dtype = k.out_type().dtype
    if not is_float(dtype):
        k.unsupported(f"MatMul on {dtype} (float; int8 goes through QLinearMatMul / MatMulInteger)")
    if k.out_type().size == 0:
        return []
    nest = matmul_nd_nest(list(k.in_shape(0)), list(k.in_shape(1)), dtype, dtype, dtype)
    return _contraction(name, k, [0, 1], nest, ["x0", "x1"])


@lowering("Gemm")
def lower_gemm(name: str, k: KernelContext) -> list[Launch]:
    m, kd, n, ta, tb = gemm_dims(k)
    nest = gemm_nest(m, kd, n, bool(ta), bool(tb), "float32", "float32", "float32")
    alpha, beta = float(k.attr("alpha", 1.0)), float(k.attr("beta", 1.0))
    epi = "acc" if alpha == 1.0 else f"{c_literal(alpha, 'float32')} * acc"
    extra: list[Param] = []
    inputs = [0, 1]
    if k.has_input(2):
        cs = [1] * (2 - len(k.in_shape(2))) + list(k.in_shape(2))
        at = " + ".join(t for t in (f"it_i * {cs[1]}" if cs[0] != 1 else "", "it_j" if cs[1] != 1 else "") if t)
        epi = f"{epi} + {c_literal(beta, 'float32')} * x2[{at or '0'}]"
        extra.append(Param("x2", "float"))
        inputs.append(2)
    return _contraction(name, k, inputs, nest, ["x0", "x1"], epilogue=epi, extra=extra)


@lowering("Conv")
def lower_conv(name: str, k: KernelContext) -> list[Launch]:
    if k.in_type(0).dtype != "float32":
        k.unsupported(f"Conv on {k.in_type(0).dtype} (float32)")
    nest, kg = _conv_nest(k, 0, 1, "float32", "float32", "float32")
    epi, extra, inputs = "acc", [], [0, 1]
    if k.has_input(2):
        epi = f"acc + x2[{_channel(int(k.attr('group', 1)) > 1, kg)}]"
        extra.append(Param("x2", "float"))
        inputs.append(2)
    if k.attr(FUSED_RELU, 0):  # the conv's only reader was a Relu (cpu.fuse.fuse_relu)
        epi = f"(TW_F32({epi}) > 0.0f ? TW_F32({epi}) : 0.0f)"
    return _contraction(name, k, inputs, nest, ["x0", "x1"], epilogue=epi, extra=extra)


def _int_dtype(k: KernelContext, i: int) -> str:
    dtype = k.in_type(i).dtype
    if dtype not in ("int8", "uint8"):
        k.unsupported(f"{k.op} with {dtype} input {i} (int8 or uint8)")
    return dtype


def _zp(k: KernelContext, i: int | None, index: str, what: str, channels: int) -> tuple[str, list[int]]:
    """C of zero point input i at channel `index` (0 when absent) and the inputs it reads."""
    if i is None or not k.has_input(i):
        return "0", []
    size = k.in_type(i).size
    if size not in (1, channels):
        k.unsupported(f"a {what} zero point of {size} values for {channels} channels")
    return f"(int32_t)x{i}[{index if size > 1 else 0}]", [i]


ZeroPoint = tuple[int | None, str, str, int]  # (input index, C channel index, operand name, channels): see _zp


def _operand_transforms(k: KernelContext, nest: LoopNest, a: ZeroPoint,
                        b: ZeroPoint) -> tuple[tuple[str, str], list[int], bool]:
    """How the contraction reads its two int8 operands: minus their zero points, or as they are on Tensor Cores
    (which take zero points only when absent or constant zeros); also the zero-point inputs read and whether
    Tensor Cores are used. Both zero points are checked first, so a malformed one is an error either way."""
    (za, used_a), (zb, used_b) = _zp(k, *a), _zp(k, *b)
    if _on_tensor_cores(k, nest, (a[0], b[0])):
        return ("{v}", "{v}"), [], True
    return (f"(int32_t){{v}} - {za}", f"(int32_t){{v}} - {zb}"), used_a + used_b, False


def _requant_epilogue(k: KernelContext, xs: int, ws: int, ys: int, yz: int, bias: int | None, ch: str,
                      channels: int) -> tuple[str, list[int]]:
    size = k.in_type(ws).size
    if size not in (1, channels):
        k.unsupported(f"{size} weight scales for {channels} channels")
    lo, hi = INT_RANGES[k.out_type().dtype]
    scale = f"x{xs}[0] * x{ws}[{ch if size > 1 else 0}] / x{ys}[0]"
    zy = f"(int32_t)x{yz}[0]" if k.has_input(yz) else "0"
    used = [xs, ws, ys] + ([yz] if k.has_input(yz) else [])
    acc = "acc"
    if bias is not None and k.has_input(bias):
        acc = f"acc + x{bias}[{ch if k.in_type(bias).size > 1 else 0}]"
        used.append(bias)
    return f"tw_requant({acc}, {scale}, {zy}, {lo}, {hi})", used


def _extra(k: KernelContext, inputs: list[int]) -> list[Param]:
    return [Param(f"x{i}", CTYPES[k.in_type(i).dtype]) for i in dict.fromkeys(inputs)]


@lowering("QLinearConv", "ConvInteger")
def lower_qconv(name: str, k: KernelContext) -> list[Launch]:
    qlinear = k.op == "QLinearConv"
    xi, wi = (0, 3) if qlinear else (0, 1)
    xz_i, wz_i = (2, 5) if qlinear else (2, 3)
    nest, kg = _conv_nest(k, xi, wi, _int_dtype(k, xi), _int_dtype(k, wi), "int32")
    m = k.in_shape(wi)[0]
    ch = _channel(int(k.attr("group", 1)) > 1, kg)
    transforms, used_z, wmma = _operand_transforms(k, nest, (xz_i, "0", "input", 1), (wz_i, ch, "weight", m))
    epi, used = (_requant_epilogue(k, 1, 4, 6, 7, 8, ch, m) if qlinear else ("acc", []))
    extra = _extra(k, used_z + used)
    return _contraction(name, k, [xi, wi, *used_z, *used], nest, [f"x{xi}", f"x{wi}"],
                        transforms=transforms, epilogue=epi, extra=extra, out_ctype=CTYPES[k.out_type().dtype],
                        wmma=wmma)


# (a, a_scale, a_zp, b, b_scale, b_zp, bias, y_scale, y_zp); None = not an input of the op
_QMATMUL = {"QLinearMatMul": (0, 1, 2, 3, 4, 5, None, 6, 7),
            "MatMulInteger": (0, None, 2, 1, None, 3, None, None, None),
            "com.microsoft.QGemm": (0, 1, 2, 3, 4, 5, 6, 7, 8)}


@lowering("QLinearMatMul", "MatMulInteger", "com.microsoft.QGemm")
def lower_qmatmul(name: str, k: KernelContext) -> list[Launch]:
    key = f"{k.node.domain}.{k.op}" if k.node.domain else k.op
    ai, as_i, az_i, bi, bs_i, bz_i, bias_i, ys_i, yz_i = _QMATMUL[key]
    a, b = list(k.in_shape(ai)), list(k.in_shape(bi))
    if k.out_type().size == 0:
        return []
    if key == "com.microsoft.QGemm":
        if int(k.attr("transA", 0)) or float(k.attr("alpha", 1.0)) != 1.0 or not k.has_input(7):
            k.unsupported("QGemm with transA, alpha != 1 or a float output")
        tb = bool(int(k.attr("transB", 0)))
        nest = gemm_nest(a[0], a[1], b[0] if tb else b[1], False, tb, _int_dtype(k, ai), _int_dtype(k, bi), "int32")
    else:
        nest = matmul_nd_nest(a, b, _int_dtype(k, ai), _int_dtype(k, bi), "int32")
    m, n = nest.iterator("i").extent, nest.iterator("j").extent
    transforms, used_z, wmma = _operand_transforms(k, nest, (az_i, "it_i", "left", m), (bz_i, "it_j", "right", n))
    epi, used = "acc", list[int]()
    if ys_i is not None and as_i is not None and bs_i is not None and yz_i is not None:
        if k.in_type(as_i).size != 1:
            k.unsupported("a per-row scale for the left operand")
        epi, used = _requant_epilogue(k, as_i, bs_i, ys_i, yz_i, bias_i, "it_j", n)
    extra = _extra(k, used_z + used)
    return _contraction(name, k, [ai, bi, *used_z, *used], nest, [f"x{ai}", f"x{bi}"],
                        transforms=transforms, epilogue=epi, extra=extra, out_ctype=CTYPES[k.out_type().dtype],
                        wmma=wmma)


def lower_node(name: str, graph: Graph, node: Node, options: LowerOptions = LowerOptions()) -> list[Launch]:
    """The launches computing `node` (kernels named `name`, `name`_1, ...); `options.tensor_cores`: int8
    contractions that the tensorize pass maps onto `nvidia_wmma_s8` use CUDA wmma kernels."""
    token = OPTIONS.set(options)
    try:
        return _lower_node(name, graph, node)
    finally:
        OPTIONS.reset(token)


def _lower_node(name: str, graph: Graph, node: Node) -> list[Launch]:
    key = f"{node.domain}.{node.op}" if node.domain not in ("", "ai.onnx") else node.op
    if any(not v for v in node.outputs[:1]):
        return []
    for v in (*node.inputs, *node.outputs):
        if v and graph.types[v].dtype not in CTYPES:
            raise UnsupportedOp(f"node '{node.name}' ({node.op}): the GPU back end does not support data type "
                                f"{graph.types[v].dtype} (value '{v}')")
    try:
        lower = LOWERINGS.get(key)
        if lower is not None:
            return lower(name, kernel_context(graph, node))
        kernel, args, scratch = fallback_kernel(name, graph, node)
    except UnsupportedOp as exc:  # the shared KernelContext words its refusals for the CPU back end
        raise UnsupportedOp(str(exc).replace("the CPU back end", "the GPU back end")) from exc
    return [Launch(kernel, tuple(args), tuple(scratch))]
