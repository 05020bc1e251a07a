"""Waveform dumps, and the `tensorweave rtl` commands (the 10,000-program fuzz run is slow)."""

import subprocess
import sys

import pytest
from tensorweave.cli import main
from tensorweave.configs import load_config
from tensorweave.cosim import HarnessJob, build_harness, run_harness, run_rtl
from tensorweave.sim.random_programs import random_program

pytestmark = pytest.mark.cosim


def test_harness_dumps_vcd_waveforms(echo_verilog, tmp_path):
    build = build_harness(echo_verilog, waves=True)
    waves = tmp_path / "echo.vcd"
    (result,) = run_harness(build.executable, [HarnessJob(bytes(64), 4, 1000, waves=waves)])
    assert result.status == "done"
    text = waves.read_text()
    assert "$enddefinitions" in text and "arvalid" in text
    assert f"#{2 * result.sim_cycles - 1}" in text  # every clock edge up to the last one is there


def test_cli_fuzz_and_run(tiny_harness, tmp_path, capsys):
    assert main(["rtl", "fuzz", "--config", "tiny", "--count", "30", "--save-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "30 of 30 programs agreed with the functional simulator" in out
    path = tmp_path / "p.twp"
    random_program(load_config("tiny"), 11).save(path)
    assert main(["rtl", "run", str(path), "--compare"]) == 0
    assert "bit for bit" in capsys.readouterr().out


def test_cli_reports_a_bad_program_file_as_one_line(tmp_path, capsys):
    assert main(["rtl", "run", str(tmp_path / "missing.twp")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_waveforms_through_run_rtl(tiny_harness, tmp_path):
    waves = tmp_path / "tiny.vcd"
    result = run_rtl(random_program(load_config("tiny"), 1), waves=waves)
    assert result.cycles and waves.stat().st_size > 1000


@pytest.mark.slow
def test_fuzz_ten_thousand_programs_on_tiny(tiny_harness, tmp_path):
    command = [sys.executable, "-c", "from tensorweave.cli import main; raise SystemExit(main())",
               "rtl", "fuzz", "--config", "tiny", "--count", "10000", "--save-dir", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    assert "10000 of 10000 programs agreed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0
