"""Output options: no command overwrites an input or someone else's file, paths are checked before the work,
outputs are written whole under the name the user gave."""

import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tensorweave.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gemm_relu_shift.s"


def relu_model(path: Path) -> Path:
    """A one-node float model: compiles for the CPU target in about a second."""
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_asm_refuses_to_write_over_its_source(tmp_path, capsys):
    source = tmp_path / "x.s"
    source.write_text(EXAMPLE.read_text())
    assert main(["asm", str(source), "-o", str(source), "--config", "tiny"]) == 2
    assert "is also the input" in capsys.readouterr().err
    assert source.read_text() == EXAMPLE.read_text()
    assert main(["asm", str(source), "-o", str(source), "--config", "tiny", "--force"]) == 2  # not even forced
    assert source.read_text() == EXAMPLE.read_text()


def test_asm_replaces_a_program_file_but_not_another_file_without_force(tmp_path, capsys):
    source = tmp_path / "x.s"
    source.write_text(EXAMPLE.read_text())
    assert main(["asm", str(source), "--config", "tiny"]) == 0
    assert main(["asm", str(source), "--config", "tiny"]) == 0  # its own earlier output: replaced
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["asm", str(source), "-o", str(notes), "--config", "tiny"]) == 2
    assert "already exists" in capsys.readouterr().err and notes.read_text() == "mine"
    assert main(["asm", str(source), "-o", str(notes), "--config", "tiny", "--force"]) == 0
    assert zipfile.is_zipfile(notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "x.s", "x.twp"]  # no temporary left


