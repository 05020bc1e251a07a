"""C generation helpers shared by the kernel emitters: types, loop nests, the emitter registry.

An emitter is a function `emit(k: KernelContext) -> str` registered for one or more ONNX op types. It
returns the body of a C function whose parameters are the node's inputs `x0, x1, ...` (typed `const T *`,
NULL for an absent optional input), its outputs `y0, y1, ...` (typed `T *`) and any scratch buffers it
asked for with `k.scratch(...)`. Shapes are static (from the graph IR) and are baked into the C text.
Emitters that cannot handle a node raise `UnsupportedOp` with the node, the op and what would work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ....errors import TensorweaveError
from ...graph import Graph, Node, TensorType
from .toolchain import Toolchain

__all__ = ["CTYPES", "EMITTERS", "KernelContext", "UnsupportedOp", "bcast_strides", "c_literal", "emitter",
           "flat_loop", "nest", "strides"]


FUSED_RELU = "tensorweave.fused_relu"  # node attribute: apply ReLU to the output (set by fuse.fuse_relu)


class UnsupportedOp(TensorweaveError):
    """The CPU back end has no kernel for this node (op type, attribute or data type)."""


CTYPES: dict[str, str] = {
    "float32": "float", "float64": "double", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
    "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "bool": "uint8_t",
}

INT_RANGES: dict[str, tuple[int, int]] = {
    name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
    for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
}


def is_float(dtype: str) -> bool:
    return dtype in ("float32", "float64")


def c_literal(value: Any, dtype: str) -> str:
    """A C literal of `value` in `dtype` (exact for floats: printed with enough digits)."""
    if dtype == "float32":
        v = float(np.float32(value))
        if np.isnan(v):
            return "NAN"
        if np.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        return f"{v!r}f"
    if dtype == "float64":
        v = float(value)
        if np.isnan(v):
            return "NAN"
        if np.isinf(v):
            return "((double)INFINITY)" if v > 0 else "((double)-INFINITY)"
        return repr(v)
    if dtype == "bool":
        return "1" if value else "0"
    v = int(value)
    if dtype == "int64" and v == INT_RANGES["int64"][0]:
        return "INT64_MIN"
    suffix = {"int64": "LL", "uint64": "ULL", "uint32": "U"}.get(dtype, "")
    return f"{v}{suffix}"


def lowest(dtype: str) -> str:
    return "-INFINITY" if is_float(dtype) else ("0" if dtype == "bool" else c_literal(INT_RANGES[dtype][0], dtype))


def highest(dtype: str) -> str:
    return "INFINITY" if is_float(dtype) else ("1" if dtype == "bool" else c_literal(INT_RANGES[dtype][1], dtype))


def strides(shape: Sequence[int]) -> list[int]:
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * max(1, shape[d + 1])
    return out


def bcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> list[int]:
    """Element strides of `in_shape` read as `out_shape` under NumPy broadcasting (0 on broadcast dims)."""
    pad = len(out_shape) - len(in_shape)
    full = [1] * pad + list(in_shape)
    st = strides(full)
    return [0 if full[d] == 1 and out_shape[d] != 1 else st[d] for d in range(len(out_shape))]


def flat_loop(count: int, body: str, var: str = "i", parallel_over: int = 1 << 16) -> str:
    """`for (var < count) body`, OpenMP-parallel when `count` is at least `parallel_over`."""
    pragma = "#pragma omp parallel for simd\n" if count >= parallel_over else "#pragma omp simd\n"
    return f"{pragma}for (int64_t {var} = 0; {var} < {count}; {var}++) {{\n{body}\n}}\n"


def nest(shape: Sequence[int], offsets: dict[str, Sequence[int]], body: str, prefix: str = "i",
         parallel: bool = False) -> str:
    """Nested loops over `shape` (index variables `i0, i1, ...`); before `body` each name in `offsets`
    is defined as the dot product of the indices with its strides."""
    rank = len(shape)
    defs = []
    for name, st in offsets.items():
        terms = [f"{prefix}{d}*{st[d]}" for d in range(rank) if st[d] != 0 and shape[d] != 1]
        defs.append(f"const int64_t {name} = {' + '.join(terms) if terms else '0'};")
    inner = "\n".join(defs) + "\n" + body
    total = int(np.prod(shape, dtype=np.int64)) if rank else 1
    for d in range(rank - 1, -1, -1):
        pragma = "#pragma omp parallel for\n" if d == 0 and parallel and total >= (1 << 16) and shape[0] > 1 else ""
        inner = f"{pragma}for (int64_t {prefix}{d} = 0; {prefix}{d} < {shape[d]}; {prefix}{d}++) {{\n{inner}\n}}"
    return "{\n" + inner + "\n}\n"


@dataclass
class KernelContext:
    """What an emitter sees of one node: types and any constant input values."""

    graph: Graph
    node: Node
    toolchain: Toolchain
    scratch_sizes: list[int] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    prepare_body: list[str] = field(default_factory=list)  # C run once at load time (constant packing)

    @property
    def op(self) -> str:
        return self.node.op

    def attr(self, key: str, default: Any = None) -> Any:
        return self.node.attrs.get(key, default)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def in_type(self, i: int) -> TensorType:
        return self.graph.types[self.node.inputs[i]]

    def out_type(self, i: int = 0) -> TensorType:
        return self.graph.types[self.node.outputs[i]]

    def in_shape(self, i: int) -> tuple[int, ...]:
        return self.in_type(i).shape

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        return self.out_type(i).shape

    def const(self, i: int) -> np.ndarray | None:
        """The value of input `i` when it is a graph constant, else None."""
        if not self.has_input(i):
            return None
        return self.graph.constants.get(self.node.inputs[i])

    def ctype_in(self, i: int) -> str:
        return self.ctype(self.in_type(i).dtype)

    def ctype_out(self, i: int = 0) -> str:
        return self.ctype(self.out_type(i).dtype)

    def ctype(self, dtype: str) -> str:
        if dtype not in CTYPES:
            self.unsupported(f"data type {dtype} (supported: {', '.join(CTYPES)})")
        return CTYPES[dtype]

    def scratch(self, nbytes: int) -> str:
        """Ask for a scratch buffer of `nbytes` (64-byte aligned); returns its parameter name."""
        self.scratch_sizes.append(max(64, int(nbytes)))
        return f"s{len(self.scratch_sizes) - 1}"

    def need(self, helper: str) -> None:
        self.helpers.add(helper)

    def unsupported(self, what: str) -> None:
        raise UnsupportedOp(f"node '{self.node.name}' ({self.node.op}): the CPU back end does not support {what}")

    def axis(self, value: int, rank: int, what: str = "axis") -> int:
        a = value + rank if value < 0 else value
        if not 0 <= a < max(rank, 1):
            self.unsupported(f"{what}={value} for rank {rank}")
        return a


Emitter = Callable[[KernelContext], str]
EMITTERS: dict[str, Emitter] = {}


def emitter(*ops: str) -> Callable[[Emitter], Emitter]:
    def register(fn: Emitter) -> Emitter:
        for op in ops:
            EMITTERS[op] = fn
        return fn
    return register
