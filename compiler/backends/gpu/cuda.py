"""CUDA: compile the rendered CUDA C with nvcc (cached by content hash) and run it through cuda-python.

Binding choice: `cuda-bindings` (cuda-python, `pip install 'tensorweave[cuda]'`) over CuPy's RawModule.
We need five driver calls (load a module, get a function, allocate, copy, launch); cuda-bindings is a
thin Cython layer over exactly that driver API (a few MB, no other dependencies), where CuPy is a whole
NumPy-like array library (hundreds of MB with its CUDA libraries) pinned to one CUDA major version.

Compilation: `nvcc -cubin -arch=sm_XY` for the device's compute capability (`compile_cuda` can also
emit PTX or a cubin for any architecture without a device, which the compile-only tests use).
Cubins are cached in the project cache (`tensorweave.cache`), kind `cuda`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ....cache import atomic_write, cache_dir
from ....errors import TensorweaveError
from .lower import gpu_occupancy
from .opencl import GPUUnavailable

__all__ = ["CudaRuntime", "compile_cuda", "cuda_runtime", "find_nvcc"]

INSTALL_HINT = "pip install 'tensorweave[cuda]' (cuda-bindings) and have nvcc on PATH or in /usr/local/cuda/bin"
DEFAULT_BLOCK = 256
CACHE_VERSION = 1  # of a cached cubin / PTX file; nvcc, its flags and the source are in the key


def find_nvcc() -> str | None:
    for candidate in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def compile_cuda(source: str, arch: str = "sm_80", output: str = "cubin") -> bytes:
    """The cubin (or PTX, output="ptx") of `source` for `arch`, built by nvcc and cached by content hash."""
    nvcc = find_nvcc()
    if nvcc is None:
        raise GPUUnavailable(f"nvcc not found; {INSTALL_HINT}")
    if output not in ("cubin", "ptx"):
        raise ValueError(f"output must be 'cubin' or 'ptx', not '{output}'")
    flags = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-w", f"-arch={arch}", f"-{output}"]
    key = hashlib.sha256((nvcc + "\0" + " ".join(flags) + "\0" + source).encode()).hexdigest()[:32]
    path = cache_dir("cuda", CACHE_VERSION) / f"{key}.{output}"
    if path.exists():
        return path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernels.cu"
        src.write_text(source)
        out = Path(tmp) / f"kernels.{output}"
        result = subprocess.run([nvcc, *flags, str(src), "-o", str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            kept = cache_dir("cuda", CACHE_VERSION) / "failed.cu"
            kept.write_text(source)
            first = "\n".join(result.stderr.strip().splitlines()[:12])
            raise TensorweaveError(f"nvcc rejected generated code ({kept}):\n{first}")
        data = out.read_bytes()
    atomic_write(path, data)
    return data


def _check(result: Any) -> Any:
    """cuda-bindings returns (error, *values): raise on an error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise TensorweaveError(f"CUDA driver error {err}")
    return values[0] if len(values) == 1 else tuple(values)


