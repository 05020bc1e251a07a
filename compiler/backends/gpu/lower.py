"""The lowering: loop nests (`tensorweave.compiler.loopnest`) -> dialect-neutral GPU kernels (`render.Kernel`).

Two schedules, both read off a `LoopNest`:

- `contraction_kernel(nest, ...)` for a nest with `reduce="add"` (MatMul, Gemm, Conv and their integer
  forms): the spatial iterators are split by which input they index: those of one input are the rows
  (M), those of the other the columns (N), those of both the batch (grid z); the reduce iterators fuse
  into K. Work-group tiling: a `tile_m` x `tile_n` output tile per work-group, `work_m` x `work_n`
  outputs per work-item (strided so that neighbouring work-items touch neighbouring columns), K walked
  in steps of `tile_k` through two tiles in local (shared) memory that the work-group fills together.
  Operand addresses come from the nest's affine index maps; reads outside an operand are zero (conv
  padding), exactly as `evaluate` defines them. When an operand's innermost dimension is one K (or N)
  iterator with unit stride, a row length divisible by 4 and a 4-wide dtype, the tile is filled with
  4-wide vector loads. Split K: when the output tiles are too few to fill a GPU (batch-1 convolutions
  deep in a network: M x N small, K large), `contraction_kernels` cuts K into `splits` chunks, one
  work-group per (tile, chunk) writing its partial sums to a scratch buffer, and a second kernel adds
  the chunks in a fixed order and applies the epilogue (integer results stay exact; float sums are
  regrouped, deterministically).
- `elementwise_kernel(nest, formula, ...)` for a nest with `reduce=None` (elementwise and broadcasting
  ops): one work-item per output element (4 per work-item with vector loads and stores when every
  operand is read with the output's own index).

Operands may be transformed on load (an integer zero point subtracted, widened to the accumulator
type) and the accumulator may pass through an epilogue expression (bias, alpha/beta, requantization);
both are C templates that can read the iterator values as `it_<name>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ...loopnest import Affine, Binary, Cast, Const, Iterator, LoopNest, Operand, Read
from ...loopnest.ir import Expr
from .render import VEC_TYPES, Kernel, Param

__all__ = ["CTYPES", "PARTIALS", "Occupancy", "Schedule", "contraction_kernel", "contraction_kernels",
           "elementwise_kernel", "gpu_occupancy", "render_expr", "schedule_for", "splits_for"]

CTYPES: dict[str, str] = {
    "float16": "half", "float32": "float", "float64": "double", "int8": "int8_t", "uint8": "uint8_t",
    "int16": "int16_t", "uint16": "uint16_t", "int32": "int32_t", "int64": "int64_t", "uint32": "uint32_t",
    "uint64": "uint64_t", "bool": "uint8_t",
}
BIN_C = {"add": "+", "sub": "-", "mul": "*"}


def _index_ctype(bound: int) -> str:
    """The C type of a position below `bound`: 32-bit where it fits, since its decomposition into iterators
    divides by constants and a GPU divides 64-bit integers in software (ResNet-18 on an H100: 1.32 -> 1.22
    ms int8, docs/gpu.md)."""
    return "int32_t" if bound < 2 ** 31 else "int64_t"


def strides(shape: Sequence[int]) -> list[int]:
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * max(1, shape[d + 1])
    return out


def render_expr(e: Expr, reads: Sequence[str]) -> str:
    """A loop-nest body expression as C, with input operand i read as `reads[i]`."""
    if isinstance(e, Read):
        return reads[e.operand]
    if isinstance(e, Const):
        return repr(e.value) + ("f" if e.dtype == "float32" else "")
    if isinstance(e, Cast):
        return f"(({CTYPES[e.dtype]})({render_expr(e.value, reads)}))"
    assert isinstance(e, Binary)
    a, b = render_expr(e.left, reads), render_expr(e.right, reads)
    if e.op in BIN_C:
        return f"({a} {BIN_C[e.op]} {b})"
    return f"({a} {'>' if e.op == 'max' else '<'} {b} ? {a} : {b})"


def _decompose(var: str, axes: Sequence[Iterator], indent: str = "      ") -> str:
    """C defining `it_<name>` for each axis (outermost first) from the fused index `var`."""
    lines, stride = [], 1
    for it in reversed(axes):
        expr = var if stride == 1 else f"{var} / {stride}"
        if stride * it.extent < math.prod(a.extent for a in axes):
            expr = f"({expr}) % {it.extent}"
        lines.append(f"{indent}const int64_t it_{it.name} = {expr};")
        stride *= it.extent
    return "\n".join(reversed(lines)) + ("\n" if lines else "")


def _range(a: Affine, extents: Mapping[str, int]) -> tuple[int, int]:
    lo = hi = a.constant
    for name, c in a.terms:
        span = c * (extents[name] - 1)
        lo, hi = lo + min(0, span), hi + max(0, span)
    return lo, hi


def _affine_c(a: Affine) -> str:
    parts = [f"it_{n}" if c == 1 else f"{c} * it_{n}" for n, c in a.terms]
    if a.constant or not parts:
        parts.append(str(a.constant))
    return "(" + " + ".join(parts) + ")"


def operand_access(op: Operand, extents: Mapping[str, int]) -> tuple[str, str]:
    """(C bounds condition or "1", C element offset) of `op` at the current `it_*` values."""
    conds, terms = [], []
    for a, size, st in zip(op.index, op.shape, strides(op.shape)):
        lo, hi = _range(a, extents)
        expr = _affine_c(a)
        if lo < 0 or hi >= size:
            conds.append(f"{expr} >= 0 && {expr} < {size}")
        if size != 1 or a.terms:
            terms.append(expr if st == 1 else f"{expr} * {st}")
    return (" && ".join(conds) or "1"), (" + ".join(terms) or "0")


@dataclass(frozen=True)
class Schedule:
    """Work-group tiling of a contraction: a tile_m x tile_n output tile per work-group, work_m x work_n
    outputs per work-item, K in steps of tile_k through local memory."""

    tile_m: int = 64
    tile_n: int = 64
    tile_k: int = 16
    work_m: int = 4
    work_n: int = 4

    @property
    def local(self) -> tuple[int, int]:
        return self.tile_n // self.work_n, self.tile_m // self.work_m


def schedule_for(m: int, n: int) -> Schedule:
    """64x128 tiles (4x8 per work-item) or 64x64 (4x4) for large products, 16x16 (1 per work-item) for small
    ones. (On PoCL, for a 64-channel 56x56 3x3 conv: 64x128/4x8 40 ms, 64x64/4x4 82 ms, 32x32/2x2 128 ms.)"""
    if m >= 48 and n >= 96:
        return Schedule(tile_m=64, tile_n=128, work_m=4, work_n=8)
    if m >= 48 and n >= 48:
        return Schedule()
    if m >= 48:
        return Schedule(tile_m=64, tile_n=16, work_m=4, work_n=1)
    if n >= 48:
        return Schedule(tile_m=16, tile_n=64, work_m=1, work_n=4)
    return Schedule(tile_m=16, tile_n=16, tile_k=16, work_m=1, work_n=1)


PARTIALS = "tw_part"  # the parameter name of the split-K partial-sum buffer


@dataclass(frozen=True)
class Occupancy:
    """How many work-groups a contraction should give the device (split K when its output tiles are fewer
    than half that), and the fewest K steps (of tile_k) in a split-K chunk. The default suits a CPU OpenCL
    device; `gpu_occupancy` a GPU."""

    groups: int = 128
    chunk_tiles: int = 8


def gpu_occupancy(compute_units: int) -> Occupancy:
    """Four work-groups per multiprocessor, chunks of two K steps at least: on an H100 (132 SMs) this took
    ResNet-18 from 1.09 to 0.62 ms (float32) and 1.10 to 0.71 ms (int8) against the CPU default."""
    return Occupancy(groups=4 * max(1, compute_units), chunk_tiles=2)


def splits_for(groups: int, k: int, tile_k: int, occupancy: Occupancy = Occupancy()) -> int:
    """How many K chunks a contraction with `groups` output tiles gets (1: no split)."""
    if groups >= occupancy.groups // 2:
        return 1
    return max(1, min(-(-occupancy.groups // groups), -(-k // tile_k) // occupancy.chunk_tiles))


@dataclass(frozen=True)
class Contraction:
    """How a reduce nest splits into batch, rows, columns and the reduction (see the module docstring)."""

    a: int                              # input operand feeding the rows
    b: int                              # input operand feeding the columns
    batch: tuple[Iterator, ...]
    rows: tuple[Iterator, ...]
    cols: tuple[Iterator, ...]
    red: tuple[Iterator, ...]

    @property
    def m(self) -> int:
        return math.prod(it.extent for it in self.rows)

    @property
    def n(self) -> int:
        return math.prod(it.extent for it in self.cols)

    @property
    def k(self) -> int:
        return math.prod(it.extent for it in self.red)

    @property
    def nbatch(self) -> int:
        return math.prod(it.extent for it in self.batch)


# Tensor Core contractions: 64 x 128 output tiles, 256 threads = 8 warps of 32 x 32 (2 x 2 fragments), K in
# steps of 32 through int8 tiles stored as 16 x 16 blocks (`_fragments`).
WMMA_SCHEDULE = Schedule(tile_m=64, tile_n=128, tile_k=32, work_m=4, work_n=8)


def _wmma_compute(sched: Schedule, k_loop: str, loads: str) -> str:
    """The K loop of a Tensor Core contraction, ending with each work-item's `acc_r` as in the SIMT kernel.

    A row-major a fragment is read from As[k / 16][row][k % 16] and a column-major b fragment from
    Bs[k / 16][col][k % 16], so C[row][col] += sum_k a(row, k) * b(col, k); the accumulators pass through
    local memory into the work-items' (row, col) positions of the SIMT schedule, whose epilogue follows."""
    tm, tn, tk = sched.tile_m, sched.tile_n, sched.tile_k
    lx, ly = sched.local
    warps_n = tn // 32
    return f"""  TW_LOCAL __align__(32) int8_t As[{tk // 16}][{tm}][16];
  TW_LOCAL __align__(32) int8_t Bs[{tk // 16}][{tn}][16];
  TW_LOCAL __align__(32) int32_t Cs[{tm}][{tn}];
  const int warp = tid / 32, wm0 = (warp / {warps_n}) * 32, wn0 = (warp % {warps_n}) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, int> fc[2][2];
  for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) wmma::fill_fragment(fc[i][j], 0);
  {k_loop} {{
{loads}    TW_BARRIER();
    for (int kk = 0; kk < {tk // 16}; kk++) {{
      wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> fb[2];
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], (const signed char *)&As[kk][wm0 + 16 * i][0], 16);
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], (const signed char *)&Bs[kk][wn0 + 16 * j][0], 16);
      for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) wmma::mma_sync(fc[i][j], fa[i], fb[j], fc[i][j]);
    }}
    TW_BARRIER();
  }}
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(&Cs[wm0 + 16 * i][wn0 + 16 * j], fc[i][j], {tn}, wmma::mem_row_major);
  TW_BARRIER();
  int32_t acc_r[{sched.work_m}][{sched.work_n}];
  for (int rm = 0; rm < {sched.work_m}; rm++)
    for (int rn = 0; rn < {sched.work_n}; rn++) acc_r[rm][rn] = Cs[ly + rm * {ly}][lx + rn * {lx}];
"""


