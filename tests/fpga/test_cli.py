"""`tensorweave fpga ...` subcommands: tables, files, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from tensorweave.cli import main


def test_boards_lists_the_three_boards(capsys):
    assert main(["fpga", "boards"]) == 0
    out = capsys.readouterr().out
    for name, part in (("pynq-z2", "xc7z020clg400-1"), ("ultra96-v2", "xczu3eg"), ("ulx3s", "LFE5U-85F")):
        assert name in out and part in out
    assert "53,200" in out and "220" in out


@pytest.mark.synthesis
def test_estimate_prints_a_table_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "cache"))
    assert main(["fpga", "estimate", "--config", "demo", "--board", "ulx3s", "-q", "-o", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "e" / "estimate.json").read_text())
    ff_row = next(line.split() for line in out.splitlines() if line.startswith("FF "))
    assert ff_row[:3] == ["FF", f"{saved['resources']['ff']:,}", "83,640"]
    assert "fits: yes" in out and saved["board"] == "ulx3s" and saved["resources"]["ff"] == 231


@pytest.mark.parametrize("argv, message", [
    (["fpga", "estimate", "--config", "demo", "--board", "zedboard"],
     "error: unknown board 'zedboard': choose one of pynq-z2, ultra96-v2, ulx3s"),
    (["fpga", "project", "--config", "demo", "--board", "ulx3s"], "has no Zynq processing system"),
    (["fpga", "estimate", "--config", "no-such-preset", "--board", "ulx3s"], "error: "),
])
def test_bad_input_is_one_line_with_exit_code_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_project_refuses_a_config_its_stored_estimate_says_does_not_fit(tmp_path, capsys, monkeypatch):
    import tensorweave.fpga.fit as fit
    from tensorweave.configs import load_config
    monkeypatch.setattr(fit, "ESTIMATES", tmp_path)
    digest = load_config("batch2-32x32").digest
    (tmp_path / "batch2-32x32--pynq-z2.json").write_text(json.dumps({
        "design": "batch2-32x32", "config_digest": digest, "board": "pynq-z2", "part": "xc7z020clg400-1",
        "resources": {"lut": 90_000, "ff": 1, "dsp": 200, "bram": 1}, "available": {"lut": 53_200},
        "utilization": {"lut": 169.2}, "fits": False, "over": {"lut": 36_800}}))
    assert main(["fpga", "project", "--config", "batch2-32x32", "--board", "pynq-z2", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "does not fit board 'pynq-z2'" in err and "LUT 90,000 of 53,200 (36,800 over" in err
    assert "try a smaller preset (" in err and "tiny" in err


def test_project_writes_the_vivado_files(tmp_path, capsys):
    assert main(["fpga", "project", "--config", "demo", "--board", "pynq-z2", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "create_project.tcl" in out and "build.sh" in out
    assert (tmp_path / "rtl" / "tensorweave_axi.v").is_file()


def test_missing_vivado_for_project_build(tmp_path, capsys, monkeypatch):
    from tensorweave.fpga.tools import find_tool
    monkeypatch.setenv("PATH", str(tmp_path))
    find_tool.cache_clear()
    try:
        assert main(["fpga", "project", "--config", "demo", "--board", "pynq-z2", "--build", "-o",
                     str(tmp_path / "p")]) == 2
    finally:
        find_tool.cache_clear()
    assert "'vivado' is not on PATH" in capsys.readouterr().err
