"""Integer Conv / MatMul lowered through the UNIT tensorizer onto the x86 int8 dot intrinsic.

`tensorize(op_nest, x86_avx2_dot())` (tensorweave.compiler.loopnest) decides the loop mapping: which
operator loops fuse onto the intrinsic's lanes `o` (for a conv: the output channels k; for a matmul: the
columns j), which fuse onto its reduction `i` (conv: r x s x c, in that order: im2col as an index map),
and which stay outside. This module emits C from that mapping alone, reading every address from the
operator nest's affine index maps:

- reduction loops left outside join the packed reduction (outermost); outer spatial loops that index
  the lane operand (the weights; e.g. the conv group g) become separate GEMMs;
  the other outer loops (n, oh, ow) are fused into the rows of the broadcast operand;
- copy the broadcast operand (activations) so the innermost reduction loop is unit-stride (NCHW ->
  NHWC for a conv: UNIT's layout precondition), as int16 minus its zero point;
- pack B (lane operand) as panels of 2 x `lanes` columns by groups of `kg` (= the intrinsic's reduction
  extent) reduction steps; pack A row by row, reading zero outside the tensor (padding);
- a register tile of MR rows x 2 intrinsic calls: one intrinsic call is `lanes` int32 lanes each
  accumulating a `kg`-deep dot product; emitted with AVX2 `vpmaddwd` on int16 operands (two per 4-deep
  dot, then one `vphaddd` per tile at the end), so it is exact for any int8/uint8 data and zero points,
  where the intrinsic's own `vpmaddubsw` would saturate int16 pair sums;
- write back through the output's index map with the requantization epilogue.

The op nest is built with the intrinsic's operand dtypes (u8 x s8) for matching: after zero-point
subtraction every operand is an int16 value, so the dtype of the original tensors does not change
the arithmetic the emitted code performs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ...loopnest import LoopNest, Mapping, Operand, TensorizeError, tensorize, x86_avx2_dot
from .cgen import KernelContext

MR = 3  # rows per register tile: 3 rows x 2 calls x 2 half-accumulators = 12 ymm, + 4 B loads


@dataclass(frozen=True)
class Source:
    """Where an operator operand's values come from in C: pointer, signedness, zero point."""

    param: str
    signed: bool
    zp: str                 # C expression of the zero point, may use `zp_index`
    zp_dim: int | None = None  # the operand dimension whose index selects a per-channel zero point
    constant: bool = False     # a graph constant: packed once when the executable loads (tw_prepare)


def mapping_for(k: KernelContext, op: LoopNest) -> Mapping:
    try:
        return tensorize(op, x86_avx2_dot())
    except TensorizeError as exc:
        k.unsupported(f"an int8 kernel the x86 dot intrinsic does not map: {exc}")
        raise


def _var(name: str) -> str:
    return f"it_{name}"


def _loops(iterators: list[tuple[str, int]], body: str, parallel_work: int = 0) -> str:
    """Nested loops (outermost first); OpenMP over all of them (collapsed) when `parallel_work` is large."""
    for name, extent in reversed(iterators):
        body = f"for (int64_t {_var(name)} = 0; {_var(name)} < {extent}; {_var(name)}++) {{\n{body}\n}}"
    if iterators and parallel_work >= 65536:
        body = f"#pragma omp parallel for collapse({len(iterators)})\n" + body
    return body


def _linear(iterators: list[tuple[str, int]]) -> str:
    """The row-major linear index of the loop variables of `iterators`."""
    expr = "0"
    for name, extent in iterators:
        expr = f"({expr} * {extent} + {_var(name)})"
    return expr


def _affine(expr) -> str:
    parts = [f"{c}*{_var(n)}" if c != 1 else _var(n) for n, c in expr.terms]
    if expr.constant or not parts:
        parts.append(str(expr.constant))
    return "(" + " + ".join(parts) + ")"


def _address(operand: Operand) -> tuple[str, str]:
    """(linear element offset, in-bounds condition) of an operand access."""
    stride, terms, conds = 1, [], []
    for extent, expr in reversed(list(zip(operand.shape, operand.index))):
        e = _affine(expr)
        terms.append(f"{e}*{stride}")
        if expr.constant or len(expr.terms) > 1:
            conds.append(f"{e} >= 0 && {e} < {extent}")
        stride *= extent
    return " + ".join(reversed(terms)) or "0", " && ".join(conds) or "1"


