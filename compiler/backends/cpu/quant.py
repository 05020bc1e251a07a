"""Quantized kernels: QuantizeLinear / DequantizeLinear and the integer ops QLinearConv, QLinearMatMul,
ConvInteger, MatMulInteger, all on the int8 GEMM of `int8.py`.

Integer semantics follow ONNX Runtime exactly: the int32 accumulator is exact ((x - zx)·(w - zw) summed,
plus the int32 bias); requantization is ORT's float one: `acc * (sx * sw / sy)` in float32, rounded half
to even, plus the output zero point, saturated. QuantizeLinear is `saturate(rint(x / scale) + zp)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ...loopnest import conv2d_nest, gemm_nest, matmul_nest
from .cgen import INT_RANGES, KernelContext, UnsupportedOp, emitter
from .int8 import igemm_layout
from .nn import conv_geometry
from .tensorized import Source, emit_mapped_igemm, mapping_for

T = TypeVar("T")
QUANT_TYPES = ("int8", "uint8", "int16", "uint16")


def _per_axis(k: KernelContext, shape: tuple[int, ...], scale_index: int) -> tuple[int, int, int]:
    """(outer, channels, inner) of a per-axis scale; channels == 1 for a per-tensor scale."""
    scale = k.in_shape(scale_index)
    if len(scale) == 0 or int(np.prod(scale)) == 1:
        return int(np.prod(shape, dtype=np.int64)), 1, 1
    if len(scale) != 1 or k.attr("block_size", 0):
        k.unsupported("blocked quantization (per-tensor or per-axis scales only)")
    axis = k.axis(int(k.attr("axis", 1)), len(shape))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, shape[axis], inner


@emitter("QuantizeLinear")
def emit_quantize(k: KernelContext) -> str:
    dst = k.out_type().dtype
    if dst not in QUANT_TYPES:
        k.unsupported(f"QuantizeLinear to {dst} (supported: {', '.join(QUANT_TYPES)})")
    if k.in_type(0).dtype != "float32":
        k.unsupported(f"QuantizeLinear from {k.in_type(0).dtype} (float32 only)")
    lo, hi = INT_RANGES[dst]
    outer, ch, inner = _per_axis(k, k.in_shape(0), 1)
    zp = "(float)x2[c]" if k.has_input(2) else "0.0f"
    # ORT: nearbyint(x / scale) + zero_point, then clamp to the type's range.
    return f"""#pragma omp parallel for if ({outer * ch * inner} > 65536)
for (int64_t o = 0; o < {outer}; o++)
  for (int64_t c = 0; c < {ch}; c++) {{
    const float s = x1[c], z = {zp};
    for (int64_t i = 0; i < {inner}; i++) {{
      const int64_t at = (o * {ch} + c) * {inner} + i;
      float v = rintf(x0[at] / s) + z;
      v = v < {lo}.0f ? {lo}.0f : (v > {hi}.0f ? {hi}.0f : v);
      y0[at] = ({k.ctype_out()})v;
    }}
  }}
"""


@emitter("DequantizeLinear")
def emit_dequantize(k: KernelContext) -> str:
    src = k.in_type(0).dtype
    if src not in (*QUANT_TYPES, "int32"):
        k.unsupported(f"DequantizeLinear from {src} (supported: {', '.join(QUANT_TYPES)}, int32)")
    if k.out_type().dtype != "float32":
        k.unsupported(f"DequantizeLinear to {k.out_type().dtype} (float32 only)")
    outer, ch, inner = _per_axis(k, k.in_shape(0), 1)
    zp = "(int32_t)x2[c]" if k.has_input(2) else "0"
    return f"""#pragma omp parallel for if ({outer * ch * inner} > 65536)
for (int64_t o = 0; o < {outer}; o++)
  for (int64_t c = 0; c < {ch}; c++) {{
    const float s = x1[c]; const int32_t z = {zp};
    for (int64_t i = 0; i < {inner}; i++) {{
      const int64_t at = (o * {ch} + c) * {inner} + i;
      y0[at] = (float)((int32_t)x0[at] - z) * s;
    }}
  }}
