"""UNIT-style tensorization: does an intrinsic apply to an operator nest, and how do the loops map?

`tensorize(op, intrinsic)` runs the inspector:

1. Arithmetic isomorphism: the two body trees have the same operations, casts and dtypes (operands
   of commutative operations may swap). This also pairs every intrinsic operand with an operator
   operand, and the outputs with each other; the reductions (add / none) must agree.
2. Access isomorphism: each iterator gets its access mask, the set of (paired) operands it
   indexes. An intrinsic iterator takes the operator iterators of the same kind with exactly its
   mask. With fusion "gather" all of them fuse onto it, outermost first (conv's r, s, c onto the
   reduction; n, oh, ow onto the rows: im2col as an index map). With fusion "packed" only those
   owning a "pure" dimension of every operand they index (coefficient 1, no constant, the other
   terms a multiple of its extent) may go, since a packed layout must make them innermost. When
   two intrinsic iterators share a mask (element-wise ops), innermost takes innermost.
3. Padding: a fused extent that the intrinsic extent does not divide is padded up (the padded
   lanes compute on zeros and are dropped); a mapping whose lanes would be mostly padding (fill
   below `min_fill`) is refused, e.g. depthwise conv onto a GEMM that needs block_in channels.

Operator iterators left unmapped become loops around the instruction. `execute` runs a mapping
with the intrinsic's own semantics (gathering operand tiles through the index map), so a test can
check that a mapping computes exactly what the operator nest computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import TensorweaveError
from .intrinsics import Intrinsic
from .ir import Affine, Binary, Cast, Const, Expr, Iterator, LoopNest, Operand, Read, evaluate, gather, scatter

COMMUTATIVE = ("add", "mul", "max", "min")


class TensorizeError(TensorweaveError, ValueError):
    """The intrinsic does not apply to the operator; the message says why."""


@dataclass(frozen=True)
class AxisMap:
    """One intrinsic iterator and the operator iterators fused onto it (outermost first)."""

    intrinsic: str
    kind: str
    extent: int
    operator: tuple[str, ...]
    extents: tuple[int, ...]

    @property
    def fused(self) -> int:
        return math.prod(self.extents)

    @property
    def padded(self) -> int:
        return -(-self.fused // self.extent) * self.extent

    @property
    def tiles(self) -> int:
        return self.padded // self.extent

    @property
    def fill(self) -> float:
        return self.fused / self.padded

    def index_map(self) -> list[str]:
        """How each operator iterator is recovered from f = tile * extent + lane."""
        f = f"{self.intrinsic}.tile*{self.extent} + {self.intrinsic}" if self.extent > 1 else f"{self.intrinsic}.tile"
        out, stride = [], 1
        for name, extent in reversed(list(zip(self.operator, self.extents))):
            expr = f"({f})" if stride == 1 else f"({f}) // {stride}"
            out.append(f"{name} = {expr}" + (f" % {extent}" if stride * extent < self.fused else ""))
            stride *= extent
        return out[::-1]


@dataclass(frozen=True)
class Mapping:
    """The result of tensorize: operand pairs, the axis maps and the loops left outside."""

    operator: str
    intrinsic: str
    fusion: str
    operands: tuple[tuple[str, str], ...]   # (intrinsic tensor, operator tensor), inputs then output
    axes: tuple[AxisMap, ...]               # in the intrinsic's iterator order
    outer: tuple[Iterator, ...]             # operator loops around the instruction, in nest order

    def axis(self, intrinsic_iterator: str) -> AxisMap:
        for ax in self.axes:
            if ax.intrinsic == intrinsic_iterator:
                return ax
        raise KeyError(intrinsic_iterator)

    @property
    def calls(self) -> int:
        """Instruction executions: outer loop points x tiles of every axis."""
        return math.prod(it.extent for it in self.outer) * math.prod(ax.tiles for ax in self.axes)

    @property
    def efficiency(self) -> float:
        """Useful lanes / computed lanes (padding waste)."""
        return math.prod(ax.fill for ax in self.axes)

    def __str__(self) -> str:
        lines = [f"tensorize {self.operator} onto {self.intrinsic} (fusion {self.fusion})",
                 "  operands: " + ", ".join(f"{i} <- {o}" for i, o in self.operands)]
        for ax in self.axes:
            ops = " x ".join(f"{n}({e})" for n, e in zip(ax.operator, ax.extents)) or "(none)"
            pad = f", padded to {ax.padded}" if ax.padded != ax.fused else ""
            lines.append(f"  {ax.intrinsic}<{ax.extent} {ax.kind}> <- {ops} = {ax.fused}{pad}: {ax.tiles} tile(s)")
            lines.extend(f"      {m}" for m in ax.index_map() if len(ax.operator) > 1)
        outer = ", ".join(f"{it.name}({it.extent}{'' if it.kind == 'spatial' else ' reduce'})" for it in self.outer)
        lines.append(f"  outer loops: {outer or '(none)'}")
        lines.append(f"  calls: {self.calls}, lane efficiency: {self.efficiency:.1%}")
        return "\n".join(lines)


# --- 1. arithmetic isomorphism ------------------------------------------------------------------
def _match_expr(pattern: Expr, target: Expr, pairs: dict[int, int]) -> list[dict[int, int]]:
    """All operand pairings (intrinsic read -> operator read) under which the trees are identical."""
    if type(pattern) is not type(target) or pattern.dtype != target.dtype:
        return []
    if isinstance(pattern, Read):
        assert isinstance(target, Read)
        if pairs.get(pattern.operand, target.operand) != target.operand:
            return []
        if target.operand in {v for k, v in pairs.items() if k != pattern.operand}:
            return []
        return [{**pairs, pattern.operand: target.operand}]
    if isinstance(pattern, Const):
        return [pairs] if pattern == target else []
    if isinstance(pattern, Cast):
        assert isinstance(target, Cast)
        return _match_expr(pattern.value, target.value, pairs)
    assert isinstance(pattern, Binary) and isinstance(target, Binary)
    if pattern.op != target.op:
        return []
    orders = [(target.left, target.right)]
    if pattern.op in COMMUTATIVE:
        orders.append((target.right, target.left))
    found = []
    for left, right in orders:
        for p in _match_expr(pattern.left, left, pairs):
            found.extend(_match_expr(pattern.right, right, p))
    return found


def _describe(e: Expr) -> str:
    if isinstance(e, Read):
        return f"read<{e.dtype}>"
    if isinstance(e, Const):
        return f"const<{e.dtype}>"
    if isinstance(e, Cast):
        return f"cast<{e.dtype}>({_describe(e.value)})"
    return f"{e.op}<{e.dtype}>({_describe(e.left)}, {_describe(e.right)})"


# --- 2. access isomorphism ----------------------------------------------------------------------
def _mask(nest: LoopNest, name: str, operands: tuple[int, ...]) -> frozenset[int]:
    """Positions (in `operands` order, i.e. the pairing) of the operands that iterator `name` indexes."""
    all_ops = nest.operands
    return frozenset(k for k, pos in enumerate(operands) if name in all_ops[pos].iterators())


def _is_pure(nest: LoopNest, name: str) -> bool:
    extent = nest.iterator(name).extent
    for op in nest.operands:
        for a in op.index:
            if name not in a.iterators:
                continue
            if a.constant or a.coefficient(name) != 1 or len([n for n in a.iterators if n == name]) != 1:
                return False
            for other, coef in a.terms:
                if other != name and nest.iterator(other).extent > 1 and (coef < extent or coef % extent):
                    return False
    return True


def _dim_position(nest: LoopNest, name: str) -> int:
    """How far from innermost the iterator's first dimension is in the output (or inputs): 0 = innermost."""
    for op in (nest.output, *nest.inputs):
        for d, a in enumerate(op.index):
            if name in a.iterators:
                return len(op.index) - 1 - d
    return 1 << 30


