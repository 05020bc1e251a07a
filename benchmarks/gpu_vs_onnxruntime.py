"""Time tensorweave's GPU back end against onnxruntime on the same models and inputs, in the same run; print a
table with ratios (>1 means onnxruntime is faster) and which devices were used.

    python benchmarks/gpu_vs_onnxruntime.py                        # small_cnn and resnet18, float32 + int8 QDQ
    python benchmarks/gpu_vs_onnxruntime.py --api opencl --models small_cnn --runs 20

The GPU back end runs on CUDA when a CUDA device works, else OpenCL (`--api` forces one); onnxruntime uses
its CUDA execution provider when it has one and a device, else the CPU provider. Models come from
`tensorweave.compiler.models` (seeded random weights); int8 models are QDQ models from
`tensorweave.compiler.quantize.quantize_model`. "max |diff|" compares with onnxruntime's CPU provider at
optimization level BASIC (the project's reference); the timed onnxruntime session uses its default level.
Times are wall-clock medians of alternating runs, including the host <-> device copies of inputs and
outputs on both sides. On a CPU OpenCL device (PoCL) this measures generated OpenCL compiled for the CPU
against onnxruntime's hand-tuned CPU kernels.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np
from _pairs import benchmark_model, lsb_note, time_pair


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort
    from tensorweave.compiler.backends.gpu import compile_graph, runtime_for
    from tensorweave.compiler.models import MODELS
    from tensorweave.compiler.run import reference_outputs
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["small_cnn", "resnet18"], choices=sorted(MODELS))
    parser.add_argument("--precisions", nargs="+", default=["float32", "int8"], choices=["float32", "int8"])
    parser.add_argument("--api", choices=["auto", "opencl", "cuda"], default="auto")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tensor-cores", action="store_true", help="CUDA: int8 contractions on wmma kernels")
    args = parser.parse_args(argv)

    runtime = runtime_for(args.api)
    providers = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in ort.get_available_providers() else []
    providers.append("CPUExecutionProvider")
    print(f"tensorweave GPU back end on {runtime.description}")
    rows = []
    jobs = [(m, p) for m in args.models for p in args.precisions]
    used_provider = ""
    for name, precision in tqdm(jobs, desc="models", file=sys.stderr):
        model, graph = benchmark_model(name, precision)
        start = time.perf_counter()
        exe = compile_graph(graph, args.api, tensor_cores=args.tensor_cores)
        x = np.random.default_rng(1).standard_normal(graph.types[graph.inputs[0]].shape).astype(np.float32)
        feed = {graph.inputs[0]: x}
        ours = exe.run(feed)[graph.outputs[0]]  # the first run includes PoCL's per-kernel JIT: part of compiling
        compile_s = time.perf_counter() - start
        session = ort.InferenceSession(model.SerializeToString(), providers=providers)
        used_provider = session.get_providers()[0]
        # accuracy against onnxruntime at graph optimization BASIC (the QDQ model as written, the project's
        # reference, see tensorweave.compiler.run); its default level rewrites QDQ into other int8 kernels
        theirs = reference_outputs(model, feed)[graph.outputs[0]]
        diff = float(np.abs(ours - theirs).max())
        note = lsb_note(ours, theirs) if precision == "int8" else ""
        t = time_pair(functools.partial(exe.run, feed), functools.partial(session.run, None, feed), args.runs)
        rows.append((name, precision, compile_s, *(v * 1e3 for v in t[:2]), diff, note))
    print(f"onnxruntime {ort.__version__}, {used_provider}; median of {args.runs} alternating runs; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    header = (f"{'model':10s} {'precision':9s} {'compile s':>9s} {'tw ms':>10s} {'ort ms':>10s} {'ratio':>7s} "
              f"{'max |diff|':>10s}  notes")
    print(header)
    print("-" * len(header))
    for name, precision, comp, ours_ms, ort_ms, diff, note in rows:
        print(f"{name:10s} {precision:9s} {comp:9.2f} {ours_ms:10.2f} {ort_ms:10.2f} {ours_ms / ort_ms:7.2f} "
              f"{diff:10.3g}  {note}")
    print(f"ratio = tensorweave ({runtime.description}) / onnxruntime ({used_provider}); lower is better for "
          "tensorweave")
    return 0


if __name__ == "__main__":
    sys.exit(main())