def split_contraction(nest: LoopNest) -> Contraction:
    if nest.reduce != "add" or len(nest.inputs) != 2:
        raise ValueError(f"nest '{nest.name}': a contraction needs reduce='add' and two inputs")
    uses = [op.iterators() for op in nest.inputs]
    spatial = [it for it in nest.iterators if it.kind == "spatial"]
    a, b = 0, 1
    last = nest.output.index[-1].iterators if nest.output.index else ()
    if last and last[-1] in uses[0] and last[-1] not in uses[1]:
        a, b = 1, 0  # the output's innermost iterator goes on the columns (neighbouring work-items)
    batch = tuple(it for it in spatial if it.name in uses[a] and it.name in uses[b])
    cols = tuple(it for it in spatial if it.name in uses[b] and it.name not in uses[a])
    rows = tuple(it for it in spatial if it not in batch and it not in cols)
    red = tuple(it for it in nest.iterators if it.kind == "reduce")
    return Contraction(a, b, batch, rows, cols, red)


def _vector_axis(op: Operand, axes: Sequence[Iterator], tile: int) -> bool:
    """Whether tiles of `op` along `axes` can be filled with 4-wide loads (see the module docstring)."""
    if len(axes) != 1 or CTYPES.get(op.dtype) not in VEC_TYPES or tile % 4 or not op.shape:
        return False
    name = axes[0].name
    inner = op.index[-1]
    others = any(name in a.iterators for a in op.index[:-1])
    return inner == Affine.of(name) and not others and op.shape[-1] % 4 == 0 and axes[0].extent % 4 == 0


