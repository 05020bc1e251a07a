"""The ALU instructions the tiling search counts per output tile are the ones the lowering emits.

Rule: for every requantization (fixed-point with and without bias; power of two with rounding RSHR and
with SHR, zero point 0 or not, bias or not), the ALU-instruction count the analytical ranking is given
(and that `AccelKernel.alu_per_tile` reports) times the number of output tiles (one accumulator reset
each) equals the ALU instructions in the lowered Program. (The kernel counted 14 / 13 / 4 by hand.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv, compile_matmul
from tensorweave.compiler.accel import schedule as schedule_module
from tensorweave.configs import load_config

VTA = load_config("vta-default")
NO_RSHR = dataclasses.replace(VTA, name="no-rshr", alu_ops=("MIN", "MAX", "ADD", "SHR", "MUL"))
SPEC = ConvSpec(1, 16, 6, 6, 32, (3, 3), pads=(1, 1, 1, 1))
FIXED = Requant(0.03, (0.004,), 0.2, output_zero_point=3, relu=True)
POW2 = Requant(2.0 ** -4, (2.0 ** -7,), 2.0 ** -3)
POW2_ZP = Requant(2.0 ** -4, (2.0 ** -7,), 2.0 ** -3, output_zero_point=-5, relu=True)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))


@pytest.fixture
def ranked_with(monkeypatch):
    """The alu_ops values the analytical ranking was called with."""
    seen: list[int] = []
    original = schedule_module.analytical

    def spy(config, p, t, alu_ops):
        seen.append(alu_ops)
        return original(config, p, t, alu_ops)

    monkeypatch.setattr(schedule_module, "analytical", spy)
    return seen


def _alu_and_tiles(kernel) -> tuple[int, int]:
    counts = kernel.instruction_counts()
    alu = sum(v for k, v in counts.items() if k.startswith("alu."))
    return alu, counts["gemm.reset"]


@pytest.mark.parametrize("config", [VTA, NO_RSHR], ids=["rshr", "no-rshr"])
@pytest.mark.parametrize("requant, mode", [(FIXED, "fixed"), (POW2, "pow2"), (POW2_ZP, "pow2")],
                         ids=["fixed", "pow2", "pow2-zero-point"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_conv_alu_count_matches_the_lowering(config, requant, mode, with_bias, ranked_with):
    rng = np.random.default_rng(0)
    weight = rng.integers(-128, 128, SPEC.weight_shape)
    bias = rng.integers(-2000, 2000, SPEC.out_channels) if with_bias else None
    kernel = compile_conv(config, SPEC, weight, bias, requant, use_cache=False)
    assert kernel.plan.mode == mode
    alu, tiles = _alu_and_tiles(kernel)
    assert alu % tiles == 0 and set(ranked_with) == {alu // tiles}
    assert kernel.alu_per_tile == alu // tiles
    assert f"{kernel.alu_per_tile} ALU instructions per tile" in kernel.explain()


@pytest.mark.parametrize("requant", [FIXED, POW2_ZP], ids=["fixed", "pow2-zero-point"])
def test_matmul_alu_count_matches_the_lowering(requant, ranked_with):
    rng = np.random.default_rng(1)
    weight = rng.integers(-128, 128, (48, 40))
    kernel = compile_matmul(VTA, 20, 48, 40, weight, rng.integers(-900, 900, 40), requant, use_cache=False)
    alu, tiles = _alu_and_tiles(kernel)
    assert alu % tiles == 0 and set(ranked_with) == {alu // tiles} == {kernel.alu_per_tile}
