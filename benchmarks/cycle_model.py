"""The cycle model against the RTL: per-program cycles and error, and how much faster it is.

    python benchmarks/cycle_model.py [--configs tiny vta-default w4a8] [--random 40] [--no-rtl]

For each config it runs the validation set of `tensorweave.dse.validation` (also used by
tests/sim/test_cycle.py: blocked, tiled and double-buffered GEMMs, compiled conv layers, random
programs) on the cycle model, the functional
simulator and (unless --no-rtl) the Verilator harness; prints one row per
program, the worst and mean error, and the wall-time ratios.
"""

from __future__ import annotations

import argparse
import time

from tensorweave.configs import load_config
from tensorweave.dse.validation import validation_programs
from tensorweave.sim import run_functional
from tensorweave.sim.cycle import estimate_cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "vta-default", "w4a8"])
    parser.add_argument("--random", type=int, default=40, help="random programs per config")
    parser.add_argument("--no-rtl", action="store_true", help="skip the RTL even if it is available")
    args = parser.parse_args()
    use_rtl = not args.no_rtl
    errors, times = [], {"model": 0.0, "functional": 0.0, "rtl": 0.0}
    print(f"{'config':12} {'program':28} {'model':>8} {'RTL':>8} {'error':>8}")
    for name in args.configs:
        config = load_config(name)
        batch = validation_programs(config, args.random)
        start = time.perf_counter()
        estimates = [estimate_cycles(p).cycles for _, p in batch]
        times["model"] += time.perf_counter() - start
        start = time.perf_counter()
        for _, p in batch:
            run_functional(p)
        times["functional"] += time.perf_counter() - start
        measured = [None] * len(batch)
        if use_rtl:
            from tensorweave.cosim import run_rtl_many
            run_rtl_many([batch[0][1]], config)  # build (or find) the harness before timing
            start = time.perf_counter()
            measured = [r.cycles for r in run_rtl_many([p for _, p in batch], config)]
            times["rtl"] += time.perf_counter() - start
        for (label, _), estimate, rtl in zip(batch, estimates, measured):
            if rtl is None:
                print(f"{name:12} {label:28} {estimate:8} {'-':>8} {'-':>8}")
                continue
            error = (estimate - rtl) / rtl
            errors.append((abs(error), name, label))
            print(f"{name:12} {label:28} {estimate:8} {rtl:8} {error:+8.2%}")
    if errors:
        worst = max(errors)
        structured = max(e for e in errors if not e[2].startswith("random"))
        print(f"\nworst error {worst[0]:.2%} ({worst[1]} {worst[2]}); blocked/tiled worst {structured[0]:.2%} "
              f"({structured[1]} {structured[2]}); mean {sum(e[0] for e in errors) / len(errors):.2%} "
              f"over {len(errors)} programs")
    print(f"wall time: model {times['model']:.3f} s, functional {times['functional']:.3f} s"
          + (f", RTL {times['rtl']:.3f} s" if use_rtl else ""))
    print(f"model is {times['functional'] / times['model']:.1f}x faster than the functional simulator"
          + (f" and {times['rtl'] / times['model']:.1f}x faster than the RTL harness" if use_rtl else ""))


if __name__ == "__main__":
    main()
