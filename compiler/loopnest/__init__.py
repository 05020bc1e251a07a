"""Loop-nest IR, intrinsics described as loop nests, and the UNIT-style tensorizer.

Usage::

    from tensorweave.configs import load_config
    from tensorweave.compiler.loopnest import (conv2d_nest, matmul_nest, accel_gemm, x86_vnni,
                                               tensorize, execute, evaluate, TensorizeError)

    op = matmul_nest(m=64, k=96, n=48, a_dtype="uint8")     # y[i, j] += cast<int32>(a[i, l]) * cast<int32>(b[l, j])
    mapping = tensorize(op, x86_vnni())                      # or raises TensorizeError with the reason
    print(mapping)                                           # operands, axis maps, outer loops, padding
    mapping.axis("o").operator   # ('j',): the 16 int32 lanes take output columns
    mapping.axis("i").operator   # ('l',): the 4-wide dot takes the reduction
    mapping.outer                # (Iterator('i', 64),): loops left around the instruction

    gemm = accel_gemm(load_config("vta-default"))            # acc[b, o] += inp[b, i] * wgt[o, i], 1 x 16 x 16
    conv = tensorize(conv2d_nest(spec), gemm)                # spec: anything with ConvSpec's fields
    # conv.axis("i").operator == ('c',), conv.axis("o").operator == ('k',), r and s stay outer

    # A mapping can be executed with the intrinsic's own semantics and compared with the operator:
    assert (execute(mapping, op, x86_vnni(), arrays) == evaluate(op, arrays)).all()

IR: `Iterator(name, extent, kind)`, `Affine` index expressions, `Operand(tensor, dtype, shape,
index)`, body `Read`/`Cast`/`Binary`/`Const` with dtypes, `LoopNest(name, iterators, inputs,
output, body, reduce)`. New intrinsics are loop nests (`intrinsics.py`).
"""

from .builders import Conv2dParams, conv2d_nest, conv_output_size, gemm_nest, matmul_nest
from .intrinsics import (
                         Intrinsic,
                         accel_alu,
                         accel_alu_ops,
                         accel_gemm,
                         arm_sdot,
                         nvidia_wmma_f16,
                         nvidia_wmma_s8,
                         x86_avx2_dot,
                         x86_avx2_madd16,
                         x86_vnni,
)
from .ir import (
                         Affine,
                         Binary,
                         Cast,
                         Const,
                         Iterator,
                         LoopNest,
                         LoopNestError,
                         Operand,
                         Read,
                         cast,
                         evaluate,
                         format_expr,
                         mul,
)
from .tensorize import AxisMap, Mapping, TensorizeError, execute, tensorize

__all__ = ["Affine", "AxisMap", "Binary", "Cast", "Const", "Conv2dParams", "Intrinsic", "Iterator", "LoopNest",
           "LoopNestError", "Mapping", "Operand", "Read", "TensorizeError", "accel_alu", "accel_alu_ops",
           "accel_gemm", "arm_sdot", "cast", "conv2d_nest", "conv_output_size", "evaluate", "execute",
           "format_expr", "gemm_nest", "matmul_nest", "mul", "nvidia_wmma_f16", "nvidia_wmma_s8", "tensorize",
           "x86_avx2_dot", "x86_avx2_madd16", "x86_vnni"]