def tensorize(op: LoopNest, intrinsic: Intrinsic, min_fill: float = 0.25,
              operands: dict[str, str] | None = None, keep_outer: tuple[str, ...] = ()) -> Mapping:
    """Map `op` onto `intrinsic` or raise TensorizeError with the reason (see the module docstring).

    When the arithmetic matches under several operand pairings (a commutative product of equal
    dtypes), the mapping with the best lane efficiency wins; `operands` (intrinsic tensor -> operator
    tensor) pins the pairing a lowering relies on, and `keep_outer` names operator loops a lowering
    keeps around the instruction (they are not fused).
    """
    intr = intrinsic.nest
    where = f"cannot tensorize {op.name} onto {intrinsic.name}"
    if op.reduce != intr.reduce:
        raise TensorizeError(f"{where}: the operator's update is {op.reduce or 'a plain write'}, "
                             f"the intrinsic's is {intr.reduce or 'a plain write'}")
    if op.output.dtype != intr.output.dtype:
        raise TensorizeError(f"{where}: the output '{op.output.tensor}' is {op.output.dtype}, the intrinsic "
                             f"writes {intr.output.dtype}")
    pairings = _match_expr(intr.body, op.body, {})
    pairings = [p for p in pairings if len(p) == len(intr.inputs)]
    if not pairings:
        raise TensorizeError(f"{where}: arithmetic differs: the operator computes {_describe(op.body)}, "
                             f"the intrinsic {_describe(intr.body)}")
    if operands:
        position = {o.tensor: k for k, o in enumerate(op.inputs)}
        wanted = {k: position.get(operands[o.tensor], -1) for k, o in enumerate(intr.inputs) if o.tensor in operands}
        pairings = [p for p in pairings if all(p[k] == v for k, v in wanted.items())]
        if not pairings:
            raise TensorizeError(f"{where}: no operand pairing puts {operands} in place")
    errors, found = [], []
    for pairing in pairings:
        try:
            found.append(_map_axes(op, intrinsic, pairing, min_fill, where, keep_outer))
        except TensorizeError as exc:
            errors.append(str(exc))
    if not found:
        raise TensorizeError(errors[0])
    return max(found, key=lambda m: m.efficiency)  # max keeps the first of equals


