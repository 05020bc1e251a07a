"""Accelerator kernels: `compile_conv` / `compile_matmul` -> `AccelKernel` (a Program plus its packing).

The pipeline, top to bottom: build the operator's loop nest -> tensorize it onto the config's GEMM
(UNIT matcher; refusal = TensorizeError) -> plan the integer requantization -> pack weights and
per-channel constants -> choose the tiling (cost model, measured, cached) and lower to a Program.
A 1x1 conv whose pixels tensorize onto the GEMM rows (stride 1, no padding) runs as a matmul.

The compiler imports no engine: `compile_*` take the cost model that measures tilings (`cost_model`,
a name such as "cycle" or a `contract.engine.CostModel`), and `AccelKernel.run` the engine that runs
the Program (`engine`, a name such as "functional" or "rtl", or a `contract.engine.Engine`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...configs import AccelConfig
from ...contract.engine import CostModel, Engine, EngineError, RunResult, get_engine
from ...contract.topology import UNITS, unit_of
from ...isa import Program, build_isa
from ..loopnest import Mapping, TensorizeError, accel_gemm, conv2d_nest, matmul_nest, tensorize
from . import schedule
from .lower import FIXED_CONSTS, MAX_PAD, POW2_CONSTS, Problem, Tiling, const_table, lower, requant_steps, sram_needs
from .requant import RequantPlan, acc_bound, plan_requant
from .spec import ACTIVATION_DTYPES, AccelError, ConvSpec, Requant

# The lowering streams activations through the input scratchpad and weights through the weight one.
_PIN_CONV = {"inp": "x", "wgt": "w"}
_PIN_MATMUL = {"inp": "a", "wgt": "b"}


@dataclass
class KernelStats:
    """What one run did: instructions per unit and per mnemonic, MACs, cycles (estimated) and traffic."""

    insns: dict[str, int]
    ops: dict[str, int]
    macs: int                   # useful multiply-accumulates of the layer
    gemm_macs: int              # what the GEMM core computed, padding lanes included
    cycles: int
    cycle_source: str
    utilization: float          # macs / (cycles * macs_per_cycle)
    dram_read_bytes: int
    dram_write_bytes: int
    extra: dict[str, float] = field(default_factory=dict)


def _check_ints(name: str, array: np.ndarray, bits: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(array)
    if shape is not None and a.shape != shape:
        raise AccelError(f"{name} has shape {a.shape}; expected {shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise AccelError(f"{name} must hold integers (int{bits}), got {a.dtype}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        raise AccelError(f"{name} spans {a.min()}..{a.max()}, outside int{bits} ({lo}..{hi})")
    return a.astype(np.int64)


@dataclass
class AccelKernel:
    """A compiled layer. `run(x)` packs x, runs the Program, unpacks y; `explain()` describes it."""

    config: AccelConfig
    kind: str                         # "conv" or "matmul"
    description: str
    mapping: Mapping
    problem: Problem
    tiling: Tiling
    plan: RequantPlan
    program: Program
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    estimated_cycles: int
    cycle_source: str
    cached: bool
    has_bias: bool
    cost_model: CostModel              # what measured the tilings (explain() asks it for per-unit busy cycles)
    rows_per_group: int = 0           # conv: in-channels per group; matmul path: k
    out_per_group: int = 0
    _pack_rows: bool = False          # the matmul path (rows = pixels or matrix rows)
    requant: Requant | None = None    # the activation types and zero points (None: int8, zero point 0)
    host_pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # conv padding done on the host with the zero point

    # --- the host side of the activations' types: uint8 <-> int8, padding with the zero point ----------
    def device_input(self, x: np.ndarray) -> np.ndarray:
        """x (the model's input type) as the accelerator's int8 values: a uint8 x shifted by -128 (exact), and
        padded on the host with the input zero point where the conv pads (the LOAD unit pads with 0)."""
        rq, width = self.requant, self.config.inp_width
        if rq is not None and rq.input_dtype == "uint8":
            dtype, (lo, hi) = "uint8", ACTIVATION_DTYPES["uint8"]
        else:  # signed: the config's input width (int8, or narrower)
            dtype, lo, hi = f"int{width}", -(1 << (width - 1)), (1 << (width - 1)) - 1
        a = np.asarray(x)
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise AccelError(f"x must hold integers ({dtype}), got {a.dtype}")
        if a.size and (a.min() < lo or a.max() > hi):
            raise AccelError(f"x spans {a.min()}..{a.max()}, outside {dtype} ({lo}..{hi})")
        v = a.astype(np.int64) - (rq.input_offset if rq is not None else 0)
        if any(self.host_pads):
            assert rq is not None, "host padding comes from a zero point"
            pt, pl, pb, pr = self.host_pads
            v = np.pad(v, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=rq.device_input_zero_point)
        return v

    def model_output(self, y: np.ndarray) -> np.ndarray:
        """The accelerator's int8 result in the model's output type (uint8: shifted by +128)."""
        if self.requant is not None and self.requant.output_dtype == "uint8":
            return (y.astype(np.int16) + self.requant.output_offset).astype(np.uint8)
        return y.astype(np.int8)

    # --- packing ------------------------------------------------------------------------------
    def pack_input(self, x: np.ndarray) -> np.ndarray:
        c, p = self.config, self.problem
        b, bi = c.batch, c.block_in
        if self._pack_rows:
            rows = _rows_of(self, x)
            m = rows.shape[0]
            padded = np.zeros((b * p.height, p.cb * bi), dtype=np.int64)
            padded[:m, :rows.shape[1]] = rows
            return padded.reshape(b, p.height, p.cb, bi).transpose(2, 1, 0, 3)[None, None, :, :, None]
        n, _, h, w = x.shape
        cg = self.rows_per_group
        xg = np.zeros((p.nb * b, p.groups, p.cb * bi, h, w), dtype=np.int64)
        xg[:n, :, :cg] = x.reshape(n, p.groups, cg, h, w)
        return xg.reshape(p.nb, b, p.groups, p.cb, bi, h, w).transpose(0, 2, 3, 5, 6, 1, 4)

    def unpack_output(self, packed: np.ndarray) -> np.ndarray:
        c, p = self.config, self.problem
        if self._pack_rows:
            kb, h = p.kb, p.height
            rows = packed.reshape(kb, h, c.batch, c.block_out).transpose(2, 1, 0, 3).reshape(c.batch * h, -1)
            return _from_rows(self, rows[:, :self.out_per_group])
        n, k, oh, ow = self.output_shape
        y = packed.transpose(0, 5, 1, 2, 6, 3, 4).reshape(p.nb * c.batch, p.groups, p.kb * c.block_out, oh, ow)
        return y[:n, :, :self.out_per_group].reshape(n, k, oh, ow)

    # --- running ------------------------------------------------------------------------------
    def run(self, x: np.ndarray, engine: str | Engine = "functional") -> tuple[np.ndarray, KernelStats]:
        """y (int out_width) for x (int inp_width), bit-exact to `requantize(reference)`; and the run's stats.

        `engine`: an engine name registered in `contract.engine.ENGINES` ("functional", "rtl", ...) or an `Engine`.
        """
        x = np.asarray(x)
        if x.shape != self.input_shape and not (self.kind == "matmul" and x.shape == self.input_shape[1:]
                                                and self.input_shape[0] == 1):
            raise AccelError(f"x has shape {x.shape}; this kernel takes {self.input_shape}")
        squeeze = x.shape != self.input_shape
        x = x.reshape(self.input_shape)
        try:
            runner = get_engine(engine)
        except EngineError as exc:
            raise AccelError(str(exc)) from None
        result = runner.run(self.program, {"x": self.pack_input(self.device_input(x))})
        y = self.model_output(self.unpack_output(np.asarray(result.outputs["y"])))  # out_width <= 8
        stats = self._stats(result)
        return (y.reshape(self.output_shape[1:]) if squeeze else y), stats

    def _stats(self, result: RunResult) -> KernelStats:
        s = result.stats
        cycles = result.cycles or self.estimated_cycles
        source = "engine" if result.cycles else self.cycle_source
        util = self.macs / (cycles * self.config.macs_per_cycle) if cycles else 0.0
        return KernelStats(dict(s.insns), dict(s.ops), self.macs, s.gemm_iterations * self.config.macs_per_cycle,
                           int(cycles), source, util, s.dram_read_bytes, s.dram_write_bytes)

    # --- describing ---------------------------------------------------------------------------
    def instruction_counts(self) -> dict[str, int]:
        """Instructions per unit and per mnemonic, counted from the Program."""
        isa = build_isa(self.config)
        counts: Counter[str] = Counter()
        for word in self.program.insns:
            insn = isa.decode(word)
            unit = unit_of(isa, insn)
            if insn.op in ("LOAD", "STORE"):
                memory = isa.enum_name("memory_id", insn.memory_id)
                counts[f"{insn.op.lower()}.{memory.lower()}"] += 1
            else:
                name = insn.op.lower()
                if insn.op == "ALU":
                    name += "." + isa.enum_name("alu_opcode", insn.alu_opcode).lower()
                counts[name + (".reset" if insn.fields.get("reset") else "")] += 1
            counts[f"unit:{unit}"] += 1
        return dict(counts)

    @property
    def alu_per_tile(self) -> int:
        """ALU instructions per output tile: the requantization sequence (`lower.requant_steps`)."""
        return len(requant_steps(self.plan, self.has_bias))

    @property
    def utilization(self) -> float:
        return self.macs / (self.estimated_cycles * self.config.macs_per_cycle) if self.estimated_cycles else 0.0

    def explain(self) -> str:
        c, p, t = self.config, self.problem, self.tiling
        names = FIXED_CONSTS if self.plan.mode == "fixed" else POW2_CONSTS
        counts = self.instruction_counts()
        units = ", ".join(f"{u} {counts.get('unit:' + u, 0)}" for u in UNITS)
        mnemonics = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if not k.startswith("unit:"))
        sram = "; ".join(f"{k} {need}/{have} rows" for k, (need, have) in sram_needs(c, p, t, names).items())
        lines = [
            f"{self.description} on '{c.name}' ({c.batch}x{c.block_in}x{c.block_out} GEMM, {c.bus_width}-bit bus)",
            str(self.mapping),
            f"blocked problem: {p.nb} batch block(s), {p.groups} group(s), {p.cb} in-block(s) x {p.kb} out-block(s) "
            f"per group, {p.out_height}x{p.out_width} outputs{' (matmul rows)' if self._pack_rows else ''}",
            f"tiling: {t} ({'cached' if self.cached else 'searched'}); scratchpads: {sram} "
            f"(input/weight per half); micro-ops {len(self.program.uops)}/{c.uop_depth}",
            f"requantization: {self.plan.describe()}; {self.alu_per_tile} ALU instructions per tile",
            f"instructions: {len(self.program.insns)} ({units}): {mnemonics}",
            f"MACs {self.macs:,}; estimated cycles {self.estimated_cycles:,} ({self.cycle_source}); "
            f"utilization {self.utilization:.1%} of {c.macs_per_cycle} MAC/cycle",
        ]
        busy = self.cost_model.estimate(self.program).busy
        if busy:
            lines.append("busy cycles per unit (they overlap): " + ", ".join(f"{u} {v:,}" for u, v in busy.items()))
        return "\n".join(lines)


def _rows_of(kernel: AccelKernel, x: np.ndarray) -> np.ndarray:
    """The matmul path's input rows: (batch*m, k) for matmul, (n*h*w, c) for a 1x1 conv."""
    if kernel.kind == "matmul":
        return x.reshape(-1, x.shape[-1])
    n, ch, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n * h * w, ch)


