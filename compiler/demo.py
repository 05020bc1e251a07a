"""The compiler demo: quantize the small CNN, run it on the simulated accelerator, check it against onnxruntime.

    python -c "from tensorweave.compiler.demo import run_demo; run_demo('vta-default')"
"""

from __future__ import annotations

import sys
import time

from .models import small_cnn
from .pipeline import compile_model
from .quantize import quantize_model
from .run import compare_outputs, format_agreement, reference_outputs


def run_demo(config_name: str = "vta-default", engine: str = "functional", seed: int = 0) -> int:
    """Quantize, compile and run the small CNN; print the agreement and the per-layer table. 0 if it agrees."""
    start = time.perf_counter()
    model = quantize_model(small_cnn(seed=seed), samples=8, seed=seed)
    print(f"small CNN quantized to int8 QDQ by onnxruntime's quantizer, power-of-two scales "
          f"({len(model.graph.node)} nodes), {time.perf_counter() - start:.1f} s")
    compiled = compile_model(model, config_name, target="accel")
    inputs = compiled.random_inputs(seed)
    run_start = time.perf_counter()
    outputs = compiled.run(inputs, engine=engine)
    took = time.perf_counter() - run_start
    config = compiled.config
    assert config is not None  # target "accel" always has one
    print(f"ran on the simulated accelerator ({config.name}, {engine} engine) + CPU in {took:.2f} s\n")
    print(compiled.table())
    print()
    agreements = compare_outputs(compiled.graph, outputs, reference_outputs(model, inputs))
    print(format_agreement(agreements))
    print(f"demo took {time.perf_counter() - start:.1f} s")
    return 0 if all(a.ok for a in agreements) else 1


if __name__ == "__main__":
    sys.exit(run_demo(sys.argv[1] if len(sys.argv) > 1 else "vta-default"))
