"""The loop-nest IR: iterators, operands with affine index maps, and a typed body expression.

A `LoopNest` reads `out[out_index] (+)= body` for every point of its iteration space. With
`reduce="add"` the body is summed over the reduce iterators into the output (which starts at
zero); with `reduce=None` every output element is written once. Reads outside an operand's
shape yield zero: that is how convolution padding is expressed (an index map may run past the
edges). Arithmetic is exact and then wraps to the result dtype (two's complement), so a nest is
a bit-exact definition that `evaluate` runs with NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...errors import TensorweaveError

KINDS = ("spatial", "reduce")
INT_BITS = {"int2": (2, True), "int4": (4, True), "int8": (8, True), "uint8": (8, False), "int16": (16, True),
            "int32": (32, True), "int64": (64, True), "uint4": (4, False), "uint16": (16, False)}
FLOAT_DTYPES = ("float16", "float32", "float64")


class LoopNestError(TensorweaveError, ValueError):
    """A malformed loop nest; the message names the iterator, operand or expression."""


def check_dtype(dtype: str, where: str) -> None:
    if dtype not in INT_BITS and dtype not in FLOAT_DTYPES:
        raise LoopNestError(f"{where}: unknown dtype '{dtype}'; dtypes: {', '.join([*INT_BITS, *FLOAT_DTYPES])}")


@dataclass(frozen=True)
class Iterator:
    """One loop: `name` runs over range(extent); kind 'spatial' (indexes the output) or 'reduce'."""

    name: str
    extent: int
    kind: str = "spatial"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LoopNestError(f"iterator '{self.name}': kind '{self.kind}' is not one of {', '.join(KINDS)}")
        if self.extent < 1:
            raise LoopNestError(f"iterator '{self.name}': extent {self.extent} must be at least 1")


@dataclass(frozen=True)
class Affine:
    """sum(coefficient * iterator) + constant: one index expression."""

    terms: tuple[tuple[str, int], ...] = ()
    constant: int = 0

    @staticmethod
    def of(*terms: tuple[str, int] | str, constant: int = 0) -> Affine:
        """Affine.of("oh", ("r", 2), constant=-1) == oh + 2*r - 1; zero coefficients are dropped."""
        pairs = [(t, 1) if isinstance(t, str) else t for t in terms]
        return Affine(tuple((n, c) for n, c in pairs if c), constant)

    @property
    def iterators(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.terms)

    def coefficient(self, name: str) -> int:
        return sum(c for n, c in self.terms if n == name)

    def __str__(self) -> str:
        parts = [n if c == 1 else f"{c}*{n}" for n, c in self.terms]
        if self.constant or not parts:
            parts.append(str(self.constant))
        return " + ".join(parts).replace("+ -", "- ")


@dataclass(frozen=True)
class Operand:
    """A tensor read or written by a nest: its shape, element dtype and one Affine per dimension."""

    tensor: str
    dtype: str
    shape: tuple[int, ...]
    index: tuple[Affine, ...]

    def __post_init__(self) -> None:
        check_dtype(self.dtype, f"operand '{self.tensor}'")
        if len(self.shape) != len(self.index):
            raise LoopNestError(f"operand '{self.tensor}': shape {self.shape} has {len(self.shape)} dimensions "
                                f"but {len(self.index)} index expressions")

    def iterators(self) -> set[str]:
        return {n for a in self.index for n in a.iterators}

    def __str__(self) -> str:
        return f"{self.tensor}[{', '.join(map(str, self.index))}]"


# --- the body: a small typed expression tree ---------------------------------------------------
@dataclass(frozen=True)
class Read:
    """The value of input operand number `operand` (position in LoopNest.inputs)."""

    operand: int
    dtype: str


@dataclass(frozen=True)
class Cast:
    dtype: str
    value: Expr


@dataclass(frozen=True)
class Binary:
    """op in add, mul, sub, max, min; both sides and the result have `dtype`."""

    op: str
    left: Expr
    right: Expr
    dtype: str


@dataclass(frozen=True)
class Const:
    value: int | float
    dtype: str


Expr = Read | Cast | Binary | Const
BINARY_OPS = ("add", "sub", "mul", "max", "min")


def expr_dtype(e: Expr) -> str:
    return e.dtype


def cast(dtype: str, value: Expr) -> Cast:
    return Cast(dtype, value)


def mul(left: Expr, right: Expr) -> Binary:
    return Binary("mul", left, right, left.dtype)


def format_expr(e: Expr, inputs: tuple[Operand, ...]) -> str:
    if isinstance(e, Read):
        return str(inputs[e.operand])
    if isinstance(e, Cast):
        return f"cast<{e.dtype}>({format_expr(e.value, inputs)})"
    if isinstance(e, Const):
        return f"{e.value}:{e.dtype}"
    symbol = {"add": "+", "sub": "-", "mul": "*"}.get(e.op)
    if symbol:
        return f"{format_expr(e.left, inputs)} {symbol} {format_expr(e.right, inputs)}"
    return f"{e.op}({format_expr(e.left, inputs)}, {format_expr(e.right, inputs)})"


@dataclass(frozen=True)
class LoopNest:
    """`output[...] (+)= body` over `iterators` (outermost first). See the module docstring."""

    name: str
    iterators: tuple[Iterator, ...]
    inputs: tuple[Operand, ...]
    output: Operand
    body: Expr
    reduce: str | None = "add"

    def __post_init__(self) -> None:
        names = [it.name for it in self.iterators]
        if len(set(names)) != len(names):
            raise LoopNestError(f"nest '{self.name}': iterator names repeat: {names}")
        for op in (*self.inputs, self.output):
            unknown = op.iterators() - set(names)
            if unknown:
                raise LoopNestError(f"nest '{self.name}': operand '{op.tensor}' uses unknown iterator(s) "
                                    f"{', '.join(sorted(unknown))}; iterators: {', '.join(names)}")
        for it in self.iterators:
            in_output = it.name in self.output.iterators()
            if it.kind == "spatial" and not in_output:
                raise LoopNestError(f"nest '{self.name}': spatial iterator '{it.name}' does not index the output "
                                    f"'{self.output.tensor}'; make it a reduce iterator")
            if it.kind == "reduce" and in_output:
                raise LoopNestError(f"nest '{self.name}': reduce iterator '{it.name}' indexes the output")
        if self.reduce not in ("add", None):
            raise LoopNestError(f"nest '{self.name}': reduce '{self.reduce}' is not 'add' or None")
        if self.reduce is None and any(it.kind == "reduce" for it in self.iterators):
            raise LoopNestError(f"nest '{self.name}': reduce iterators need reduce='add'")
        _check_expr(self, self.body)
        if self.body.dtype != self.output.dtype:
            raise LoopNestError(f"nest '{self.name}': body has dtype {self.body.dtype} but output "
                                f"'{self.output.tensor}' is {self.output.dtype}; add a cast")

    def iterator(self, name: str) -> Iterator:
        for it in self.iterators:
            if it.name == name:
                return it
        raise LoopNestError(f"nest '{self.name}' has no iterator '{name}'")

    @property
    def operands(self) -> tuple[Operand, ...]:
        """Inputs then the output: the positions used by access masks."""
        return (*self.inputs, self.output)

    def __str__(self) -> str:
        loops = ", ".join(f"{it.name}<{it.extent}{'' if it.kind == 'spatial' else ' reduce'}>"
                          for it in self.iterators)
        assign = "+=" if self.reduce == "add" else "="
        return (f"{self.name}: for {loops}:\n"
                f"  {self.output} {assign} {format_expr(self.body, self.inputs)}")


def _check_expr(nest: LoopNest, e: Expr) -> None:
    where = f"nest '{nest.name}'"
    check_dtype(e.dtype, where)
    if isinstance(e, Read):
        if not 0 <= e.operand < len(nest.inputs):
            raise LoopNestError(f"{where}: body reads operand {e.operand}; the nest has {len(nest.inputs)} inputs")
        if nest.inputs[e.operand].dtype != e.dtype:
            raise LoopNestError(f"{where}: read of '{nest.inputs[e.operand].tensor}' typed {e.dtype}, "
                                f"the operand is {nest.inputs[e.operand].dtype}")
    elif isinstance(e, Cast):
        _check_expr(nest, e.value)
    elif isinstance(e, Binary):
        if e.op not in BINARY_OPS:
            raise LoopNestError(f"{where}: unknown operation '{e.op}'; operations: {', '.join(BINARY_OPS)}")
        for side in (e.left, e.right):
            _check_expr(nest, side)
            if side.dtype != e.dtype:
                raise LoopNestError(f"{where}: {e.op} of {e.left.dtype} and {e.right.dtype} into {e.dtype}; "
                                    "cast the operands first")


# --- the reference interpreter ------------------------------------------------------------------
def wrap(values: np.ndarray, dtype: str) -> np.ndarray:
    """Exact integer values wrapped to `dtype` (floats are converted)."""
    if dtype in FLOAT_DTYPES:
        return np.asarray(values).astype(dtype)
    bits, signed = INT_BITS[dtype]
    v = np.asarray(values).astype(np.int64)
    if bits == 64:
        return v
    mask = (1 << bits) - 1
    v = v & mask
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v) if signed else v


def _grid(nest: LoopNest) -> dict[str, np.ndarray]:
    n = len(nest.iterators)
    grid = {}
    for axis, it in enumerate(nest.iterators):
        shape = [1] * n
        shape[axis] = it.extent
        grid[it.name] = np.arange(it.extent).reshape(shape)
    return grid


def gather(operand: Operand, array: np.ndarray, values: Mapping[str, np.ndarray],
           valid: np.ndarray | None = None) -> np.ndarray:
    """array[index(values)] with zero outside the shape (and where `valid` is False)."""
    if not operand.index:  # a scalar
        value = np.asarray(array)
        return value if valid is None else np.where(valid, value, 0)
    exprs = [np.asarray(sum((c * values[n] for n, c in a.terms), np.int64(a.constant))) for a in operand.index]
    coords = np.broadcast_arrays(*exprs, *(() if valid is None else (valid,)))
    inside = np.ones(coords[0].shape, dtype=bool)
    for c, size in zip(coords, operand.shape):
        inside &= (c >= 0) & (c < size)
    if valid is not None:
        inside &= coords[-1]
    clipped = tuple(np.clip(c, 0, size - 1) for c, size in zip(coords, operand.shape))
    data = np.asarray(array)[clipped] if operand.shape else np.broadcast_to(np.asarray(array), inside.shape)
    return np.where(inside, data, 0)


def eval_expr(e: Expr, reads: list[np.ndarray]) -> np.ndarray:
    if isinstance(e, Read):
        return reads[e.operand]
    if isinstance(e, Const):
        return np.asarray(e.value)
    if isinstance(e, Cast):
        return wrap(eval_expr(e.value, reads), e.dtype)
    a, b = eval_expr(e.left, reads), eval_expr(e.right, reads)
    if e.dtype not in FLOAT_DTYPES:
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    result = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[e.op](a, b)
    return wrap(result, e.dtype)


def evaluate(nest: LoopNest, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run `nest` on NumPy arrays named by operand tensor; returns the output array (exact, wrapped)."""
    for op in nest.inputs:
        if op.tensor not in arrays:
            raise LoopNestError(f"nest '{nest.name}': no array for input '{op.tensor}'")
        if tuple(np.shape(arrays[op.tensor])) != op.shape:
            raise LoopNestError(f"nest '{nest.name}': array '{op.tensor}' has shape {np.shape(arrays[op.tensor])}, "
                                f"the operand is {op.shape}")
    grid = _grid(nest)
    reads = [gather(op, arrays[op.tensor], grid) for op in nest.inputs]
    values = eval_expr(nest.body, reads)
    full = np.broadcast_to(values, tuple(it.extent for it in nest.iterators))
    return scatter(nest.output, full, grid, nest.output.dtype, accumulate=nest.reduce == "add")


def scatter(output: Operand, values: np.ndarray, grid: Mapping[str, np.ndarray], dtype: str,
            accumulate: bool, valid: np.ndarray | None = None, into: np.ndarray | None = None) -> np.ndarray:
    """Sum (or write) `values` into a fresh output array at output.index(grid); points outside are dropped."""
    is_float = dtype in FLOAT_DTYPES
    out = into if into is not None else np.zeros(output.shape, dtype=np.float64 if is_float else np.int64)
    exprs = [np.asarray(sum((c * grid[n] for n, c in a.terms), np.int64(a.constant))) for a in output.index]
    coords = np.broadcast_arrays(values, *exprs, *(() if valid is None else (valid,)))
    flat_values = coords[0]
    inside = np.ones(flat_values.shape, dtype=bool)
    for c, size in zip(coords[1:1 + len(output.shape)], output.shape):
        inside &= (c >= 0) & (c < size)
    if valid is not None:
        inside &= coords[-1]
    picked = tuple(c[inside] for c in coords[1:1 + len(output.shape)])
    if accumulate:
        np.add.at(out, picked, flat_values[inside])
    else:
        out[picked] = flat_values[inside]
    return wrap(out, dtype) if not is_float else out.astype(dtype)
