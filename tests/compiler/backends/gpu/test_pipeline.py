"""`compile_model(..., target="gpu")` and `tensorweave run MODEL --target gpu --check` on the seeded small CNN
(float32 and its int8 QDQ form), and the one-line errors when a runtime is missing."""

from __future__ import annotations

import sys

import onnx
import pytest
from tensorweave.compiler.models import small_cnn
from tensorweave.compiler.quantize import quantize_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("gpu_models")
    model = small_cnn(seed=0)
    paths = {"float32": str(root / "small_cnn.onnx"), "int8": str(root / "small_cnn_int8.onnx")}
    onnx.save(model, paths["float32"])
    onnx.save(quantize_model(model, samples=2), paths["int8"])
    return paths


def _check(api: str, path: str, tensor_cores: bool = False) -> None:
    from tensorweave.compiler.pipeline import compile_model
    from tensorweave.compiler.run import compare_outputs, reference_outputs

    compiled = compile_model(path, None, target="gpu", gpu_api=api, tensor_cores=tensor_cores)
    notes = [launch.kernel.note for launch in compiled.steps[0].executable.launches]
    assert any("Tensor Cores" in note for note in notes) == tensor_cores
    assert [s.target for s in compiled.steps] == ["gpu"]
    inputs = compiled.random_inputs(seed=3)
    outputs = compiled.run(inputs)
    agreements = compare_outputs(compiled.graph, outputs, reference_outputs(compiled.model, inputs))
    assert agreements and all(a.ok for a in agreements), agreements
    assert compiled.steps[0].executable.launch_mode == ("graph" if api == "cuda" else "stream")
    if api == "cuda":  # each kernel timed from a CUDA graph of its repeats
        times = compiled.steps[0].executable.profile(inputs, repeats=3)
        assert len(times) == len(compiled.steps[0].executable.launches) and all(t.ms > 0 for t in times)
        again = compiled.run(inputs)
        assert all((again[k] == outputs[k]).all() for k in outputs)
    if "int8" in path:  # the QDQ groups ran as integer kernels and match onnxruntime exactly
        ops = {n.op for n in compiled.steps[0].executable.graph.nodes}
        assert "QLinearConv" in ops and "Conv" not in ops
        assert all(a.equal == a.elements for a in agreements)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_compile_model_gpu_opencl(opencl: str, models: dict[str, str], precision: str) -> None:
    _check(opencl, models[precision])


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_compile_model_gpu_cuda(cuda: str, models: dict[str, str], precision: str) -> None:
    _check(cuda, models[precision])


@pytest.mark.gpu
def test_int8_model_on_tensor_cores_cuda(cuda: str, models: dict[str, str]) -> None:
    _check(cuda, models["int8"], tensor_cores=True)


def test_tensor_cores_without_cuda_is_a_clear_error(opencl: str, models: dict[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tensorweave.cli import main

    assert main(["run", models["int8"], "--target", "gpu", "--gpu-api", opencl, "--tensor-cores"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Tensor Core kernels need CUDA" in err[0]


def test_cli_run_gpu_check(opencl: str, models: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from tensorweave.cli import main

    assert main(["run", models["int8"], "--target", "gpu", "--gpu-api", opencl, "--check"]) == 0
    out = capsys.readouterr().out
    assert "ran on the GPU (OpenCL:" in out and "AGREES with onnxruntime" in out and "10/10 equal" in out


def test_profile_times_every_kernel_of_the_model(opencl: str, models: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tensorweave.cli import main
    from tensorweave.compiler.backends.gpu import format_profile
    from tensorweave.compiler.pipeline import compile_model

    compiled = compile_model(models["float32"], None, target="gpu", gpu_api=opencl)
    exe = compiled.steps[0].executable
    inputs = compiled.random_inputs(seed=1)
    before = exe.run(inputs)
    times = exe.profile(inputs, repeats=2)
    assert [t.kernel for t in times] == [launch.kernel.name for launch in exe.launches]
    assert all(t.ms > 0 for t in times)
    convs = [n.name for n in exe.graph.nodes if n.op == "Conv"]
    assert sorted({t.node for t in times if t.op == "Conv"}) == sorted(convs)
    after = exe.run(inputs)  # profiling leaves the executable as it was
    assert all((before[k] == after[k]).all() for k in before)
    text = format_profile(times, exe.device, top=3)
    total = sum(t.ms for t in times)
    assert f"{len(times)} kernels, {total:.3f} ms" in text
    assert len([line for line in text.splitlines()[2:] if "%  " in line]) == 3  # the 3 slowest kernels
    conv_kernels = len([t for t in times if t.op == "Conv"])  # one per conv, two with split K
    assert conv_kernels >= len(convs)
    assert any(line.split()[:2] == ["Conv", str(conv_kernels)] for line in text.splitlines())

    assert main(["run", models["float32"], "--target", "gpu", "--gpu-api", opencl, "--profile"]) == 0
    assert "GPU kernel profile on OpenCL" in capsys.readouterr().out
    assert main(["run", models["float32"], "--target", "cpu", "--profile"]) == 2
    assert "use it with --target gpu" in capsys.readouterr().out


def test_missing_pyopencl_is_one_line(models: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from tensorweave.cli import main
    from tensorweave.compiler.backends.gpu import opencl

    monkeypatch.setitem(sys.modules, "pyopencl", None)  # import pyopencl -> ImportError
    opencl.opencl_runtime.cache_clear()
    try:
        code = main(["run", models["float32"], "--target", "gpu", "--gpu-api", "opencl"])
    finally:
        opencl.opencl_runtime.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install" in err[0] and "pyopencl" in err[0]


def test_cuda_api_without_device_is_a_clear_error() -> None:
    from tensorweave.compiler.backends.gpu import GPUUnavailable, runtime_for
    from tensorweave.compiler.backends.gpu.cuda import cuda_runtime

    try:
        cuda_runtime()
    except GPUUnavailable:
        with pytest.raises(GPUUnavailable, match="CUDA|cuda|nvcc"):
            runtime_for("cuda")
    else:
        pytest.skip("a CUDA device works here")