def _from_rows(kernel: AccelKernel, rows: np.ndarray) -> np.ndarray:
    if kernel.kind == "matmul":
        return rows[:math.prod(kernel.output_shape[:-1])].reshape(kernel.output_shape)
    n, k, oh, ow = kernel.output_shape
    return rows[:n * oh * ow].reshape(n, oh, ow, k).transpose(0, 3, 1, 2)


# --- compiling ------------------------------------------------------------------------------------
def _dtypes(config: AccelConfig) -> dict[str, str]:
    return {"input_dtype": f"int{config.inp_width}", "weight_dtype": f"int{config.wgt_width}",
            "acc_dtype": f"int{config.acc_width}"}


def _geometry_reason(config: AccelConfig, spec: ConvSpec) -> str | None:
    (kr, ks), (dh, dw) = spec.kernel, spec.dilation
    pt, pl, pb, pr = spec.pads
    for name, pad, reach in (("top", pt, (kr - 1) * dh), ("left", pl, (ks - 1) * dw), ("bottom", pb, (kr - 1) * dh),
                             ("right", pr, (ks - 1) * dw)):
        if pad > MAX_PAD:
            return f"{name} padding {pad} exceeds the {MAX_PAD} zero rows/columns a LOAD can add"
        if pad > reach:
            return (f"{name} padding {pad} is wider than the dilated kernel reach {reach}: "
                    "some outputs would read only padding")
    return None


