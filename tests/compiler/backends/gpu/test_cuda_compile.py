"""CUDA code generation, compile-only (runs where nvcc exists, skips otherwise): the same kernels the OpenCL
tests run, rendered to CUDA C++ and compiled to a cubin for sm_80. The full ONNX conformance set is the
`slow` variant."""

from __future__ import annotations

import numpy as np
import pytest
from tensorweave.compiler.frontend import from_onnx


@pytest.fixture
def nvcc() -> str:
    from tensorweave.compiler.backends.gpu.cuda import find_nvcc

    path = find_nvcc()
    if path is None:
        pytest.skip("nvcc not found (set $NVCC or put it on PATH): CUDA compile test skipped")
    return path


def _models():
    from tensorweave.compiler.models import small_cnn
    from tensorweave.compiler.quantize import quantize_model

    model = small_cnn(seed=0)
    return [model, quantize_model(model, samples=2)]


def test_model_cuda_source_compiles(nvcc: str) -> None:
    from tensorweave.compiler.backends.gpu.cuda import compile_cuda
    from tensorweave.compiler.backends.gpu.executable import generate, optimize
    from tensorweave.compiler.backends.gpu.render import render

    kernels = []
    for i, model in enumerate(_models()):
        kernels += [launch.kernel for launch in generate(optimize(from_onnx(model)), prefix=f"m{i}").launches]
    source = render(kernels, "cuda")
    assert "TW_LOCAL int32_t As" in source  # the int8 QLinearConv kernels are tiled through shared memory
    cubin = compile_cuda(source, "sm_80")
    assert cubin[:4] == b"\x7fELF"
    assert all(k.name.encode() in cubin for k in kernels)


def test_int8_model_on_tensor_cores_compiles(nvcc: str) -> None:
    from tensorweave.compiler.backends.gpu.cuda import compile_cuda
    from tensorweave.compiler.backends.gpu.executable import generate, optimize
    from tensorweave.compiler.backends.gpu.render import render
    from tensorweave.compiler.backends.gpu.wmma import WMMA_HEADERS

    graph = optimize(from_onnx(_models()[1]))  # int8 activations and weights, zero points 0
    launches = generate(graph, tensor_cores=True).launches
    convs = [lc for lc, node in zip(launches, generate(graph).nodes) if "conv" in node]
    assert convs and all("Tensor Cores" in lc.kernel.note for lc in convs if "K chunks added" not in lc.kernel.note)
    assert not any("Tensor Cores" in lc.kernel.note for lc in generate(graph).launches)  # off unless asked
    source = render([lc.kernel for lc in launches], "cuda", WMMA_HEADERS)
    assert "#include <mma.h>" in source and "wmma::mma_sync" in source
    assert compile_cuda(source, "sm_80")[:4] == b"\x7fELF"


@pytest.mark.slow
def test_conformance_cuda_source_compiles(nvcc: str) -> None:
    from tensorweave.compiler.backends.conformance import node_cases
    from tensorweave.compiler.backends.gpu.cuda import compile_cuda
    from tensorweave.compiler.backends.gpu.executable import generate, optimize
    from tensorweave.compiler.backends.gpu.render import render

    cases = node_cases()
    kernels = []
    for i, case in enumerate(cases):
        kernels += [launch.kernel for launch in generate(optimize(from_onnx(case.model)), prefix=f"c{i}").launches]
    assert len(cases) == 461 and np.all([k.body for k in kernels])
    assert compile_cuda(render(kernels, "cuda"), "sm_80")[:4] == b"\x7fELF"
