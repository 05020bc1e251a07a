"""The GPU back end: graph IR -> loop nests -> OpenCL C or CUDA C kernels -> pyopencl or cuda-python.

    >>> from tensorweave.compiler.frontend import from_onnx
    >>> from tensorweave.compiler.backends.gpu import compile_graph
    >>> exe = compile_graph(from_onnx("model.onnx"), api="opencl")   # doctest: +SKIP
    >>> outputs = exe.run({"input": image})                           # doctest: +SKIP

One lowering (`lower.py`: work-group tiling, local memory, vector loads, read off loop nests; `ops.py`:
ONNX nodes to nests; `fallback.py`: the CPU back end's C emitters for the long tail), two renderers
(`render.py`: OpenCL C and CUDA C from the same kernel text), two runtimes (`opencl.py` over pyopencl,
`cuda.py` over nvcc + cuda-python). `wmma.py` renders Tensor Core kernels from a tensorize `Mapping`
onto `nvidia_wmma_f16` / `nvidia_wmma_s8`. The APIs: "opencl", "cuda", "auto" (CUDA when a CUDA
device works, else OpenCL).
"""

from ..cpu.cgen import UnsupportedOp
from .executable import GPUExecutable, InputError, KernelTime, compile_graph, compile_graphs, format_profile, generate
from .opencl import GPUUnavailable
from .runtime import APIS, runtime_for

__all__ = ["APIS", "GPUExecutable", "GPUUnavailable", "InputError", "KernelTime", "UnsupportedOp", "compile_graph",
           "compile_graphs", "format_profile", "generate", "runtime_for", "supported_ops"]


def supported_ops() -> set[str]:
    """The ONNX op types the GPU back end can compile (loop-nest kernels plus the CPU emitters)."""
    from ..cpu.cgen import EMITTERS
    from .ops import native_ops

    return native_ops() | set(EMITTERS)
