"""Where static shapes come from, and what may not decide them: value-shaped inputs and declared shapes.

Contract (used by the frontend and the CPU back end):

- `VALUE_SHAPED[op]`: the input positions of an ONNX op whose *values* decide the output's shape (Reshape's
  `shape`, Slice's `starts` / `ends` / `axes` / `steps`, Pad's `pads`, ReduceSum's `axes`, Tile's `repeats`,
  ...). `value_shaped_inputs(op, domain)` reads it; ops of other domains have none listed.
- `static_values(nodes, constants)`: the values known when compiling: constants, the outputs of Shape and
  Size (types are static), and the outputs of deterministic default-domain nodes whose inputs are all known.
- `check_value_shapes(nodes, constants)` raises `ShapeError` naming the first node and input whose shape
  depends on a value only known at run time (a graph input, or computed from one).
- `check_declared(declared, types, producers, bindings)` raises `ShapeError` naming the node and the value
  whose declared shape or element type (a model's `value_info` or graph output) disagrees with the inferred
  one; a symbolic dimension bound by an input (`bindings`, e.g. {"N": 4}) must equal its binding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ..errors import TensorweaveError
from .graph import TensorType

__all__ = ["VALUE_SHAPED", "DeclaredType", "ShapeError", "check_declared", "check_value_shapes", "static_values",
           "value_shaped_inputs"]


class ShapeError(TensorweaveError):
    """A shape that cannot be made static, or a declared shape that disagrees with shape inference."""


_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
           "ReduceLogSumExp", "ReduceSumSquare")

# op -> (input position, role); ONNX's names of the inputs, so messages say what the input is for.
VALUE_SHAPED: dict[str, tuple[tuple[int, str], ...]] = {
    "Reshape": ((1, "shape"),), "Expand": ((1, "shape"),), "Tile": ((1, "repeats"),),
    "Slice": ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")), "Pad": ((1, "pads"), (3, "axes")),
    "Squeeze": ((1, "axes"),), "Unsqueeze": ((1, "axes"),), "Split": ((1, "split"),), "TopK": ((1, "K"),),
    "OneHot": ((1, "depth"),), "ConstantOfShape": ((0, "input"),),
    "Range": ((0, "start"), (1, "limit"), (2, "delta")), "Resize": ((2, "scales"), (3, "sizes")),
    "Upsample": ((1, "scales"),), "CenterCropPad": ((1, "shape"),), "Col2Im": ((1, "image_shape"), (2, "block_shape")),
    "MaxUnpool": ((2, "output_shape"),), "DFT": ((1, "dft_length"), (2, "axis")),
    "STFT": ((1, "frame_step"), (3, "frame_length")), "HannWindow": ((0, "size"),), "HammingWindow": ((0, "size"),),
    "BlackmanWindow": ((0, "size"),), "NonZero": ((0, "X"),), "Compress": ((1, "condition"),),
    "Unique": ((0, "X"),), "AffineGrid": ((1, "size"),),
    "NonMaxSuppression": ((0, "boxes"), (1, "scores"), (2, "max_output_boxes_per_class"), (3, "iou_threshold"),
                          (4, "score_threshold")),
    **{op: ((1, "axes"),) for op in _REDUCE},
}

_RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


class _NodeLike(Protocol):
    @property
    def op(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> Sequence[str]: ...
    @property
    def outputs(self) -> Sequence[str]: ...
    @property
    def domain(self) -> str: ...


def value_shaped_inputs(op: str, domain: str = "") -> tuple[tuple[int, str], ...]:
    """(input position, role) of each input of `op` whose value decides the output shape."""
    return VALUE_SHAPED.get(op, ()) if domain in ("", "ai.onnx") else ()


def static_values(nodes: Iterable[_NodeLike], constants: Iterable[str]) -> set[str]:
    """The values computable at compile time (nodes in topological order)."""
    known = set(constants)
    for node in nodes:
        if node.domain not in ("", "ai.onnx") or node.op in _RANDOM:
            continue
        if node.op in ("Shape", "Size") or all(v in known for v in node.inputs if v):
            known.update(v for v in node.outputs if v)
    return known


def check_value_shapes(nodes: Sequence[_NodeLike], constants: Iterable[str]) -> None:
    """ShapeError naming the first node whose output shape depends on a run-time value, and that input."""
    known = static_values(nodes, constants)
    for node in nodes:
        for index, role in value_shaped_inputs(node.op, node.domain):
            value = node.inputs[index] if index < len(node.inputs) else ""
            if value and value not in known:
                raise ShapeError(
                    f"node '{node.name}' ({node.op}): its output shape depends on the value of input {index} "
                    f"'{value}' ({role}), which is only known at run time; tensorweave compiles static shapes: "
                    f"make '{value}' a constant (an initializer)")


class DeclaredType(Protocol):
    """What a model declares for a value: an element type name (or None) and dims (int, a name, or None)."""

    @property
    def dtype(self) -> str | None: ...
    @property
    def dims(self) -> Sequence[int | str | None] | None: ...


def check_declared(declared: Mapping[str, DeclaredType], types: Mapping[str, TensorType],
                   producers: Mapping[str, tuple[str, str]], bindings: Mapping[str, int]) -> None:
    """ShapeError for the first declared value whose type disagrees with the inferred `types`.

    `producers` maps a value to (node name, op) for the message; `bindings` gives the symbolic dims that
    the inputs fixed. Unknown dims and unbound names match anything.
    """
    for value, decl in declared.items():
        inferred = types.get(value)
        if inferred is None:
            continue
        where = producers.get(value)
        who = f"node '{where[0]}' ({where[1]}) computes '{value}'" if where else f"'{value}' is"
        dims = decl.dims
        shown = "[" + ",".join("?" if d is None else str(d) for d in dims) + "]" if dims is not None else "[...]"
        mismatch = decl.dtype is not None and decl.dtype != inferred.dtype
        if dims is not None:
            mismatch |= len(dims) != len(inferred.shape)
            for have, got in zip(dims, inferred.shape, strict=False):
                want = bindings.get(have) if isinstance(have, str) else have
                mismatch |= want is not None and want != got
        if mismatch:
            binding = ", ".join(f"{k}={v}" for k, v in bindings.items() if dims and k in dims)
            raise ShapeError(f"{who} as {inferred}, but the model declares {decl.dtype or '?'}{shown}"
                             + (f" (with {binding})" if binding else "")
                             + ": the model's declared shapes are wrong; fix or remove its value_info / output shape")