def _map_axes(op: LoopNest, intrinsic: Intrinsic, pairing: dict[int, int], min_fill: float,
              where: str, keep_outer: tuple[str, ...] = ()) -> Mapping:
    intr = intrinsic.nest
    n_in = len(intr.inputs)
    # Positions pair up: intrinsic operand k <-> operator operand order[k]; the output is last.
    order = tuple(pairing[k] for k in range(n_in)) + (len(op.inputs),)
    intr_order = tuple(range(n_in)) + (n_in,)
    names = [o.tensor for o in intr.operands]

    def show(mask: frozenset[int]) -> str:
        return "{" + ", ".join(op.operands[order[k]].tensor for k in sorted(mask)) + "}"

    op_masks = {it.name: _mask(op, it.name, order) for it in op.iterators}
    claimed: set[str] = set(keep_outer)
    assignment: dict[str, list[str]] = {}
    # Innermost intrinsic iterators first, so equal masks resolve innermost to innermost.
    intr_iters = sorted(intr.iterators, key=lambda it: _dim_position(intr, it.name))
    shared = {m for m in (_mask(intr, it.name, intr_order) for it in intr.iterators)
              if sum(_mask(intr, j.name, intr_order) == m for j in intr.iterators) > 1}
    for it in intr_iters:
        mask = _mask(intr, it.name, intr_order)
        candidates = [o for o in op.iterators if o.kind == it.kind and op_masks[o.name] == mask
                      and o.name not in claimed]
        if intrinsic.fusion == "packed":
            impure = [o.name for o in candidates if not _is_pure(op, o.name)]
            candidates = [o for o in candidates if o.name not in impure]
        if any(o.extent > 1 for o in candidates):  # extent-1 loops only stand in when nothing else does
            candidates = [o for o in candidates if o.extent > 1]
        if mask in shared and candidates:
            candidates = [min(candidates, key=lambda o: _dim_position(op, o.name))]
        if not candidates and it.extent > 1:
            hint = ""
            if intrinsic.fusion == "packed":
                same = [o.name for o in op.iterators if o.kind == it.kind and op_masks[o.name] == mask]
                if same:
                    hint = (f" ({', '.join(same)} index it but not as a dimension of their own, which a packed "
                            "layout needs)")
            raise TensorizeError(f"{where}: intrinsic loop '{it.name}' ({it.kind}, extent {it.extent}, indexes "
                                 f"{', '.join(names[k] for k in sorted(mask))}) has no operator loop of kind "
                                 f"{it.kind} indexing exactly {show(mask)}{hint}")
        assignment[it.name] = [o.name for o in candidates]
        claimed.update(o.name for o in candidates)
    axes = []
    for it in intr.iterators:
        ops = assignment[it.name]
        ax = AxisMap(it.name, it.kind, it.extent, tuple(ops), tuple(op.iterator(n).extent for n in ops))
        if ax.fill < min_fill:
            raise TensorizeError(
                f"{where}: intrinsic loop '{it.name}' needs {it.extent} lanes but the operator offers "
                f"{' x '.join(f'{n}({e})' for n, e in zip(ops, ax.extents)) or 'nothing'} = {ax.fused}; "
                f"padding to {ax.padded} would leave {1 - ax.fill:.0%} of the lanes idle "
                f"(min_fill {min_fill:.0%})")
        axes.append(ax)
    mapped = {n for ops in assignment.values() for n in ops}
    outer = tuple(it for it in op.iterators if it.name not in mapped)
    operands = tuple((intr.operands[k].tensor, op.operands[order[k]].tensor) for k in range(n_in + 1))
    return Mapping(op.name, intrinsic.name, intrinsic.fusion, operands, tuple(axes), outer)


