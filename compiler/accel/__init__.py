"""Accelerator kernels: conv / matmul + bias + requantization (+ ReLU) compiled to one Program.

    from tensorweave.configs import load_config
    from tensorweave.compiler.accel import ConvSpec, Requant, compile_conv, unsupported_reason

    config = load_config("vta-default")
    spec = ConvSpec(1, 64, 56, 56, 64, (3, 3), pads=(1, 1, 1, 1))
    kernel = compile_conv(config, spec, weight_int8, bias_int32, Requant(0.02, w_scales, 0.05, relu=True))
    y, stats = kernel.run(x_int8)            # NCHW int8 -> NCHW int8, bit-exact to requantize(conv2d_int(...))
    print(kernel.explain())                  # mapping, tiling, instruction counts, estimated cycles

The exact integer definition of the result is `requantize(conv2d_int(x, w, spec, bias), kernel.plan)`
(see requant.py for the rounding and how it can differ from onnxruntime's float requantization).
"""

from .kernel import (
                     AccelKernel,
                     KernelStats,
                     activation_types_reason,
                     compile_conv,
                     compile_matmul,
                     unsupported_matmul_reason,
                     unsupported_reason,
)
from .requant import RequantPlan, acc_bound, plan_requant, requantize, requantize_float
from .spec import AccelError, ConvSpec, Requant, conv2d_int

__all__ = ["AccelError", "AccelKernel", "ConvSpec", "KernelStats", "Requant", "RequantPlan", "acc_bound",
           "activation_types_reason",
           "compile_conv", "compile_matmul", "conv2d_int", "plan_requant", "requantize", "requantize_float",
           "unsupported_matmul_reason", "unsupported_reason"]
