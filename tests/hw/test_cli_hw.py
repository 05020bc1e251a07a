"""`tensorweave hw verilog|lint|sim` through the CLI entry point."""

import json
from pathlib import Path

from tensorweave.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_hw_verilog_writes_both_files(tmp_path, capsys):
    assert main(["hw", "verilog", "--config", "tiny", "-o", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "tensorweave_top.json").read_text())
    assert (tmp_path / "tensorweave_top.v").is_file() and meta["config"]["name"] == "tiny"
    assert "tensorweave_top.v" in capsys.readouterr().out


def test_hw_verilog_unknown_config_is_a_one_line_error(tmp_path, capsys):
    assert main(["hw", "verilog", "--config", "nope", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and "Traceback" not in err


def test_hw_sim_runs_a_program_and_compares(tmp_path, capsys):
    program = tmp_path / "g.twp"
    assert main(["asm", str(EXAMPLES / "gemm_relu_shift.s"), "--config", "tiny", "-o", str(program)]) == 0
    assert main(["hw", "sim", str(program)]) == 0
    out = capsys.readouterr().out
    assert "yes, bit for bit" in out and "done" in out