def unsupported_reason(config: AccelConfig, spec: ConvSpec) -> str | None:
    """Why `spec` cannot run on the accelerator (for the partitioner), or None if it can."""
    try:
        mapping = tensorize(conv2d_nest(spec, **_dtypes(config)), accel_gemm(config), operands=_PIN_CONV)
    except TensorizeError as exc:
        return str(exc)
    reason = _geometry_reason(config, spec)
    if reason:
        return reason
    cg = spec.in_channels // spec.groups
    worst = cg * spec.kernel[0] * spec.kernel[1] * (1 << (config.inp_width - 1)) * (1 << (config.wgt_width - 1))
    if worst >= 1 << (config.acc_width - 1):
        return (f"{cg}x{spec.kernel[0]}x{spec.kernel[1]} products of int{config.inp_width} x int{config.wgt_width} "
                f"may overflow the {config.acc_width}-bit accumulator")
    p = _conv_problem(config, spec, mapping)
    need = sram_needs(config, p, Tiling(1, 1, 1, 1), FIXED_CONSTS)
    for buffer, (rows, have) in need.items():
        if rows > have:
            return f"even a one-pixel tile needs {rows} {buffer} rows; config '{config.name}' offers {have}"
    return None


def unsupported_matmul_reason(config: AccelConfig, m: int, k: int, n: int, batch: int = 1) -> str | None:
    """Why y = x @ w with x (batch, m, k), w (k, n) cannot run on the accelerator, or None if it can."""
    try:
        tensorize(matmul_nest(m, k, n, batch, f"int{config.inp_width}", f"int{config.wgt_width}",
                              f"int{config.acc_width}"), accel_gemm(config), operands=_PIN_MATMUL)
    except TensorizeError as exc:
        return str(exc)
    worst = k * (1 << (config.inp_width - 1)) * (1 << (config.wgt_width - 1))
    if worst >= 1 << (config.acc_width - 1):
        return (f"{k} products of int{config.inp_width} x int{config.wgt_width} may overflow the "
                f"{config.acc_width}-bit accumulator")
    return None


