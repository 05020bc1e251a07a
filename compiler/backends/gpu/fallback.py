"""The long tail: the CPU back end's C emitters (`compiler/backends/cpu`, registry `EMITTERS`) rendered as
GPU kernels.

Each CPU emitter returns a C function body over `x0.. / y0..` (and scratch `s0..`). This module rewrites
that body into a dialect-neutral kernel: pointer declarations and casts get the `TW_GLOBAL` qualifier
(OpenCL 1.2 has no generic address space), `static` locals become automatic, OpenMP pragmas are
dropped. Parallelism: when the body is constant declarations followed by exactly one loop that the
CPU emitter marked `#pragma omp parallel for` (its iterations are independent), that loop becomes a
grid-stride loop over the work-items; otherwise the kernel runs on one work-item. The compute-heavy
and elementwise ops do not come here (see `ops.py`): this path serves data movement, pooling,
reductions, normalization and softmax.
"""

from __future__ import annotations

import re

from ...graph import Graph, Node
from ..cpu import elementwise, nn, quant, shape_ops  # noqa: F401  (registers the CPU emitters)
from ..cpu.cgen import EMITTERS, KernelContext, UnsupportedOp
from ..cpu.toolchain import Toolchain
from .lower import CTYPES
from .render import Kernel, Param

__all__ = ["NO_TOOLCHAIN", "fallback_kernel", "kernel_context"]

NO_TOOLCHAIN = Toolchain(compiler="gpu", version="", flags=(), openmp=False, avx2=False, avx512_vnni=False,
                         avx_vnni=False)
_TYPES = r"(?:float|double|u?int(?:8|16|32|64)_t|void|char|int|long|short)"
_POINTER = re.compile(rf"(?<![\w])((?:const\s+)?{_TYPES}\s*\*)")
_PARALLEL = re.compile(r"#pragma omp parallel for[^\n]*\n\s*for \(int64_t (\w+) = 0; \1 < (\d+); \1\+\+\)")


def kernel_context(graph: Graph, node: Node) -> KernelContext:
    return KernelContext(graph=graph, node=node, toolchain=NO_TOOLCHAIN)


def _match(text: str, i: int, open_c: str, close_c: str) -> int:
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_c:
            depth += 1
        elif text[j] == close_c:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _statement_end(text: str, i: int) -> int:
    """Index just past the C statement starting at or after `i` (braces, for / if headers, or up to ';')."""
    while i < len(text) and text[i].isspace():
        i += 1
    if text.startswith("{", i):
        return _match(text, i, "{", "}") + 1
    if re.match(r"(for|if|while)\s*\(", text[i:]):
        close = _match(text, text.index("(", i), "(", ")")
        end = _statement_end(text, close + 1)
        rest = text[end:]
        m = re.match(r"\s*else\b", rest)
        return _statement_end(text, end + m.end()) if m else end
    return text.index(";", i) + 1


def parallel_loop(body: str) -> tuple[str, str, int] | None:
    """(body with the loop as a grid-stride loop, loop variable, trip count), or None when not safe."""
    text = re.sub(r"//[^\n]*", "", body).strip()
    while text.startswith("{") and _match(text, 0, "{", "}") == len(text) - 1:
        text = text[1:-1].strip()
    m = _PARALLEL.search(text)
    if not m:
        return None
    prefix = text[:m.start()]
    pos = 0
    while True:  # everything before the loop must be constant declarations
        while pos < len(prefix) and prefix[pos].isspace():
            pos += 1
        if pos >= len(prefix):
            break
        if not prefix.startswith("const ", pos):
            return None
        pos = prefix.index(";", pos) + 1
    end = _statement_end(text, m.end())
    if text[end:].strip():
        return None
    var, count = m.group(1), int(m.group(2))
    header = f"for (int64_t {var} = TW_GID(0); {var} < {count}; {var} += TW_GSIZE(0))"
    return prefix + header + text[m.end():], var, count


def _neutral(body: str) -> str:
    body = re.sub(r"^[ \t]*#pragma omp[^\n]*\n", "", body, flags=re.M)
    body = re.sub(r"\bstatic\s+const\b", "const", body)
    return _POINTER.sub(r"TW_GLOBAL \1", body)


def fallback_kernel(name: str, graph: Graph, node: Node) -> tuple[Kernel, list[str], list[int]]:
    """(kernel, buffer names in parameter order, scratch sizes in bytes) for `node` from its CPU emitter;
    buffer names are graph values, '' for an absent optional input, and `#s<j>` for scratch j."""
    key = f"{node.domain}.{node.op}" if node.domain not in ("", "ai.onnx") else node.op
    emit = EMITTERS.get(key)
    if emit is None:
        raise UnsupportedOp(f"node '{node.name}': the GPU back end has no kernel for op {key}")
    ctx = kernel_context(graph, node)
    body = emit(ctx)
    if ctx.helpers or ctx.prepare_body:
        raise UnsupportedOp(f"node '{node.name}' ({node.op}): this form needs CPU helper routines "
                            f"({', '.join(sorted(ctx.helpers)) or 'constant packing'}) the GPU back end lacks")
    params, args = [], []
    for i, value in enumerate(node.inputs):
        params.append(Param(f"x{i}", CTYPES[graph.types[value].dtype] if value else "uint8_t"))
        args.append(value)
    for i, value in enumerate(node.outputs):
        params.append(Param(f"y{i}", CTYPES[graph.types[value].dtype] if value else "uint8_t", const=False))
        args.append(value)
    for j in range(len(ctx.scratch_sizes)):
        params.append(Param(f"s{j}", "void", const=False))
        args.append(f"#s{j}")
    # absent optional inputs: the emitters test k.has_input; keep C's NULL checks meaningful
    prefix = "".join(f"(void)x{i};\n" for i, v in enumerate(node.inputs) if not v)
    par = parallel_loop(body)
    if par is not None:
        text, _, count = par
        kernel = Kernel(name, tuple(params), prefix + _neutral(text), (min(count, 1 << 16),), None,
                        note=f"{node.op} (CPU emitter, parallel loop over {count})")
    else:
        text = "if (TW_GID(0) != 0) return;\n" + prefix + _neutral(body)
        kernel = Kernel(name, tuple(params), text, (1,), None, note=f"{node.op} (CPU emitter, one work-item)")
    return kernel, args, list(ctx.scratch_sizes)
