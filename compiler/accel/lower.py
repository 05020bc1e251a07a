"""Lowering a tiled conv (or matmul, as a 1x1 conv over rows) to a Program for the accelerator.

Layouts in DRAM (each innermost pair is one scratchpad row, i.e. one LOAD/STORE element):
  x  (NB, G, CB, H, W, batch, block_in)        activations, channels padded per group
  w  (G, KB, CB, R, S, block_out, block_in)    weights (OIHW -> O/bo I/bi H W bo bi)
  c  (G*KB*consts, batch, block_out)           per-channel constants (bias, multipliers, shifts)
  y  (NB, G, KB, OH, OW, batch, block_out)     outputs
Scratchpads: input and weight buffers are split in two halves (step parity); the accumulator holds
the tile's per-channel constants (loaded before its ALU work) and two halves (tile parity) with the
output tile A and the requantization temp T. So loads of step t+1 overlap the GEMMs of step t, and
the store of tile u overlaps tile u+1.

Tokens: load step t pops compute->load for t >= 2 and pushes load->compute at its end; the step's
first GEMM pops it, its last pushes compute->load when step t+2 exists. A tile's accumulator reset
pops store->compute for tiles u >= 2; its last ALU instruction pushes compute->store; its first
STORE pops that and its last pushes store->compute when tile u+2 exists (and on the last tile,
which FINISH pops). Every pop is preceded in program order by its push, so in-order fetch with
bounded queues cannot deadlock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...configs import AccelConfig
from ...isa import Insn, Program, Tensor, build_isa
from ...isa.asm import element_bytes
from ...isa.spec import ISAError, Uop
from .requant import RequantPlan
from .spec import AccelError

FIXED_CONSTS: tuple[str, ...] = ("bias", "neg_m0", "m0", "rnd", "sh")
POW2_CONSTS: tuple[str, ...] = ("rnd", "sh")
MAX_PAD = 15


@dataclass(frozen=True)
class Problem:
    """The blocked conv the lowering sees: block counts, image and kernel geometry."""

    nb: int          # batch blocks (rows of `batch` images)
    groups: int
    cb: int          # input-channel blocks per group
    kb: int          # output-channel blocks per group
    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out_height: int
    out_width: int


@dataclass(frozen=True)
class Tiling:
    """Output tile: th x tw pixels x kt output blocks; each reduction step loads ct input blocks."""

    th: int
    tw: int
    kt: int
    ct: int

    def __str__(self) -> str:
        return f"{self.th}x{self.tw} pixels x {self.kt} out-blocks, {self.ct} in-blocks per step"


def window(p: Problem, tile: int, start: int, axis: int) -> tuple[int, int, int, int]:
    """(pad_before, size, pad_after, first) of the input rows/cols that `tile` outputs from `start` read."""
    size_in = (p.height, p.width)[axis]
    stride, dil, kern = p.stride[axis], p.dilation[axis], p.kernel[axis]
    lo = start * stride - p.pads[axis]
    hi = (start + tile - 1) * stride - p.pads[axis] + (kern - 1) * dil
    before, after = max(0, -lo), max(0, hi - (size_in - 1))
    return before, (hi - lo + 1) - before - after, after, max(lo, 0)


def sram_needs(config: AccelConfig, p: Problem, t: Tiling,
               consts: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Rows each scratchpad needs with this tiling, and what it offers (halves for double buffering)."""
    kr, ks = p.kernel
    ih = (t.th - 1) * p.stride[0] + (kr - 1) * p.dilation[0] + 1
    iw = (t.tw - 1) * p.stride[1] + (ks - 1) * p.dilation[1] + 1
    const_rows = t.kt * len(consts)
    tile_rows = t.kt * t.th * t.tw * (2 if len(consts) > 2 else 1)
    return {"input": (t.ct * ih * iw, config.inp_depth // 2),
            "weight": (t.kt * t.ct * kr * ks, config.wgt_depth // 2),
            "accumulator": (const_rows + 2 * tile_rows, config.acc_depth)}


class _Emitter:
    def __init__(self, config: AccelConfig):
        self.config = config
        self.isa = build_isa(config)
        self.insns: list[Insn] = []
        self.uops: list[Uop] = []
        self.ranges: dict[tuple[Uop, ...], tuple[int, int]] = {}

    def uop_range(self, uops: list[Uop]) -> tuple[int, int]:
        key = tuple(uops)
        if key not in self.ranges:
            self.ranges[key] = (len(self.uops), len(self.uops) + len(uops))
            self.uops.extend(uops)
        return self.ranges[key]

    def emit(self, op: str, **fields) -> Insn:
        insn = Insn(op, {k: v for k, v in fields.items() if v or k == "memory_id"})
        self.insns.append(insn)
        return insn

    def flag(self, index: int, name: str) -> None:
        insn = self.insns[index]
        self.insns[index] = Insn(insn.op, {**insn.fields, name: 1})

    def memory(self, name: str) -> int:
        return self.isa.enums["memory_id"][name]

    def alu_opcode(self, name: str) -> int:
        return self.isa.enums["alu_opcode"][name]


def lower(config: AccelConfig, p: Problem, t: Tiling, plan: RequantPlan, has_bias: bool,
          weight: np.ndarray, consts: np.ndarray) -> Program:
    """The Program for problem `p` with tiling `t`; raises AccelError if it does not fit."""
    names = FIXED_CONSTS if plan.mode == "fixed" else POW2_CONSTS
    for buffer, (need, have) in sram_needs(config, p, t, names).items():
        if need > have:
            raise AccelError(f"tiling {t} needs {need} {buffer} rows; config '{config.name}' offers {have}")
    e = _Emitter(config)
    kr, ks = p.kernel
    (sh, sw), (dh, dw) = p.stride, p.dilation
    oh_n, ow_n = p.out_height, p.out_width
    ih_full = (t.th - 1) * sh + (kr - 1) * dh + 1
    iw_full = (t.tw - 1) * sw + (ks - 1) * dw + 1
    slot = ih_full * iw_full
    inp_base = (0, config.inp_depth // 2)
    wgt_base = (0, config.wgt_depth // 2)
    nconst = len(names)
    const_rows = t.kt * nconst  # the current tile's constants, reloaded per tile
    tile_rows = t.kt * t.th * t.tw
    half = tile_rows * (2 if plan.mode == "fixed" else 1)
    acc_base = (const_rows, const_rows + half)

    tiles = [(nb, g, kb0, oh0, ow0) for nb in range(p.nb) for g in range(p.groups)
             for kb0 in range(0, p.kb, t.kt) for oh0 in range(0, oh_n, t.th) for ow0 in range(0, ow_n, t.tw)]
    steps_per_tile = math.ceil(p.cb / t.ct)
    total_steps = len(tiles) * steps_per_tile
    mem = e.memory
    e.emit("LOAD", memory_id=mem("UOP"), sram_base=0, dram_base=("uops", 0), y_size=1, x_size=0, x_stride=0)
    step = 0
    for u, (nb, g, kb0, oh0, ow0) in enumerate(tiles):
        th, tw, kt_n = min(t.th, oh_n - oh0), min(t.tw, ow_n - ow0), min(t.kt, p.kb - kb0)
        npix = th * tw
        a_base = acc_base[u % 2]
        y0, y_size, y1, ih0 = window(p, th, oh0, 0)
        x0, x_size, x1, iw0 = window(p, tw, ow0, 1)
        if max(y0, y1, x0, x1) > MAX_PAD or y_size < 1 or x_size < 1:
            raise AccelError(f"tile at output ({oh0}, {ow0}) reads {y0}/{y1} rows and {x0}/{x1} columns of "
                             f"padding; LOAD pads at most {MAX_PAD} and needs at least one real row and column")
        iw_t = x0 + x_size + x1
        begin, end = e.uop_range([Uop(a_base, 0, 0)])
        e.emit("GEMM", reset=1, uop_begin=begin, uop_end=end, iter_out=1, iter_in=kt_n * npix, dst_factor_in=1,
               pop_next=int(u >= 2))
        for cb0 in range(0, p.cb, t.ct):
            ct_n, sb = min(t.ct, p.cb - cb0), step % 2
            first_load = len(e.insns)
            for ct in range(ct_n):
                elem = (((nb * p.groups + g) * p.cb + cb0 + ct) * p.height + ih0) * p.width + iw0
                e.emit("LOAD", memory_id=mem("INP"), sram_base=inp_base[sb] + ct * slot, dram_base=("x", elem),
                       y_size=y_size, x_size=x_size, x_stride=p.width, y_pad_0=y0, y_pad_1=y1, x_pad_0=x0,
                       x_pad_1=x1)
            welem = ((g * p.kb + kb0) * p.cb + cb0) * kr * ks
            e.emit("LOAD", memory_id=mem("WGT"), sram_base=wgt_base[sb], dram_base=("w", welem), y_size=kt_n,
                   x_size=ct_n * kr * ks, x_stride=p.cb * kr * ks, push_next=1)
            if step >= 2:
                e.flag(first_load, "pop_next")
            for kt in range(kt_n):
                uops = [Uop(a_base + kt * npix, inp_base[sb] + ct * slot + r * dh * iw_t + s * dw,
                            wgt_base[sb] + ((kt * ct_n + ct) * kr + r) * ks + s)
                        for ct in range(ct_n) for r in range(kr) for s in range(ks)]
                begin, end = e.uop_range(uops)
                e.emit("GEMM", uop_begin=begin, uop_end=end, iter_out=th, iter_in=tw, dst_factor_out=tw,
                       dst_factor_in=1, src_factor_out=sh * iw_t, src_factor_in=sw, pop_prev=int(kt == 0),
                       push_prev=int(kt == kt_n - 1 and step + 2 < total_steps))
            step += 1
        crows = kt_n * nconst
        e.emit("LOAD", memory_id=mem("ACC"), sram_base=0, dram_base=("c", (g * p.kb + kb0) * nconst), y_size=1,
               x_size=crows, x_stride=crows)
        _requant_ops(e, plan, has_bias, a_base, a_base + tile_rows, kt_n, npix, 0, names)
        last_store = u + 2 < len(tiles) or u == len(tiles) - 1
        for kt in range(kt_n):
            elem = (((nb * p.groups + g) * p.kb + kb0 + kt) * oh_n + oh0) * ow_n + ow0
            e.emit("STORE", memory_id=mem("OUT"), sram_base=a_base + kt * npix, dram_base=("y", elem), y_size=th,
                   x_size=tw, x_stride=ow_n, pop_prev=int(kt == 0), push_prev=int(kt == kt_n - 1 and last_store))
    e.emit("FINISH", pop_next=1)
    e.insns[0] = Insn("LOAD", {**e.insns[0].fields, "x_size": len(e.uops), "x_stride": len(e.uops)})
    if len(e.uops) > config.uop_depth:
        raise AccelError(f"tiling {t} needs {len(e.uops)} micro-ops; config '{config.name}' holds {config.uop_depth}")
    return _assemble(e, p, weight, consts, config)


@dataclass(frozen=True)
class AluStep:
    """One ALU instruction of the requantization, over the output tile (A) or its temp (T).

    `src` names a tile ("A" or "T") read row for row, `const` a per-channel constant row (see FIXED_CONSTS,
    POW2_CONSTS), `imm` an immediate; with none of them the instruction reads its destination.
    """

    op: str
    dst: str                  # "A" or "T"
    imm: int | None = None
    src: str | None = None
    const: str | None = None
    reset: bool = False


def requant_steps(plan: RequantPlan, has_bias: bool) -> tuple[AluStep, ...]:
    """The ALU instructions that turn an accumulator tile into clamped int outputs (see requant.py), in order.

    The lowering emits exactly these per output tile, and the tiling search counts them: one definition.
    """
    if plan.mode == "fixed":
        h = plan.split
        steps = [AluStep("ADD", "A", const="bias")] if has_bias else []
        steps += [
            AluStep("ADD", "T", src="T", reset=True),     # T = 0
            AluStep("ADD", "T", src="A"),                 # T = v
            AluStep("SHR", "A", imm=h),                   # A = hi
            AluStep("MUL", "A", imm=-(1 << h)),           # A = -hi * 2^h
            AluStep("ADD", "T", src="A"),                 # T = lo
            AluStep("SHR", "A", imm=h),                   # A = -hi
            AluStep("MUL", "A", const="neg_m0"),          # A = hi * M0
            AluStep("MUL", "T", const="m0"),              # T = lo * M0
            AluStep("SHR", "T", imm=h),                   # T = (lo * M0) >> h
            AluStep("ADD", "A", src="T"),
            AluStep("ADD", "A", const="rnd"),
            AluStep("SHR", "A", const="sh"),
        ]
    else:
        # with RSHR and no bias the constant row is all zeros; otherwise it holds the bias
        # (+ 2^(n-1) + zp * 2^n without RSHR)
        steps = [AluStep("ADD", "A", const="rnd")] if has_bias or not plan.ties_even else []
        steps.append(AluStep("RSHR" if plan.ties_even else "SHR", "A", const="sh"))
        if plan.ties_even and plan.zero_point:
            steps.append(AluStep("ADD", "A", imm=plan.zero_point))
    return (*steps, AluStep("MAX", "A", imm=plan.low), AluStep("MIN", "A", imm=plan.high))


def _requant_ops(e: _Emitter, plan: RequantPlan, has_bias: bool, a: int, tmp: int, kt_n: int, npix: int,
                 const0: int, names: tuple[str, ...]) -> None:
    """Emit `requant_steps` for one output tile; the last one pushes the tile to the store unit."""
    rows = kt_n * npix
    tiles = {"A": a, "T": tmp}
    for step in requant_steps(plan, has_bias):
        dst = tiles[step.dst]
        if step.const is not None:  # a per-channel row: one constant row per output block, reused per pixel
            begin, end = e.uop_range([Uop(dst, const0 + names.index(step.const), 0)])
            e.emit("ALU", alu_opcode=e.alu_opcode(step.op), uop_begin=begin, uop_end=end, iter_out=kt_n,
                   iter_in=npix, dst_factor_out=npix, src_factor_out=len(names), dst_factor_in=1)
            continue
        src = tiles[step.src] if step.src is not None else dst
        begin, end = e.uop_range([Uop(dst, src, 0)])
        e.emit("ALU", alu_opcode=e.alu_opcode(step.op), uop_begin=begin, uop_end=end, iter_out=1, iter_in=rows,
               dst_factor_in=1, src_factor_in=0 if step.imm is not None else 1, use_imm=int(step.imm is not None),
               imm=step.imm or 0, reset=int(step.reset))
    e.flag(len(e.insns) - 1, "push_next")


def const_table(config: AccelConfig, p: Problem, plan: RequantPlan, bias: np.ndarray | None,
                channels_per_group: int) -> np.ndarray:
    """The constant rows (G*KB*consts, batch, block_out): per output channel bias, multipliers, shifts."""
    names = FIXED_CONSTS if plan.mode == "fixed" else POW2_CONSTS
    bo = config.block_out
    total = p.groups * p.kb * bo
    per = {n: np.zeros(total, dtype=np.int64) for n in names}
    b = np.zeros(p.groups * channels_per_group, dtype=np.int64) if bias is None else np.asarray(bias, np.int64)
    for g in range(p.groups):
        src = slice(g * channels_per_group, (g + 1) * channels_per_group)
        dst = slice(g * p.kb * bo, g * p.kb * bo + channels_per_group)
        if plan.mode == "fixed":
            per["bias"][dst] = b[src]
            per["neg_m0"][dst] = -plan.multiplier[src]
            per["m0"][dst] = plan.multiplier[src]
            per["rnd"][dst] = plan.rounding_row(b)[src]
            per["sh"][dst] = plan.shift[src] - plan.split
        else:
            per["rnd"][dst] = plan.rounding_row(b)[src]
            per["sh"][dst] = plan.shift[src]
    table = np.stack([per[n].reshape(p.groups * p.kb, bo) for n in names], axis=1)  # (G*KB, consts, bo)
    table = np.broadcast_to(table[:, :, None, :], (p.groups * p.kb, len(names), config.batch, bo))
    return table.reshape(-1, config.batch, bo)


def _assemble(e: _Emitter, p: Problem, weight: np.ndarray, consts: np.ndarray, config: AccelConfig) -> Program:
    c = config
    kr, ks = p.kernel
    tensors = [
        Tensor("x", "input", f"int{c.inp_width}", (p.nb, p.groups, p.cb, p.height, p.width, c.batch, c.block_in)),
        Tensor("w", "weight", f"int{c.wgt_width}", (p.groups, p.kb, p.cb, kr, ks, c.block_out, c.block_in)),
        Tensor("c", "const", f"int{c.acc_width}", tuple(consts.shape)),
        Tensor("y", "output", f"int{c.out_width}",
               (p.nb, p.groups, p.kb, p.out_height, p.out_width, c.batch, c.block_out)),
    ]
    uop_words = [e.isa.encode_uop(u) for u in e.uops]
    data = {"w": weight, "c": consts}
    draft = Program.build(c, [0] * len(e.insns), uop_words, tensors, data)
    words = []
    for index, insn in enumerate(e.insns):
        fields: dict[str, Any] = dict(insn.fields)
        if isinstance(fields.get("dram_base"), tuple):
            name, elem = fields["dram_base"]
            memory = e.isa.enum_name("memory_id", fields["memory_id"])
            offset = draft.uop_offset if name == "uops" else draft.tensor(name).offset
            fields["dram_base"] = offset // element_bytes(c, memory) + elem
        try:
            words.append(e.isa.encode(Insn(insn.op, fields)))
        except ISAError as exc:
            raise AccelError(f"instruction {index} ({insn.op.lower()}) does not encode: {exc}") from None
    return Program.build(c, words, uop_words, list(draft.tensors), data)
