"""Choosing the GPU API: "opencl", "cuda", or "auto" (CUDA when a CUDA device works, else OpenCL)."""

from __future__ import annotations

from typing import Any

from .opencl import GPUUnavailable, opencl_runtime

__all__ = ["APIS", "runtime_for"]

APIS = ("auto", "opencl", "cuda")


def runtime_for(api: str = "auto") -> Any:
    if api not in APIS:
        raise GPUUnavailable(f"--gpu-api must be one of {', '.join(APIS)}, not '{api}'")
    if api in ("cuda", "auto"):
        from .cuda import cuda_runtime

        try:
            return cuda_runtime()
        except GPUUnavailable:
            if api == "cuda":
                raise
    return opencl_runtime()
