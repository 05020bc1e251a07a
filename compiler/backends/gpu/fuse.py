"""Elementwise fusion: a tree of elementwise nodes becomes one kernel.

A node lowered to one elementwise kernel (`ops.Elementwise`: a formula over letters bound to graph values)
absorbs the elementwise node that produces one of its inputs when that value has no other consumer, is not
a graph output, and has the consumer's output shape (read element for element). The fused kernel computes
each absorbed node's formula into a local variable, in graph order, and stores only the root's result: a
quantized model's DequantizeLinear -> Relu -> QuantizeLinear, or DequantizeLinear x2 -> Add ->
QuantizeLinear, run as one kernel with one read of each input and one write. The arithmetic is the nodes'
own formulas, each result converted to its node's output type as the unfused kernels store it, so results
are unchanged bit for bit.
"""

from __future__ import annotations

import re
from collections import Counter

from ...graph import Graph
from .lower import CTYPES, broadcast_nest, elementwise_kernel
from .ops import Elementwise, Launch

__all__ = ["fuse_elementwise"]


def _fusable(graph: Graph, lowered: list[list[Launch]]) -> tuple[dict[int, Elementwise], dict[int, list[int]]]:
    """The elementwise node specs, and for each node the nodes it absorbs (its fused producers)."""
    specs = {i: launches[0].elementwise for i, launches in enumerate(lowered)
             if len(launches) == 1 and launches[0].elementwise is not None}
    uses = Counter(v for node in graph.nodes for v in node.inputs if v)
    producer = {v: i for i, node in enumerate(graph.nodes) for v in node.outputs if v}
    outputs = set(graph.outputs)
    absorbs: dict[int, list[int]] = {}
    for i, spec in specs.items():
        for value, shape in zip(spec.inputs, spec.shapes):
            j = producer.get(value)
            if j is None or j not in specs:
                continue
            if (uses[value] != 1 or value in outputs or specs[j].out_shape != spec.out_shape
                    or tuple(shape) != spec.out_shape):
                continue
            absorbs.setdefault(i, []).append(j)
    return specs, absorbs


def fuse_elementwise(graph: Graph, lowered: list[list[Launch]]) -> list[list[Launch]]:
    """`lowered` (the launches of each node, in graph order) with every fusable tree as one launch at its
    root; absorbed nodes get no launch."""
    specs, absorbs = _fusable(graph, lowered)
    absorbed = {j for children in absorbs.values() for j in children}
    out = [list(launches) for launches in lowered]
    for root in absorbs:
        if root in absorbed:
            continue
        out[root] = [_fused_launch(root, specs, absorbs, lowered[root][0].kernel.name)]
        stack = list(absorbs[root])
        while stack:
            j = stack.pop()
            out[j] = []
            stack.extend(absorbs.get(j, []))
    return out


def _fused_launch(root: int, specs: dict[int, Elementwise], absorbs: dict[int, list[int]], name: str) -> Launch:
    externals: dict[tuple[str, tuple[int, ...]], tuple[str, str]] = {}  # (value, shape) -> (letter, dtype)
    statements: list[str] = []
    ops: list[str] = []

    def emit(i: int) -> str:
        spec = specs[i]
        children = {specs[j].output: j for j in absorbs.get(i, [])}
        subs = {}
        for letter, value, shape, dtype in zip(spec.letters, spec.inputs, spec.shapes, spec.in_dtypes):
            if value in children:
                subs[letter] = emit(children.pop(value))
            else:
                key = (value, tuple(shape))
                if key not in externals:
                    externals[key] = (f"p{len(externals)}", dtype)
                subs[letter] = externals[key][0]
        pattern = r"\b(" + "|".join(re.escape(letter) for letter in sorted(subs, key=len, reverse=True)) + r")\b"
        expr = re.sub(pattern, lambda m: subs[m.group(1)], spec.formula) if subs else spec.formula
        ctype = CTYPES[spec.out_dtype]
        value = {"float": "TW_F32", "double": "TW_F64"}.get(ctype, "")  # rounded as if stored (render.py)
        statements.append(f"const {ctype} e{i} = {value}(({ctype})({expr}));")
        ops.append(spec.op)
        return f"e{i}"

    result = emit(root)
    spec = specs[root]
    keys = list(externals)
    letters = [externals[k][0] for k in keys]
    dtypes = [externals[k][1] for k in keys]
    nest = broadcast_nest("+".join(ops), spec.out_shape, [k[1] for k in keys], dtypes, spec.out_dtype)
    params = [f"x{k}" for k in range(len(keys))]
    kernel = elementwise_kernel(name, nest, result, letters, params, out_ctype=CTYPES[spec.out_dtype],
                                in_ctypes=[CTYPES[d] for d in dtypes], prelude=" ".join(statements) + " ")
    values = {param: key[0] for param, key in zip(params, keys)}
    values["y0"] = spec.output
    return Launch(kernel, tuple(values[p.name] for p in kernel.params))
