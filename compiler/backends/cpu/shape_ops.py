"""Data-movement kernels: Reshape and friends (copies), Transpose, Concat, Slice, Gather, Expand, Tile,
Shape, Size, Pad.

Output shapes come from the graph IR. Parameters that ONNX passes as tensors (Slice starts, Pad pads,
Gather indices) are read at run time, so one library serves any values that give the same shapes.
"""

from __future__ import annotations

import numpy as np

from .cgen import KernelContext, bcast_strides, emitter, nest, strides


def _copy(k: KernelContext) -> str:
    nbytes = k.out_type().size * np.dtype(k.out_type().dtype).itemsize
    return f"memcpy(y0, x0, {nbytes});\n" if nbytes else ""


@emitter("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def emit_reshape(k: KernelContext) -> str:
    if k.in_type(0).size != k.out_type().size:
        k.unsupported(f"a reshape from {k.in_shape(0)} to {k.out_shape()} (sizes differ)")
    return _copy(k)


def _out_index(shape: tuple[int, ...]) -> str:
    st = strides(shape)
    terms = [f"i{d}*{st[d]}" for d in range(len(shape)) if shape[d] != 1]
    return " + ".join(terms) if terms else "0"


@emitter("Transpose")
def emit_transpose(k: KernelContext) -> str:
    shape = k.in_shape(0)
    rank = len(shape)
    perm = list(k.attr("perm", list(range(rank - 1, -1, -1))))
    in_st = strides(shape)
    out = k.out_shape()
    return nest(out, {"src": [in_st[p] for p in perm]}, f"y0[{_out_index(out)}] = x0[src];", parallel=True)


@emitter("Concat")
def emit_concat(k: KernelContext) -> str:
    out = k.out_shape()
    axis = k.axis(int(k.attr("axis")), len(out))
    outer = int(np.prod(out[:axis], dtype=np.int64))
    inner = int(np.prod(out[axis + 1:], dtype=np.int64))
    item = np.dtype(k.out_type().dtype).itemsize
    lines, offset = [], 0
    for j, value in enumerate(k.node.inputs):
        if not value:
            continue
        extent = k.in_shape(j)[axis]
        chunk = extent * inner
        if chunk and outer:
            lines.append(f"for (int64_t o = 0; o < {outer}; o++) memcpy(y0 + o*{out[axis] * inner} + {offset}, "
                         f"x{j} + o*{chunk}, {chunk * item});")
        offset += chunk
    return "\n".join(lines) + "\n"


@emitter("Slice")
def emit_slice(k: KernelContext) -> str:
    shape = k.in_shape(0)
    rank = len(shape)
    out = k.out_shape()
    n_axes = k.in_shape(1)[0]
    axes = "x3[j]" if k.has_input(3) else "j"
    step = "x4[j]" if k.has_input(4) else "1"
    dims = ", ".join(str(d) for d in shape) or "0"
    in_st = strides(shape)
    # start index and step per axis, clamped as the ONNX spec says; the output shape is already known.
    head = f"""int64_t st[{max(rank, 1)}] = {{0}}, sp[{max(rank, 1)}];
const int64_t dims[{max(rank, 1)}] = {{{dims}}};
for (int d = 0; d < {rank}; d++) sp[d] = 1;
for (int64_t j = 0; j < {n_axes}; j++) {{
  int64_t a = {axes}; if (a < 0) a += {rank};
  if (a < 0 || a >= {rank}) continue;  /* never index outside the shape (inference rejects such axes) */
  const int64_t dim = dims[a], p = {step};
  int64_t s = x1[j];
  if (s < 0) s += dim;
  if (p > 0) s = s < 0 ? 0 : (s > dim ? dim : s);
  else s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
  st[a] = s; sp[a] = p;
}}
int64_t base = 0;
for (int d = 0; d < {rank}; d++) base += st[d] * {_c_array(in_st)}[d];
"""
    terms = [f"i{d}*sp[{d}]*{in_st[d]}" for d in range(rank) if out[d] != 1]
    src = "base" + "".join(f" + {t}" for t in terms)
    return head + nest(out, {}, f"y0[{_out_index(out)}] = x0[{src}];")


def _c_array(values: list[int]) -> str:
    return f"((const int64_t[]){{{', '.join(str(v) for v in values) or '0'}}})"


@emitter("Gather")
def emit_gather(k: KernelContext) -> str:
    data = k.in_shape(0)
    axis = k.axis(int(k.attr("axis", 0)), len(data))
    outer = int(np.prod(data[:axis], dtype=np.int64))
    inner = int(np.prod(data[axis + 1:], dtype=np.int64))
    n_idx = k.in_type(1).size
    dim = data[axis]
    item = np.dtype(k.out_type().dtype).itemsize
    return f"""for (int64_t o = 0; o < {outer}; o++)
  for (int64_t j = 0; j < {n_idx}; j++) {{
    int64_t ix = (int64_t)x1[j];
    if (ix < 0) ix += {dim};
    if (ix < 0 || ix >= {dim}) ix = 0;  /* out of range is an error in ONNX; never read outside */
    memcpy(y0 + (o*{n_idx} + j)*{inner}, x0 + (o*{dim} + ix)*{inner}, {inner * item});
  }}
"""


@emitter("Expand")
def emit_expand(k: KernelContext) -> str:
    out = k.out_shape()
    return nest(out, {"src": bcast_strides(k.in_shape(0), out)}, f"y0[{_out_index(out)}] = x0[src];", parallel=True)


@emitter("Tile")
def emit_tile(k: KernelContext) -> str:
    shape = k.in_shape(0)
    out = k.out_shape()
    st = strides(shape)
    terms = [f"(i{d} % {shape[d]})*{st[d]}" for d in range(len(shape)) if shape[d] > 1]
    src = " + ".join(terms) if terms else "0"
    return nest(out, {}, f"y0[{_out_index(out)}] = x0[{src}];")


@emitter("Shape")
def emit_shape(k: KernelContext) -> str:
    shape = list(k.in_shape(0))
    rank = len(shape)
    start = int(k.attr("start", 0))
    end = k.attr("end")
    start = min(max(start + rank if start < 0 else start, 0), rank)
    stop = rank if end is None else min(max(int(end) + rank if int(end) < 0 else int(end), 0), rank)
    values = shape[start:stop]
    return "".join(f"y0[{i}] = {v}LL;\n" for i, v in enumerate(values))


@emitter("Size")
def emit_size(k: KernelContext) -> str:
    return f"y0[0] = {k.in_type(0).size}LL;\n"


@emitter("Pad")
def emit_pad(k: KernelContext) -> str:
    shape = k.in_shape(0)
    rank = len(shape)
    out = k.out_shape()
    mode = k.attr("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        k.unsupported(f"Pad mode '{mode}'")
    ct = k.ctype_out()
    value = "x2[0]" if k.has_input(2) else f"({ct})0"
    n_axes = k.in_shape(3)[0] if k.has_input(3) else rank
    axes = "x3[j]" if k.has_input(3) else "j"
    in_st = strides(shape)
    dims = ", ".join(str(d) for d in shape) or "0"
    if mode == "constant":
        fix = "if (c < 0 || c >= n) { inside = 0; c = 0; }"
    elif mode == "edge":
        fix = "c = c < 0 ? 0 : (c >= n ? n - 1 : c);"
    elif mode == "reflect":
        fix = ("if (n == 1) c = 0; else { const int64_t per = 2*(n - 1); c = ((c % per) + per) % per; "
               "if (c >= n) c = per - c; }")
    else:
        fix = "c = ((c % n) + n) % n;"
    body = ["int inside = 1; int64_t src = 0, c, n;"]
    for d in range(rank):
        body.append(f"c = i{d} - pb[{d}]; n = {shape[d]}; {fix} src += c*{in_st[d]};")
    body.append(f"y0[{_out_index(out)}] = inside ? x0[src] : pad_value;")
    head = f"""const {ct} pad_value = {value};
int64_t pb[{max(rank, 1)}] = {{0}};
const int64_t dims[{max(rank, 1)}] = {{{dims}}};
(void)dims;
for (int64_t j = 0; j < {n_axes}; j++) {{
  int64_t a = {axes}; if (a < 0) a += {rank};
  if (a < 0 || a >= {rank}) continue;  /* never index outside the shape (inference rejects such axes) */
  pb[a] = x1[j];
}}
"""
    return head + nest(out, {}, "\n".join(body))