def _read(operand: Operand, src: Source) -> str:
    at, cond = _address(operand)
    if src.zp == "prepared":  # already int16 with the zero point subtracted (see _relayout)
        return f"(({cond}) ? {src.param}[{at}] : (int16_t)0)"
    ctype = "int8_t" if src.signed else "uint8_t"
    zp = src.zp
    if src.zp_dim is not None:
        zp = zp.replace("zp_index", _affine(operand.index[src.zp_dim]))
    return f"(({cond}) ? (int16_t)((int32_t)((const {ctype} *){src.param})[{at}] - ({zp})) : (int16_t)0)"


def _relayout(k: KernelContext, operand: Operand, src: Source, innermost: str) -> tuple[Operand, Source, str]:
    """Layout precondition (UNIT): copy the broadcast operand so the dimension indexed by the innermost
    reduction loop is the last one (NCHW -> NHWC for a conv), as int16 with its zero point subtracted.
    Returns the operand as read from the copy, its source, and the C that makes the copy."""
    dims = [d for d, e in enumerate(operand.index) if innermost in e.iterators]
    if len(dims) != 1 or dims[0] == len(operand.shape) - 1:
        return operand, src, ""
    d = dims[0]
    perm = [i for i in range(len(operand.shape)) if i != d] + [d]
    shape = tuple(operand.shape[i] for i in perm)
    moved = Operand(operand.tensor, "int16", shape, tuple(operand.index[i] for i in perm))
    buffer = k.scratch(math.prod(shape) * 2)
    in_strides = [math.prod(operand.shape[i + 1:]) for i in range(len(operand.shape))]
    ctype = "int8_t" if src.signed else "uint8_t"
    loops = [(f"t{i}", extent) for i, extent in enumerate(shape)]
    src_at = " + ".join(f"{_var(f't{i}')}*{in_strides[perm[i]]}" for i in range(len(shape)))
    copy = _loops(loops, f"xt[{_linear(loops)}] = (int16_t)((int32_t)((const {ctype} *){src.param})[{src_at}] "
                         f"- ({src.zp}));", parallel_work=math.prod(shape))
    return moved, Source("xt", True, "prepared"), f"int16_t *xt = (int16_t *){buffer};\n{copy}\n"


def _pack_row(operand: Operand, src: Source, red_it: list[tuple[str, int]]) -> str:
    """C filling row[f...] with the operand along the reduction loops. When the innermost one runs with unit
    stride along the operand's last dimension (after _relayout), each run is one memcpy if both of its ends
    are inside the tensor (the bounds are affine, so the ends decide), else element by element."""
    element = f"row[f] = {_read(operand, src)};\nf++;"
    name, extent = red_it[-1]
    last = operand.index[-1]
    unit = (src.zp == "prepared" and last.coefficient(name) == 1
            and all(name not in e.iterators for e in operand.index[:-1]))
    if not unit:
        return _loops(red_it, element)
    at, cond = _address(operand)
    var = re.compile(rf"\b{_var(name)}\b")
    first = var.sub("0", at)
    inside = f"({var.sub('0', cond)}) && ({var.sub(f'({extent - 1})', cond)})"
    run = (f"if ({inside}) {{\n  memcpy(row + f, {src.param} + {first}, {extent} * sizeof(int16_t));\n"
           f"  f += {extent};\n}} else {{\n{_loops([(name, extent)], element)}\n}}")
    return _loops(red_it[:-1], run)


