"""One kernel description, two dialects; the long-tail path's loop parallelization rule."""

from __future__ import annotations

from tensorweave.compiler.backends.gpu.fallback import parallel_loop
from tensorweave.compiler.backends.gpu.lower import contraction_kernel
from tensorweave.compiler.backends.gpu.render import render
from tensorweave.compiler.loopnest import matmul_nest


def test_same_kernel_renders_to_opencl_and_cuda() -> None:
    kernel = contraction_kernel("k", matmul_nest(64, 32, 64, a_dtype="float32", b_dtype="float32",
                                                 acc_dtype="float32"), ["x0", "x1"])
    ocl, cu = render([kernel], "opencl"), render([kernel], "cuda")
    assert kernel.body in ocl and kernel.body in cu
    assert "__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void k(__global const float *restrict x0" in ocl
    assert 'extern "C" __global__ void __launch_bounds__(256) k(const float *__restrict__ x0' in cu
    assert "#define TW_BARRIER() barrier(CLK_LOCAL_MEM_FENCE)" in ocl and "#define TW_BARRIER() __syncthreads()" in cu
    assert kernel.global_size == (16, 16, 1) and kernel.local_size == (16, 16, 1)  # one 64x64 tile, 4x4 per item


def test_parallel_loop_rule() -> None:
    body = "{\nconst int64_t n = 4;\n#pragma omp parallel for\nfor (int64_t i0 = 0; i0 < 70000; i0++) {\ny0[i0] = x0[i0];\n}\n}\n"
    text, var, count = parallel_loop(body)  # type: ignore[misc]
    assert (var, count) == ("i0", 70000)
    assert "for (int64_t i0 = TW_GID(0); i0 < 70000; i0 += TW_GSIZE(0))" in text
    # a statement after the loop would run in every work-item: stays serial
    assert parallel_loop(body.rstrip().rstrip("}") + "y0[0] = 1;\n}\n") is None
    # a loop the CPU emitter did not mark parallel stays serial
    assert parallel_loop(body.replace("#pragma omp parallel for\n", "")) is None


def test_split_k_follows_the_device_occupancy() -> None:
    from tensorweave.compiler.backends.gpu.lower import Occupancy, contraction_kernels, gpu_occupancy
    from tensorweave.compiler.loopnest import Conv2dParams, conv2d_nest

    # ResNet-18's deepest conv at batch 1: M = 512 channels, N = 49 pixels, K = 4,608: 8 tiles of 64 x 64
    nest = conv2d_nest(Conv2dParams(batch=1, in_channels=512, height=7, width=7, out_channels=512, kernel=(3, 3),
                                    stride=(1, 1), pads=(1, 1, 1, 1)), "float32", "float32", "float32")
    cpu, cpu_bytes = contraction_kernels("k", nest, ["x0", "x1"], occupancy=Occupancy())
    gpu, gpu_bytes = contraction_kernels("k", nest, ["x0", "x1"], occupancy=gpu_occupancy(132))
    assert "K in 16 chunks of 288" in cpu[0].note and cpu[0].global_size[2] == 16
    # 528 work-groups wanted: 66 chunks of 5 K steps at least -> 58 chunks of 80 (none empty)
    assert "K in 58 chunks of 80" in gpu[0].note and gpu[0].global_size[2] == 58
    assert (cpu_bytes, gpu_bytes) == (16 * 512 * 49 * 4, 58 * 512 * 49 * 4)
    wide, _ = contraction_kernels("k", nest, ["x0", "x1"], occupancy=Occupancy(groups=16))
    assert len(wide) == 1  # 8 tiles >= 16 / 2: no split