def _kmajor(k: str, o: str) -> str:
    return f"[{k}][{o}]"


def _fragments(k: str, o: str) -> str:
    """[k / 16][outer][k % 16]: 16 x 16 blocks whose rows start 256-bit aligned (wmma's load_matrix_sync)."""
    return f"[({k}) / 16][{o}][({k}) % 16]"


def _tile_load(name: str, param: str, op: Operand, transform: str, acc_t: str, outer: Sequence[Iterator],
               inner: Sequence[Iterator], outer_base: str, inner_base: str, outer_tile: int, inner_tile: int,
               fast_outer: bool, extents: Mapping[str, int], threads: int, batch: Sequence[Iterator],
               at: Callable[[str, str], str] = _kmajor) -> str:
    """C filling local tile `name` (k-major, [inner_tile][outer_tile], unless `at` maps (k, outer) to another
    element index) from operand `op`.

    `outer` are the row (or column) iterators, `inner` the reduction ones. `fast_outer`: consecutive
    work-items take consecutive outer positions (else consecutive k)."""
    n_outer, n_inner = math.prod(it.extent for it in outer), math.prod(it.extent for it in inner)
    ix = _index_ctype(max(n_outer, n_inner) + max(outer_tile, inner_tile))
    cond, off = operand_access(op, extents)
    val = transform.format(v=f"{param}[{off}]")
    vec = not fast_outer and _vector_axis(op, inner, inner_tile)
    vec_outer = fast_outer and _vector_axis(op, outer, outer_tile) and not any(
        it.name in op.index[-1].iterators for it in inner)
    if vec or vec_outer:
        # groups of 4 along the operand's innermost dimension: one aligned vector load each
        ctype = CTYPES[op.dtype]
        along, across = (inner_tile, outer_tile) if vec else (outer_tile, inner_tile)
        groups = along // 4
        lines = [f"    for (int e = tid; e < {across * groups}; e += {threads}) {{"]
        if vec:
            lines += [f"      const int o = e / {groups}, q = (e % {groups}) * 4;",
                      f"      const {ix} of = ({ix})({outer_base} + o), kf = ({ix})({inner_base} + q);"]
        else:
            lines += [f"      const int q = (e % {groups}) * 4, o = e / {groups};",
                      f"      const {ix} of = ({ix})({outer_base} + q), kf = ({ix})({inner_base} + o);"]
        lines.append(f"      {acc_t} v0 = 0, v1 = 0, v2 = 0, v3 = 0;")
        lines.append(f"      if (of < {n_outer} && kf < {n_inner}) {{")
        lines.append(_decompose("of", outer, "        ") + _decompose("kf", inner, "        ").rstrip("\n"))
        lines.append(f"        if ({cond}) {{")
        lines.append(f"          const tw_vec4_{ctype} w = TW_VLOAD4({ctype}, ({off}) / 4, {param});")
        for j, f in enumerate("xyzw"):
            lines.append(f"          v{j} = {transform.format(v=f'w.{f}')};")
        lines.append("        }\n      }")
        if vec:
            lines += ["      " + " ".join(f"{name}{at(f'q + {j}', 'o')} = v{j};" for j in range(4))]
        else:
            lines += ["      " + " ".join(f"{name}{at('o', f'q + {j}')} = v{j};" for j in range(4))]
        lines.append("    }")
        return "\n".join(lines) + "\n"
    if fast_outer:
        index = f"const int o = e % {outer_tile}, q = e / {outer_tile};"
    else:
        index = f"const int q = e % {inner_tile}, o = e / {inner_tile};"
    return (f"    for (int e = tid; e < {outer_tile * inner_tile}; e += {threads}) {{\n"
            f"      {index}\n"
            f"      const {ix} of = ({ix})({outer_base} + o), kf = ({ix})({inner_base} + q);\n"
            f"      {acc_t} v = 0;\n"
            f"      if (of < {n_outer} && kf < {n_inner}) {{\n"
            + _decompose("of", outer, "        ") + _decompose("kf", inner, "        ")
            + f"        if ({cond}) v = {val};\n"
            f"      }}\n"
            f"      {name}{at('q', 'o')} = v;\n"
            f"    }}\n")


