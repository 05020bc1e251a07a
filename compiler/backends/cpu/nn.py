"""Neural-network kernels: float Conv / MatMul / Gemm (on the packed sgemm helper), pooling,
BatchNormalization (inference), Softmax / LogSoftmax, reductions, ArgMax / ArgMin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .cgen import FUSED_RELU, KernelContext, c_literal, emitter, highest, is_float, lowest, nest, strides


def conv_geometry(k: KernelContext, x_shape: Sequence[int], w_shape: Sequence[int],
                  out_shape: Sequence[int]) -> dict[str, int]:
    """Strides, dilations and leading pads of a 1-D or 2-D conv / pool as a 2-D one (a 1-D one has H = 1)."""
    spatial = len(x_shape) - 2
    if spatial not in (1, 2):
        k.unsupported(f"{spatial}-D {k.op} (1-D and 2-D only)")
    ks = list(w_shape[-spatial:])
    st = list(k.attr("strides", [1] * spatial))
    dil = list(k.attr("dilations", [1] * spatial))
    pads = list(k.attr("pads", [0] * (2 * spatial)))
    auto = k.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * spatial)
        for d in range(spatial):
            total = max(0, (out_shape[2 + d] - 1) * st[d] + (ks[d] - 1) * dil[d] + 1 - x_shape[2 + d])
            pads[d] = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[d + spatial] = total - pads[d]
    elif auto == "VALID":
        pads = [0] * (2 * spatial)
    if spatial == 1:
        return dict(H=1, W=x_shape[2], R=1, S=ks[0], OH=1, OW=out_shape[2], sh=1, sw=st[0], ph=0, pw=pads[0],
                    dh=1, dw=dil[0], pb=0, pr=pads[1])
    return dict(H=x_shape[2], W=x_shape[3], R=ks[0], S=ks[1], OH=out_shape[2], OW=out_shape[3], sh=st[0],
                sw=st[1], ph=pads[0], pw=pads[1], dh=dil[0], dw=dil[1], pb=pads[2], pr=pads[3])


@emitter("Conv")
def emit_conv(k: KernelContext) -> str:
    if k.in_type(0).dtype != "float32":
        k.unsupported(f"Conv on {k.in_type(0).dtype} (float32; int8 goes through QLinearConv / ConvInteger)")
    x, w, y = k.in_shape(0), k.in_shape(1), k.out_shape()
    g = conv_geometry(k, x, w, y)
    groups = int(k.attr("group", 1))
    n, c = x[0], x[1]
    m = w[0]
    cg, mg = c // groups, m // groups
    kk = cg * g["R"] * g["S"]
    cols = g["OH"] * g["OW"]
    panels = (cols + 15) // 16
    k.need("sgemm")
    bp = k.scratch(panels * kk * 16 * 4)
    # epilogue: bias and a fused ReLU (attribute set by the fuse_relu pass), one pass over the output
    bv = "x2[o]" if k.has_input(2) else "0.0f"
    act = "v = v > 0.0f ? v : 0.0f; " if k.attr(FUSED_RELU, 0) else ""
    bias = (f"#pragma omp parallel for if ({m * cols} > 65536)\n"
            f"for (int64_t o = 0; o < {m}; o++) {{ const float bv = {bv}; float *row = y0 + (b * {m} + o) * {cols}; "
            f"for (int64_t j = 0; j < {cols}; j++) {{ float v = row[j] + bv; {act}row[j] = v; }} }}"
            ) if (k.has_input(2) or act) else ""
    pointwise = g["R"] == g["S"] == 1 and g["sh"] == g["sw"] == 1 and not (g["ph"] or g["pw"] or g["pb"] or g["pr"])
    # a 1x1, stride-1, unpadded conv is a plain GEMM over the image: pack it without im2col
    pack = ("tw_pack_b(x0 + (b * {c} + gi * {cg}) * {hw}, {cols}, 1, {cg}, {cols}, bp);"
            if pointwise else
            """tw_im2col_packed(x0 + (b * {c} + gi * {cg}) * {hw}, {cg}, {H}, {W}, {R}, {S}, {OH}, {OW}, {sh}, {sw},
                     {ph}, {pw}, {dh}, {dw}, bp);""").format(c=c, cg=cg, hw=g["H"] * g["W"], cols=cols, **g)
    return f"""float *bp = (float *){bp};
