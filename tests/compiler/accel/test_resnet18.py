"""ResNet-18's conv layers C2..C11 compile for vta-default and fit; running them all is `slow`."""

from __future__ import annotations

import numpy as np
import pytest
from tensorweave.compiler.accel import conv2d_int, requantize
from tensorweave.compiler.accel.lower import FIXED_CONSTS, sram_needs
from tensorweave.compiler.accel.resnet import RESNET18_BODY, RESNET18_LAYERS, resnet18_layer, resnet18_spec
from tensorweave.configs import load_config

VTA = load_config("vta-default")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path))


@pytest.mark.model
def test_resnet18_layers_compile_and_fit():
    total = 0
    for name in RESNET18_LAYERS:
        kernel = resnet18_layer(VTA, name)[0]
        spec = resnet18_spec(name)
        for buffer, (need, have) in sram_needs(VTA, kernel.problem, kernel.tiling, FIXED_CONSTS).items():
            assert need <= have, (name, buffer)
        assert len(kernel.program.uops) <= VTA.uop_depth
        assert kernel.mapping.axis("i").operator == ("c",) and kernel.mapping.efficiency == 1.0
        # Cycles cannot beat the GEMM core's peak, and the schedule keeps it reasonably busy.
        assert kernel.estimated_cycles >= spec.macs / VTA.macs_per_cycle
        assert kernel.utilization > (0.1 if spec.kernel == (1, 1) else 0.5), name
        total += RESNET18_BODY[name] * kernel.estimated_cycles
    assert 6.62e6 < total < 15e6   # above the 6.62 M-cycle ideal; the value is reported by benchmarks/accel_layers.py


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RESNET18_LAYERS))
def test_resnet18_layer_runs_bit_exact(name):
    kernel, weight, bias, _ = resnet18_layer(VTA, name)
    spec = resnet18_spec(name)
    x = np.random.default_rng(1).integers(-128, 128, (1, spec.in_channels, spec.height, spec.width))
    y, stats = kernel.run(x)
    assert np.array_equal(y, requantize(conv2d_int(x, weight, spec, bias), kernel.plan))
    assert stats.macs == spec.macs
