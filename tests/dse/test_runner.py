"""Sweeps end to end: streamed results, resume, failing points, determinism, NSGA-II, pool, Ray, reports."""

import csv
import importlib.util
import json

import pytest
from tensorweave.dse.evaluate import Task, evaluate_point
from tensorweave.dse.runner import run_sweep
from tensorweave.dse.space import parse_space
from tensorweave.dse.workloads import layer_program
from tensorweave.sim.cycle import estimate_cycles

SMALL = {
    "name": "small",
    "base": "vta-default",
    "parameters": {"block_out": [16, 32], "bus_width": [64, 128, 256]},
    "workloads": [{"conv": "c", "height": 8, "width": 8, "in_channels": 32, "out_channels": 64, "kernel": 3,
                   "padding": 1}, {"matmul": "fc", "m": 4, "k": 256, "n": 64}],
    "metrics": ["cycles", "latency_ms", "utilization", "dram_bytes", "lut", "dsp", "bram"],
}


def small(**changes):
    return parse_space({**SMALL, **changes})


def table(path):
    with (path / "results.csv").open() as f:
        return list(csv.DictReader(f))


def without_timing(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_grid_sweep_writes_the_table_and_reports(tmp_path):
    space = small()
    result = run_sweep(space, tmp_path, workers=1, progress=False)
    assert (result.evaluated, result.reused, len(result.rows), result.complete) == (6, 0, 6, True)
    rows = table(tmp_path)
    assert [int(r["index"]) for r in sorted(rows, key=lambda r: int(r["index"]))] == list(range(6))
    # each number is the cycle model's, summed over the layers
    for row in rows:
        config = space.config({"block_out": int(row["block_out"]), "bus_width": int(row["bus_width"])})
        cycles = [estimate_cycles(layer_program(config, w)).cycles for w in space.workloads]
        assert int(float(row["cycles"])) == sum(cycles)
        assert json.loads(row["layer_cycles"]) == {"c": cycles[0], "fc": cycles[1]}
        assert float(row["latency_ms"]) == pytest.approx(sum(cycles) / (config.clock_mhz * 1e3))
        assert row["error"] == ""
    # a wider bus never makes the same core slower
    by = {(int(r["block_out"]), int(r["bus_width"])): float(r["cycles"]) for r in rows}
    assert by[(16, 64)] >= by[(16, 128)] >= by[(16, 256)]
    for kind in ("csv", "parquet", "png", "svg", "html"):
        assert result.paths[kind].stat().st_size > 0
    html = result.paths["html"].read_text()
    assert "<svg" in html and "data:image/png;base64," in html and html.count("<details>") == 6
    assert "&quot;block_out&quot;: 32" in html  # each point's config
    import pyarrow.parquet as pq
    assert pq.read_table(result.paths["parquet"]).num_rows == 6


def test_interrupted_sweep_resumes_without_redoing_points(tmp_path):
    space = small()
    first = run_sweep(space, tmp_path, workers=1, progress=False, max_points=2, report=False)
    assert (first.evaluated, first.complete, len(table(tmp_path))) == (2, False, 2)
    done = {r["key"]: r for r in table(tmp_path)}
    second = run_sweep(space, tmp_path, workers=1, progress=False)
    assert (second.evaluated, second.reused, second.complete) == (4, 2, True)
    rows = table(tmp_path)
    assert len(rows) == 6 and len({r["key"] for r in rows}) == 6
    for key, row in done.items():  # the first run's rows are untouched (same timing column too)
        assert next(r for r in rows if r["key"] == key) == row
    third = run_sweep(space, tmp_path, workers=1, progress=False, report=False)
    assert (third.evaluated, third.reused) == (0, 6)


def test_a_failing_point_records_its_error_and_the_sweep_goes_on(tmp_path):
    # 16-byte accumulators hold one row: no tile fits, so that point's workload cannot be built
    space = small(parameters={"acc_buffer_bytes": [16, 1024]}, base="tiny")
    result = run_sweep(space, tmp_path, workers=1, progress=False, report=False)
    rows = {int(r["acc_buffer_bytes"]): r for r in table(tmp_path)}
    assert "WorkloadError: layer c: config 'small-" in rows[16]["error"] and "cannot hold one tile" in rows[16]["error"]
    assert rows[16]["cycles"] == ""
    assert rows[1024]["error"] == "" and float(rows[1024]["cycles"]) > 0
    assert len(result.failed) == 1


def test_same_seed_same_results(tmp_path):
    space = small(parameters={"block_out": [16, 32], "bus_width": [64, 128, 256], "clock_mhz": [100, 200]},
                  search={"method": "random", "samples": 4, "seed": 7})
    a = run_sweep(space, tmp_path / "a", workers=1, progress=False, report=False)
    b = run_sweep(space, tmp_path / "b", workers=1, progress=False, report=False)
    assert without_timing(a.rows) == without_timing(b.rows) and len(a.rows) == 4


def test_nsga2_is_seeded_and_finds_a_front(tmp_path):
    space = small(parameters={"block_in": [8, 16, 32], "block_out": [8, 16, 32], "bus_width": [64, 128, 256]},
                  search={"method": "nsga2", "trials": 12, "population": 4, "seed": 1,
                          "objectives": ["latency_ms", "lut"]})
    a = run_sweep(space, tmp_path / "a", workers=1, progress=False, report=False)
    b = run_sweep(space, tmp_path / "b", workers=1, progress=False, report=False)
    assert without_timing(a.rows) == without_timing(b.rows)
    assert 1 < len(a.rows) <= 12 and not a.failed
    assert all(space.check({k: r[k] for k in space.parameters}) is not None for r in a.rows)


def test_process_pool_gives_the_same_rows(tmp_path):
    space = small()
    serial = run_sweep(space, tmp_path / "serial", workers=1, progress=False, report=False)
    pooled = run_sweep(space, tmp_path / "pool", workers=2, progress=False, report=False)
    assert without_timing(serial.rows) == without_timing(pooled.rows)


def test_another_space_in_the_same_folder_is_refused(tmp_path):
    from tensorweave.dse.space import SweepError
    run_sweep(small(), tmp_path, workers=1, progress=False, report=False, max_points=1)
    with pytest.raises(SweepError, match="holds another sweep; use --fresh"):
        run_sweep(small(parameters={"block_in": [16, 32]}), tmp_path, workers=1, progress=False)
    fresh = run_sweep(small(parameters={"block_in": [16, 32]}), tmp_path, workers=1, progress=False, fresh=True,
                      report=False)
    assert fresh.evaluated == 2


def test_evaluate_point_never_raises():
    row = evaluate_point(small(), Task(0, {"block_out": 16, "bus_width": 48}))
    assert row["error"].startswith("ConfigError") and "bus_width" in row["error"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (optional extra tensorweave[ray]); the Ray path is untested here")
def test_ray_runs_the_same_sweep(tmp_path):
    space = small()
    local = run_sweep(space, tmp_path / "local", workers=1, progress=False, report=False)
    on_ray = run_sweep(space, tmp_path / "ray", ray_address="local", progress=False, report=False)
    assert without_timing(local.rows) == without_timing(on_ray.rows)


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from tensorweave.dse.space import SweepError
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SweepError, match=r"--ray needs the 'ray' package.*tensorweave\[ray\]"):
        run_sweep(small(), tmp_path, ray_address="auto", progress=False)