for (int64_t b = 0; b < {n}; b++) {{
  for (int64_t gi = 0; gi < {groups}; gi++) {{
    {pack}
    tw_sgemm({mg}, {cols}, {kk}, x1 + gi * {mg * kk}, {kk}, 1, bp, y0 + (b * {m} + gi * {mg}) * {cols}, {cols});
  }}
  {bias}
}}
"""


def _matmul_batches(a: Sequence[int], b: Sequence[int], out: Sequence[int]) -> tuple[list[int], list[int]]:
    """Batch offsets (in matrices) into A and B for every output matrix, under broadcasting."""
    batch = list(out[:-2]) if len(out) >= 2 else []
    a_b = list(a[:-2])
    b_b = list(b[:-2])
    count = int(np.prod(batch, dtype=np.int64)) if batch else 1
    a_off, b_off = [], []
    def flat(idx: tuple[int, ...], dims: list[int]) -> int:
        pad = len(batch) - len(dims)
        off = 0
        for d, extent in enumerate(dims):
            off = off * extent + (idx[pad + d] if extent != 1 else 0)
        return off

    for idx in np.ndindex(*batch) if batch else [()]:
        a_off.append(flat(idx, a_b))
        b_off.append(flat(idx, b_b))
    assert len(a_off) == count
    return a_off, b_off


@emitter("MatMul")
def emit_matmul(k: KernelContext) -> str:
    a, b = list(k.in_shape(0)), list(k.in_shape(1))
    dtype = k.out_type().dtype
    if not is_float(dtype):
        k.unsupported(f"MatMul on {dtype} (float; int8 goes through QLinearMatMul / MatMulInteger)")
    a2 = [1] + a if len(a) == 1 else a
    b2 = b + [1] if len(b) == 1 else b
    m, kd, n = a2[-2], a2[-1], b2[-1]
    full = [*np.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2])), m, n]
    a_off, b_off = _matmul_batches(a2, b2, full)
    arr = lambda vals: "{" + ", ".join(str(v) for v in vals) + "}"  # noqa: E731
    if dtype == "float32":
        k.need("sgemm")
        bp = k.scratch(((n + 15) // 16) * kd * 16 * 4)
        return f"""static const int64_t a_off[] = {arr(a_off)}, b_off[] = {arr(b_off)};
float *bp = (float *){bp};
for (int64_t t = 0; t < {len(a_off)}; t++) {{
  tw_pack_b(x1 + b_off[t] * {kd * n}, {n}, 1, {kd}, {n}, bp);
  tw_sgemm({m}, {n}, {kd}, x0 + a_off[t] * {m * kd}, {kd}, 1, bp, y0 + t * {m * n}, {n});
}}
"""
    return f"""static const int64_t a_off[] = {arr(a_off)}, b_off[] = {arr(b_off)};
for (int64_t t = 0; t < {len(a_off)}; t++)
  for (int64_t i = 0; i < {m}; i++)
    for (int64_t j = 0; j < {n}; j++) {{
      double acc = 0;
      for (int64_t q = 0; q < {kd}; q++)
        acc += x0[a_off[t] * {m * kd} + i * {kd} + q] * x1[b_off[t] * {kd * n} + q * {n} + j];
      y0[t * {m * n} + i * {n} + j] = acc;
    }}
"""


def gemm_dims(k: KernelContext) -> tuple[int, int, int, int, int]:
    """A float32 Gemm node's (m, k, n, transA, transB); UnsupportedOp for other types."""
    if k.out_type().dtype != "float32":
        k.unsupported(f"Gemm on {k.out_type().dtype} (float32 only)")
    a, b = k.in_shape(0), k.in_shape(1)
    ta, tb = int(k.attr("transA", 0)), int(k.attr("transB", 0))
    m, kd = (a[1], a[0]) if ta else (a[0], a[1])
    return m, kd, b[0] if tb else b[1], ta, tb