def emit_mapped_igemm(k: KernelContext, op: LoopNest, mapping: Mapping, sources: dict[str, Source],
                      y_param: str, y_ctype: str, channel_dim: int, epilogue: str) -> str:
    """C for `op` (an integer product nest) via `mapping`; `epilogue` is a C statement turning the int32
    `acc_value` at output channel `ch` into the value stored (e.g. a requantization)."""
    lane, red = mapping.axis("o"), mapping.axis("i")
    lanes, kg = lane.extent, red.extent
    if kg % 2:
        k.unsupported(f"an intrinsic reduction of {kg} (the int16 emitter needs an even group)")
    by_name = {o.tensor: o for o in (*op.inputs, op.output)}
    a_op = by_name[dict(mapping.operands)["a"]]
    b_op = by_name[dict(mapping.operands)["b"]]
    y_op = op.output
    b_iters = {n for e in b_op.index for n in e.iterators}
    spatial_outer = [it for it in mapping.outer if it.kind == "spatial"]
    groups = [(it.name, it.extent) for it in spatial_outer if it.name in b_iters]
    rows_it = [(it.name, it.extent) for it in spatial_outer if it.name not in b_iters]
    lane_it = list(zip(lane.operator, lane.extents))
    # reduction loops the tensorizer left outside (e.g. r, s of a 1x1 conv) are accumulated by the same
    # GEMM: they join the packed reduction as its outermost part.
    red_it = [(it.name, it.extent) for it in mapping.outer if it.kind != "spatial"] + list(zip(red.operator,
                                                                                               red.extents))
    prepare = ""
    a_src = sources[a_op.tensor]
    if a_src.zp_dim is None:
        a_op, a_src, prepare = _relayout(k, a_op, a_src, red_it[-1][0])
    rows = math.prod(e for _, e in rows_it)
    n = math.prod(e for _, e in lane_it)
    kd = math.prod(e for _, e in red_it)
    kp = -(-kd // kg) * kg
    nr = 2 * lanes
    panels = -(-n // nr)
    ap = k.scratch(rows * kp * 2)
    group_size = panels * nr * kp
    prepack = sources[b_op.tensor].constant
    bp = k.scratch((math.prod(e for _, e in groups) if prepack else 1) * group_size * 2)
    acc = k.scratch(rows * n * 4)
    k.need(f"igemm_mapped_{lanes}_{kg}")
    y_at, _ = _address(y_op)
    ch = _affine(y_op.index[channel_dim])
    pack_b = _loops(red_it, "int64_t j = 0;\n" + _loops(
        lane_it, f"bpg[(((j / {nr}) * {kp // kg} + f / {kg}) * {nr} + j % {nr}) * {kg} + f % {kg}] = "
                 f"{_read(b_op, sources[b_op.tensor])};\nj++;") + "\nf++;")
    p = _linear(rows_it)
    pack_a = _loops(rows_it, f"int16_t *row = ap + {p} * {kp};\nint64_t f = 0;\n" + _pack_row(a_op, a_src, red_it)
                    + "\nfor (; f < " + str(kp) + "; f++) row[f] = 0;", parallel_work=rows * kp)
    store = _loops(rows_it, "int64_t j = 0;\n" + _loops(
        lane_it, f"const int32_t acc_value = acc[{p} * {n} + j];\nconst int64_t ch = {ch};\n(void)ch;\n"
                 f"{y_param}[{y_at}] = ({y_ctype})({epilogue});\nj++;"), parallel_work=rows * n)
    g_at = _linear(groups) if prepack else "0"
    pack_b = f"""int16_t *bpg = bp + {g_at} * {group_size};
memset(bpg, 0, {group_size * 2});
{{ int64_t f = 0;
{pack_b}
}}"""
    if prepack:  # constant weights: packed once, when the executable is loaded
        k.prepare_body.append(f"int16_t *bp = (int16_t *){bp};\n" + _loops(groups, pack_b) + "\n")
        pack_b = f"const int16_t *bpg = bp + {g_at} * {group_size};"
    body = f"""{pack_b}
{pack_a}
tw_igemm_mapped_{lanes}_{kg}({rows}, {n}, {kp}, ap, bpg, acc);
{store}
"""
    return (f"int16_t *ap = (int16_t *){ap}, *bp = (int16_t *){bp};\nint32_t *acc = (int32_t *){acc};\n"
            + prepare + _loops(groups, body) + "\n")


def igemm_mapped_source(lanes: int, kg: int) -> str:
    """The register-tiled int32 GEMM for an intrinsic of `lanes` int32 lanes x `kg`-deep dots."""
    nr = 2 * lanes
    name = f"tw_igemm_mapped_{lanes}_{kg}"
    avx2 = lanes == 8 and kg in (2, 4)
    vec = ""
    if avx2 and kg == 4:
        # one intrinsic call = 8 lanes x 4-deep dot: two vpmaddwd over 4 columns each, pair partial sums
        # kept per half and folded once at the end with vphaddd + a cross-lane permute.
        vec = f"""
#ifdef __AVX2__
      __m256i acc_[{MR}][4];
      for (int r = 0; r < {MR}; r++) for (int h = 0; h < 4; h++) acc_[r][h] = _mm256_setzero_si256();
      for (int64_t f = 0; f < Kp; f += 4) {{
        const int16_t *b = bp + f * {nr};
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        const __m256i b2 = _mm256_loadu_si256((const __m256i *)(b + 32));
        const __m256i b3 = _mm256_loadu_si256((const __m256i *)(b + 48));
        for (int r = 0; r < {MR}; r++) {{
          int64_t four; memcpy(&four, a[r] + f, 8);
          const __m256i v = _mm256_set1_epi64x(four);
          acc_[r][0] = _mm256_add_epi32(acc_[r][0], _mm256_madd_epi16(v, b0));
          acc_[r][1] = _mm256_add_epi32(acc_[r][1], _mm256_madd_epi16(v, b1));
          acc_[r][2] = _mm256_add_epi32(acc_[r][2], _mm256_madd_epi16(v, b2));
          acc_[r][3] = _mm256_add_epi32(acc_[r][3], _mm256_madd_epi16(v, b3));
        }}
      }}
      for (int r = 0; r < {MR}; r++) {{
        const __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc_[r][0], acc_[r][1]), 0xD8);
        const __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc_[r][2], acc_[r][3]), 0xD8);
        _mm256_storeu_si256((__m256i *)out[r], lo);
        _mm256_storeu_si256((__m256i *)(out[r] + 8), hi);
      }}
#else
"""
    elif avx2:
        vec = f"""
#ifdef __AVX2__
      __m256i acc_[{MR}][2];
      for (int r = 0; r < {MR}; r++) for (int h = 0; h < 2; h++) acc_[r][h] = _mm256_setzero_si256();
      for (int64_t f = 0; f < Kp; f += 2) {{
        const int16_t *b = bp + f * {nr};
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        for (int r = 0; r < {MR}; r++) {{
          int32_t two; memcpy(&two, a[r] + f, 4);
          const __m256i v = _mm256_set1_epi32(two);
          acc_[r][0] = _mm256_add_epi32(acc_[r][0], _mm256_madd_epi16(v, b0));
          acc_[r][1] = _mm256_add_epi32(acc_[r][1], _mm256_madd_epi16(v, b1));
        }}
      }}
      for (int r = 0; r < {MR}; r++) {{
        _mm256_storeu_si256((__m256i *)out[r], acc_[r][0]);
        _mm256_storeu_si256((__m256i *)(out[r] + 8), acc_[r][1]);
      }}
#else
"""
    scalar = f"""
      for (int r = 0; r < {MR}; r++) for (int c = 0; c < {nr}; c++) out[r][c] = 0;
      for (int64_t f = 0; f < Kp; f++)
        for (int r = 0; r < {MR}; r++)
          for (int c = 0; c < {nr}; c++)
            out[r][c] += (int32_t)a[r][f] * bp[((f / {kg}) * {nr} + c) * {kg} + f % {kg}];
"""
    close = "#endif\n" if vec else ""
    return f"""
#ifdef __AVX2__
#include <immintrin.h>
#endif
/* int32 C[M][N] = A[M][Kp] . B; B packed in panels of {nr} columns x groups of {kg} (tensorized layout). */
static void {name}(int64_t M, int64_t N, int64_t Kp, const int16_t *Ap, const int16_t *Bp, int32_t *C) {{
  const int64_t np = (N + {nr - 1}) / {nr}, mb = (M + {MR - 1}) / {MR};
  #pragma omp parallel for collapse(2) schedule(static) if (M * N * Kp > 262144)
  for (int64_t ib = 0; ib < mb; ib++)
    for (int64_t jp = 0; jp < np; jp++) {{
      const int64_t i0 = ib * {MR}, j0 = jp * {nr};
      const int64_t rows = M - i0 < {MR} ? M - i0 : {MR}, cols = N - j0 < {nr} ? N - j0 : {nr};
      const int16_t *a[{MR}];
      for (int r = 0; r < {MR}; r++) a[r] = Ap + (i0 + (r < rows ? r : 0)) * Kp;
      const int16_t *bp = Bp + jp * Kp * {nr};
      int32_t out[{MR}][{nr}];
{vec}{scalar}{close}
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) C[(i0 + r) * N + j0 + c] = out[r][c];
    }}
}}
"""
