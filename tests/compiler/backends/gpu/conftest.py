"""Skips with a message where a runtime is missing (OpenCL: pyopencl + a platform; CUDA: a device + nvcc)."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def _opencl_reason() -> str | None:
    from tensorweave.compiler.backends.gpu.opencl import GPUUnavailable, opencl_runtime

    try:
        opencl_runtime()
    except GPUUnavailable as exc:
        return str(exc)
    return None


@functools.cache
def _cuda_reason() -> str | None:
    from tensorweave.compiler.backends.gpu.cuda import cuda_runtime
    from tensorweave.compiler.backends.gpu.opencl import GPUUnavailable

    try:
        cuda_runtime()
    except GPUUnavailable as exc:
        return str(exc)
    return None


@pytest.fixture
def opencl() -> str:
    """The API name "opencl"; skips the test when no OpenCL device works."""
    reason = _opencl_reason()
    if reason:
        pytest.skip(f"no OpenCL device: {reason}")
    return "opencl"


@pytest.fixture
def cuda() -> str:
    """The API name "cuda"; skips the test when no CUDA device (or nvcc / cuda-python) works."""
    reason = _cuda_reason()
    if reason:
        pytest.skip(f"no CUDA device: {reason}")
    return "cuda"