@emitter("Gemm")
def emit_gemm(k: KernelContext) -> str:
    m, kd, n, ta, tb = gemm_dims(k)
    alpha = c_literal(k.attr("alpha", 1.0), "float32")
    beta = c_literal(k.attr("beta", 1.0), "float32")
    k.need("sgemm")
    bp = k.scratch(((n + 15) // 16) * kd * 16 * 4)
    ars, acs = (1, m) if ta else (kd, 1)
    brs, bcs = (1, kd) if tb else (n, 1)
    epilogue = f"for (int64_t i = 0; i < {m * n}; i++) y0[i] *= {alpha};\n" if k.attr("alpha", 1.0) != 1.0 else ""
    if k.has_input(2):
        cs = k.in_shape(2)
        c2 = [1] * (2 - len(cs)) + list(cs)
        rs = 0 if c2[0] == 1 else c2[1]
        cstride = 0 if c2[1] == 1 else 1
        epilogue += (f"for (int64_t i = 0; i < {m}; i++) for (int64_t j = 0; j < {n}; j++) "
                     f"y0[i * {n} + j] += {beta} * x2[i * {rs} + j * {cstride}];\n")
    return f"""float *bp = (float *){bp};
tw_pack_b(x1, {brs}, {bcs}, {kd}, {n}, bp);
tw_sgemm({m}, {n}, {kd}, x0, {ars}, {acs}, bp, y0, {n});
{epilogue}"""


@emitter("MaxPool", "AveragePool")
def emit_pool(k: KernelContext) -> str:
    x, y = k.in_shape(0), k.out_shape()
    dtype = k.out_type().dtype
    ct = k.ctype_out()
    spatial = len(x) - 2
    if spatial < 1:
        k.unsupported(f"{k.op} on a rank-{len(x)} tensor")
    ks = list(k.attr("kernel_shape"))
    st = list(k.attr("strides", [1] * spatial))
    dil = list(k.attr("dilations", [1] * spatial))
    pads = list(k.attr("pads", [0] * (2 * spatial)))
    auto = k.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        for d in range(spatial):
            total = max(0, (y[2 + d] - 1) * st[d] + (ks[d] - 1) * dil[d] + 1 - x[2 + d])
            pads[d] = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[d + spatial] = total - pads[d]
    elif auto == "VALID":
        pads = [0] * (2 * spatial)
    in_sp = list(x[2:])
    if k.op == "MaxPool" and spatial == 2 and not (len(k.node.outputs) > 1 and k.node.outputs[1]):
        return _maxpool_2d(k, x, y, ks, st, dil, pads)
    in_st = strides(in_sp)
    # Indices of MaxPool: row-major offsets, or column-major ones with storage_order=1
    index_st = strides(in_sp[::-1])[::-1] if int(k.attr("storage_order", 0)) else in_st
    is_max = k.op == "MaxPool"
    with_index = is_max and len(k.node.outputs) > 1 and bool(k.node.outputs[1])
    include_pad = int(k.attr("count_include_pad", 0))
    acc_t = ct if is_max else ("double" if dtype == "float64" else "float")
    lines = [f"{acc_t} acc = {lowest(dtype) if is_max else '0'}; int64_t cnt = 0, cnt_pad = 0, arg = -1;",
             f"const {ct} *plane = x0 + p * {int(np.prod(in_sp))};"]
    for d in range(spatial):
        lines.append(f"for (int64_t q{d} = 0; q{d} < {ks[d]}; q{d}++) {{")
        lines.append(f"const int64_t c{d} = o{d} * {st[d]} - {pads[d]} + q{d} * {dil[d]};")
        lines.append(f"const int inpad{d} = c{d} < {in_sp[d] + pads[d + spatial]};")
        lines.append(f"const int in{d} = c{d} >= 0 && c{d} < {in_sp[d]};")
    inside = " && ".join(f"in{d}" for d in range(spatial))
    in_padded = " && ".join(f"inpad{d}" for d in range(spatial))
    at = " + ".join(f"c{d} * {in_st[d]}" for d in range(spatial))
    index_at = " + ".join(f"c{d} * {index_st[d]}" for d in range(spatial))
    lines.append(f"cnt_pad += {in_padded};")
    if is_max:
        lines.append(f"if ({inside}) {{ const {ct} v = plane[{at}]; if (v > acc || arg < 0) {{ acc = v; "
                     f"arg = {index_at}; }} }}")
    else:
        lines.append(f"if ({inside}) {{ acc += plane[{at}]; cnt++; }}")
    lines += ["}"] * spatial
    out_sp = list(y[2:])
    out_index = " + ".join(f"o{d} * {strides(out_sp)[d]}" for d in range(spatial))
    plane_out = int(np.prod(out_sp))
    if is_max:
        lines.append(f"y0[p * {plane_out} + {out_index}] = acc;")
        if with_index:
            lines.append(f"y1[p * {plane_out} + {out_index}] = p * {int(np.prod(in_sp))} + arg;")
    else:
        div = "cnt_pad" if include_pad else "cnt"
        lines.append(f"y0[p * {plane_out} + {out_index}] = ({ct})(cnt ? acc / {div} : 0);")
    # one loop over every output (planes x positions): independent iterations, which OpenMP threads and
    # the GPU back end's work-items share evenly
    out_st = strides(out_sp)
    index = [f"const int64_t p = e / {plane_out};"] + [
        f"const int64_t o{d} = (e / {out_st[d]}) % {out_sp[d]};" for d in range(spatial)]
    body = "\n".join(index + lines)
    planes = x[0] * x[1]
    pragma = "#pragma omp parallel for\n" if planes * plane_out * int(np.prod(ks)) >= 65536 else ""
    return f"{pragma}for (int64_t e = 0; e < {planes * plane_out}; e++) {{\n{body}\n}}\n"


def _maxpool_2d(k: KernelContext, x: Sequence[int], y: Sequence[int], ks: list[int], st: list[int],
                dil: list[int], pads: list[int]) -> str:
    """2-D MaxPool with the window clamped to the image once per output pixel (no per-tap bounds tests)."""
    h, w, oh, ow = x[2], x[3], y[2], y[3]
    planes = x[0] * x[1]
    ct = k.ctype_out()
    pragma = "#pragma omp parallel for\n" if planes * oh * ow * ks[0] * ks[1] >= 65536 else ""
    return f"""{pragma}for (int64_t e = 0; e < {planes * oh * ow}; e++) {{
  const int64_t p = e / {oh * ow}, i = (e / {ow}) % {oh}, j = e % {ow};
  const {ct} *plane = x0 + p * {h * w};
  const int64_t hs = i * {st[0]} - {pads[0]};
  const int64_t r0 = hs < 0 ? (-hs + {dil[0] - 1}) / {dil[0]} : 0;
  int64_t r1 = ({h} - hs + {dil[0] - 1}) / {dil[0]}; if (r1 > {ks[0]}) r1 = {ks[0]};
  const int64_t ws = j * {st[1]} - {pads[1]};
  const int64_t s0 = ws < 0 ? (-ws + {dil[1] - 1}) / {dil[1]} : 0;
  int64_t s1 = ({w} - ws + {dil[1] - 1}) / {dil[1]}; if (s1 > {ks[1]}) s1 = {ks[1]};
  {ct} acc = {lowest(k.out_type().dtype)};
  for (int64_t r = r0; r < r1; r++)
    for (int64_t s = s0; s < s1; s++) {{
      const {ct} v = plane[(hs + r * {dil[0]}) * {w} + ws + s * {dil[1]}];
      acc = v > acc ? v : acc;
    }}
  y0[e] = acc;
}}
"""


@emitter("GlobalAveragePool", "GlobalMaxPool")
def emit_global_pool(k: KernelContext) -> str:
    x = k.in_shape(0)
    planes = x[0] * x[1]
    size = int(np.prod(x[2:], dtype=np.int64))
    dtype = k.out_type().dtype
    if k.op == "GlobalMaxPool":
        body = f"float acc = {lowest(dtype)}; for (int64_t i = 0; i < {size}; i++) acc = src[i] > acc ? src[i] : acc;"
        store = "acc"
    else:
        body = f"double acc = 0; for (int64_t i = 0; i < {size}; i++) acc += src[i];"
        store = f"acc / {size}"
    return f"""#pragma omp parallel for if ({planes * size} > 65536)
for (int64_t p = 0; p < {planes}; p++) {{
  const {k.ctype_in(0)} *src = x0 + p * {size};
  {body}
  y0[p] = ({k.ctype_out()})({store});
}}
"""


@emitter("BatchNormalization")
def emit_batchnorm(k: KernelContext) -> str:
    if int(k.attr("training_mode", 0)) or len([v for v in k.node.outputs if v]) > 1:
        k.unsupported("BatchNormalization in training mode (inference only)")
    x = k.in_shape(0)
    c = x[1] if len(x) > 1 else 1
    inner = int(np.prod(x[2:], dtype=np.int64))
    eps = c_literal(k.attr("epsilon", 1e-5), "float32")
    ct = k.ctype_out()
    return f"""#pragma omp parallel for if ({x[0] * c * inner} > 65536)
for (int64_t p = 0; p < {x[0] * c}; p++) {{
  const int64_t ch = p % {c};
  const {ct} sc = x1[ch] / sqrt(x4[ch] + ({ct}){eps});
  const {ct} sh = x2[ch] - x3[ch] * sc;
  for (int64_t i = 0; i < {inner}; i++) y0[p * {inner} + i] = x0[p * {inner} + i] * sc + sh;
}}
"""


@emitter("Softmax", "LogSoftmax")
def emit_softmax(k: KernelContext) -> str:
    x = k.in_shape(0)
    axis = k.axis(int(k.attr("axis", -1)), len(x))
    outer = int(np.prod(x[:axis], dtype=np.int64))
    n = x[axis]
    inner = int(np.prod(x[axis + 1:], dtype=np.int64))
    ct = k.ctype_out()
    final = "y0[at(j)] = y0[at(j)] / sum;" if k.op == "Softmax" else "y0[at(j)] = (x0[at(j)] - mx) - log(sum);"
    return f"""#define at(j) (o * {n * inner} + (j) * {inner} + q)
#pragma omp parallel for collapse(2) if ({outer * n * inner} > 65536)
for (int64_t o = 0; o < {outer}; o++)
  for (int64_t q = 0; q < {inner}; q++) {{
    {ct} mx = -INFINITY;
    for (int64_t j = 0; j < {n}; j++) mx = x0[at(j)] > mx ? x0[at(j)] : mx;
    {ct} sum = 0;
    for (int64_t j = 0; j < {n}; j++) {{ const {ct} e = exp(x0[at(j)] - mx); y0[at(j)] = e; sum += e; }}
    for (int64_t j = 0; j < {n}; j++) {final}
  }}
#undef at
"""


REDUCE = {
    # op: (initial value, accumulate, finish) over the accumulator `acc`, element `v`, count `cnt`
    "ReduceSum": ("0", "acc += v;", "acc"),
    "ReduceMean": ("0", "acc += v;", "acc / cnt"),
    "ReduceProd": ("1", "acc *= v;", "acc"),
    "ReduceMax": (None, "acc = v > acc ? v : acc;", "acc"),
    "ReduceMin": (None, "acc = v < acc ? v : acc;", "acc"),
    "ReduceL1": ("0", "acc += fabs(v);", "acc"),
    "ReduceL2": ("0", "acc += v * v;", "sqrt(acc)"),
    "ReduceSumSquare": ("0", "acc += v * v;", "acc"),
    "ReduceLogSumExp": ("0", "acc += exp(v);", "log(acc)"),
    "ReduceLogSum": ("0", "acc += v;", "log(acc)"),
}


@emitter(*REDUCE)
def emit_reduce(k: KernelContext) -> str:
    x = k.in_shape(0)
    rank = len(x)
    dtype = k.out_type().dtype
    ct = k.ctype_out()
    init, step, finish = REDUCE[k.op]
    if init is None:
        init = lowest(dtype) if k.op == "ReduceMax" else highest(dtype)
    acc_t = "double" if is_float(dtype) else ct
    if dtype == "bool":
        acc_t = "int"
    noop = int(k.attr("noop_with_empty_axes", 0))
    # axes: an attribute (old opsets) or an optional int64 input (read at run time).
    attr_axes = k.attr("axes")
    axes_input = k.has_input(1)
    lines = [f"int red[{max(rank, 1)}] = {{0}}; int64_t n_axes = 0;"]
    if axes_input:
        n_axes = k.in_shape(1)[0]
        lines.append(f"for (int64_t j = 0; j < {n_axes}; j++) {{ int64_t a = x1[j]; if (a < 0) a += {rank}; "
                     f"if (a < 0 || a >= {rank}) continue; red[a] = 1; n_axes++; }}")
    elif attr_axes is not None:
        for a in attr_axes:
            lines.append(f"red[{k.axis(int(a), rank)}] = 1; n_axes++;")
    if noop:
        nbytes = k.in_type(0).size * np.dtype(dtype).itemsize
        lines.append(f"if (n_axes == 0) {{ memcpy(y0, x0, {nbytes}); return; }}")
    lines.append(f"if (n_axes == 0) for (int d = 0; d < {rank}; d++) red[d] = 1;")
    # output strides over the keepdims shape; reduced dims get stride 0
    lines.append(f"int64_t ost[{max(rank, 1)}]; int64_t run = 1, cnt = 1, out_n = 1;")
    lines.append(f"const int64_t dims[{max(rank, 1)}] = {{{', '.join(str(d) for d in x) or '0'}}};")
    lines.append(f"for (int d = {rank} - 1; d >= 0; d--) {{ if (red[d]) {{ ost[d] = 0; cnt *= dims[d]; }} "
                 "else { ost[d] = run; run *= dims[d]; } }")
    lines.append("out_n = run;")
    lines.append(f"{acc_t} *acc_buf = ({acc_t} *)s0;")
    k.scratch(max(1, k.out_type().size) * 8)
    lines.append(f"for (int64_t i = 0; i < out_n; i++) acc_buf[i] = {init};")
    in_st = strides(x)
    body = [f"const int64_t o = {' + '.join(f'i{d}*ost[{d}]' for d in range(rank)) or '0'};",
            f"const {acc_t} v = x0[{' + '.join(f'i{d}*{in_st[d]}' for d in range(rank)) or '0'}];",
            f"{acc_t} acc = acc_buf[o];", step, "acc_buf[o] = acc;"]
    lines.append(nest(x, {}, "\n".join(body)))
    lines.append(f"for (int64_t i = 0; i < out_n; i++) {{ const {acc_t} acc = acc_buf[i]; (void)cnt; "
                 f"y0[i] = ({ct})({finish}); }}")
    return "\n".join(lines) + "\n"


@emitter("ArgMax", "ArgMin")
def emit_arg(k: KernelContext) -> str:
    x = k.in_shape(0)
    axis = k.axis(int(k.attr("axis", 0)), len(x))
    outer = int(np.prod(x[:axis], dtype=np.int64))
    n = x[axis]
    inner = int(np.prod(x[axis + 1:], dtype=np.int64))
    last = int(k.attr("select_last_index", 0))
    cmp = ">" if k.op == "ArgMax" else "<"
    better = f"v {cmp}= best" if last else f"v {cmp} best"
    return f"""for (int64_t o = 0; o < {outer}; o++)
  for (int64_t q = 0; q < {inner}; q++) {{
    {k.ctype_in(0)} best = x0[o * {n * inner} + q]; int64_t arg = 0;
    for (int64_t j = 1; j < {n}; j++) {{
      const {k.ctype_in(0)} v = x0[(o * {n} + j) * {inner} + q];
      if ({better}) {{ best = v; arg = j; }}
    }}
    y0[o * {inner} + q] = arg;
  }}
"""