class CudaRuntime:
    """The primary context of CUDA device 0 and one stream."""

    api = "cuda"

    def __init__(self) -> None:
        try:
            from cuda.bindings import driver  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise GPUUnavailable(f"the CUDA target needs cuda-python; {INSTALL_HINT}") from exc
        self._cu = driver
        try:
            _check(driver.cuInit(0))
            count = _check(driver.cuDeviceGetCount())
        except Exception as exc:  # no libcuda (cuda-bindings raises its own error type) or a driver error
            raise GPUUnavailable(f"no working CUDA driver ({str(exc).splitlines()[0] if str(exc) else exc!r})") from exc
        if not count:
            raise GPUUnavailable("no CUDA device")
        if find_nvcc() is None:
            raise GPUUnavailable(f"nvcc not found; {INSTALL_HINT}")
        self.dev = _check(driver.cuDeviceGet(0))
        self.ctx = _check(driver.cuDevicePrimaryCtxRetain(self.dev))
        _check(driver.cuCtxSetCurrent(self.ctx))
        attr = driver.CUdevice_attribute
        major = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.dev))
        minor = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.dev))
        self.arch = f"sm_{major}{minor}"
        self.tensor_cores = (major, minor) >= (7, 2)  # wmma with int8 fragments
        sms = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, self.dev))
        self.occupancy = gpu_occupancy(int(sms))
        name = _check(driver.cuDeviceGetName(64, self.dev))
        label = bytes(name).split(b"\0")[0].decode()
        self.description = f"CUDA: {label} ({self.arch})"
        self.stream = _check(driver.cuStreamCreate(0))
        self._modules: dict[str, Any] = {}

    def build(self, source: str, optimize: bool = True) -> Any:
        """The loaded module of `source` (nvcc always optimizes; `optimize` is for the OpenCL signature)."""
        module = self._modules.get(source)
        if module is None:
            image = np.frombuffer(compile_cuda(source, self.arch), dtype=np.uint8)
            module = _check(self._cu.cuModuleLoadData(image.ctypes.data))
            self._modules[source] = module
        return module

    def kernels(self, module: Any, names: list[str]) -> dict[str, Any]:
        return {name: _check(self._cu.cuModuleGetFunction(module, name.encode())) for name in names}

    def alloc(self, nbytes: int) -> Any:
        return _check(self._cu.cuMemAlloc(max(16, int(nbytes))))

    def upload(self, buffer: Any, array: np.ndarray) -> None:
        if array.nbytes:
            array = np.ascontiguousarray(array)
            _check(self._cu.cuMemcpyHtoD(buffer, array.ctypes.data, array.nbytes))

    def download(self, buffer: Any, array: np.ndarray) -> None:
        if array.nbytes:
            _check(self._cu.cuStreamSynchronize(self.stream))
            _check(self._cu.cuMemcpyDtoH(array.ctypes.data, buffer, array.nbytes))

    def launch(self, kernel: Any, global_size: tuple[int, ...], local_size: tuple[int, ...] | None,
               args: list[Any]) -> None:
        g = list(global_size) + [1] * (3 - len(global_size))
        block = list(local_size) + [1] * (3 - len(local_size)) if local_size else [DEFAULT_BLOCK, 1, 1]
        grid = [-(-g[d] // block[d]) for d in range(3)]
        holders = [np.array([int(a)], dtype=np.uint64) for a in args]
        params = np.array([h.ctypes.data for h in holders], dtype=np.uint64)
        _check(self._cu.cuLaunchKernel(kernel, *grid, *block, 0, self.stream, params.ctypes.data, 0))

    def record(self, calls: list[tuple[Any, tuple[int, ...], tuple[int, ...] | None, list[Any]]]) -> Any:
        """`calls` (kernel, global size, local size, args) captured once as a CUDA graph: one `replay` then
        launches them all (a model's tens of small kernels cost one launch instead of one each)."""
        cu = self._cu
        _check(cu.cuStreamBeginCapture(self.stream, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
        try:
            for kernel, global_size, local_size, args in calls:
                self.launch(kernel, global_size, local_size, args)
        finally:
            graph = _check(cu.cuStreamEndCapture(self.stream))
        try:
            return _check(cu.cuGraphInstantiate(graph, 0))
        finally:
            _check(cu.cuGraphDestroy(graph))  # the instance does not need its template

    def replay(self, recorded: Any) -> None:
        _check(self._cu.cuGraphLaunch(recorded, self.stream))

    def forget(self, recorded: Any) -> None:
        """Release a graph from `record` (it must not be replayed afterwards)."""
        _check(self._cu.cuGraphExecDestroy(recorded))

    def free(self, buffer: Any) -> None:
        _check(self._cu.cuMemFree(buffer))

    def finish(self) -> None:
        _check(self._cu.cuStreamSynchronize(self.stream))


@functools.cache
def cuda_runtime() -> CudaRuntime:
    """The process's CUDA runtime (created once; raises GPUUnavailable without a working device)."""
    return CudaRuntime()
