"""`GPUExecutable`'s device resources: every buffer it allocates and every graph it records is given back by
`close` (and by `profile` for its per-kernel graphs), checked on the OpenCL runtime wrapped to count them and
to record "graphs" the way the CUDA runtime does; and `CudaRuntime.record` releasing its graph template,
checked against a stand-in for the CUDA driver (the real one runs in the `gpu` tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tensorweave.compiler.frontend import from_onnx
from tensorweave.compiler.models import small_cnn
from tensorweave.errors import TensorweaveError


class CountingRuntime:
    """A runtime around another: counts live buffers and graphs; `record` keeps the calls and `replay`
    launches them (as a CUDA graph would)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.buffers: dict[int, Any] = {}
        self.graphs: dict[int, list[Any]] = {}
        self.allocated = self.recorded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def alloc(self, nbytes: int) -> Any:
        buffer = self.inner.alloc(nbytes)
        self.buffers[id(buffer)] = buffer
        self.allocated += 1
        return buffer

    def free(self, buffer: Any) -> None:
        assert self.buffers.pop(id(buffer)) is buffer, "freed twice or not allocated here"
        self.inner.free(buffer)

    def record(self, calls: list[Any]) -> list[Any]:
        graph = list(calls)
        self.graphs[id(graph)] = graph
        self.recorded += 1
        return graph

    def replay(self, graph: list[Any]) -> None:
        assert id(graph) in self.graphs, "replayed a graph that was released"
        for call in graph:
            self.inner.launch(*call)

    def forget(self, graph: list[Any]) -> None:
        assert self.graphs.pop(id(graph)) is graph


def test_close_gives_back_every_buffer_and_graph(opencl: str) -> None:
    from tensorweave.compiler.backends.gpu import runtime_for
    from tensorweave.compiler.backends.gpu.executable import GPUExecutable, generate, optimize
    from tensorweave.compiler.backends.gpu.render import render

    graph = optimize(from_onnx(small_cnn(seed=0)))
    runtime = CountingRuntime(runtime_for(opencl))
    generated = generate(graph)
    source = render([launch.kernel for launch in generated.launches], runtime.api)
    exe = GPUExecutable(generated, runtime, runtime.build(source, False), source)
    plain = GPUExecutable(generated, runtime_for(opencl), runtime_for(opencl).build(source, False), source)
    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal(graph.types[name].shape).astype(np.float32) for name in graph.inputs}

    first = exe.run(inputs)
    assert exe.launch_mode == "graph" and runtime.recorded == 1 and len(runtime.graphs) == 1
    for name, value in plain.run(inputs).items():  # replayed graph == the kernels launched one by one
        np.testing.assert_array_equal(first[name], value)
    times = exe.profile(inputs, repeats=2)
    assert len(times) == len(generated.launches)
    assert runtime.recorded == 1 + len(generated.launches) and len(runtime.graphs) == 1  # per-kernel ones released
    for name, value in exe.run(inputs).items():
        np.testing.assert_array_equal(first[name], value)

    assert runtime.allocated > len(graph.inputs) + len(graph.outputs) and runtime.buffers
    exe.close()
    assert runtime.buffers == {} and runtime.graphs == {}
    exe.close()  # a second close does nothing
    with pytest.raises(TensorweaveError, match="closed"):
        exe.run(inputs)
    plain.close()


def test_a_failing_constructor_frees_what_it_allocated(opencl: str) -> None:
    import gc

    from tensorweave.compiler.backends.gpu import runtime_for
    from tensorweave.compiler.backends.gpu.executable import GPUExecutable, generate, optimize
    from tensorweave.compiler.backends.gpu.render import render

    class OutOfMemory(CountingRuntime):
        def alloc(self, nbytes: int) -> Any:
            if self.allocated == 5:
                raise TensorweaveError("out of device memory")
            return super().alloc(nbytes)

    generated = generate(optimize(from_onnx(small_cnn(seed=0))))
    runtime = OutOfMemory(runtime_for(opencl))
    source = render([launch.kernel for launch in generated.launches], runtime.api)
    program = runtime.build(source, False)
    with pytest.raises(TensorweaveError, match="out of device memory"):
        GPUExecutable(generated, runtime, program, source)
    gc.collect()
    assert runtime.allocated == 5 and runtime.buffers == {}


class FakeDriver:
    """What `CudaRuntime.record` / `forget` / `free` call of cuda-bindings' driver, logged."""

    class CUstreamCaptureMode:
        CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 2

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        results = {"cuStreamEndCapture": "template", "cuGraphInstantiate": "instance"}

        def call(*args: Any) -> tuple[int, ...] | tuple[int, str]:
            self.log.append((name, args[0]))
            return (0, results[name]) if name in results else (0,)
        return call


def test_cuda_record_destroys_its_template_and_forget_the_instance() -> None:
    from tensorweave.compiler.backends.gpu.cuda import CudaRuntime

    runtime = object.__new__(CudaRuntime)  # no device here: the driver is a stand-in
    driver = FakeDriver()
    runtime._cu, runtime.stream = driver, "stream"
    recorded = runtime.record([("kernel", (64,), (32,), [1, 2])])
    assert recorded == "instance"
    assert [name for name, _ in driver.log] == ["cuStreamBeginCapture", "cuLaunchKernel", "cuStreamEndCapture",
                                                 "cuGraphInstantiate", "cuGraphDestroy"]
    assert driver.log[-1] == ("cuGraphDestroy", "template")
    runtime.forget(recorded)
    runtime.free("buffer")
    assert driver.log[-2:] == [("cuGraphExecDestroy", "instance"), ("cuMemFree", "buffer")]