def _conv_problem(config: AccelConfig, spec: ConvSpec, mapping: Mapping) -> Problem:
    g = spec.groups
    return Problem(math.ceil(spec.batch / config.batch), g, math.ceil(spec.in_channels // g / config.block_in),
                   math.ceil(spec.out_channels // g / config.block_out), spec.height, spec.width, spec.kernel,
                   spec.stride, spec.dilation, spec.pads, spec.out_height, spec.out_width)


def _rows_problem(config: AccelConfig, rows: int, k: int, n: int) -> Problem:
    h = math.ceil(rows / config.batch)
    return Problem(1, 1, math.ceil(k / config.block_in), math.ceil(n / config.block_out), h, 1, (1, 1), (1, 1),
                   (1, 1), (0, 0, 0, 0), h, 1)


def _pack_weight(config: AccelConfig, p: Problem, weight: np.ndarray) -> np.ndarray:
    """(K, C/groups, R, S) -> (G, KB, CB, R, S, block_out, block_in), zero-padded per group."""
    k, cg, kr, ks = weight.shape
    g, bo, bi = p.groups, config.block_out, config.block_in
    kg = k // g
    w = np.zeros((g, p.kb * bo, p.cb * bi, kr, ks), dtype=np.int64)
    w[:, :kg, :cg] = weight.reshape(g, kg, cg, kr, ks)
    return w.reshape(g, p.kb, bo, p.cb, bi, kr, ks).transpose(0, 1, 3, 5, 6, 2, 4)


def _build(config: AccelConfig, p: Problem, weight: np.ndarray, bias: np.ndarray | None, requant: Requant,
           use_cache: bool, cost_model: CostModel) -> tuple[RequantPlan, schedule.Choice]:
    channels = weight.shape[0]
    plan = plan_requant(config, requant, channels, acc_bound(weight, bias, config.inp_width))
    packed = _pack_weight(config, p, weight)
    consts = const_table(config, p, plan, bias, channels // p.groups)
    alu_ops = len(requant_steps(plan, bias is not None))  # what the lowering emits per output tile
    choice = schedule.choose(config, p, plan.mode == "fixed", bias is not None, alu_ops,
                             lambda t: lower(config, p, t, plan, bias is not None, packed, consts), use_cache,
                             cost_model)
    return plan, choice


def activation_types_reason(config: AccelConfig, input_dtype: str, output_dtype: str,
                            input_zero_point: int) -> str | None:
    """Why activations of these types cannot enter / leave `config`'s accelerator, or None if they can."""
    for side, dtype, width in (("input", input_dtype, config.inp_width), ("output", output_dtype, config.out_width)):
        if dtype == "uint8" and width != 8:
            return (f"uint8 {side} activations are shifted into int8, but config '{config.name}' has "
                    f"{side[:3]}_width {width}")
    zp = input_zero_point - (128 if input_dtype == "uint8" else 0)
    lo, hi = -(1 << (config.inp_width - 1)), (1 << (config.inp_width - 1)) - 1
    if not lo <= zp <= hi:
        return f"the input zero point {input_zero_point} is outside int{config.inp_width} ({lo}..{hi}) once shifted"
    return None


def _fold_zero_point(config: AccelConfig, requant: Requant, weight: np.ndarray,
                     bias: np.ndarray | None) -> np.ndarray | None:
    """The bias with the input zero point's term folded in (weight: output channels first)."""
    reason = activation_types_reason(config, requant.input_dtype, requant.output_dtype, requant.input_zero_point)
    if reason:
        raise AccelError(reason)
    folded = requant.folded_bias(weight, bias)
    if folded is not None and folded is not bias:
        folded = _check_ints("bias - input zero point * sum(weight)", folded, config.acc_width)
    return folded


def _zero_points(requant: Requant) -> str:
    """How the activations' types and zero points enter and leave the accelerator (empty for int8, zero point 0)."""
    if requant.input_dtype == requant.output_dtype == "int8" and not requant.input_zero_point:
        return ""
    text = f"; x {requant.input_dtype} zero point {requant.input_zero_point}"
    if requant.input_offset:
        text += f" (int8 {requant.device_input_zero_point} after x - 128)"
    if requant.input_zero_point:
        text += ", its term folded into the bias"
    text += f"; y {requant.output_dtype} zero point {requant.output_zero_point}"
    return text + (" (computed in int8, + 128 on the host)" if requant.output_offset else "")


def compile_conv(config: AccelConfig, spec: ConvSpec, weight: np.ndarray, bias: np.ndarray | None,
                 requant: Requant, use_cache: bool = True, cost_model: str | CostModel = "cycle") -> AccelKernel:
    """Compile conv (+ bias) + requantization (+ ReLU) into one accelerator Program.

    `cost_model` measures the best-ranked tilings: "cycle" (the cycle model), "analytical", or a `CostModel`.
    """
    weight = _check_ints("weight", weight, config.wgt_width, spec.weight_shape)
    if bias is not None:
        bias = _check_ints("bias", bias, config.acc_width, (spec.out_channels,))
    bias = _fold_zero_point(config, requant, weight, bias)
    model_spec, host_pads = spec, (0, 0, 0, 0)
    if requant.device_input_zero_point and any(spec.pads):
        # the LOAD unit pads with 0, the model with its zero point: pad on the host and run unpadded
        host_pads = spec.pads
        pt, pl, pb, pr = spec.pads
        spec = dataclasses.replace(spec, height=spec.height + pt + pb, width=spec.width + pl + pr, pads=(0, 0, 0, 0))
    nest = conv2d_nest(spec, **_dtypes(config))
    mapping = tensorize(nest, accel_gemm(config), operands=_PIN_CONV)
    reason = _geometry_reason(config, spec)
    if reason:
        raise AccelError(f"conv {spec}: {reason}")
    # Two row mappings are lowered: every output pixel fused onto the GEMM rows (a 1x1, stride-1,
    # unpadded conv is a matmul over pixels), or images only, with the pixel loops kept outside.
    pixels = {name for name in ("oh", "ow") if nest.iterator(name).extent > 1}
    rows_path = (bool(pixels) and pixels <= set(mapping.axis("b").operator) and spec.kernel == (1, 1)
                 and spec.groups == 1)
    if not rows_path and set(mapping.axis("b").operator) & {"oh", "ow"}:
        mapping = tensorize(nest, accel_gemm(config), operands=_PIN_CONV, keep_outer=("oh", "ow"))
    s = model_spec
    desc = (f"conv {s.batch}x{s.in_channels}x{s.height}x{s.width} -> {s.out_channels} "
            f"kernel {s.kernel} stride {s.stride} pads {s.pads} dilation {s.dilation} groups {s.groups}"
            + (" (padded on the host with the input zero point)" if any(host_pads) else "") + _zero_points(requant))
    if rows_path:
        p = _rows_problem(config, spec.batch * spec.height * spec.width, spec.in_channels, spec.out_channels)
        w = weight
    else:
        p = _conv_problem(config, spec, mapping)
        w = weight
    model = schedule.resolve_cost_model(cost_model)
    plan, choice = _build(config, p, w, bias, requant, use_cache, model)
    return AccelKernel(config, "conv", desc, mapping, p, choice.tiling, plan, choice.program,
                       (s.batch, s.in_channels, s.height, s.width), spec.output_shape, spec.macs,
                       choice.cycles, choice.source, choice.cached, bias is not None, model,
                       spec.in_channels // spec.groups, spec.out_channels // spec.groups, bool(rows_path), requant,
                       host_pads)


def compile_matmul(config: AccelConfig, m: int, k: int, n: int, weight: np.ndarray, bias: np.ndarray | None,
                   requant: Requant, batch: int = 1, use_cache: bool = True,
                   cost_model: str | CostModel = "cycle") -> AccelKernel:
    """Compile y = requant(x @ weight + bias) for x (batch, m, k) (or (m, k) when batch == 1), weight (k, n).

    `cost_model` as for `compile_conv`.
    """
    for name, value in (("m", m), ("k", k), ("n", n), ("batch", batch)):
        if value < 1:
            raise AccelError(f"compile_matmul: {name} = {value} must be at least 1")
    weight = _check_ints("weight", weight, config.wgt_width, (k, n))
    if bias is not None:
        bias = _check_ints("bias", bias, config.acc_width, (n,))
    bias = _fold_zero_point(config, requant, weight.T, bias)
    nest = matmul_nest(m, k, n, batch, f"int{config.inp_width}", f"int{config.wgt_width}", f"int{config.acc_width}")
    mapping = tensorize(nest, accel_gemm(config), operands=_PIN_MATMUL)
    p = _rows_problem(config, batch * m, k, n)
    as_conv = weight.T[:, :, None, None]
    model = schedule.resolve_cost_model(cost_model)
    plan, choice = _build(config, p, as_conv, bias, requant, use_cache, model)
    return AccelKernel(config, "matmul", f"matmul ({batch}x){m}x{k} @ {k}x{n}{_zero_points(requant)}", mapping, p,
                       choice.tiling, plan, choice.program, (batch, m, k), (batch, m, n), batch * m * k * n,
                       choice.cycles, choice.source, choice.cached, bias is not None, model, k, n, True, requant)
