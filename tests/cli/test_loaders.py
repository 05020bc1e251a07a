"""High-level loaders through the CLI: a bad ONNX model, compiled folder or input file is one line naming
the file and what is wrong, exit code 2, never a traceback."""

import json
import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tensorweave.cli import main


def relu_model(path: Path, opsets=(("", 17),)) -> Path:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8)
    onnx.save(model, str(path))
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"this is not a model at all \xff\xfe",
                                     b"\x0a\xff\xff\xff\xff\x0f"])
def test_garbage_onnx_is_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    assert main(["compile", str(bad), "--target", "cpu"]) == 2
    err = one_line_error(capsys)
    assert str(bad) in err and "ONNX model" in err


def test_truncated_onnx_is_one_line(tmp_path, capsys):
    good = relu_model(tmp_path / "m.onnx").read_bytes()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(good[: len(good) // 2])
    assert main(["compile", str(bad), "--target", "cpu"]) == 2
    assert str(bad) in one_line_error(capsys)


def test_a_folder_given_as_model_is_named(tmp_path, capsys):
    assert main(["quantize", str(tmp_path), "-o", str(tmp_path / "q.onnx")]) == 2
    assert "is a folder, not a .onnx file" in one_line_error(capsys)


def test_ml_only_model_names_the_domains(tmp_path, capsys):
    model = relu_model(tmp_path / "ml.onnx", opsets=(("ai.onnx.ml", 3),))
    assert main(["compile", str(model), "--target", "cpu"]) == 2
    err = one_line_error(capsys)
    assert "uses opset 1" not in err
    assert "imports ai.onnx.ml (opset 3) but not the default ONNX domain (ai.onnx)" in err
    assert "opset 13 or newer" in err


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compiled")
    model = relu_model(folder / "m.onnx")
    assert main(["compile", str(model), "--target", "cpu", "-o", str(folder / "c")]) == 0
    return folder / "c"


@pytest.mark.parametrize("text, message", [
    ("{\"options\": {\"target\": \"cpu\"", "not a readable settings file"),
    ("[1, 2]", "must hold a JSON object, not list"),
    ("{}", "has neither field 'options' nor field 'target'"),
    ("{\"options\": {\"target\": [\"cpu\"]}}", "field 'options.target' must be a string"),
    ("{\"options\": {\"target\": \"cpu\"}, \"input_shapes\": {\"x\": [1, -4]}}", "'input_shapes.x' must be a list"),
    ("{\"options\": {\"target\": \"cpu\"}, \"input_shapes\": [3]}", "field 'input_shapes' must map"),
    ("{\"options\": {\"target\": \"accel\"}, \"config\": 7}", "field 'config' must be an object"),
    ("{\"options\": {\"target\": \"accel\"}}", "target 'accel' needs field 'config'"),
    ("\udcff", "not a readable settings file"),
])
def test_broken_settings_json(compiled, tmp_path, capsys, text, message):
    import shutil
    folder = tmp_path / "c"
    shutil.copytree(compiled, folder)
    (folder / "settings.json").write_bytes(text.encode("utf-8", errors="surrogateescape"))
    assert main(["run", str(folder)]) == 2
    err = one_line_error(capsys)
    assert message in err and str(folder / "settings.json") in err


def test_compiled_folder_without_its_model(compiled, tmp_path, capsys):
    import shutil
    folder = tmp_path / "c"
    shutil.copytree(compiled, folder)
    (folder / "model.onnx").unlink()
    assert main(["run", str(folder)]) == 2
    assert "has " + str(folder / "settings.json") + " but no model.onnx" in one_line_error(capsys)
    assert json.loads((compiled / "settings.json").read_text())["options"]["target"] == "cpu"


def test_inputs(compiled, tmp_path, capsys):
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], dtype=np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'x.npz'}"]) == 2
    assert "is an .npz archive (arrays: x); give a .npy file" in one_line_error(capsys)
    # a pickled object array is refused, never unpickled
    with open(tmp_path / "obj.npy", "wb") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'obj.npy'}"]) == 2
    assert "pickled object array, which is refused" in one_line_error(capsys)
    (tmp_path / "p.npy").write_bytes(pickle.dumps([1, 2, 3]))
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'p.npy'}"]) == 2
    assert "p.npy" in one_line_error(capsys)
    np.save(tmp_path / "c.npy", x.astype(np.complex64))
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'c.npy'}"]) == 2
    assert "holds complex64 values; the input is float32" in one_line_error(capsys)
    np.save(tmp_path / "s.npy", np.array([["a", "b", "c", "d"]]))
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 's.npy'}"]) == 2
    assert "holds <U1 values" in one_line_error(capsys)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "c.npy").read_bytes()[:60])
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'cut.npy'}"]) == 2
    assert "cut.npy' is not a readable NumPy file" in one_line_error(capsys)
    assert main(["run", str(compiled), "--input", f"x={tmp_path}"]) == 2
    assert "is a folder, not a NumPy file" in one_line_error(capsys)
    # float64 values of a float32 input are fine, and the run uses them
    np.save(tmp_path / "d.npy", x.astype(np.float64))
    assert main(["run", str(compiled), "--input", f"x={tmp_path / 'd.npy'}", "-o", str(tmp_path / "y")]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "y") as y:
        np.testing.assert_array_equal(y["y"], np.maximum(x, 0))


def test_quantize_data_names_and_kind(tmp_path, capsys):
    model = relu_model(tmp_path / "m.onnx")
    np.save(tmp_path / "one.npy", np.zeros((2, 1, 4), np.float32))
    assert main(["quantize", str(model), "-o", str(tmp_path / "q.onnx"), "--data", str(tmp_path / "one.npy")]) == 2
    assert "is a single .npy array; give an .npz archive" in one_line_error(capsys)
    np.savez(tmp_path / "wrong.npz", input=np.zeros((2, 1, 4), np.float32))
    assert main(["quantize", str(model), "-o", str(tmp_path / "q.onnx"), "--data", str(tmp_path / "wrong.npz")]) == 2
    assert "has arrays input; the model needs x" in one_line_error(capsys)