# --- executing a mapping with the intrinsic's semantics -----------------------------------------
def execute(mapping: Mapping, op: LoopNest, intrinsic: Intrinsic, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Compute `op`'s output by calling the intrinsic (its NumPy semantics) on tiles gathered through
    the mapping's index map. Equal to `evaluate(op, arrays)` exactly when the mapping is right."""
    intr = intrinsic.nest
    for operand in intr.operands:
        for a in operand.index:
            if len(a.terms) != 1 or a.terms[0][1] != 1 or a.constant:
                raise TensorizeError(f"execute needs intrinsic '{intr.name}' to index '{operand.tensor}' by "
                                     f"plain iterators, not {a}")
    call_dims = [(it.name, it.extent) for it in mapping.outer] + [(f"tile:{ax.intrinsic}", ax.tiles)
                                                                    for ax in mapping.axes]
    lane_dims = [(f"lane:{ax.intrinsic}", ax.extent) for ax in mapping.axes]
    dims = call_dims + lane_dims
    grid = {}
    for axis, (name, extent) in enumerate(dims):
        shape = [1] * len(dims)
        shape[axis] = extent
        grid[name] = np.arange(extent).reshape(shape)
    calls = math.prod(e for _, e in call_dims)

    def op_values(lanes: set[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Operator iterator values with lanes outside `lanes` pinned to 0, and the not-padding mask."""
        values = {it.name: grid[it.name] for it in mapping.outer}
        valid = np.ones([1] * len(dims), dtype=bool)
        for ax in mapping.axes:
            lane = grid[f"lane:{ax.intrinsic}"] if ax.intrinsic in lanes else 0
            f = grid[f"tile:{ax.intrinsic}"] * ax.extent + lane
            if ax.intrinsic in lanes:
                valid = valid & (f < ax.fused)
            stride = 1
            for name, extent in reversed(list(zip(ax.operator, ax.extents))):
                values[name] = (f // stride) % extent
                stride *= extent
        for it in op.iterators:  # unmapped extent-1 loops
            values.setdefault(it.name, np.zeros([1] * len(dims), dtype=np.int64))
        return values, valid

    blocks = {}
    lane_names = [ax.intrinsic for ax in mapping.axes]
    lane_extent = {ax.intrinsic: ax.extent for ax in mapping.axes}
    op_by_name = {o.tensor: o for o in op.operands}
    for (intr_name, op_name), intr_operand in zip(mapping.operands[:-1], intr.inputs):
        lanes = [a.terms[0][0] for a in intr_operand.index]
        values, valid = op_values(set(lanes))
        full = gather(op_by_name[op_name], arrays[op_name], values, valid)
        full = np.broadcast_to(full, tuple(e for _, e in dims))
        # Pin the lanes this operand does not depend on, then order the rest as its dimensions.
        index = tuple(slice(None) if n in lanes or i < len(call_dims) else 0
                      for i, n in enumerate([n for n, _ in call_dims] + lane_names))
        picked = full[index]
        kept = [n for n in lane_names if n in lanes]
        picked = picked.reshape((calls,) + tuple(lane_extent[n] for n in kept))
        perm = [0] + [1 + kept.index(n) for n in lanes]
        blocks[intr_name] = picked.transpose(perm)
    result = evaluate(_batched(intr, calls), blocks)  # (calls, *output shape)
    out_operand = op.output
    lanes = [a.terms[0][0] for a in intr.output.index]
    values, valid = op_values(set(lanes))
    shaped = result.reshape(tuple(e for _, e in call_dims) + tuple(intr.output.shape))
    # Put the output lanes in dims order, broadcasting over lanes the output does not use.
    lane_axes = [lanes.index(n) if n in lanes else None for n in lane_names]
    expand = shaped
    order = [a for a in lane_axes if a is not None]
    expand = np.moveaxis(expand, [len(call_dims) + k for k in order], list(range(len(call_dims),
                                                                                 len(call_dims) + len(order))))
    shape = list(expand.shape[:len(call_dims)])
    it_order = iter(expand.shape[len(call_dims):])
    for lane_axis in lane_axes:
        shape.append(next(it_order) if lane_axis is not None else 1)
    expand = expand.reshape(shape)
    pinned = np.ones(tuple(e for _, e in dims), dtype=bool)
    for i, n in enumerate(lane_names):
        if n not in lanes:
            sl = [slice(None)] * len(dims)
            sl[len(call_dims) + i] = slice(1, None)
            pinned[tuple(sl)] = False
    return scatter(out_operand, expand, values, out_operand.dtype, accumulate=op.reduce == "add",
                   valid=valid & pinned)


def _batched(nest: LoopNest, calls: int) -> LoopNest:
    """The intrinsic with one more spatial loop 'call' in front, indexing a new leading dimension of every operand."""
    lead = Affine.of("call")

    def widen(o: Operand) -> Operand:
        return Operand(o.tensor, o.dtype, (calls, *o.shape), (lead, *o.index))

    return LoopNest(nest.name, (Iterator("call", calls), *nest.iterators), tuple(widen(o) for o in nest.inputs),
                    widen(nest.output), nest.body, nest.reduce)
