"""Every option's range is checked before any work: a bad value exits with status 2 naming the option;
Ctrl-C exits 130 with one line; a closed stdout exits quietly; environment errors are one line."""

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorweave.cli import main
from tensorweave.cli.options import address, named_npy_file, positive_float, power_of_two

ROOT = Path(__file__).resolve().parents[2]
SIM_BUDGET = ROOT / "tests" / "sim" / "test_budget.py"


@pytest.mark.parametrize("argv, option, allowed", [
    (["rtl", "fuzz", "--seed", "-1"], "--seed", "an integer >= 0, not -1"),
    (["rtl", "fuzz", "--count", "-5"], "--count", "an integer >= 1, not -5"),
    (["rtl", "fuzz", "--count", "many"], "--count", "must be an integer, not 'many'"),
    (["rtl", "fuzz", "--stall", "-5"], "--stall", "from 0 to 99, not -5"),
    (["rtl", "run", "p.twp", "--stall", "100"], "--stall", "from 0 to 99, not 100"),
    (["sweep", "s.yaml", "--max-points", "-1"], "--max-points", "an integer >= 0, not -1"),
    (["sweep", "s.yaml", "-j", "-3"], "-j/--workers", "an integer >= 1, not -3"),
    (["sweep", "s.yaml", "-j", "0"], "-j/--workers", "an integer >= 1, not 0"),
    (["sim", "p.twp", "--budget", "0"], "--budget/--max-iterations", "an integer >= 1, not 0"),
    (["hw", "sim", "p.twp", "--dram-base", "-1"], "--dram-base", "an integer >= 0, not -1"),
    (["hw", "sim", "p.twp", "--max-cycles", "0"], "--max-cycles", "an integer >= 1, not 0"),
    (["fpga", "project", "--board", "b", "--clock-mhz", "nan"], "--clock-mhz", "a finite number > 0, not nan"),
    (["fpga", "project", "--board", "b", "--clock-mhz", "inf"], "--clock-mhz", "a finite number > 0, not inf"),
    (["fpga", "project", "--board", "b", "--clock-mhz", "-5"], "--clock-mhz", "a finite number > 0, not -5"),
    (["fpga", "build", "--board", "b", "--dram-kib", "48"], "--dram-kib", "a power of two (1, 2, 4, ...), not 48"),
    (["fpga", "fit-table", "-j", "0"], "-j/--jobs", "an integer >= 1, not 0"),
    (["quantize", "m.onnx", "-o", "q.onnx", "--samples", "0"], "--samples", "an integer >= 1, not 0"),
    (["quantize", "m.onnx", "-o", "q.onnx", "--seed", "-1"], "--seed", "an integer >= 0, not -1"),
    (["run", "m.onnx", "--seed", "-2"], "--seed", "an integer >= 0, not -2"),
    (["run", "m.onnx", "--input", "x"], "--input", "must look like NAME=FILE.npy, not 'x'"),
])
def test_a_bad_option_value_exits_2_naming_the_option(argv, option, allowed, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}: " in err and allowed in err


def test_named_npy_file_takes_name_equals_path():
    assert named_npy_file("x=some/file.npy") == "x=some/file.npy"  # the file's format: tests/cli/test_loaders.py


def test_good_values_still_parse():
    assert address("0x1000") == 4096 and address("4096") == 4096
    assert positive_float("150.5") == 150.5 and power_of_two("64") == 64


def test_cache_set_to_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TENSORWEAVE_CACHE", str(tmp_path / "file"))
    assert main(["rtl", "build", "--config", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: $TENSORWEAVE_CACHE is ") and "which is a file, not a folder" in err
    assert err.count("\n") == 1 and "Traceback" not in err


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # this process's tensorweave
CLI = [sys.executable, "-c", "import sys; from tensorweave.cli import main; sys.exit(main())"]


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], env=ENV, **kwargs)


def _bomb(tmp_path) -> Path:
    """tests/sim/test_budget.py's nine-instruction program of 3 x 10^10 micro-op iterations per loop, saved."""
    sys.path.insert(0, str(SIM_BUDGET.parent))
    try:
        from test_budget import bomb
    finally:
        sys.path.pop(0)
    from tensorweave.configs import load_config
    from tensorweave.isa import assemble

    program = tmp_path / "bomb.twp"
    assemble(bomb(load_config("tiny")), load_config("tiny")).save(program)
    return program


def test_sim_stops_at_the_budget_with_one_line(tmp_path, capsys):
    program = _bomb(tmp_path)
    start = time.perf_counter()
    assert main(["sim", str(program)]) == 2
    assert main(["sim", str(program), "--budget", "1000"]) == 2
    assert time.perf_counter() - start < 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: budget exceeded: instruction 1 (gemm) in the compute unit would bring the run "
                             "to 34,355,544,192 micro-op iterations, past the budget of 1,073,741,824")
    assert "past the budget of 1,000 " in err[1] and len(err) == 2


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    """The functional simulator deep in a long run (a budget raised past the 3 x 10^10-iteration program)."""
    program = _bomb(tmp_path)
    proc = _cli("sim", str(program), "--budget", str(10 ** 12), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8)  # imports, then well into the first GEMM
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.decode() == "interrupted\n", err.decode()


def test_ctrl_c_in_a_sweep_keeps_the_finished_rows(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: slow\nbase: vta-default\nparameters:\n  clock_mhz: {range: [1, 2000]}\n"
                     "workloads: [{matmul: fc, m: 4, k: 256, n: 64}]\nmetrics: [cycles, latency_ms]\n")
    out = tmp_path / "out"
    proc = _cli("sweep", str(space), "-o", str(out), "-j", "1", "-q", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        table = out / "results.csv"
        if table.exists() and len(table.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.decode() == "interrupted\n", err.decode()
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) >= 3 and {len(row) for row in rows} == {len(rows[0])}  # whole rows only
    # (tests/dse/test_runner.py resumes from such a table)


def test_a_closed_stdout_exits_quietly():
    proc = _cli("isa", "doc", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, as with `| head -0`
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 141 and err == b""


def test_head_of_a_long_output_is_quiet():
    command = " ".join(shlex.quote(part) for part in [*CLI, "isa", "doc"])
    done = subprocess.run(f"{command} | head -1", shell=True, env=ENV, capture_output=True, timeout=60)
    assert done.stdout.decode().startswith("<!--") and done.stderr == b""