"""


def _is_signed(k: KernelContext, i: int) -> int:
    dtype = k.in_type(i).dtype
    if dtype not in ("int8", "uint8"):
        k.unsupported(f"{k.op} with {dtype} input {i} (int8 or uint8)")
    return int(dtype == "int8")


def _zp_array(k: KernelContext, i: int, count: int, name: str) -> str:
    """C declaring `int32_t name[count]` from the optional zero-point input i (scalar or per channel)."""
    if not k.has_input(i):
        return f"int32_t {name}[{count}]; for (int64_t q = 0; q < {count}; q++) {name}[q] = 0;\n"
    n = k.in_type(i).size
    if n not in (1, count):
        k.unsupported(f"a zero point of {n} values for {count} channels")
    return (f"int32_t {name}[{count}]; for (int64_t q = 0; q < {count}; q++) "
            f"{name}[q] = (int32_t)x{i}[{'q' if n > 1 else '0'}];\n")


def _epilogue(k: KernelContext, rows: int, cols: int, acc: str, out: str, row0: str, mode: str,
              col_channels: bool = False) -> str:
    """Write acc[rows x cols] to out: int32 as is, or requantized (QLinear*), per row or per column scales."""
    if mode == "int32":
        return f"memcpy({out}, {acc}, {rows * cols} * sizeof(int32_t));\n"
    lo, hi = INT_RANGES[k.out_type().dtype]
    ch = "j" if col_channels else f"({row0} + i)"
    return f"""for (int64_t i = 0; i < {rows}; i++)
  for (int64_t j = 0; j < {cols}; j++) {{
    const int64_t c = {ch};
    int32_t a = {acc}[i * {cols} + j] + (bias ? bias[c] : 0);
    {out}[i * {cols} + j] = ({k.ctype_out()})tw_requant(a, scales[c], yz, {lo}, {hi});
  }}
"""


def _scales(k: KernelContext, xs: int, ws: int, ys: int, count: int) -> str:
    n = k.in_type(ws).size
    if n not in (1, count):
        k.unsupported(f"{n} weight scales for {count} channels")
    wi = "q" if n > 1 else "0"
    # the same float32 expression, in the same order, as ONNX Runtime's kernels
    return (f"float scales[{count}]; for (int64_t q = 0; q < {count}; q++) "
            f"scales[q] = x{xs}[0] * x{ws}[{wi}] / x{ys}[0];\n")


def _zp_expr(k: KernelContext, i: int) -> str:
    """The zero point of input i as a C expression of `zp_index` (0 when absent; one value or one per index)."""
    if not k.has_input(i):
        return "0"
    return f"(int32_t)x{i}[{'zp_index' if k.in_type(i).size > 1 else '0'}]"


def _is_const(k: KernelContext, i: int) -> bool:
    return not k.has_input(i) or k.const(i) is not None


def _try(k: KernelContext, build: Callable[[], T]) -> T | None:
    """`build()`, or None when the tensorizer refuses (the reason is kept as a C comment); the caller then
    uses the fixed-layout int8 GEMM."""
    scratch, helpers, prepare = list(k.scratch_sizes), set(k.helpers), len(k.prepare_body)
    try:
        return build()
    except UnsupportedOp as exc:
        k.scratch_sizes[:] = scratch
        k.helpers.clear()
        k.helpers.update(helpers)
        del k.prepare_body[prepare:]
        k.notes.append(f"tensorizer refused, fixed layout used: {exc}")
        return None


def _conv_tensorized(k: KernelContext, head: str, xi: int, wi: int, wz_i: int, g: dict, groups: int,
                     epilogue: str) -> str:
    from types import SimpleNamespace

    x, w = k.in_shape(xi), k.in_shape(wi)
    spec = SimpleNamespace(batch=x[0], in_channels=x[1], height=g["H"], width=g["W"], out_channels=w[0],
                           kernel=(g["R"], g["S"]), stride=(g["sh"], g["sw"]),
                           pads=(g["ph"], g["pw"], g["pb"], g["pr"]),
                           dilation=(g["dh"], g["dw"]), groups=groups)
    op = conv2d_nest(spec, input_dtype="uint8", weight_dtype="int8")
    if tuple(op.output.shape) != (x[0], w[0], g["OH"], g["OW"]):
        k.unsupported(f"a conv whose loop nest gives {op.output.shape}, not {k.out_shape()}")
    mapping = mapping_for(k, op)
    sources = {"x": Source(f"x{xi}", bool(_is_signed(k, xi)), "xz[0]"),
               "w": Source(f"x{wi}", bool(_is_signed(k, wi)), _zp_expr(k, wz_i), zp_dim=0,
                           constant=_is_const(k, wi) and _is_const(k, wz_i))}
    text = emit_mapped_igemm(k, op, mapping, sources, "y0", k.ctype_out(), 1, epilogue)
    return f"/* {str(mapping).replace('*/', '* /')} */\n" + head + text


@emitter("QLinearConv", "ConvInteger")
def emit_qconv(k: KernelContext) -> str:
    qlinear = k.op == "QLinearConv"
    xi, wi = (0, 3) if qlinear else (0, 1)
    x, w, y = k.in_shape(xi), k.in_shape(wi), k.out_shape()
    g = conv_geometry(k, x, w, y)
    groups = int(k.attr("group", 1))
    n, c, m = x[0], x[1], w[0]
    cg, mg = c // groups, m // groups
    kk = cg * g["R"] * g["S"]
    cols = g["OH"] * g["OW"]
    xz_i, wz_i = (2, 5) if qlinear else (2, 3)
    head = _zp_array(k, xz_i, 1, "xz") + _zp_array(k, wz_i, m, "wz")
    if qlinear:
        head += _scales(k, 1, 4, 6, m)
        head += f"const int32_t yz = {'(int32_t)x7[0]' if k.has_input(7) else '0'};\n"
        head += f"const int32_t *bias = {'x8' if k.has_input(8) else 'NULL'};\n"
        mode = "q"
    else:
        mode = "int32"
    if len(x) == 4:
        lo, hi = INT_RANGES.get(k.out_type().dtype, (0, 0))
        epilogue = (f"tw_requant(acc_value + (bias ? bias[ch] : 0), scales[ch], yz, {lo}, {hi})" if qlinear
                    else "acc_value")
        k.need("ipack")  # for tw_requant
        text = _try(k, lambda: _conv_tensorized(k, head, xi, wi, wz_i, g, groups, epilogue))
        if text is not None:
            return text
    lay = igemm_layout(k, mg, cols, kk)
    k.need("ipack")
    k.need("igemm")
    ap = k.scratch(m * lay.kp * 2)
    bp = k.scratch(lay.panels(cols) * lay.kp * lay.nr * 2)
    acc = k.scratch(mg * cols * 4)
    return head + f"""int16_t *ap = (int16_t *){ap}, *bp = (int16_t *){bp};
