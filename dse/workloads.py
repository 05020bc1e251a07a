"""Workloads for sweeps: layers (convolutions, matrix multiplies) and the Programs that run them.

A layer becomes a GEMM: a convolution of an N x Cin x H x W input with Cout x Cin x K x K weights
is the implicit-GEMM (im2col) product M = N * OH * OW, K = Cin * K * K, N = Cout; its program reads
the im2col matrix from DRAM, so DRAM input traffic counts each input pixel once per kernel tap that
uses it. `tiled_gemm` writes that GEMM for any config as a double-buffered, tiled program in the
style of `sim/programs.py:blocked_gemm` (ReLU, shift and clip to out_width at the end of each tile):

    for each output tile (TM x TN blocks):        acc window t % 2 (waits for the store of t - 2)
        gemm reset
        for each reduction step (TK blocks):      inp/wgt window s % 2 (waits for the GEMM of s - 2)
            load.inp TM x TK, load.wgt TN x TK    (load unit)
            gemm TM x TN x TK micro-op loop       (compute unit)
        alu.max 0, alu.shr shift, alu.min clip    (those in the config's alu_ops)
        store.out TM x TN                         (store unit)

so loads of the next step overlap the GEMM of this one, and the store of a tile overlaps the
next tile's compute. `choose_tiles` picks (TM, TK, TN) to fit half of each scratchpad and minimise
an estimate of max(compute, DRAM) cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..configs import AccelConfig
from ..errors import TensorweaveError
from ..isa import Program, assemble, build_isa
from ..isa.program import int_dtype


class WorkloadError(TensorweaveError, ValueError):
    """A layer that cannot be described or does not fit a config; the message names the layer and field."""


@dataclass(frozen=True)
class ConvLayer:
    name: str
    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    batch: int = 1

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    def gemm(self) -> tuple[int, int, int]:
        """(M, K, N) of the implicit GEMM."""
        return (self.batch * self.out_height * self.out_width, self.in_channels * self.kernel ** 2,
                self.out_channels)

    @property
    def macs(self) -> int:
        m, k, n = self.gemm()
        return m * k * n


@dataclass(frozen=True)
class MatmulLayer:
    name: str
    m: int
    k: int
    n: int

    def gemm(self) -> tuple[int, int, int]:
        return (self.m, self.k, self.n)

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


Layer = ConvLayer | MatmulLayer

# ResNet-18's convolutions C2..C11 as VTA's benchmarks run them (shared/reference/workloads.md).
RESNET18 = (
    ConvLayer("C2", 56, 56, 64, 64, 3, 1, 1), ConvLayer("C3", 56, 56, 64, 128, 3, 2, 1),
    ConvLayer("C4", 56, 56, 64, 128, 1, 2, 0), ConvLayer("C5", 28, 28, 128, 128, 3, 1, 1),
    ConvLayer("C6", 28, 28, 128, 256, 3, 2, 1), ConvLayer("C7", 28, 28, 128, 256, 1, 2, 0),
    ConvLayer("C8", 14, 14, 256, 256, 3, 1, 1), ConvLayer("C9", 14, 14, 256, 512, 3, 2, 1),
    ConvLayer("C10", 14, 14, 256, 512, 1, 2, 0), ConvLayer("C11", 7, 7, 512, 512, 3, 1, 1),
)
NAMED_WORKLOADS: dict[str, tuple[Layer, ...]] = {"resnet18": RESNET18}

_CONV_FIELDS = {"height": int, "width": int, "in_channels": int, "out_channels": int, "kernel": int,
                "stride": int, "padding": int, "batch": int}
_MATMUL_FIELDS = {"m": int, "k": int, "n": int}


def parse_layer(data: object, where: str) -> Layer:
    """A layer from a mapping: {conv: NAME, height, width, in_channels, out_channels, kernel, stride?, padding?}
    or {matmul: NAME, m, k, n}."""
    if not isinstance(data, dict) or not ({"conv", "matmul"} & set(data)):
        raise WorkloadError(f"{where}: a layer is a mapping with 'conv: NAME' or 'matmul: NAME', got {data!r}")
    kind = "conv" if "conv" in data else "matmul"
    fields = _CONV_FIELDS if kind == "conv" else _MATMUL_FIELDS
    required = [f for f in fields if f not in ("stride", "padding", "batch")]
    values = {}
    for key, value in data.items():
        if key == kind:
            continue
        if key not in fields:
            raise WorkloadError(f"{where}: {kind} layer field '{key}' is unknown; fields: {', '.join(fields)}")
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "padding" else 1):
            raise WorkloadError(f"{where}: {kind} layer field '{key}' must be a positive integer, not {value!r}")
        values[key] = value
    for key in required:
        if key not in values:
            raise WorkloadError(f"{where}: {kind} layer '{data[kind]}' is missing field '{key}'")
    layer: Layer = ConvLayer(str(data[kind]), **values) if kind == "conv" else MatmulLayer(str(data[kind]), **values)
    if isinstance(layer, ConvLayer) and (layer.out_height < 1 or layer.out_width < 1):
        raise WorkloadError(f"{where}: conv layer '{layer.name}': kernel {layer.kernel} is larger than the "
                            f"padded {layer.height}x{layer.width} input")
    return layer


# --- tiling --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tiles:
    """Blocks per tile along M (batch rows), K (block_in) and N (block_out)."""

    m: int
    k: int
    n: int


def _limits(config: AccelConfig) -> dict[str, int]:
    isa = build_isa(config)
    gemm = isa.formats["GEMM"]
    return {"iter": (1 << isa.widths["loop_iter"]) - 1,
            "factor": min((1 << gemm.field(f).width) - 1 for f in ("dst_factor_out", "src_factor_out",
                                                                   "wgt_factor_in")),
            "size": (1 << isa.widths["size"]) - 1, "stride": (1 << isa.widths["stride"]) - 1}


@lru_cache(maxsize=4096)
def choose_tiles(config: AccelConfig, mt: int, kt: int, nt: int) -> Tiles:
    """The tile (in blocks) for an mt x kt x nt block GEMM: fits half of every scratchpad and the
    instruction fields, minimising max(GEMM cycles, DRAM beats) plus a per-instruction overhead."""
    c = config
    lim = _limits(c)
    if kt > lim["stride"] or nt > lim["stride"]:
        raise WorkloadError(f"a GEMM of {kt} x {nt} blocks needs a DRAM row stride above the ISA's {lim['stride']}")
    half_inp, half_wgt, half_acc = c.inp_depth // 2, c.wgt_depth // 2, c.acc_depth // 2
    uop_tk = (c.uop_depth - 2) // 4
    best: tuple[float, Tiles] | None = None
    for tk in range(1, min(kt, half_inp, half_wgt, uop_tk, lim["factor"]) + 1):
        steps_k = -(-kt // tk)
        for tn in range(1, min(nt, half_wgt // tk, lim["factor"]) + 1):
            tm = min(mt, half_inp // tk, half_acc // tn, lim["iter"] // tn, lim["iter"])
            if tm < 1:
                continue
            tiles_m, tiles_n = -(-mt // tm), -(-nt // tn)
            inp_bytes = mt * kt * c.inp_row_bytes * tiles_n
            wgt_bytes = nt * kt * c.wgt_row_bytes * tiles_m
            beats = (inp_bytes + wgt_bytes + mt * nt * c.out_row_bytes) / c.bus_bytes
            insns = tiles_m * tiles_n * (3 * steps_k + 6)
            cost = max(mt * nt * kt, beats) + 30 * insns
            if best is None or cost < best[0]:
                best = (cost, Tiles(tm, tk, tn))
    if best is None:
        raise WorkloadError(f"config '{c.name}' cannot hold one tile: needs 2 input rows, 2 weight rows, 2 "
                            f"accumulator rows and 6 micro-ops (has {c.inp_depth}, {c.wgt_depth}, {c.acc_depth}, "
                            f"{c.uop_depth})")
    return best[1]


def tiled_gemm(config: AccelConfig, m: int, k: int, n: int, shift: int = 8, tiles: Tiles | None = None,
               init: bool = False) -> str:
    """Assembler text of C = clip(relu(A @ W^T) >> shift) for A (m x k), W (n x k), tiled and double-buffered.

    m, k, n are rounded up to whole blocks (batch, block_in, block_out); tensors A, W, C use the
    packed layouts of `sim/programs.py`. With `init`, A and W get random initial values."""
    c = config
    b, bi, bo = c.batch, c.block_in, c.block_out
    mt, kt, nt = -(-m // b), -(-k // bi), -(-n // bo)
    t = tiles or choose_tiles(c, mt, kt, nt)
    hi_inp, hi_wgt, hi_acc = c.inp_depth // 2, c.wgt_depth // 2, c.acc_depth // 2
    a_init, w_init = (" init=random:1", " init=random:2") if init else ("", "")
    lines = [f"# tiled GEMM {m}x{k}x{n} on '{c.name}': {mt}x{kt}x{nt} blocks in tiles of {t.m}x{t.k}x{t.n}",
             f".tensor A input {int_dtype(c.inp_width)} {mt},{kt},{b},{bi}{a_init}",
             f".tensor W weight {int_dtype(c.wgt_width)} {nt},{kt},{bo},{bi}{w_init}",
             f".tensor C output {int_dtype(c.out_width)} {mt},{nt},{b},{bo}",
             ".uop dst=0 src=0 wgt=0", f".uop dst={hi_acc} src={hi_acc} wgt=0"]
    for ib in (0, 1):
        for ab in (0, 1):
            lines += [f".uop dst={ab * hi_acc} src={ib * hi_inp + u} wgt={ib * hi_wgt + u}" for u in range(t.k)]
    n_uops = 2 + 4 * t.k
    lines.append(f"load.uop sram_base=0 dram_base=@uops y_size=1 x_size={n_uops} x_stride={n_uops}")
    alu = [(op, imm) for op, imm in (("MAX", 0), ("SHR", shift), ("MIN", (1 << (c.out_width - 1)) - 1))
           if c.alu_has(op)]
    out_tiles = [(i, j) for i in range(0, mt, t.m) for j in range(0, nt, t.n)]
    steps_k = list(range(0, kt, t.k))
    total_steps = len(out_tiles) * len(steps_k)
    s = 0
    for tile, (i0, j0) in enumerate(out_tiles):
        tm, tn, ab = min(t.m, mt - i0), min(t.n, nt - j0), tile % 2
        wait_store = " pop_next" if tile >= 2 else ""
        lines.append(f"gemm reset{wait_store} uop_begin={ab} uop_end={ab + 1} iter_out={tm * tn} iter_in=1 "
                     f"dst_factor_out=1")
        for k0 in steps_k:
            tk, ib = min(t.k, kt - k0), s % 2
            wait_compute = " pop_next" if s >= 2 else ""
            lines.append(f"load.inp{wait_compute} sram_base={ib * hi_inp} dram_base=@A+{i0 * kt + k0} y_size={tm} "
                         f"x_size={tk} x_stride={kt}")
            lines.append(f"load.wgt push_next sram_base={ib * hi_wgt} dram_base=@W+{j0 * kt + k0} y_size={tn} "
                         f"x_size={tk} x_stride={kt}")
            free = " push_prev" if s + 2 < total_steps else ""
            begin = 2 + (ib * 2 + ab) * t.k
            lines.append(f"gemm pop_prev{free} uop_begin={begin} uop_end={begin + tk} iter_out={tm} iter_in={tn} "
                         f"dst_factor_out={tn} dst_factor_in=1 src_factor_out={tk} wgt_factor_in={tk}")
            s += 1
        for index, (op, imm) in enumerate(alu):
            last = " push_next" if index == len(alu) - 1 else ""
            lines.append(f"alu.{op.lower()}{last} use_imm imm={imm} uop_begin={ab} uop_end={ab + 1} "
                         f"iter_out={tm * tn} iter_in=1 dst_factor_out=1 src_factor_out=1")
        if not alu:
            lines[-1] += " push_next"
        free = " push_prev" if tile + 2 < len(out_tiles) or tile == len(out_tiles) - 1 else ""
        lines.append(f"store.out pop_prev{free} sram_base={ab * hi_acc} dram_base=@C+{i0 * nt + j0} y_size={tm} "
                     f"x_size={tn} x_stride={nt}")
    lines.append("finish pop_next")
    return "\n".join(lines) + "\n"


def gemm_reference(config: AccelConfig, a: np.ndarray, w: np.ndarray, shift: int = 8) -> np.ndarray:
    """NumPy definition of `tiled_gemm` on plain matrices: the ALU steps present in the config, then
    truncation to out_width (as STORE does)."""
    acc = a.astype(np.int64) @ w.astype(np.int64).T
    half = 1 << (config.acc_width - 1)
    acc = ((acc + half) % (2 * half)) - half
    if config.alu_has("MAX"):
        acc = np.maximum(acc, 0)
    if config.alu_has("SHR"):
        acc = acc >> shift
    if config.alu_has("MIN"):
        acc = np.minimum(acc, (1 << (config.out_width - 1)) - 1)
    bits = config.out_width
    return ((acc + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


PROGRAM_SOURCES = ("gemm", "compiler")


def layer_program(config: AccelConfig, layer: Layer, source: str = "gemm") -> Program:
    """The Program a sweep runs for `layer` on `config`: `gemm`, the implicit-GEMM tiling above (fast);
    or `compiler`, the accelerator compiler's `compile_conv` / `compile_matmul` (direct convolution
    with requantization, its tiling searched with the cycle model: about 1-3 s a layer)."""
    if source == "compiler":
        return _compiled(config, layer)
    if source != "gemm":
        raise WorkloadError(f"program source '{source}' is not one of {', '.join(PROGRAM_SOURCES)}")
    m, k, n = layer.gemm()
    try:
        return assemble(tiled_gemm(config, m, k, n), config, source=f"<layer {layer.name}>")
    except WorkloadError as exc:
        raise WorkloadError(f"layer {layer.name}: {exc}") from None


def _compiled(config: AccelConfig, layer: Layer) -> Program:
    """`layer` through the accelerator compiler, with seeded random int weights and bias and VTA's
    benchmark requantization (>> 8 as powers of two, + bias, ReLU)."""
    from ..compiler.accel import ConvSpec, Requant, compile_conv, compile_matmul

    rng = np.random.default_rng(0)
    hi = 1 << (config.wgt_width - 1)
    requant = Requant(2.0 ** -4, (2.0 ** -7,), 2.0 ** -3, relu=True)
    try:
        if isinstance(layer, ConvLayer):
            p = layer.padding
            spec = ConvSpec(layer.batch, layer.in_channels, layer.height, layer.width, layer.out_channels,
                            (layer.kernel, layer.kernel), (layer.stride, layer.stride), (p, p, p, p))
            weight = rng.integers(-hi, hi, spec.weight_shape)
            bias = rng.integers(-4096, 4096, layer.out_channels)
            kernel = compile_conv(config, spec, weight, bias, requant, use_cache=False)
        else:
            weight = rng.integers(-hi, hi, (layer.k, layer.n))
            bias = rng.integers(-4096, 4096, layer.n)
            kernel = compile_matmul(config, layer.m, layer.k, layer.n, weight, bias, requant, use_cache=False)
    except TensorweaveError as exc:
        raise WorkloadError(f"layer {layer.name}: the compiler cannot map it to config '{config.name}': "
                            f"{exc}") from None
    return kernel.program
