"""Run ONNX node cases and models on the CPU back end built with AddressSanitizer and UndefinedBehaviorSanitizer.

    python -m tensorweave.compiler.backends.cpu.sanitize --ops Add,Conv,Slice --models small_cnn

`sanitized_env()` is the environment such a run needs: `$TENSORWEAVE_SANITIZE=address,undefined` (every
library is built with `-fsanitize=address,undefined -fno-sanitize-recover=all`), `LD_PRELOAD` of the C
compiler's libasan (Python itself is not built with ASan, and the runtime must come first),
`ASAN_OPTIONS=detect_leaks=0` (CPython keeps its objects to the end) and `UBSAN_OPTIONS` that stop with a
stack trace. A sanitizer report aborts the process (exit status not 0) with the report on stderr; every
case is also checked against its expected outputs and every model against onnxruntime. The last line
printed is `sanitized: N node cases, M models, 0 failures` when all passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

import numpy as np

from .toolchain import SANITIZE_ENV, CompileError, detect_toolchain

__all__ = ["MODELS", "run_sanitized", "sanitized_env"]

MODELS = ("small_cnn", "resnet18")


def sanitized_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a sanitized run (CompileError when the compiler has no libasan)."""
    env = dict(os.environ if base is None else base)
    env.pop(SANITIZE_ENV, None)
    compiler = detect_toolchain().compiler
    found = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not found or not os.path.isabs(found) or not os.path.exists(found):
        raise CompileError(f"{compiler} has no libasan.so (-print-file-name gave '{found}'): install the "
                           "AddressSanitizer runtime (libasan) to build sanitized code")
    env.update({SANITIZE_ENV: "address,undefined", "LD_PRELOAD": found,
                "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
                "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1", "OMP_NUM_THREADS": "2"})
    return env


def run_sanitized(ops: Sequence[str], models: Sequence[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run this module in a sanitized subprocess on the node cases of `ops` and the named `models`."""
    cmd = [sys.executable, "-m", __name__, "--ops", ",".join(ops), "--models", ",".join(models)]
    return subprocess.run(cmd, env=sanitized_env(), capture_output=True, text=True, timeout=timeout)


def _model(name: str):
    from ... import models

    if name == "small_cnn":
        return models.small_cnn()
    if name == "resnet18":
        return models.resnet18(image=32, classes=10)  # every layer kind of ResNet-18 at a small image size
    raise SystemExit(f"unknown model '{name}' (choose from {', '.join(MODELS)})")


def _check_model(name: str) -> None:
    import onnxruntime as ort

    from ...frontend import from_onnx
    from .executable import compile_graph

    model = _model(name)
    graph = from_onnx(model)
    rng = np.random.default_rng(0)
    inputs = {v: rng.standard_normal(graph.types[v].shape).astype(graph.types[v].dtype) for v in graph.inputs}
    got = compile_graph(graph).run(inputs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(graph.outputs, session.run(list(graph.outputs), inputs), strict=True))
    for out in graph.outputs:
        np.testing.assert_allclose(got[out], want[out], rtol=1e-3, atol=1e-3, err_msg=f"model {name} output {out}")


def _check_bitshift() -> int:
    """BitShift by 0 .. 2 x width (C undefined at >= width) on every unsigned type, against onnxruntime."""
    import onnxruntime as ort
    from onnx import helper

    from ...frontend import from_onnx
    from .executable import compile_graph

    count = 0
    for dtype in ("uint8", "uint16", "uint32", "uint64"):
        width = 8 * np.dtype(dtype).itemsize
        kind = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        shifts = np.arange(2 * width + 1, dtype=dtype)
        xs = np.full(shifts.shape, np.iinfo(dtype).max, dtype=dtype)
        for direction in ("LEFT", "RIGHT"):
            info = [helper.make_tensor_value_info(n, kind, [shifts.size]) for n in ("a", "b", "y")]
            graph = helper.make_graph([helper.make_node("BitShift", ["a", "b"], ["y"], direction=direction)], "g",
                                      info[:2], info[2:])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            got = compile_graph(from_onnx(model)).run({"a": xs, "b": shifts})["y"]
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            np.testing.assert_array_equal(got, session.run(None, {"a": xs, "b": shifts})[0],
                                          err_msg=f"BitShift {direction} {dtype}")
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="", help="comma-separated op types whose node cases run ('all': every one)")
    parser.add_argument("--models", default="", help=f"comma-separated models ({', '.join(MODELS)})")
    args = parser.parse_args(argv)
    if not os.environ.get(SANITIZE_ENV):
        raise SystemExit(f"run with ${SANITIZE_ENV} set (see sanitized_env())")
    from ..conformance import OPS, check_case, node_cases
    from .onnx_backend import CPUBackend

    ops = {op for op in args.ops.split(",") if op}
    if "all" in ops:
        ops = (ops - {"all"}) | set(OPS)
    cases = [c for c in node_cases() if c.model.graph.node[0].op_type in ops]
    failures = []
    for case in cases:
        try:
            check_case(case, CPUBackend.prepare(case.model))
        except Exception as exc:  # noqa: BLE001 - reported and counted; a sanitizer report aborts instead
            failures.append(f"{case.name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    if "BitShift" in ops:  # not among the conformance ops; its own cases shift by >= the width
        try:
            _check_bitshift()
        except AssertionError as exc:
            failures.append(str(exc).strip().splitlines()[0])
    names = [m for m in args.models.split(",") if m]
    for name in names:
        try:
            _check_model(name)
        except AssertionError as exc:
            failures.append(f"model {name}: {str(exc).strip().splitlines()[0]}")
    for failure in failures:
        print(failure)
    print(f"sanitized: {len(cases)} node cases, {len(names)} models, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
