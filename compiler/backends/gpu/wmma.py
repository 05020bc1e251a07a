"""Tensor Core kernels (CUDA wmma m16n16k16) rendered from a tensorize `Mapping`.

`tensorize(op, nvidia_wmma_f16())` (fp16 x fp16 -> fp32) or `tensorize(op, nvidia_wmma_s8())` (s8 x s8 ->
s32, exact) decides which operator loops go on the fragment axes: the intrinsic's b (fragment rows),
o (fragment columns) and i (the 16-deep reduction), each a fusion of operator loops (conv: oh x ow on
the rows, r x s x c on the reduction). `wmma_kernel` turns that mapping into one CUDA kernel: one warp
per 16x16 output tile (grid x: o tiles, y: b tiles, z: the outer spatial loops); per reduction tile the
warp gathers the a and w tiles into shared memory through the mapping's index map (zero outside an
operand, so conv padding and padded lanes add nothing), loads them into fragments (a row-major, w as
the column-major B of `mma_sync`) and accumulates; outer reduce loops (if any) wrap the tile loop.
The accumulator goes through shared memory to the output, scattered by the same index map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...loopnest import Intrinsic, Iterator, LoopNest, Mapping
from .lower import CTYPES, _decompose, operand_access
from .render import Kernel, Param, render

__all__ = ["WMMA_HEADERS", "run_wmma", "wmma_kernel", "wmma_source"]

WMMA_HEADERS = {"wmma": {"cuda": "#include <mma.h>\n#include <cuda_fp16.h>\nusing namespace nvcuda;\n"}}
_FRAGMENT_TYPES = {"float16": ("half", "float"), "int8": ("signed char", "int")}


def _fused(var: str, names: tuple[str, ...], extents: tuple[int, ...], indent: str) -> str:
    return _decompose(var, [Iterator(n, e) for n, e in zip(names, extents)], indent)


def wmma_kernel(name: str, mapping: Mapping, op: LoopNest, intrinsic: Intrinsic) -> Kernel:
    """The CUDA wmma kernel computing `op` as `mapping` (from `tensorize(op, intrinsic)`) says."""
    in_dtype = intrinsic.nest.inputs[0].dtype
    if in_dtype not in _FRAGMENT_TYPES:
        raise ValueError(f"intrinsic '{intrinsic.name}': no wmma fragment type for {in_dtype}")
    frag_t, acc_t = _FRAGMENT_TYPES[in_dtype]
    pairs = dict(mapping.operands)
    by_name = {o.tensor: o for o in op.operands}
    a_op, w_op, c_op = by_name[pairs["a"]], by_name[pairs["w"]], by_name[pairs["c"]]
    rows, cols, red = mapping.axis("b"), mapping.axis("o"), mapping.axis("i")
    outer_sp = [it for it in mapping.outer if it.kind == "spatial"]
    outer_red = [it for it in mapping.outer if it.kind == "reduce"]
    extents = {it.name: it.extent for it in op.iterators}
    a_cond, a_off = operand_access(a_op, extents)
    w_cond, w_off = operand_access(w_op, extents)
    _, c_off = operand_access(c_op, extents)
    red_loops_open = "".join(f"  for (int64_t it_{it.name} = 0; it_{it.name} < {it.extent}; it_{it.name}++) {{\n"
                             for it in outer_red)
    red_loops_close = "  }\n" * len(outer_red)
    src_t = CTYPES[a_op.dtype]
    body = f"""  const int lane = TW_LID(0);
  const int64_t tile_o = TW_GROUP(0), tile_b = TW_GROUP(1), z = TW_GROUP(2);
{_decompose("z", outer_sp, "  ")}  __shared__ {frag_t} As[16 * 16];
  __shared__ {frag_t} Ws[16 * 16];
  __shared__ {acc_t} Cs[16 * 16];
  wmma::fragment<wmma::matrix_a, 16, 16, 16, {frag_t}, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, {frag_t}, wmma::col_major> fw;
  wmma::fragment<wmma::accumulator, 16, 16, 16, {acc_t}> fc;
  wmma::fill_fragment(fc, ({acc_t})0);
{red_loops_open}  for (int64_t tile_i = 0; tile_i < {red.tiles}; tile_i++) {{
    for (int e = lane; e < 256; e += 32) {{
      const int p = e / 16, q = e % 16;          /* As[p][q] = a(b lane p, i lane q); Ws[o lane p][i lane q] */
      const int64_t fb = tile_b * 16 + p, fo = tile_o * 16 + p, fi = tile_i * 16 + q;
      {src_t} va = 0, vw = 0;
      if (fb < {rows.fused} && fi < {red.fused}) {{
{_fused("fb", rows.operator, rows.extents, "        ")}{_fused("fi", red.operator, red.extents, "        ")}\
        if ({a_cond}) va = {_param(a_op)}[{a_off}];
      }}
      if (fo < {cols.fused} && fi < {red.fused}) {{
{_fused("fo", cols.operator, cols.extents, "        ")}{_fused("fi", red.operator, red.extents, "        ")}\
        if ({w_cond}) vw = {_param(w_op)}[{w_off}];
      }}
      As[p * 16 + q] = ({frag_t})va;
      Ws[p * 16 + q] = ({frag_t})vw;
    }}
    __syncwarp();
    wmma::load_matrix_sync(fa, As, 16);
    wmma::load_matrix_sync(fw, Ws, 16);
    wmma::mma_sync(fc, fa, fw, fc);
    __syncwarp();
  }}
{red_loops_close}  wmma::store_matrix_sync(Cs, fc, 16, wmma::mem_row_major);
  __syncwarp();
  for (int e = lane; e < 256; e += 32) {{
    const int p = e / 16, q = e % 16;
    const int64_t fb = tile_b * 16 + p, fo = tile_o * 16 + q;
    if (fb >= {rows.fused} || fo >= {cols.fused}) continue;
{_fused("fb", rows.operator, rows.extents, "    ")}{_fused("fo", cols.operator, cols.extents, "    ")}\
    {_param(c_op)}[{c_off}] = Cs[p * 16 + q];
  }}
