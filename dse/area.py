"""A fast analytical FPGA resource model: LUT / FF / DSP / BRAM and an Fmax estimate from a config.

Real synthesis (yosys, in `fpga/`) takes minutes per design point; a sweep needs microseconds. The
model counts the structures the accelerator is built from (Xilinx 7-series cells):

- DSP: one DSP48 per GEMM multiplier when inp_width x wgt_width needs more than a few LUTs
  (>= 6-bit x 6-bit), else the multipliers go to LUTs; each ALU lane with a multiplying operation
  (`multiplier` in contract/alu.py: MUL) multiplies acc_width x acc_width bits, tiled on 25 x 18
  DSP inputs: ceil(w / 25) * ceil(w / 18) DSPs.
- BRAM (RAMB36): each scratchpad is `row_bits` wide and `depth` deep; the count is the cheapest
  RAMB36 aspect ratio (512x72 ... 32768x1), as the synthesis tool's memory mapper picks. Memories
  at most `LUTRAM_DEPTH` deep (the command queues, tiny scratchpads) go to LUT RAM instead, one
  LUT per bit per 64 entries.
- LUT and FF: a linear model over structural features (`features`): MAC lanes, adder-tree bits,
  accumulator bits, ALU lanes x operations (each operation's `area` in contract/alu.py), DMA
  bus width, control. The coefficients (`DEFAULT_COEFFICIENTS`) are rules of thumb per bit (one
  LUT6 per adder bit on the carry chain, a 2:1 mux per LUT, pipeline registers at every tree
  level) until `fit` calibrates them on yosys numbers; `fit` reports the fit's worst relative
  error per resource.
- Fmax: 1000 / (critical path ns), the path being a BRAM read plus the adder-tree levels of one
  pipeline stage; a heuristic, not a timing analysis.

Calibration (`fit_from_estimates`): the FPGA flow stores yosys 0.70 `synth_xilinx` results per
(preset, board) in the package, fpga/estimates/. With as many samples as LUT/FF features `fit` fits
every coefficient; with 2 or more, a constant plus one scale on the other rules of thumb; with
one, a scale. `CALIBRATION` holds the fit to the four xc7 samples there are (PYNQ-Z2: tiny,
vta-default, w4a8, batch2-32x32). batch2-32x32's sample is its LUTs without the 2,068 multipliers the
board's 220 DSPs could not take (`measured_resources`: 118614 of 325400; its estimate is out of
context, fpga/ooc.py, and keeps that split), as this model puts int8 products on DSPs. Its errors:
FF within 14 % (w4a8: yosys 3391, model 3858; tiny: 3669 vs 3254; the fitted FF is a constant plus
a small slope, 7996 vs 8300 on batch2-32x32); LUT off by up to 31 % (vta-default: yosys 33313, model
22967; w4a8: 15695 vs 20389; tiny 9237 vs 8487; batch2-32x32 118614 vs 105267), because the flow fits
multipliers to the board's DSPs (vta-default's 256 do not fit 220 DSPs, so 130 become LUTs; w4a8's
int4 x int8 ones go to DSPs), which this board-agnostic model does not know. DSP and BRAM are
structural, not fitted: DSP 32 vs 33 on tiny, 320 vs 181 and 2304 vs 149 (board-capped) on
vta-default and batch2-32x32; BRAM 1 vs 1 on tiny, 116 vs 128, 41 vs 44 and 215 vs 227 on the others
(yosys maps wide memories less densely than the aspect-ratio rule).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..configs import AccelConfig, load_config, preset_names
from ..contract import alu
from ..contract.memories import memories
from ..errors import TensorweaveError

# RAMB36 aspect ratios (depth, width): the 36 Kbit block in its simple dual-port shapes.
RAMB36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
INSTRUCTION_BITS = 128
LUTRAM_DEPTH = 64


class AreaError(TensorweaveError, ValueError):
    """A resource-model input that makes no sense (e.g. fitting on no samples)."""


def bram36(depth: int, width: int) -> int:
    """RAMB36 blocks for a depth x width memory: the cheapest aspect ratio."""
    return min(-(-width // w) * -(-depth // d) for d, w in RAMB36_SHAPES)


def _memories(config: AccelConfig) -> list[tuple[int, int]]:
    """(depth, width) of every memory: the four scratchpads, the output buffer and the three command queues."""
    found = memories(config)
    return [(found[m].depth, found[m].row_bits) for m in ("INP", "WGT", "ACC", "UOP", "OUT")] + [
        (config.cmd_queue_depth, INSTRUCTION_BITS)] * 3


def features(config: AccelConfig) -> dict[str, float]:
    """The structural quantities LUTs and FFs scale with."""
    c = config
    macs = c.macs_per_cycle
    lanes = c.batch * c.block_out
    product_bits = c.inp_width + c.wgt_width
    tree_bits = lanes * (c.block_in - 1) * (product_bits + math.log2(c.block_in) / 2)
    lut_multiplier_bits = 0 if _dsp_multiplier(c) else macs * c.inp_width * c.wgt_width
    alu_bits = lanes * c.acc_width
    alu_ops = sum(alu.by_name(op).area(c.acc_width) for op in c.alu_ops)   # per-op costs: contract/alu.py
    return {
        "const": 1.0,
        "tree_bits": tree_bits,                      # adder tree, one LUT (and FF) per bit
        "lut_multiplier_bits": lut_multiplier_bits,  # multipliers built from LUTs
        "mac_input_bits": macs * product_bits,       # operand registers in front of the multipliers
        "acc_bits": alu_bits,                        # accumulator read-modify-write lanes
        "alu_op_bits": alu_bits * alu_ops,           # the ALU's datapath, per operation
        "bus_bits": c.bus_width,                     # DMA engines and the DRAM port
        "index_bits": c.inp_index_width + c.wgt_index_width + c.acc_index_width + c.uop_index_width,
        "lutram_bits": sum(w * -(-d // 64) for d, w in _memories(c) if d <= LUTRAM_DEPTH),
    }


def _dsp_multiplier(config: AccelConfig) -> bool:
    return config.inp_width >= 6 and config.wgt_width >= 6


# Rules of thumb per feature (see the module docstring), before calibration.
RULE_OF_THUMB: dict[str, dict[str, float]] = {
    "lut": {"const": 2500, "tree_bits": 1.0, "lut_multiplier_bits": 0.6, "mac_input_bits": 0.0, "acc_bits": 1.5,
            "alu_op_bits": 1.0, "bus_bits": 8.0, "index_bits": 40.0, "lutram_bits": 2.0},
    "ff": {"const": 3000, "tree_bits": 1.0, "lut_multiplier_bits": 0.5, "mac_input_bits": 1.0, "acc_bits": 2.0,
           "alu_op_bits": 0.5, "bus_bits": 6.0, "index_bits": 30.0, "lutram_bits": 0.0},
}
# (constant, scale of the other rules of thumb) fitted to fpga/estimates (xc7, 4 presets);
# tests/dse/test_area.py refits them from those files.
CALIBRATION = {"lut": (1166.4, 1.31202), "ff": (3099.6, 0.05207)}
DEFAULT_COEFFICIENTS: dict[str, dict[str, float]] = {
    r: {k: CALIBRATION[r][0] if k == "const" else v * CALIBRATION[r][1] for k, v in coefficients.items()}
    for r, coefficients in RULE_OF_THUMB.items()}


@dataclass(frozen=True)
class AreaEstimate:
    lut: int
    ff: int
    dsp: int
    bram: int
    fmax_mhz: float

    def as_dict(self) -> dict[str, float]:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram, "fmax_mhz": self.fmax_mhz}


@dataclass(frozen=True)
class AreaModel:
    """LUT/FF coefficients per feature; DSP, BRAM and Fmax are structural."""

    coefficients: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_COEFFICIENTS)

    def estimate(self, config: AccelConfig) -> AreaEstimate:
        f = features(config)
        lut, ff = (sum(self.coefficients[r].get(k, 0.0) * v for k, v in f.items()) for r in ("lut", "ff"))
        return AreaEstimate(round(lut), round(ff), dsp_count(config), bram_count(config), fmax_mhz(config))


def dsp_count(config: AccelConfig) -> int:
    c = config
    gemm = c.macs_per_cycle if _dsp_multiplier(c) else 0
    per_lane = -(-c.acc_width // 25) * -(-c.acc_width // 18)
    multiplies = any(alu.by_name(op).multiplier for op in c.alu_ops)
    return gemm + (c.batch * c.block_out * per_lane if multiplies else 0)


def bram_count(config: AccelConfig) -> int:
    return sum(bram36(d, w) for d, w in _memories(config) if d > LUTRAM_DEPTH)


def fmax_mhz(config: AccelConfig) -> float:
    c = config
    found = memories(config)
    deepest = max(bram36(found[m].depth, found[m].row_bits) for m in ("INP", "WGT", "ACC"))
    ns = 2.8 + 0.45 * math.log2(c.block_in) + 0.012 * c.acc_width + 0.25 * math.log2(deepest)
    return round(1000.0 / ns, 1)


DEFAULT_MODEL = AreaModel()


def estimate_area(config: AccelConfig, model: AreaModel = DEFAULT_MODEL) -> AreaEstimate:
    """The resource estimate of one design point."""
    return model.estimate(config)


@dataclass(frozen=True)
class Fit:
    model: AreaModel
    worst_error: dict[str, float]   # per resource: max |estimate - measured| / measured over the samples
    samples: int


def fit(samples: Sequence[tuple[AccelConfig, Mapping[str, float]]], base: AreaModel | None = None) -> Fit:
    """Least-squares fit (in relative error) of the LUT and FF coefficients to measured resources,
    e.g. yosys `stat` numbers: samples of (config, {"lut": ..., "ff": ...}). With at least as many
    samples as features every coefficient is fitted; with fewer, one scale factor per resource
    multiplies `base` (default: the rules of thumb)."""
    if not samples:
        raise AreaError("fitting the area model needs at least one (config, resources) sample")
    base = base or AreaModel(RULE_OF_THUMB)
    names = list(features(samples[0][0]))
    x = np.array([[features(c)[n] for n in names] for c, _ in samples])
    coefficients = {r: dict(v) for r, v in base.coefficients.items()}
    worst = {}
    for resource in ("lut", "ff"):
        y = np.array([float(m[resource]) for _, m in samples])
        weights = 1.0 / np.maximum(y, 1.0)
        used = [i for i in range(len(names)) if np.any(x[:, i])]
        if len(samples) >= len(used):
            solution, *_ = np.linalg.lstsq(x[:, used] * weights[:, None], y * weights, rcond=None)
            coefficients[resource] = {n: 0.0 for n in names}
            for i, value in zip(used, solution):
                coefficients[resource][names[i]] = float(value)
        elif len(samples) >= 2:
            # a constant plus one scale on the rest of the prior: two unknowns
            prior = x @ np.array([0.0 if n == "const" else base.coefficients[resource].get(n, 0.0) for n in names])
            design = np.stack([np.ones_like(prior), prior], axis=1) * weights[:, None]
            (const, scale), *_ = np.linalg.lstsq(design, y * weights, rcond=None)
            if scale < 0:  # a resource that does not grow with the design: a constant
                scale, const = 0.0, float(np.sum(y * weights ** 2) / np.sum(weights ** 2))
            coefficients[resource] = {n: float(scale) * v for n, v in base.coefficients[resource].items()}
            coefficients[resource]["const"] = float(const)
        else:
            prior = x @ np.array([base.coefficients[resource].get(n, 0.0) for n in names])
            scale = float(np.sum(prior * y * weights ** 2) / np.sum((prior * weights) ** 2))
            coefficients[resource] = {n: v * scale for n, v in base.coefficients[resource].items()}
        predicted = x @ np.array([coefficients[resource].get(n, 0.0) for n in names])
        worst[resource] = float(np.max(np.abs(predicted - y) / np.maximum(y, 1.0)))
    return Fit(AreaModel(coefficients), worst, len(samples))


# The FPGA flow's stored estimates, package data of tensorweave.fpga (read without importing the flow).
ESTIMATES = Path(str(resources.files("tensorweave.fpga") / "estimates"))


def yosys_samples(folder: Path = ESTIMATES, family: str = "xc7") -> list[tuple[AccelConfig, dict[str, float]]]:
    """(config, resources) from the FPGA flow's stored synthesis estimates of the presets."""
    samples = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("family") != family or data.get("design") not in preset_names():
            continue
        config = load_config(data["design"])
        if config.digest == data.get("config_digest"):
            samples.append((config, measured_resources(config, data)))
    return samples


def measured_resources(config: AccelConfig, data: Mapping[str, Any]) -> dict[str, float]:
    """The resources of a stored estimate the model describes. An out-of-context estimate (fpga/ooc.py)
    also holds the design without its LUT multipliers (`ooc.rest`, on-DSP multipliers included); when
    the model puts the GEMM products on DSPs (`_dsp_multiplier`) and the board's DSP cap pushed them
    to LUTs (batch2-32x32 on the PYNQ-Z2: 2,048 int8 products at 95 LUTs each), that is the count."""
    rest = data.get("ooc", {}).get("rest")
    if rest is not None and _dsp_multiplier(config):
        return {**data["resources"], "lut": rest["lut"]}
    return dict(data["resources"])


def fit_from_estimates(folder: Path = ESTIMATES, family: str = "xc7") -> Fit:
    """`fit` on the stored yosys estimates for `family` (see the module docstring)."""
    samples = yosys_samples(folder, family)
    if not samples:
        raise AreaError(f"no stored {family} synthesis estimates of presets under {folder}")
    return fit(samples)
