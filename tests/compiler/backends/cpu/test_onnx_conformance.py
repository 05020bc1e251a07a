"""ONNX backend node conformance of the CPU back end.

Every `onnx.backend.test` node case (ONNX 1.23) whose single node is one of OPS runs through the
`onnx.backend.base.Backend` adapter (`prepare` = `from_onnx` + `compile_graph`); outputs are compared
with the case's expected values (float: the case's rtol / atol; integers and bools: exactly). The test
prints the pass count per op and in total, and fails if any case of a listed op fails. A case is left
out only when it is named in EXCLUDED, with the reason (`tensorweave.compiler.backends.conformance`).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from tensorweave.compiler.backends.conformance import OPS, check_case, format_report, node_cases
from tensorweave.compiler.backends.cpu.executable import generate_c
from tensorweave.compiler.backends.cpu.onnx_backend import CPUBackend
from tensorweave.compiler.backends.cpu.toolchain import build_libraries
from tensorweave.compiler.frontend import from_onnx


@pytest.mark.model
def test_every_listed_op_has_cases() -> None:
    assert len(OPS) >= 40
    covered = {c.model.graph.node[0].op_type for c in node_cases(excluded=True)}
    assert set(OPS) - covered == set(), "ops without an ONNX node case"


@pytest.mark.model
def test_onnx_node_conformance(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    cases = node_cases()
    passed: Counter[str] = Counter()
    failures: list[str] = []
    graphs = {}
    for case in cases:
        try:
            graphs[case.name] = from_onnx(case.model)
        except Exception as exc:  # reported below as a failure of that case
            failures.append(f"{case.name}: frontend: {exc}")
    sources = []
    for case in cases:
        if case.name in graphs:
            try:
                sources.append(generate_c(graphs[case.name]).source)
            except Exception as exc:
                failures.append(f"{case.name}: codegen: {exc}")
                del graphs[case.name]
    build_libraries(sources, jobs=os.cpu_count())  # compile in parallel; prepare() below hits the cache
    for case in cases:
        if case.name not in graphs:
            continue
        try:
            check_case(case, CPUBackend.prepare(case.model))
            passed[case.model.graph.node[0].op_type] += 1
        except Exception as exc:
            failures.append(f"{case.name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    with capsys.disabled():
        print("\n" + format_report("CPU back end", passed, failures, time.perf_counter() - start))
    assert not failures, "\n".join(failures)
