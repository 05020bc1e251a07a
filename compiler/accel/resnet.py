"""ResNet-18's accelerator convolutions (VTA's benchmark set, workloads.md C2..C11) and the body's
cycle estimate: layer1 = 4 x C2; layers 2-4 = one strided 3x3, one 1x1 downsample, three 3x3 each."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...configs import AccelConfig
from .kernel import AccelKernel, compile_conv
from .spec import ConvSpec, Requant

# name: (H = W in, in channels, out channels, kernel, stride)
RESNET18_LAYERS = {
    "C2": (56, 64, 64, 3, 1), "C3": (56, 64, 128, 3, 2), "C4": (56, 64, 128, 1, 2),
    "C5": (28, 128, 128, 3, 1), "C6": (28, 128, 256, 3, 2), "C7": (28, 128, 256, 1, 2),
    "C8": (14, 256, 256, 3, 1), "C9": (14, 256, 512, 3, 2), "C10": (14, 256, 512, 1, 2),
    "C11": (7, 512, 512, 3, 1),
}
# How often each layer runs in the ResNet-18 body.
RESNET18_BODY = {"C2": 4, "C3": 1, "C4": 1, "C5": 3, "C6": 1, "C7": 1, "C8": 3, "C9": 1, "C10": 1, "C11": 3}
VTA_BODY_CYCLES = 7_730_000   # apache/tvm-vta PR #30, cycle-accurate simulation of the Chisel design


def resnet18_spec(name: str, batch: int = 1) -> ConvSpec:
    hw, cin, cout, k, s = RESNET18_LAYERS[name]
    p = 1 if k == 3 else 0
    return ConvSpec(batch, cin, hw, hw, cout, (k, k), (s, s), (p, p, p, p))


def resnet18_layer(config: AccelConfig, name: str, power_of_two: bool = False, seed: int = 0,
                   use_cache: bool = True) -> tuple[AccelKernel, np.ndarray, np.ndarray, Requant]:
    """Compile layer `name` with random int8 weights and bias; per-channel scales (or powers of two, as VTA)."""
    spec = resnet18_spec(name)
    rng = np.random.default_rng(seed)
    weight = rng.integers(-128, 128, spec.weight_shape)
    bias = rng.integers(-4096, 4096, spec.out_channels)
    if power_of_two:
        requant = Requant(2.0 ** -4, (2.0 ** -7,), 2.0 ** -3, relu=True)   # >> 8, as VTA's benchmark
    else:
        requant = Requant(0.03, tuple(rng.uniform(0.002, 0.008, spec.out_channels)), 0.2, relu=True)
    return compile_conv(config, spec, weight, bias, requant, use_cache=use_cache), weight, bias, requant


def resnet18_body(config: AccelConfig, power_of_two: bool = False,
                  progress: bool = False) -> Iterator[tuple[str, int, AccelKernel]]:
    """(name, repeats, kernel) for every distinct body layer."""
    names = list(RESNET18_LAYERS)
    if progress:
        from tqdm import tqdm
        names = tqdm(names, desc="compiling ResNet-18 layers", unit="layer")
    for name in names:
        kernel = resnet18_layer(config, name, power_of_two)[0]
        yield name, RESNET18_BODY[name], kernel