def contraction_kernel(name: str, nest: LoopNest, params: Sequence[str], out_param: str = "y0",
                       transforms: Sequence[str] = ("{v}", "{v}"), epilogue: str = "acc",
                       extra: Sequence[Param] = (), schedule: Schedule | None = None,
                       out_ctype: str | None = None) -> Kernel:
    """One tiled kernel computing `nest` (reduce="add"), K not split: see the module docstring.

    `params[i]` names the buffer of input operand i; `transforms[i]` maps a loaded value `{v}` to the
    accumulator type (default: a plain conversion); `epilogue` maps `acc` to the stored value; `extra`
    are more read-only buffers the templates use."""
    kernels, _ = contraction_kernels(name, nest, params, out_param, transforms, epilogue, extra, schedule,
                                     out_ctype, splits=1)
    return kernels[0]


def contraction_kernels(name: str, nest: LoopNest, params: Sequence[str], out_param: str = "y0",
                        transforms: Sequence[str] = ("{v}", "{v}"), epilogue: str = "acc",
                        extra: Sequence[Param] = (), schedule: Schedule | None = None,
                        out_ctype: str | None = None, splits: int | None = None,
                        wmma: bool = False, occupancy: Occupancy = Occupancy()) -> tuple[list[Kernel], int]:
    """The kernels computing `nest` and the bytes of the partial-sum buffer they share (parameter
    `PARTIALS`; 0 when there is one kernel). `splits`: K chunks (None: `splits_for` the tile count and
    the device's `occupancy`).
    `wmma`: the products on Tensor Cores (CUDA; an s8 x s8 -> s32 nest that `tensorize` matched onto
    `nvidia_wmma_s8`, transforms plain conversions): see `_wmma_compute`."""
    c = split_contraction(nest)
    acc_dtype = nest.output.dtype
    acc_t = CTYPES[acc_dtype]
    sched = WMMA_SCHEDULE if wmma else schedule or schedule_for(c.m, c.n)
    lx, ly = sched.local
    threads = lx * ly
    extents = {it.name: it.extent for it in nest.iterators}
    tk = sched.tile_k
    ops = nest.inputs
    tf = [f"({acc_t})({t})" for t in transforms]
    at = _fragments if wmma else _kmajor
    load_a = _tile_load("As", params[c.a], ops[c.a], tf[c.a], acc_t, c.rows, c.red, "row0", "k0", sched.tile_m, tk,
                        False, extents, threads, c.batch, at)
    load_b = _tile_load("Bs", params[c.b], ops[c.b], tf[c.b], acc_t, c.cols, c.red, "col0", "k0", sched.tile_n, tk,
                        True, extents, threads, c.batch, at)
    reads = ["" , ""]
    reads[c.a], reads[c.b] = "a[rm]", "b[rn]"
    body_c = render_expr(nest.body, reads)
    _, out_off = operand_access(nest.output, extents)
    out_t = out_ctype or CTYPES[nest.output.dtype]
    wm, wn = sched.work_m, sched.work_n
    gm, gn = -(-c.m // sched.tile_m), -(-c.n // sched.tile_n)
    ix = _index_ctype(max(c.m + sched.tile_m, c.n + sched.tile_n))
    k_tiles = -(-c.k // tk)
    splits = max(1, min(splits_for(gm * gn * c.nbatch, c.k, tk, occupancy) if splits is None else splits, k_tiles))
    chunk = -(-k_tiles // splits) * tk
    splits = -(-c.k // chunk)  # no empty chunk
    if splits == 1:
        z = "bz = TW_GROUP(2)"
        k_loop = f"for (int64_t k0 = 0; k0 < {c.k}; k0 += {tk})"
    else:
        z = f"bz = TW_GROUP(2) / {splits}, ks = TW_GROUP(2) % {splits}"
        k_loop = (f"const int64_t k_end = ks * {chunk} + {chunk} < {c.k} ? ks * {chunk} + {chunk} : {c.k};\n"
                  f"  for (int64_t k0 = ks * {chunk}; k0 < k_end; k0 += {tk})")
    head = f"""  const int lx = TW_LID(0), ly = TW_LID(1), tid = ly * {lx} + lx;
  const int64_t col0 = TW_GROUP(0) * {sched.tile_n}, row0 = TW_GROUP(1) * {sched.tile_m}, {z};
{_decompose("bz", c.batch, "  ")}"""
    if wmma:
        text = head + _wmma_compute(sched, k_loop, load_a + load_b)
    else:
        text = head + f"""  TW_LOCAL {acc_t} As[{tk}][{sched.tile_m}];
  TW_LOCAL {acc_t} Bs[{tk}][{sched.tile_n}];
  {acc_t} acc_r[{wm}][{wn}];
  for (int rm = 0; rm < {wm}; rm++) for (int rn = 0; rn < {wn}; rn++) acc_r[rm][rn] = 0;
  {k_loop} {{
{load_a}{load_b}    TW_BARRIER();
    for (int kk = 0; kk < {tk}; kk++) {{
      {acc_t} a[{wm}], b[{wn}];
      for (int rm = 0; rm < {wm}; rm++) a[rm] = As[kk][ly + rm * {ly}];
      for (int rn = 0; rn < {wn}; rn++) b[rn] = Bs[kk][lx + rn * {lx}];
      for (int rm = 0; rm < {wm}; rm++)
        for (int rn = 0; rn < {wn}; rn++) acc_r[rm][rn] += {body_c};
    }}
    TW_BARRIER();
  }}
"""
    text += f"""  for (int rm = 0; rm < {wm}; rm++)
    for (int rn = 0; rn < {wn}; rn++) {{
      const {ix} of = ({ix})(row0 + ly + rm * {ly}), cf = ({ix})(col0 + lx + rn * {lx});
      if (of >= {c.m} || cf >= {c.n}) continue;
"""
    total = c.nbatch * c.m * c.n
    if splits > 1:
        store = f"      {PARTIALS}[ks * {total} + (bz * {c.m} + of) * {c.n} + cf] = acc_r[rm][rn];\n"
    else:
        store = (f"{_decompose('of', c.rows)}{_decompose('cf', c.cols)}      const {acc_t} acc = acc_r[rm][rn];\n"
                 f"      {out_param}[{out_off}] = ({out_t})({epilogue});\n")
    text += store + "    }\n"
    in_params = [Param(params[i], CTYPES[ops[i].dtype]) for i in range(len(ops))]
    out = Param(out_param, out_t, const=False)
    note = (f"{nest.name}: rows {','.join(it.name for it in c.rows) or '-'} (M={c.m}), cols "
            f"{','.join(it.name for it in c.cols) or '-'} (N={c.n}), reduce {','.join(it.name for it in c.red)} "
            f"(K={c.k}), batch {','.join(it.name for it in c.batch) or '-'}; tile {sched.tile_m}x{sched.tile_n}x{tk}, "
            f"{wm}x{wn} per work-item")
    grid = (gn * lx, gm * ly, c.nbatch * splits)
    helpers = frozenset({"wmma"}) if wmma else frozenset()
    if wmma:
        note += "; Tensor Cores (wmma m16n16k16 s8, 2x2 fragments per warp)"
    if splits == 1:
        return [Kernel(name, tuple(dict.fromkeys([*in_params, *extra, out])), text, grid, (lx, ly, 1), helpers,
                       note)], 0
    partial_params = tuple(dict.fromkeys([*in_params, *extra, Param(PARTIALS, acc_t, const=False)]))
    partial = Kernel(name, partial_params, text, grid, (lx, ly, 1), helpers,
                     f"{note}; K in {splits} chunks of {chunk}")
    reduce_text = f"""  const int64_t g = TW_GID(0);
  if (g >= {total}) return;
  const int64_t bz = g / {c.m * c.n}, of = (g / {c.n}) % {c.m}, cf = g % {c.n};
{_decompose("bz", c.batch, "  ")}{_decompose("of", c.rows, "  ")}{_decompose("cf", c.cols, "  ")}  {acc_t} acc = 0;
  for (int s = 0; s < {splits}; s++) acc += {PARTIALS}[s * {total} + g];
  {out_param}[{out_off}] = ({out_t})({epilogue});
"""
    reduce = Kernel(f"{name}_sum", tuple(dict.fromkeys([Param(PARTIALS, acc_t), *extra, out])), reduce_text,
                    (total,), None, note=f"{nest.name}: the {splits} K chunks added, then the epilogue")
    return [partial, reduce], splits * total * np.dtype(acc_dtype).itemsize


def elementwise_kernel(name: str, nest: LoopNest, formula: str, names: Sequence[str], params: Sequence[str],
                       out_param: str = "y0", out_ctype: str | None = None,
                       in_ctypes: Sequence[str] | None = None, prelude: str = "") -> Kernel:
    """One output element per work-item: `out = formula` with `names[i]` bound to input operand i
    (`in_ctypes` overrides the C types read off the operands' dtypes, e.g. for uint32); `prelude`:
    statements run per element before `formula` (a fused kernel's intermediate values)."""
    extents = {it.name: it.extent for it in nest.iterators}
    total = math.prod(extents.values()) if extents else 1
    out_t = out_ctype or CTYPES[nest.output.dtype]
    in_t = list(in_ctypes) if in_ctypes is not None else [CTYPES[op.dtype] for op in nest.inputs]
    out_dtype_ok = out_t in VEC_TYPES
    flat_out = nest.output.index == tuple(Affine.of(it.name) for it in nest.iterators)  # y[g]: the g-th element
    full = [op.index == nest.output.index and op.shape == nest.output.shape for op in nest.inputs]
    scalar = [not f and all(not a.terms for a in op.index) and operand_access(op, extents)[0] == "1"
              for f, op in zip(full, nest.inputs)]
    in_params = [Param(p, t) for p, t in zip(params, in_t)]
    all_params = (*dict.fromkeys(in_params), Param(out_param, out_t, const=False))
    vector_ok = all(f or sc for f, sc in zip(full, scalar)) and all(t in VEC_TYPES for t, f in zip(in_t, full) if f)
    if vector_ok and flat_out and total % 4 == 0 and total >= 16 and out_dtype_ok:
        # operands read with the output's index: 4-wide loads; per-tensor ones (a scale, a zero point): once
        lines = ["  const int64_t g = TW_GID(0);", f"  if (g >= {total // 4}) return;"]
        for j, (op, n, p, t, f) in enumerate(zip(nest.inputs, names, params, in_t, full)):
            if f:
                lines.append(f"  const tw_vec4_{t} in{j} = TW_VLOAD4({t}, g, {p});")
            else:
                lines.append(f"  const {t} {n} = {p}[{operand_access(op, extents)[1]}];")
        lines.append(f"  tw_vec4_{out_t} r;")
        for lane in "xyzw":
            decl = " ".join(f"const {t} {n} = in{j}.{lane};" for j, (n, t, f) in enumerate(zip(names, in_t, full)) if f)
            lines.append(f"  {{ {decl} {prelude}r.{lane} = ({out_t})({formula}); }}")
        lines.append(f"  TW_VSTORE4({out_t}, r, g, {out_param});")
        body = "\n".join(lines) + "\n"
        return Kernel(name, all_params, body, (total // 4,), None, note=f"{nest.name}: 4 elements per work-item")
    lines = ["  const int64_t g = TW_GID(0);", f"  if (g >= {total}) return;"]
    ix = _index_ctype(total)
    lines.append(f"  const {ix} gi = ({ix})g;")
    lines.append(_decompose("gi", nest.iterators, "  ").rstrip("\n"))
    for op, n, t, p, f in zip(nest.inputs, names, in_t, params, full):
        cond, off = operand_access(op, extents)
        if f and flat_out:
            cond, off = "1", "g"
        read = f"{p}[{off}]" if cond == "1" else f"({cond}) ? {p}[{off}] : 0"
        lines.append(f"  const {t} {n} = {read};")
    _, out_off = operand_access(nest.output, extents)
    if flat_out:
        out_off = "g"
    if prelude:
        lines.append(f"  {prelude}")
    lines.append(f"  {out_param}[{out_off}] = ({out_t})({formula});")
    return Kernel(name, all_params, "\n".join(lines) + "\n", (total,), None,
                  note=f"{nest.name}: 1 element per work-item")


def broadcast_nest(name: str, out_shape: Sequence[int], in_shapes: Sequence[Sequence[int]],
                   in_dtypes: Sequence[str], out_dtype: str) -> LoopNest:
    """An elementwise nest over `out_shape` reading each input with NumPy broadcasting (coefficient 0 on
    broadcast dimensions). The body is a placeholder cast of input 0 (the formula is given separately)."""
    from ...loopnest.ir import FLOAT_DTYPES, INT_BITS

    def nest_dtype(d: str) -> str:
        return {"bool": "uint8", "uint32": "int32", "uint64": "int64"}.get(d, d) if d not in (
            *INT_BITS, *FLOAT_DTYPES) else d
    iters = tuple(Iterator(f"d{i}", max(1, e)) for i, e in enumerate(out_shape))
    ops = []
    for j, (shape, dtype) in enumerate(zip(in_shapes, in_dtypes)):
        pad = len(out_shape) - len(shape)
        index = tuple(Affine.of(f"d{pad + d}") if shape[d] != 1 or out_shape[pad + d] == 1 else Affine()
                      for d in range(len(shape)))
        ops.append(Operand(f"x{j}", nest_dtype(dtype), tuple(max(1, s) for s in shape), index))
    out = Operand("y", nest_dtype(out_dtype), tuple(max(1, e) for e in out_shape),
                  tuple(Affine.of(f"d{i}") for i in range(len(out_shape))))
    body = Cast(out.dtype, Read(0, ops[0].dtype)) if ops else Const(0, out.dtype)
    return LoopNest(name, iters, tuple(ops), out, body, reduce=None)
