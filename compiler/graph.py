"""The graph IR: a tensor program as frozen nodes over named values.

Contract (shared by the compiler's frontend, partitioner and back ends):

- `TensorType(shape, dtype)`: a static shape (tuple of ints) and a numpy dtype name ("float32", "int8", ...).
- `Node(op, name, inputs, outputs, attrs, domain="")`: one operator. `op` is the ONNX op type, `domain` its
  ONNX domain ("" is the default domain). `inputs` / `outputs` are value names; an absent optional input is
  "". `attrs` holds Python ints, floats, strings, lists of those, and numpy arrays (tensor attributes).
- `Graph(name, nodes, inputs, outputs, types, constants, opset)`: `nodes` in topological order; `inputs`
  are the runtime inputs (never constants); `constants` maps initializer / Constant values to arrays;
  `types` gives a `TensorType` for every value: inputs, constants, and every node output.

Everything is immutable (mappings are read-only views); passes build new graphs with `Graph.replace`.

    >>> from tensorweave.compiler.frontend import from_onnx
    >>> g = from_onnx("model.onnx")                     # doctest: +SKIP
    >>> for node in g.nodes:                            # doctest: +SKIP
    ...     print(node.op, [g.types[v].shape for v in node.inputs if v])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import TensorweaveError

__all__ = ["Graph", "GraphError", "Node", "TensorType"]


class GraphError(TensorweaveError):
    """A malformed graph: a value used before it is defined, defined twice, or without a type."""


@dataclass(frozen=True)
class TensorType:
    """The static type of one value: its shape and numpy dtype name."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in shape):
            raise GraphError(f"a tensor shape has a negative dimension: {shape}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name if self.dtype != "bfloat16" else "bfloat16")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


def _freeze_attr(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.copy()
        value.setflags(write=False)
        return value
    if isinstance(value, tuple):
        return [_freeze_attr(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class Node:
    """One operator application. Compare nodes by name; equal names in one graph mean the same node."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    domain: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        attrs = {str(k): _freeze_attr(v) for k, v in dict(self.attrs).items()}
        object.__setattr__(self, "attrs", MappingProxyType(attrs))
        if self.domain == "ai.onnx":
            object.__setattr__(self, "domain", "")

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def replace(self, **changes: Any) -> Node:
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.attrs.items()))
        op = f"{self.domain}.{self.op}" if self.domain else self.op
        text = f"{', '.join(self.outputs)} = {op}({', '.join(v or '<none>' for v in self.inputs)})"
        return f"{text} {{{attrs}}}  # {self.name}" if attrs else f"{text}  # {self.name}"


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}:{value.dtype}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(repr(v) for v in value[:4])}, ... ({len(value)} items)]"
    return repr(value)


@dataclass(frozen=True, eq=False)
class Graph:
    """A whole model: topologically ordered nodes over typed values; validated on construction."""

    name: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    types: Mapping[str, TensorType]
    constants: Mapping[str, np.ndarray]
    opset: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        consts = {}
        for key, value in dict(self.constants).items():
            array = np.asarray(value)
            if array.flags.writeable:
                array = array.copy()
                array.setflags(write=False)
            consts[key] = array
        types = dict(self.types)
        for key, array in consts.items():
            types.setdefault(key, TensorType(array.shape, array.dtype.name))
        object.__setattr__(self, "constants", MappingProxyType(consts))
        object.__setattr__(self, "types", MappingProxyType(types))
        object.__setattr__(self, "opset", int(self.opset))
        self.validate()

    # ---- checks ----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise GraphError unless every value is defined once, before use, and typed."""
        defined: set[str] = set()
        for name in self.inputs:
            if name in self.constants:
                raise GraphError(f"graph '{self.name}': '{name}' is both an input and a constant")
            if name in defined:
                raise GraphError(f"graph '{self.name}': input '{name}' is listed twice")
            defined.add(name)
        defined.update(self.constants)
        names: set[str] = set()
        for node in self.nodes:
            if node.name in names:
                raise GraphError(f"graph '{self.name}': two nodes are named '{node.name}'")
            names.add(node.name)
            for value in node.inputs:
                if value and value not in defined:
                    raise GraphError(f"node '{node.name}' ({node.op}) reads '{value}' before it is defined "
                                     "(nodes must be in topological order)")
            for value in node.outputs:
                if not value:
                    continue
                if value in defined:
                    raise GraphError(f"node '{node.name}' ({node.op}) redefines '{value}'")
                defined.add(value)
        for value in self.outputs:
            if value not in defined:
                raise GraphError(f"graph '{self.name}': output '{value}' is never defined")
        untyped = sorted(v for v in defined if v not in self.types)
        if untyped:
            raise GraphError(f"graph '{self.name}': no type for {', '.join(repr(v) for v in untyped[:5])}"
                             + (f" and {len(untyped) - 5} more" if len(untyped) > 5 else ""))

    # ---- queries ---------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise GraphError(f"graph '{self.name}' has no node named '{name}'")

    def producer(self, value: str) -> Node | None:
        """The node that writes `value`, or None for inputs and constants."""
        return self._producers().get(value)

    def consumers(self, value: str) -> tuple[Node, ...]:
        """The nodes that read `value`, in graph order."""
        return self._consumers().get(value, ())

    def is_constant(self, value: str) -> bool:
        return value in self.constants

    def ops(self) -> dict[str, int]:
        """How many nodes of each op type (domain-qualified for non-default domains)."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            key = f"{node.domain}.{node.op}" if node.domain else node.op
            counts[key] = counts.get(key, 0) + 1
        return counts

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def _producers(self) -> dict[str, Node]:
        cache = self.__dict__.get("_producer_cache")
        if cache is None:
            cache = {v: n for n in self.nodes for v in n.outputs if v}
            object.__setattr__(self, "_producer_cache", cache)
        return cache

    def _consumers(self) -> dict[str, tuple[Node, ...]]:
        cache = self.__dict__.get("_consumer_cache")
        if cache is None:
            lists: dict[str, list[Node]] = {}
            for node in self.nodes:
                for v in dict.fromkeys(node.inputs):
                    if v:
                        lists.setdefault(v, []).append(node)
            cache = {k: tuple(v) for k, v in lists.items()}
            object.__setattr__(self, "_consumer_cache", cache)
        return cache

    # ---- rewriting -------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Graph:
        """A new graph with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def prune(self) -> Graph:
        """Drop nodes and constants that no output depends on."""
        live = set(self.outputs)
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if any(v in live for v in node.outputs if v):
                kept.append(node)
                live.update(v for v in node.inputs if v)
        kept.reverse()
        constants = {k: v for k, v in self.constants.items() if k in live}
        used = live | set(self.inputs) | {v for n in kept for v in n.outputs if v}
        types = {k: t for k, t in self.types.items() if k in used}
        return self.replace(nodes=tuple(kept), constants=constants, types=types)

    def subgraph(self, nodes: Sequence[Node], name: str | None = None) -> Graph:
        """The graph of just `nodes` (a subset of this graph's, in order): values they read from outside
        become inputs (constants stay constants), values read afterwards or graph outputs become outputs."""
        chosen = {n.name for n in nodes}
        ordered = [n for n in self.nodes if n.name in chosen]
        produced = {v for n in ordered for v in n.outputs if v}
        inputs: dict[str, None] = {}
        constants: dict[str, np.ndarray] = {}
        for node in ordered:
            for v in node.inputs:
                if not v or v in produced:
                    continue
                if v in self.constants:
                    constants[v] = self.constants[v]
                else:
                    inputs[v] = None
        outputs: dict[str, None] = {}
        for node in ordered:
            for v in node.outputs:
                if v and (v in self.outputs or any(c.name not in chosen for c in self.consumers(v))):
                    outputs[v] = None
        used = set(inputs) | set(constants) | produced
        return Graph(name=name or f"{self.name}.sub", nodes=tuple(ordered), inputs=tuple(inputs),
                     outputs=tuple(outputs), types={k: t for k, t in self.types.items() if k in used},
                     constants=constants, opset=self.opset)

    # ---- printing --------------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"graph {self.name} (opset {self.opset}, {len(self.nodes)} nodes, {len(self.constants)} constants)"]
        lines += [f"  input  {v}: {self.types[v]}" for v in self.inputs]
        for node in self.nodes:
            types = ", ".join(str(self.types[v]) for v in node.outputs if v)
            lines.append(f"  {node}  -> {types}")
        lines += [f"  output {v}: {self.types[v]}" for v in self.outputs]
        return "\n".join(lines)


def topological_order(nodes: Iterable[Node], available: Iterable[str]) -> tuple[Node, ...]:
    """Order `nodes` so each comes after the producers of its inputs (stable; raises on cycles)."""
    pending = list(nodes)
    ready = set(available) | {""}
    out: list[Node] = []
    while pending:
        rest = []
        for node in pending:
            if all(v in ready for v in node.inputs):
                out.append(node)
                ready.update(node.outputs)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({v for n in rest for v in n.inputs if v not in ready})
            raise GraphError(f"node '{rest[0].name}' ({rest[0].op}) depends on values no node defines or on a "
                             f"cycle: {', '.join(missing[:5])}")
        pending = rest
    return tuple(out)
