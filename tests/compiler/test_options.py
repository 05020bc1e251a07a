"""Target options: every setting `compile_model` takes is kept on the compiled model, written to
settings.json by `save` and read back by `load_compiled` (it used to drop gpu_api and tensor_cores)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from tensorweave.compiler.models import small_cnn
from tensorweave.compiler.options import PipelineError, TargetOptions
from tensorweave.compiler.pipeline import compile_model, load_compiled
from tensorweave.compiler.quantize import quantize_model
from tensorweave.configs import load_config


@pytest.fixture(scope="module")
def cnn_qdq() -> onnx.ModelProto:
    return quantize_model(small_cnn(), samples=2)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))


def test_every_option_survives_save_and_load(cnn_qdq, tmp_path):
    """Non-default values for every option (gpu_api and tensor_cores are kept even where the target ignores them)."""
    compiled = compile_model(cnn_qdq, "tiny", target="cpu", gpu_api="opencl", tensor_cores=True, engine="rtl",
                             cost_model="analytical")
    tiny = load_config("tiny")
    want = TargetOptions(target="cpu", config="tiny", config_digest=tiny.digest, gpu_api="opencl", tensor_cores=True,
                         engine="rtl", cost_model="analytical")
    assert compiled.options == want
    path = compiled.save(tmp_path / "cnn")
    assert json.loads((path / "settings.json").read_text())["options"] == {
        "target": "cpu", "config": "tiny", "config_digest": tiny.digest, "gpu_api": "opencl", "tensor_cores": True,
        "engine": "rtl", "cost_model": "analytical"}
    again = load_compiled(path)
    assert again.options == want and again.config == tiny


def test_accel_options_reach_the_kernels_after_loading(cnn_qdq, tmp_path):
    compiled = compile_model(cnn_qdq, "vta-default", cost_model="analytical")
    again = load_compiled(compiled.save(tmp_path / "cnn"))
    assert again.options == compiled.options and again.options.cost_model == "analytical"
    kernels = [s.kernel for s in again.steps if s.target == "accel"]
    assert kernels and {k.cycle_source for k in kernels} == {"analytical"}
    assert [k.tiling for k in kernels] == [s.kernel.tiling for s in compiled.steps if s.target == "accel"]
    inputs = again.random_inputs(1)
    np.testing.assert_array_equal(again.run(inputs)["fc_out"], compiled.run(inputs)["fc_out"])


def test_gpu_options_survive_save_and_load(tmp_path):
    from tensorweave.compiler.backends.gpu.opencl import GPUUnavailable, opencl_runtime
    try:
        opencl_runtime()
    except GPUUnavailable as exc:
        pytest.skip(f"no OpenCL device: {exc}")
    compiled = compile_model(small_cnn(), None, target="gpu", gpu_api="opencl")
    again = load_compiled(compiled.save(tmp_path / "gpu"))
    assert again.options == compiled.options and again.options.gpu_api == "opencl"
    assert again.steps[0].executable.launch_mode == "stream"  # OpenCL's launch mode (CUDA's is "graph")


def test_folders_saved_before_the_options_still_load(cnn_qdq, tmp_path):
    path = compile_model(cnn_qdq, "vta-default", target="cpu").save(tmp_path / "old")
    settings = json.loads((path / "settings.json").read_text())
    old = {"target": "cpu", "input_shapes": settings["input_shapes"], "config": settings["config"]}
    (path / "settings.json").write_text(json.dumps(old))
    assert load_compiled(path).options == TargetOptions(target="cpu", config="vta-default",
                                                        config_digest=load_config("vta-default").digest)


def test_bad_settings_name_the_field(cnn_qdq, tmp_path):
    path = compile_model(cnn_qdq, "vta-default", target="cpu").save(tmp_path / "bad")
    settings = json.loads((path / "settings.json").read_text())
    (path / "settings.json").write_text(json.dumps({**settings, "options": {**settings["options"], "threads": 4}}))
    with pytest.raises(PipelineError, match="unknown target option.*threads"):
        load_compiled(path)
    (path / "settings.json").write_text(json.dumps({**settings, "options": {**settings["options"],
                                                                            "config_digest": "0" * 16}}))
    with pytest.raises(PipelineError, match="field 'config' has digest .* compiled for digest 0000000000000000"):
        load_compiled(path)
    with pytest.raises(PipelineError, match="gpu_api must be one of auto, opencl, cuda, not 'metal'"):
        TargetOptions(gpu_api="metal")


def test_tensor_cores_survive_save_and_load(tmp_path):
    """On CUDA, a model compiled with tensor_cores=True still runs its int8 contractions on Tensor Cores after
    loading (load_compiled used to drop the option and compile plain kernels)."""
    from tensorweave.compiler.backends.gpu.cuda import cuda_runtime
    from tensorweave.compiler.backends.gpu.opencl import GPUUnavailable
    try:
        runtime = cuda_runtime()
    except GPUUnavailable as exc:
        pytest.skip(f"no CUDA device: {exc}")
    if not getattr(runtime, "tensor_cores", False):
        pytest.skip("this CUDA device has no int8 Tensor Cores")
    compiled = compile_model(quantize_model(small_cnn(), samples=2), None, target="gpu", gpu_api="cuda",
                             tensor_cores=True)
    again = load_compiled(compiled.save(tmp_path / "tc"))
    assert again.options.tensor_cores and again.options.gpu_api == "cuda"
    assert any("Tensor Cores" in launch.kernel.note for launch in again.steps[0].executable.launches)
