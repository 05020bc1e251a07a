"""OpenCL runtime over pyopencl: pick a device, build programs (cached), move buffers, launch kernels.

Compiled programs are cached by content hash in the project cache (`tensorweave.cache`): on PoCL by PoCL
itself (program and per-work-group-size kernels, kind `pocl` unless `POCL_CACHE_DIR` is set), on other
platforms by pyopencl's binary cache (source + build options + device), kind `opencl`.
pyopencl is imported inside functions: without it (or without any OpenCL platform) a `GPUUnavailable`
error says what to install.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import numpy as np

from ....cache import cache_dir
from ....errors import TensorweaveError
from .lower import Occupancy, gpu_occupancy

__all__ = ["BUILD_OPTIONS", "GPUUnavailable", "OpenCLRuntime", "opencl_runtime"]

CACHE_VERSION = 1  # of the cache folders handed to PoCL and pyopencl (each keys its own entries)
BUILD_OPTIONS = ["-cl-fp32-correctly-rounded-divide-sqrt", "-w"]
INSTALL_HINT = ("pip install 'tensorweave[gpu]' (pyopencl==2026.1.4 and pocl-binary-distribution==3.0, "
                "a CPU OpenCL device)")


class GPUUnavailable(TensorweaveError):
    """No usable GPU runtime: the message says what to install."""


def _import_cl() -> Any:
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir("pocl", CACHE_VERSION)))
    try:
        import pyopencl as cl  # type: ignore[import-untyped]
    except ImportError as exc:
        raise GPUUnavailable(f"the OpenCL target needs pyopencl: {INSTALL_HINT}") from exc
    return cl


class OpenCLRuntime:
    """One OpenCL context and in-order queue on the first GPU device (else the first device of any kind)."""

    api = "opencl"

    def __init__(self) -> None:
        cl = _import_cl()
        self._cl = cl
        try:
            platforms = cl.get_platforms()
        except Exception as exc:  # pyopencl raises its own LogicError when the ICD loader finds nothing
            raise GPUUnavailable(f"no OpenCL platform found ({exc}); {INSTALL_HINT}") from exc
        devices = [d for p in platforms for d in p.get_devices()]
        if not devices:
            raise GPUUnavailable(f"OpenCL platforms {[p.name for p in platforms]} have no devices; {INSTALL_HINT}")
        gpus = [d for d in devices if d.type & cl.device_type.GPU]
        self.device = (gpus or devices)[0]
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx)
        self.description = f"OpenCL: {self.device.name} on {self.device.platform.name} ({self.device.version.strip()})"
        # a GPU wants work-groups for all its compute units; a CPU device does better with fewer, bigger ones
        self.occupancy = (gpu_occupancy(self.device.max_compute_units) if self.device.type & cl.device_type.GPU
                          else Occupancy())
        self._programs: dict[str, Any] = {}
        # PoCL keeps its own content-hashed cache (program and per-work-group-size kernels, POCL_CACHE_DIR);
        # loading pyopencl's cached binary instead makes PoCL regenerate every kernel (measured: 65 s instead
        # of 12 s for the conformance run), so pyopencl's cache is used for other platforms only.
        pocl = "Portable Computing Language" in self.device.platform.name
        self._binary_cache: str | bool = False if pocl else str(cache_dir("opencl", CACHE_VERSION))

    def build(self, source: str, optimize: bool = True) -> Any:
        """The built program of `source` (`optimize=False`: no compiler optimization, for quick builds)."""
        options = BUILD_OPTIONS if optimize else [*BUILD_OPTIONS, "-cl-opt-disable"]
        key = source if optimize else "-cl-opt-disable\0" + source
        program = self._programs.get(key)
        if program is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyopencl warns about compiler output (e.g. PoCL's notes)
                try:
                    program = self._cl.Program(self.ctx, source).build(options=options,
                                                                      cache_dir=self._binary_cache)
                except self._cl.RuntimeError as exc:
                    path = cache_dir("opencl", CACHE_VERSION) / "failed.cl"
                    path.write_text(source)
                    lines = [ln for ln in str(exc).splitlines() if "error" in ln][:8]
                    raise TensorweaveError(f"the OpenCL compiler rejected generated code ({path}):\n"
                                           + "\n".join(lines)) from exc
            self._programs[key] = program
        return program

    def kernels(self, program: Any, names: list[str]) -> dict[str, Any]:
        return {name: self._cl.Kernel(program, name) for name in names}

    def alloc(self, nbytes: int) -> Any:
        return self._cl.Buffer(self.ctx, self._cl.mem_flags.READ_WRITE, max(16, int(nbytes)))

    def free(self, buffer: Any) -> None:
        buffer.release()

    def upload(self, buffer: Any, array: np.ndarray) -> None:
        if array.nbytes:
            self._cl.enqueue_copy(self.queue, buffer, np.ascontiguousarray(array), is_blocking=True)

    def download(self, buffer: Any, array: np.ndarray) -> None:
        if array.nbytes:
            self._cl.enqueue_copy(self.queue, array, buffer, is_blocking=True)

    def launch(self, kernel: Any, global_size: tuple[int, ...], local_size: tuple[int, ...] | None,
               args: list[Any]) -> None:
        kernel(self.queue, global_size, local_size, *args)

    def finish(self) -> None:
        self.queue.finish()


@functools.cache
def opencl_runtime() -> OpenCLRuntime:
    """The process's OpenCL runtime (created once)."""
    return OpenCLRuntime()
