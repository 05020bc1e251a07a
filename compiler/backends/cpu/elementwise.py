"""Elementwise kernels: unary math and activations, broadcasting binary and variadic ops, Where, Cast.

Every formula is a C expression over the input values `a`, `b`, `c`, ... (read with NumPy broadcasting)
in the output's C type; `<tgmath.h>` picks the float or double math function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .cgen import KernelContext, bcast_strides, c_literal, emitter, flat_loop, highest, is_float, lowest, nest, strides

UNARY: dict[str, Callable[[KernelContext, str], str]] = {
    "Identity": lambda k, a: a,
    "Neg": lambda k, a: f"-{a}",
    "Abs": lambda k, a: f"fabs({a})" if is_float(k.in_type(0).dtype) else f"({a} < 0 ? -{a} : {a})",
    "Relu": lambda k, a: f"({a} > 0 ? {a} : 0)",
    "Sigmoid": lambda k, a: f"(1 / (1 + exp(-{a})))",
    "Tanh": lambda k, a: f"tanh({a})",
    "Exp": lambda k, a: f"exp({a})",
    "Log": lambda k, a: f"log({a})",
    "Sqrt": lambda k, a: f"sqrt({a})",
    "Reciprocal": lambda k, a: f"(1 / {a})",
    "Floor": lambda k, a: f"floor({a})",
    "Ceil": lambda k, a: f"ceil({a})",
    "Round": lambda k, a: f"rint({a})",  # the default rounding mode: half to even, as ONNX asks
    "Erf": lambda k, a: f"erf({a})",
    "Sin": lambda k, a: f"sin({a})",
    "Cos": lambda k, a: f"cos({a})",
    "Tan": lambda k, a: f"tan({a})",
    "Sign": lambda k, a: f"(({a} > 0) - ({a} < 0))",
    "Not": lambda k, a: f"!{a}",
    "Softsign": lambda k, a: f"({a} / (1 + fabs({a})))",
    "Softplus": lambda k, a: f"log(exp({a}) + 1)",
    "LeakyRelu": lambda k, a: f"({a} < 0 ? {_f(k, k.attr('alpha', 0.01))} * {a} : {a})",
    "Elu": lambda k, a: f"({a} < 0 ? {_f(k, k.attr('alpha', 1.0))} * (exp({a}) - 1) : {a})",
    "Selu": lambda k, a: (f"({a} <= 0 ? {_f(k, k.attr('gamma', 1.0507010221481323))} * "
                          f"({_f(k, k.attr('alpha', 1.6732631921768188))} * exp({a}) - "
                          f"{_f(k, k.attr('alpha', 1.6732631921768188))}) : "
                          f"{_f(k, k.attr('gamma', 1.0507010221481323))} * {a})"),
    "HardSigmoid": lambda k, a: (f"fmax(0, fmin(1, {_f(k, k.attr('alpha', 0.2))} * {a} + "
                                 f"{_f(k, k.attr('beta', 0.5))}))"),
    "HardSwish": lambda k, a: f"({a} * fmax(0, fmin(1, {_f(k, 1 / 6)} * {a} + {_f(k, 0.5)})))",
    "Gelu": lambda k, a: (f"({_f(k, 0.5)} * {a} * (1 + erf({a} * {_f(k, 1 / math.sqrt(2))})))"
                          if k.attr("approximate", "none") == "none" else
                          f"({_f(k, 0.5)} * {a} * (1 + tanh({_f(k, math.sqrt(2 / math.pi))} * "
                          f"({a} + {_f(k, 0.044715)} * {a} * {a} * {a}))))"),
}

BINARY: dict[str, Callable[[KernelContext, str, str], str]] = {
    "Add": lambda k, a, b: f"({a} + {b})",
    "Sub": lambda k, a, b: f"({a} - {b})",
    "Mul": lambda k, a, b: f"({a} * {b})",
    "Div": lambda k, a, b: f"({a} / {b})",
    "Pow": lambda k, a, b: f"pow(({_wide(k)}){a}, ({_wide(k)}){b})",
    "Equal": lambda k, a, b: f"({a} == {b})",
    "Less": lambda k, a, b: f"({a} < {b})",
    "Greater": lambda k, a, b: f"({a} > {b})",
    "LessOrEqual": lambda k, a, b: f"({a} <= {b})",
    "GreaterOrEqual": lambda k, a, b: f"({a} >= {b})",
    "And": lambda k, a, b: f"({a} && {b})",
    "Or": lambda k, a, b: f"({a} || {b})",
    "Xor": lambda k, a, b: f"(!{a} != !{b})",
    "PRelu": lambda k, a, b: f"({a} < 0 ? {b} * {a} : {a})",
    "BitShift": lambda k, a, b: _bitshift(k, a, b),
}


def _bitshift(k: KernelContext, a: str, b: str) -> str:
    # C leaves shifts by >= the promoted width undefined; onnxruntime gives 0 for uint8..uint64 shifted by
    # >= their width (either direction), so do that. Shifting in uint64 keeps narrow types out of signed int.
    width = 8 * np.dtype(k.out_type().dtype).itemsize
    op = "<<" if k.attr("direction") == "LEFT" else ">>"
    return f"((uint64_t){b} >= {width} ? 0 : ((uint64_t){a} {op} (uint64_t){b}))"

VARIADIC = ("Max", "Min", "Sum", "Mean")
FLOAT_ONLY = {"Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Sin", "Cos",
              "Tan", "Softsign", "Softplus", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Gelu"}


def _f(k: KernelContext, value: float) -> str:
    return c_literal(value, "float64" if k.out_type().dtype == "float64" else "float32")


def _wide(k: KernelContext) -> str:
    # Pow of integers must not lose bits in float: compute in double and convert to the output type.
    return "double"


def _elementwise(k: KernelContext, formula: str, names: list[str]) -> str:
    """y0[i] = formula, where each name in `names` reads input j broadcast to the output shape."""
    out = k.out_shape()
    ct = k.ctype_out()
    size = int(k.out_type().size)
    reads: dict[str, str] = {}
    offsets: dict[str, Sequence[int]] = {}
    same = True
    for j, name in enumerate(names):
        shape = k.in_shape(j)
        if tuple(shape) != tuple(out):
            same = False
        reads[name] = f"x{j}[o{j}]"
        offsets[f"o{j}"] = bcast_strides(shape, out)
    decls = "".join(f"const {k.ctype_in(j)} {name} = {reads[name]};\n" for j, name in enumerate(names))
    if same:
        decls = "".join(f"const {k.ctype_in(j)} {name} = x{j}[i];\n" for j, name in enumerate(names))
        return flat_loop(size, f"{decls}y0[i] = ({ct})({formula});")
    return nest(out, offsets, f"{decls}y0[{_out_index(out)}] = ({ct})({formula});", parallel=True)


def _out_index(shape: tuple[int, ...]) -> str:
    st = strides(shape)
    terms = [f"i{d}*{st[d]}" for d in range(len(shape)) if shape[d] != 1]
    return " + ".join(terms) if terms else "0"


@emitter(*UNARY)
def emit_unary(k: KernelContext) -> str:
    if k.op in FLOAT_ONLY and not is_float(k.in_type(0).dtype):
        k.unsupported(f"{k.op} on {k.in_type(0).dtype} (float32 or float64 only)")
    return _elementwise(k, UNARY[k.op](k, "a"), ["a"])


@emitter(*BINARY)
def emit_binary(k: KernelContext) -> str:
    if k.op == "BitShift" and is_float(k.in_type(0).dtype):
        k.unsupported("BitShift on floats")
    return _elementwise(k, BINARY[k.op](k, "a", "b"), ["a", "b"])


@emitter(*VARIADIC)
def emit_variadic(k: KernelContext) -> str:
    n = len(k.node.inputs)
    names = [f"v{j}" for j in range(n)]
    expr = names[0]
    for name in names[1:]:
        if k.op == "Max":
            expr = f"({expr} > {name} || {expr} != {expr} ? {expr} : {name})"
        elif k.op == "Min":
            expr = f"({expr} < {name} || {expr} != {expr} ? {expr} : {name})"
        else:
            expr = f"({expr} + {name})"
    if k.op == "Mean":
        expr = f"({expr} / {n})"
    return _elementwise(k, expr, names)


@emitter("Where")
def emit_where(k: KernelContext) -> str:
    return _elementwise(k, "(c ? a : b)", ["c", "a", "b"])


@emitter("Clip")
def emit_clip(k: KernelContext) -> str:
    dtype = k.out_type().dtype
    ct = k.ctype_out()
    size = k.out_type().size
    lo = "x1[0]" if k.has_input(1) else f"({ct}){lowest(dtype)}"
    hi = "x2[0]" if k.has_input(2) else f"({ct}){highest(dtype)}"
    # ONNX: when min > max every element becomes max (min applied first, then max).
    body = f"{ct} v = x0[i];\nif (v < lo) v = lo;\nif (v > hi) v = hi;\ny0[i] = v;"
    return f"const {ct} lo = {lo};\nconst {ct} hi = {hi};\n" + flat_loop(size, body)


@emitter("Cast")
def emit_cast(k: KernelContext) -> str:
    src, dst = k.in_type(0).dtype, k.out_type().dtype
    ct = k.ctype_out()
    size = k.out_type().size
    if dst == "bool":
        expr = "(x0[i] != 0)"
    elif is_float(src) and not is_float(dst):
        # Out-of-range float -> int is undefined in C; ONNX leaves it undefined too. NaN maps to 0.
        expr = f"(x0[i] != x0[i] ? ({ct})0 : ({ct})x0[i])"
    else:
        expr = f"({ct})x0[i]"
    return flat_loop(size, f"y0[i] = {expr};")