def test_an_output_naming_a_folder_is_one_line_not_a_traceback(tmp_path, capsys):
    source = tmp_path / "x.s"
    source.write_text(EXAMPLE.read_text())
    for argv in (["asm", str(source), "-o", str(tmp_path), "--config", "tiny"],
                 ["isa", "doc", "--config", "tiny", "-o", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: -o") and "is a folder; give a file name" in err and "Traceback" not in err


def test_isa_doc_replaces_its_own_file_only(tmp_path, capsys):
    out = tmp_path / "isa.md"
    assert main(["isa", "doc", "--config", "tiny", "-o", str(out)]) == 0
    assert main(["isa", "doc", "--config", "tiny", "-o", str(out)]) == 0
    out.write_text("my notes")
    assert main(["isa", "doc", "--config", "tiny", "-o", str(out)]) == 2
    assert out.read_text() == "my notes"


def test_compile_output_checked_before_compiling(tmp_path, capsys, monkeypatch):
    import tensorweave.compiler.pipeline as pipeline

    def never(*args, **kwargs):
        raise AssertionError("compiled before checking -o")
    monkeypatch.setattr(pipeline, "compile_model", never)
    model = relu_model(tmp_path / "m.onnx")
    a_file = tmp_path / "plan.txt"
    a_file.write_text("x")
    assert main(["compile", str(model), "--target", "cpu", "-o", str(a_file)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_compile_never_overwrites_the_users_files_in_a_folder(tmp_path, capsys):
    model = relu_model(tmp_path / "m.onnx")
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"my own model")
    (folder / "plan.txt").write_text("my plan")
    assert main(["compile", str(model), "--target", "cpu", "-o", str(folder)]) == 2
    assert "holds no settings.json" in capsys.readouterr().err
    assert (folder / "model.onnx").read_bytes() == b"my own model" and (folder / "plan.txt").read_text() == "my plan"
    # a folder this command wrote before is replaced, and loads back
    out = tmp_path / "compiled"
    assert main(["compile", str(model), "--target", "cpu", "-o", str(out)]) == 0
    assert main(["compile", str(model), "--target", "cpu", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["layers", "model.onnx", "plan.txt", "settings.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiled", "m.onnx", "work"]  # no temporary left
    assert main(["compile", str(out), "-o", str(out)]) == 2
    # --force writes into the user's folder: its files of the same names are replaced, the others kept
    (folder / "keep.txt").write_text("keep")
    assert main(["compile", str(model), "--target", "cpu", "-o", str(folder), "--force"]) == 0
    assert onnx.load(str(folder / "model.onnx")).graph.node[0].op_type == "Relu"
    assert (folder / "keep.txt").read_text() == "keep"


def test_run_writes_exactly_the_named_file(tmp_path, capsys):
    model = relu_model(tmp_path / "m.onnx")
    x = np.array([[-1, 2, -3, 4]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "outputs"  # no .npz suffix: np.savez would have written outputs.npz
    assert main(["run", str(model), "--target", "cpu", "--input", f"x={tmp_path / 'x.npy'}", "-o", str(out)]) == 0
    assert f"wrote {out} (y)" in capsys.readouterr().out
    assert not (tmp_path / "outputs.npz").exists()
    with np.load(out) as data:
        np.testing.assert_array_equal(data["y"], np.maximum(x, 0))
    # an existing folder, or the input file itself, is refused before anything runs
    assert main(["run", str(model), "--target", "cpu", "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["run", str(model), "--target", "cpu", "--input", f"x={tmp_path / 'x.npy'}",
                 "-o", str(tmp_path / "x.npy")]) == 2
    assert "is also the input" in capsys.readouterr().err
    assert main(["run", str(model), "--target", "cpu", "-o", str(model), "--force"]) == 2
    assert main(["run", str(model), "--target", "cpu", "-o", str(out)]) == 2  # exists: needs --force
    assert main(["run", str(model), "--target", "cpu", "-o", str(out), "--force"]) == 0


def test_quantize_refuses_to_overwrite_its_model(tmp_path, capsys):
    model = relu_model(tmp_path / "m.onnx")
    before = model.read_bytes()
    assert main(["quantize", str(model), "-o", str(model), "--force"]) == 2
    assert "is also the input" in capsys.readouterr().err and model.read_bytes() == before


def test_rtl_waves_into_a_missing_folder(tmp_path, capsys, monkeypatch):
    import tensorweave.cosim as cosim
    from tensorweave.configs import load_config
    from tensorweave.sim.random_programs import random_program

    written = []

    def fake_run_rtl(program, engine, waves, stall_percent):
        # like the harness: opening the VCD fails silently when its folder does not exist
        if waves is not None and Path(waves).parent.is_dir():
            Path(waves).write_text("$date today $end\n")
            written.append(waves)

        class Result:
            cycles = 7
        return Result()
    monkeypatch.setattr(cosim, "run_rtl", fake_run_rtl)
    program = tmp_path / "p.twp"
    random_program(load_config("tiny"), 3).save(program)
    waves = tmp_path / "new" / "deeper" / "w.vcd"
    assert main(["rtl", "run", str(program), "--waves", str(waves)]) == 0
    assert waves.is_file() and f"waveforms: {waves}" in capsys.readouterr().out
    assert main(["rtl", "run", str(program), "--waves", str(waves)]) == 0  # a VCD file: replaced
    assert main(["rtl", "run", str(program), "--waves", str(program)]) == 2
    assert "is also the input" in capsys.readouterr().err


def test_rtl_waves_never_reports_a_file_that_is_not_there(tmp_path, capsys, monkeypatch):
    import tensorweave.cosim as cosim
    from tensorweave.configs import load_config
    from tensorweave.sim.random_programs import random_program

    class Result:
        cycles = 7
    monkeypatch.setattr(cosim, "run_rtl", lambda *a, **k: Result())
    program = tmp_path / "p.twp"
    random_program(load_config("tiny"), 3).save(program)
    assert main(["rtl", "run", str(program), "--waves", str(tmp_path / "w.vcd")]) == 2
    assert "wrote no waveform file" in capsys.readouterr().err


def test_hw_verilog_folder(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    assert main(["hw", "verilog", "--config", "tiny", "-o", str(tmp_path / "mine")]) == 2
    assert "holds no tensorweave_top.json" in capsys.readouterr().err
    out = tmp_path / "rtl"
    assert main(["hw", "verilog", "--config", "tiny", "-o", str(out)]) == 0
    first = (out / "tensorweave_top.v").read_bytes()
    assert main(["hw", "verilog", "--config", "tiny", "-o", str(out)]) == 0
    assert (out / "tensorweave_top.v").read_bytes() == first
    assert f"verilog  {out / 'tensorweave_top.v'}" in capsys.readouterr().out


def test_sweep_output_folder_of_someone_else_is_refused(tmp_path, capsys):
    space = Path(__file__).resolve().parents[2] / "configs" / "sweeps"
    spaces = sorted(space.glob("*.yaml"))
    assert spaces
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.html").write_text("my report")
    assert main(["sweep", str(spaces[0]), "-o", str(folder), "-q", "--max-points", "0"]) == 2
    assert "holds no results.csv" in capsys.readouterr().err
    assert (folder / "report.html").read_text() == "my report"


def test_check_output_and_new_folder(tmp_path):
    from tensorweave.cli.outputs import OutputError, check_output, new_folder
    with pytest.raises(OutputError, match="is a file; give a folder"):
        check_output(EXAMPLE, "folder")
    with pytest.raises(OutputError, match="gemm_relu_shift.s' is a file, not a folder"):
        check_output(EXAMPLE / "sub" / "out.bin")
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), new_folder(target) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # nothing of a failed write is left
    with new_folder(target) as tmp:
        (tmp / "a").write_text("whole")
    assert (target / "a").read_text() == "whole" and list(tmp_path.iterdir()) == [target]
