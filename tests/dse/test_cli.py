"""`tensorweave sweep`, `cycles` and `area` through the command line."""

import yaml
from tensorweave.cli import main
from tensorweave.configs import load_config
from tensorweave.isa import assemble
from tensorweave.sim.cycle import estimate_cycles
from tensorweave.sim.programs import blocked_gemm

SPACE = {
    "name": "cli",
    "base": "vta-default",
    "parameters": {"bus_width": [64, 128]},
    "workloads": [{"matmul": "fc", "m": 8, "k": 128, "n": 64}],
    "metrics": ["cycles", "latency_ms", "utilization", "lut", "dsp", "bram"],
}


def test_sweep_command(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    assert main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "sweep cli: 2 points in the table (2 evaluated now, 0 reused, 0 failed)" in out
    assert "Pareto front, latency against LUTs" in out
    assert (tmp_path / "out" / "results.csv").exists() and (tmp_path / "out" / "report.html").exists()
    assert main(["sweep", str(path), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert "(0 evaluated now, 2 reused, 0 failed)" in capsys.readouterr().out


def test_invalid_space_is_one_line_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, "metrics": ["cycles", "power"]}))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "metric 'power' is unknown" in err and err.count("\n") == 1


def test_cycles_command(tmp_path, capsys):
    config = load_config("tiny")
    program = assemble(blocked_gemm(config, 8, 8, 8), config)
    path = tmp_path / "g.twp"
    program.save(path)
    assert main(["cycles", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"cycles                {estimate_cycles(program).cycles}\n" in out and "utilization" in out


def test_area_command(capsys):
    assert main(["area", "vta-default"]) == 0
    out = capsys.readouterr().out
    values = dict(line.rsplit(None, 1) for line in out.splitlines()[1:])
    assert values["dsp"] == "320" and values["bram"] == "116"  # tests/dse/test_area.py counts them by hand
