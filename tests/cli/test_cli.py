"""The `tensorweave` command, through its entry point."""

import tomllib
from pathlib import Path

import pytest
from tensorweave.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gemm_relu_shift.s"


def test_config_show(capsys):
    assert main(["config", "show", "vta-default"]) == 0
    out = capsys.readouterr().out
    assert "block_in" in out and "acc_depth          2048" in out and "instruction_width  128" in out


def test_config_list(capsys):
    assert main(["config", "list"]) == 0
    assert "vta-default" in capsys.readouterr().out


def test_isa_doc(capsys, tmp_path):
    assert main(["isa", "doc", "--config", "tiny"]) == 0
    assert "# tensorweave ISA for `tiny`" in capsys.readouterr().out
    assert main(["isa", "doc", "--config", "tiny", "-o", str(tmp_path / "x.md")]) == 0
    assert (tmp_path / "x.md").read_text().startswith("<!--")


def test_isa_generate_check(capsys):
    assert main(["isa", "generate", "--check"]) == 0


def test_asm_disasm_sim(capsys, tmp_path):
    out = tmp_path / "g.twp"
    assert main(["asm", str(EXAMPLE), "-o", str(out), "--config", "tiny"]) == 0
    assert main(["disasm", str(out)]) == 0
    text = capsys.readouterr().out
    assert "gemm pop_prev" in text and ".tensor C output int8 2,2,1,4" in text
    assert main(["sim", str(out), "--config", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "[[ 6  7  7  7]]" in text and "[[10 10 22 30]]" in text
    assert "compute unit              6 instructions" in text


def test_errors_are_one_line_with_exit_code_2(capsys, tmp_path):
    assert main(["config", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no config preset named 'nope'") and "Traceback" not in err
    bad = tmp_path / "bad.s"
    bad.write_text("gemm iter_out=99999\n")
    assert main(["asm", str(bad), "--config", "tiny"]) == 2
    assert "bad.s:1: GEMM.iter_out = 99999 does not fit" in capsys.readouterr().err
    assert main(["sim", str(tmp_path / "missing.twp")]) == 2
    out = tmp_path / "g.twp"
    main(["asm", str(EXAMPLE), "-o", str(out), "--config", "tiny"])
    assert main(["sim", str(out), "--config", "vta-default"]) == 2
    assert "built for config 'tiny'" in capsys.readouterr().err


def test_isa_demo(capsys):
    assert main(["demo", "--isa", "--config", "tiny"]) == 0
    assert "bit-exact" in capsys.readouterr().out


def test_demo_runs_the_small_cnn(capsys):
    assert main(["demo", "--config", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "AGREES with onnxruntime" in out and "accel" in out


def test_version(capsys):
    """`--version` prints the installed version (importlib.metadata), the one pyproject.toml declares."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    declared = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"tensorweave {declared}\n"
    import tensorweave

    assert tensorweave.__version__ == declared  # the package's own record agrees
