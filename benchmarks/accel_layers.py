"""ResNet-18 body on the accelerator: estimated cycles per layer and in total, next to VTA's 7.73 M.

    python benchmarks/accel_layers.py [--config vta-default] [--run]

Prints, per distinct layer (workloads.md C2..C11): MACs, the chosen tiling, estimated cycles and
utilization with exact fixed-point requantization (per-channel scales, as onnxruntime) and with
VTA's power-of-two requantization (shift + clip); then the body total (layer1 = 4 x C2, layers 2-4 =
strided 3x3 + 1x1 downsample + 3 x 3x3) and its ratio to VTA's 7.73 M cycles and to the 6.62 M-cycle
ideal at 256 MAC/cycle. Cycles come from the cost model "cycle" (`sim.cycle.estimate_cycles`).
`--run` also runs every layer on the functional simulator and checks it bit-exact (minutes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tensorweave.compiler.accel import conv2d_int, requantize
from tensorweave.compiler.accel.resnet import (
    RESNET18_BODY,
    RESNET18_LAYERS,
    VTA_BODY_CYCLES,
    resnet18_layer,
    resnet18_spec,
)
from tensorweave.configs import load_config
from tqdm import tqdm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="vta-default")
    parser.add_argument("--run", action="store_true", help="also run each layer on the functional simulator")
    args = parser.parse_args()
    config = load_config(args.config)
    rows = []
    totals = {"fixed": 0, "pow2": 0}
    macs_total = 0
    for name in tqdm(list(RESNET18_LAYERS), desc="compiling", unit="layer"):
        spec = resnet18_spec(name)
        kernel, weight, bias, _ = resnet18_layer(config, name)
        shift_kernel = resnet18_layer(config, name, power_of_two=True)[0]
        repeat = RESNET18_BODY[name]
        totals["fixed"] += repeat * kernel.estimated_cycles
        totals["pow2"] += repeat * shift_kernel.estimated_cycles
        macs_total += repeat * spec.macs
        checked = ""
        if args.run:
            x = np.random.default_rng(1).integers(-128, 128, (1, spec.in_channels, spec.height, spec.width))
            start = time.perf_counter()
            y, _ = kernel.run(x)
            ok = np.array_equal(y, requantize(conv2d_int(x, weight, spec, bias), kernel.plan))
            checked = f"{'exact' if ok else 'MISMATCH'} ({time.perf_counter() - start:.1f} s)"
        rows.append((name, repeat, f"{spec.macs / 1e6:.1f}", str(kernel.tiling), f"{kernel.estimated_cycles:,}",
                     f"{kernel.utilization:.1%}", f"{shift_kernel.estimated_cycles:,}",
                     f"{shift_kernel.utilization:.1%}", checked))
    header = ("layer", "x", "MMAC", "tiling (fixed-point)", "cycles", "util", "cycles pow2", "util pow2", "run")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"\nResNet-18 body on '{config.name}' ({config.macs_per_cycle} MAC/cycle, {config.bus_width}-bit bus), "
          f"cycle source: {kernel.cycle_source}")
    for r in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    ideal = macs_total / config.macs_per_cycle
    print(f"\nbody: {macs_total / 1e6:,.1f} M MAC; ideal {ideal / 1e6:.2f} M cycles "
          f"at {config.macs_per_cycle} MAC/cycle")
    for mode, label in (("fixed", "fixed-point requantization"), ("pow2", "power-of-two requantization (as VTA)")):
        cycles = totals[mode]
        print(f"{label:>40}: {cycles / 1e6:.2f} M cycles = {cycles / VTA_BODY_CYCLES:.2f} x VTA's 7.73 M, "
              f"{ideal / cycles:.1%} utilization")


if __name__ == "__main__":
    main()
