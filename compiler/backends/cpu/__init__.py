"""The CPU back end: graph IR -> generated C -> system C compiler -> shared library -> ctypes.

    >>> from tensorweave.compiler.frontend import from_onnx
    >>> from tensorweave.compiler.backends.cpu import compile_graph
    >>> exe = compile_graph(from_onnx("model.onnx"))          # doctest: +SKIP
    >>> outputs = exe.run({"input": image})                    # doctest: +SKIP

- `compile_graph(graph) -> CPUExecutable` (`.run(inputs) -> outputs`, `.source` is the C text);
- `compile_node(graph, node) -> callable(*arrays) -> tuple of arrays`, for one node of a partitioned graph;
- `supported_ops()`; `UnsupportedOp` (a TensorweaveError) names the node and op it cannot compile.
Shapes are static and baked into the C; `run` checks every input's shape and dtype against them before any
C runs (`InputError`), and a shape decided by a run-time value is refused (`UnsupportedOp`); one library per
graph, cached by content hash under
`$TENSORWEAVE_CACHE/cpu` or `~/.cache/tensorweave/cpu` (see `toolchain.py`).
"""

from .cgen import UnsupportedOp
from .executable import CPUExecutable, InputError, compile_graph, compile_graphs, compile_node, supported_ops
from .toolchain import CompileError, detect_toolchain

__all__ = ["CPUExecutable", "CompileError", "InputError", "UnsupportedOp", "compile_graph", "compile_graphs",
           "compile_node", "detect_toolchain", "supported_ops"]