"""
    params = (Param(_param(a_op), src_t), Param(_param(w_op), CTYPES[w_op.dtype]),
              Param(_param(c_op), CTYPES[c_op.dtype], const=False))
    z = int(np.prod([it.extent for it in outer_sp])) if outer_sp else 1
    note = str(mapping).replace("\n", "\n   ")
    return Kernel(name, params, body, (cols.tiles * 32, rows.tiles, z), (32, 1, 1), frozenset({"wmma"}), note)


def _param(operand: Any) -> str:
    return f"t_{operand.tensor}"


def wmma_source(kernel: Kernel) -> str:
    """The CUDA translation unit of a wmma kernel."""
    return render([kernel], "cuda", WMMA_HEADERS)


def run_wmma(mapping: Mapping, op: LoopNest, intrinsic: Intrinsic, arrays: dict[str, np.ndarray],
             runtime: Any = None) -> np.ndarray:
    """Run the wmma kernel of `mapping` on a CUDA device (the runtime of `cuda.cuda_runtime()` by default)."""
    from .cuda import cuda_runtime

    rt = runtime or cuda_runtime()
    kernel = wmma_kernel("tw_wmma", mapping, op, intrinsic)
    module = rt.build(wmma_source(kernel))
    function = rt.kernels(module, [kernel.name])[kernel.name]
    buffers = []
    for operand in op.inputs:
        array = np.ascontiguousarray(arrays[operand.tensor], dtype=operand.dtype)
        buf = rt.alloc(array.nbytes)
        rt.upload(buf, array)
        buffers.append(buf)
    out = np.zeros(op.output.shape, dtype=op.output.dtype)
    out_buf = rt.alloc(out.nbytes)
    by_tensor = dict(zip([o.tensor for o in op.inputs], buffers))
    args = [by_tensor[p.name[2:]] if p.const else out_buf for p in kernel.params]
    rt.launch(function, kernel.global_size, kernel.local_size, args)
    rt.download(out_buf, out)
    rt.finish()
    return out
