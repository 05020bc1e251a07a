"""Shipped files addressable by name: example programs (`tensorweave examples`, `asm NAME`) and
sweep spaces (`tensorweave sweep NAME`)."""

from pathlib import Path

import pytest
from tensorweave.cli import main
from tensorweave.cli.dse import SPACES, space_path
from tensorweave.cli.examples import EXAMPLES, find_source
from tensorweave.dse.space import SweepError, load_space

ROOT = Path(__file__).resolve().parents[2]


def test_examples_lists_and_copies(tmp_path, capsys):
    assert EXAMPLES == ROOT / "examples"
    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gemm_relu_shift  A hand-written blocked GEMM + ReLU + shift for the `tiny` config")
    assert main(["examples", "--copy", str(tmp_path / "mine")]) == 0
    copied = tmp_path / "mine" / "gemm_relu_shift.s"
    assert copied.read_text() == (EXAMPLES / "gemm_relu_shift.s").read_text()
    assert main(["examples", "--copy", str(tmp_path / "mine")]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["examples", "--copy", str(tmp_path / "mine"), "--force"]) == 0


def test_asm_by_example_name_writes_to_the_working_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["asm", "gemm_relu_shift", "--config", "tiny"]) == 0
    assert (tmp_path / "gemm_relu_shift.twp").is_file() and not (EXAMPLES / "gemm_relu_shift.twp").exists()
    assert main(["sim", "gemm_relu_shift.twp"]) == 0
    assert "output C int8 (2, 2, 1, 4)" in capsys.readouterr().out
    assert find_source("gemm_relu_shift.s") == EXAMPLES / "gemm_relu_shift.s"
    # a file of the same name in the working folder wins over the shipped example
    (tmp_path / "gemm_relu_shift.s").write_text("FINISH\n")
    assert find_source("gemm_relu_shift.s") == Path("gemm_relu_shift.s")
    assert main(["asm", "gemm_rleu_shift", "--config", "tiny"]) == 2
    assert "not a shipped example (gemm_relu_shift;" in capsys.readouterr().err


def test_sweep_spaces_by_name(tmp_path):
    assert SPACES == ROOT / "configs" / "sweeps"
    assert space_path("gemm-core") == SPACES / "gemm-core.yaml"
    assert load_space(space_path("resnet18")).name == "resnet18"
    assert space_path("configs/sweeps/gemm-core.yaml") == Path("configs/sweeps/gemm-core.yaml")  # a path is a path
    with pytest.raises(SweepError, match=r"no sweep space named 'gemm-cor'; shipped spaces: gemm-core, resnet18"):
        space_path("gemm-cor")
    with pytest.raises(SweepError, match="does not exist"):
        load_space(space_path(str(tmp_path / "none.yaml")))
