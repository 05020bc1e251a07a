"""ONNX backend node conformance of the GPU back end (OpenCL; the same op list and cases as the CPU back end).

Every `onnx.backend.test` node case of the CPU back end's OPS (80 op types) runs through the
`onnx.backend.base.Backend` adapter (`from_onnx` + lowering); all cases share one program (one compiler run,
built without compiler optimizations: the cases are tiny). Outputs are compared with the case's expected
values (float: the case's rtol / atol; integers and bools: exactly), and with onnxruntime's outputs for the
same inputs wherever onnxruntime can run the case. Prints the pass count per op and in total; fails if any case of a listed op fails. A case is left out only when the CPU back end's EXCLUDED
names it (same reasons).
The `gpu`-marked twin runs the same check on CUDA.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest
from tensorweave.compiler.backends.conformance import check_case, format_report, node_cases, onnxruntime_outputs
from tensorweave.compiler.frontend import from_onnx


def run_conformance(api: str) -> tuple[Counter[str], list[str], float, tuple[int, int]]:
    from tensorweave.compiler.backends.gpu.executable import generate
    from tensorweave.compiler.backends.gpu.onnx_backend import GPUBackend

    start = time.perf_counter()
    cases = node_cases()
    passed: Counter[str] = Counter()
    failures: list[str] = []
    by_op: dict[str, list] = defaultdict(list)
    for case in cases:
        try:
            graph = from_onnx(case.model)
            generate(graph)
        except Exception as exc:
            failures.append(f"{case.name}: frontend/lowering: {str(exc).strip().splitlines()[0]}")
            continue
        by_op[case.model.graph.node[0].op_type].append((case, graph))
    # one program for every case (one compiler run, built without optimization: the cases are tiny); if it
    # does not build, one program per op type tells which op's kernels the compiler rejects
    everything = [item for items in by_op.values() for item in items]
    try:
        batches = [(everything, GPUBackend.prepare_all([g for _, g in everything], api, optimize_kernels=False))]
    except Exception:
        batches = []
        for items in by_op.values():
            try:
                batches.append((items, GPUBackend.prepare_all([g for _, g in items], api, optimize_kernels=False)))
            except Exception as exc:
                failures += [f"{case.name}: build: {str(exc).strip().splitlines()[0]}" for case, _ in items]
    against_ort = [0, 0]        # cases compared with onnxruntime's outputs; cases onnxruntime cannot run
    for items, reps in batches:
        for (case, _), rep in zip(items, reps):
            op = case.model.graph.node[0].op_type
            try:
                check_case(case, rep)
                reference = onnxruntime_outputs(case)
                if reference is None:
                    against_ort[1] += 1
                else:
                    check_case(case, rep, reference)
                    against_ort[0] += 1
                passed[op] += 1
            except Exception as exc:
                failures.append(f"{case.name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    return passed, failures, time.perf_counter() - start, (against_ort[0], against_ort[1])


def _report(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    passed, failures, seconds, (compared, no_ort) = run_conformance(api)
    with capsys.disabled():
        print("\n" + format_report(f"GPU back end ({api})", passed, failures, seconds))
        print(f"  each passing case also equals onnxruntime's outputs (same tolerances): {compared} cases; "
              f"{no_ort} cases onnxruntime cannot run (opset or type), compared with ONNX's expected outputs only")
    assert not failures, "\n".join(failures)
    assert compared >= 400


@pytest.mark.model
def test_onnx_node_conformance_opencl(opencl: str, capsys: pytest.CaptureFixture[str]) -> None:
    _report(opencl, capsys)


@pytest.mark.gpu
def test_onnx_node_conformance_cuda(cuda: str, capsys: pytest.CaptureFixture[str]) -> None:
    _report(cuda, capsys)