int32_t *acc = (int32_t *){acc};
tw_ipack_a(x{wi}, {_is_signed(k, wi)}, {kk}, 1, 0, wz, {m}, {kk}, {lay.kp}, ap);
for (int64_t b = 0; b < {n}; b++)
  for (int64_t gi = 0; gi < {groups}; gi++) {{
    tw_iim2col_packed(x{xi} + (b * {c} + gi * {cg}) * {g['H'] * g['W']}, {_is_signed(k, xi)}, xz[0], {cg},
                      {g['H']}, {g['W']}, {g['R']}, {g['S']}, {g['OH']}, {g['OW']}, {g['sh']}, {g['sw']},
                      {g['ph']}, {g['pw']}, {g['dh']}, {g['dw']}, {lay.kp}, {lay.nr}, {lay.kg}, bp);
    tw_igemm({mg}, {cols}, {lay.kp}, ap + gi * {mg * lay.kp}, bp, acc, {cols});
    {{
      {k.ctype_out()} *dst = y0 + (b * {m} + gi * {mg}) * {cols};
      const int64_t row0 = gi * {mg};
      {_epilogue(k, mg, cols, "acc", "dst", "row0", mode)}
    }}
  }}
"""


# input positions: (a, a_scale, a_zp, b, b_scale, b_zp, bias, y_scale, y_zp); None = not an input of the op
_QMATMUL_INPUTS = {
    "QLinearMatMul": (0, 1, 2, 3, 4, 5, None, 6, 7),
    "MatMulInteger": (0, None, 2, 1, None, 3, None, None, None),
    "com.microsoft.QGemm": (0, 1, 2, 3, 4, 5, 6, 7, 8),
}


@emitter("QLinearMatMul", "MatMulInteger", "com.microsoft.QGemm")
def emit_qmatmul(k: KernelContext) -> str:
    from .nn import _matmul_batches

    key = f"{k.node.domain}.{k.op}" if k.node.domain else k.op
    ai, as_i, az_i, bi, bs_i, bz_i, bias_i, ys_i, yz_i = _QMATMUL_INPUTS[key]
    trans_b = int(k.attr("transB", 0))
    if int(k.attr("transA", 0)) or float(k.attr("alpha", 1.0)) != 1.0:
        k.unsupported("QGemm with transA or alpha != 1")
    a, b = list(k.in_shape(ai)), list(k.in_shape(bi))
    if trans_b:
        b = b[:-2] + [b[-1], b[-2]]
    a2 = [1] + a if len(a) == 1 else a
    b2 = b + [1] if len(b) == 1 else b
    m, kd, nn = a2[-2], a2[-1], b2[-1]
    full = [*np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2])), m, nn]
    a_off, b_off = _matmul_batches(a2, b2, full)
    k.need("ipack")
    if k.has_input(az_i) and k.in_type(az_i).size != 1:
        k.unsupported("a per-row zero point for the left operand")
    head = _zp_array(k, az_i, 1, "az") + _zp_array(k, bz_i, nn, "bz")
    mode = "int32"
    if ys_i is not None and as_i is not None and bs_i is not None and yz_i is not None:
        head += _scales(k, as_i, bs_i, ys_i, nn)
        head += f"const int32_t yz = {f'(int32_t)x{yz_i}[0]' if k.has_input(yz_i) else '0'};\n"
        if bias_i is not None and k.has_input(bias_i):
            if k.in_type(bias_i).dtype != "int32" or k.in_type(bias_i).size not in (1, nn):
                k.unsupported("a bias other than int32 of one value or one per column")
            head += (f"int32_t bias[{nn}]; for (int64_t q = 0; q < {nn}; q++) "
                     f"bias[q] = x{bias_i}[{'q' if k.in_type(bias_i).size > 1 else '0'}];\n")
        else:
            head += "const int32_t *bias = NULL;\n"
        mode = "q"
    mapping = None
    simple_batch = len(b) == 2 or (len(a) == len(b) and list(a[:-2]) == list(b[:-2]))
    if len(a) >= 2 and simple_batch:
        batch = int(np.prod(a[:-2], dtype=np.int64)) if len(a) > 2 else 1
        batched_w = len(b) > 2 and batch > 1
        if key == "com.microsoft.QGemm":
            op = gemm_nest(m, kd, nn, trans_b=bool(trans_b), a_dtype="uint8", b_dtype="int8")
        else:
            op = matmul_nest(m, kd, nn, batch=batch, a_dtype="uint8", b_dtype="int8", batched_weight=batched_w)
        mapping = _try(k, lambda: mapping_for(k, op))
    if len(a) >= 2 and simple_batch and mapping is not None:
        bz_dim = len(op.inputs[1].index) - (2 if trans_b else 1)
        sources = {"a": Source(f"x{ai}", bool(_is_signed(k, ai)), "az[0]"),
                   "b": Source(f"x{bi}", bool(_is_signed(k, bi)), _zp_expr(k, bz_i), zp_dim=bz_dim,
                               constant=_is_const(k, bi) and _is_const(k, bz_i))}
        if mode == "q":
            lo, hi = INT_RANGES[k.out_type().dtype]
            epilogue = f"tw_requant(acc_value + (bias ? bias[ch] : 0), scales[ch], yz, {lo}, {hi})"
        else:
            epilogue = "acc_value"
        text = _try(k, lambda: emit_mapped_igemm(k, op, mapping, sources, "y0", k.ctype_out(),
                                                 len(op.output.index) - 1, epilogue))
        if text is not None:
            return f"/* {str(mapping).replace('*/', '* /')} */\n" + head + text
    lay = igemm_layout(k, m, nn, kd)
    k.need("igemm")
    ap = k.scratch(m * lay.kp * 2)
    bp = k.scratch(lay.panels(nn) * lay.kp * lay.nr * 2)
    acc = k.scratch(m * nn * 4)
    brs, bcs = (1, kd) if trans_b else (nn, 1)
    arr = lambda vals: "{" + ", ".join(str(v) for v in vals) + "}"  # noqa: E731
    return head + f"""static const int64_t a_off[] = {arr(a_off)}, b_off[] = {arr(b_off)};
int16_t *ap = (int16_t *){ap}, *bp = (int16_t *){bp};
int32_t *acc = (int32_t *){acc};
for (int64_t t = 0; t < {len(a_off)}; t++) {{
  tw_ipack_a(x{ai} + a_off[t] * {m * kd}, {_is_signed(k, ai)}, {kd}, 1, az[0], NULL, {m}, {kd}, {lay.kp}, ap);
  tw_ipack_b(x{bi} + b_off[t] * {kd * nn}, {_is_signed(k, bi)}, {brs}, {bcs}, bz, 0, {kd}, {nn}, {lay.kp}, {lay.nr},
             {lay.kg}, bp);
  tw_igemm({m}, {nn}, {lay.kp}, ap, bp, acc, {nn});
  {k.ctype_out()} *dst = y0 + t * {m * nn};
  {_epilogue(k, m, nn, "acc", "dst", "0", mode, col_channels=True)}
}}
"""

