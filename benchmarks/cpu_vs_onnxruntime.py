"""Time tensorweave's CPU back end against onnxruntime (CPUExecutionProvider) on the same models, same
inputs, same thread count, in the same run; print a table with ratios (>1 means onnxruntime is faster).

    python benchmarks/cpu_vs_onnxruntime.py                       # small_cnn and resnet18, float32 + int8 QDQ
    python benchmarks/cpu_vs_onnxruntime.py --models small_cnn --threads 1 --runs 20

Models come from `tensorweave.compiler.models` (seeded random weights); int8 models are QDQ models from
`tensorweave.compiler.quantize.quantize_model` (the project convention). The "max |diff|" column compares
the two outputs; for int8 it also counts output elements that differ (in output quantization steps).
onnxruntime's AVX2 int8 kernels saturate int16 pair sums (vpmaddubsw), the CPU back end accumulates
exactly, so small int8 differences are expected on machines without VNNI.
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
    from tensorweave.compiler.backends.cpu import compile_graph, detect_toolchain
    from tensorweave.compiler.models import MODELS
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["small_cnn", "resnet18"], choices=sorted(MODELS))
    parser.add_argument("--precisions", nargs="+", default=["float32", "int8"], choices=["float32", "int8"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    tc = detect_toolchain()
    print(f"compiler: {tc.version}; flags: {' '.join(tc.flags)}; AVX2: {tc.avx2}; AVX-512 VNNI: {tc.avx512_vnni}")
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider; threads: {args.threads}; median of {args.runs} "
          f"alternating runs; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    rows = []
    jobs = [(m, p) for m in args.models for p in args.precisions]
    for name, precision in tqdm(jobs, desc="models", file=sys.stderr):
        model, graph = benchmark_model(name, precision)
        start = time.perf_counter()
        exe = compile_graph(graph)
        compile_s = time.perf_counter() - start
        exe.set_threads(args.threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal(graph.types[graph.inputs[0]].shape).astype(np.float32)
        feed = {graph.inputs[0]: x}
        ours = exe.run(feed)[graph.outputs[0]]
        theirs = session.run(None, feed)[0]
        diff = float(np.abs(ours - theirs).max())
        note = lsb_note(ours, theirs) if precision == "int8" else ""
        t = time_pair(functools.partial(exe.run, feed), functools.partial(session.run, None, feed), args.runs)
        rows.append((name, precision, compile_s, *(v * 1e3 for v in t), diff, note))
    header = (f"{'model':10s} {'precision':9s} {'compile s':>9s} {'tw wall ms':>10s} {'ort wall ms':>11s} "
              f"{'ratio':>6s} {'tw cpu ms':>9s} {'ort cpu ms':>10s} {'ratio':>6s} {'max |diff|':>10s}  notes")
    print(header)
    print("-" * len(header))
    for name, precision, comp, ours, ort_ms, ours_cpu, ort_cpu, diff, note in rows:
        print(f"{name:10s} {precision:9s} {comp:9.2f} {ours:10.2f} {ort_ms:11.2f} {ours / ort_ms:6.2f} "
              f"{ours_cpu:9.2f} {ort_cpu:10.2f} {ours_cpu / max(ort_cpu, 1e-9):6.2f} {diff:10.3g}  {note}")
    print("ratio = tensorweave / onnxruntime (lower is better for tensorweave); cpu = process CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
