"""Fuzzing the sweep loaders: mutated space YAML files and results tables -> loaded or a SweepError, nothing else.

Rule (issue 17): `load_space` (a sweep space file) and `ResultsTable` (resuming from results.csv) either
load or raise the project's error class naming the file; never another exception or a hang. A results
table that loads keeps only well-formed rows whose key is their point's, and what it kept is on disk as a
whole table afterwards (read again: the same rows, no warning). Tiers and reporting as in test_fuzz_onnx.py.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from fuzzing import DEFAULT_EXAMPLES, SLOW_EXAMPLES, mutated, outcome, report
from hypothesis import HealthCheck, given, settings
from tensorweave.dse.results import ResultsTable
from tensorweave.dse.runner import run_sweep
from tensorweave.dse.space import load_space, parse_space, point_key

WORK = Path(tempfile.mkdtemp(prefix="tw-fuzz-sweep-"))




SPACE_SEEDS = [b"""name: small
base: vta-default
parameters:
  block_out: [16, 32]
  bus_width: [64, 128]
constraints:
  - block_in * block_out <= 512
workloads:
  - {matmul: fc, m: 4, k: 256, n: 64}
  - {conv: c, height: 8, width: 8, in_channels: 32, out_channels: 64, kernel: 3, padding: 1}
metrics: [cycles, latency_ms, lut]
search: {method: grid}
""", b"""name: evo
parameters:
  block_in: [8, 16]
  alu_ops: [[MIN, MAX, ADD, SHR, MUL], [MIN, MAX, ADD, SHR]]
workloads: [{matmul: fc, m: 4, k: 64, n: 64}]
metrics: [cycles, lut]
search: {method: nsga2, trials: 8, population: 4, seed: 1, objectives: [cycles, lut]}
"""]
SPACE = parse_space({"name": "small", "parameters": {"block_out": [16, 32], "bus_width": [64, 128]},
                     "workloads": [{"matmul": "fc", "m": 4, "k": 256, "n": 64}], "metrics": ["cycles", "lut"]})
_seed_folder = WORK / "seed"
run_sweep(SPACE, _seed_folder, workers=1, progress=False, report=False)
RESULTS_SEEDS = [(_seed_folder / "results.csv").read_bytes()]
COUNTS: dict[str, Counter] = {"space": Counter(), "results": Counter()}


def load_space_bytes(raw: bytes) -> None:
    path = WORK / "space.yaml"
    path.write_bytes(raw)
    load_space(path)


def load_results(raw: bytes) -> None:
    folder = WORK / "results"
    folder.mkdir(exist_ok=True)
    (folder / "results.csv").write_bytes(raw)
    table = ResultsTable(folder, SPACE)
    for key, row in table.rows.items():  # a kept row's key is its point's (numbers carry no checksum)
        assert key == point_key({p: row[p] for p in SPACE.parameters})
    again = ResultsTable(folder, SPACE)  # what is on disk now reads back whole, with no warning
    assert set(again.rows) == set(table.rows) and not again.dropped


def test_seeds_load():
    for seed in SPACE_SEEDS:
        load_space_bytes(seed)
    load_results(RESULTS_SEEDS[0])


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SPACE_SEEDS))
def test_fuzz_space(raw):
    outcome(COUNTS["space"], lambda: load_space_bytes(raw))


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(RESULTS_SEEDS))
def test_fuzz_results(raw):
    outcome(COUNTS["results"], lambda: load_results(raw))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(SPACE_SEEDS))
def test_fuzz_space_slow(raw):
    outcome(COUNTS["space"], lambda: load_space_bytes(raw))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(mutated(RESULTS_SEEDS))
def test_fuzz_results_slow(raw):
    outcome(COUNTS["results"], lambda: load_results(raw))


def teardown_module() -> None:
    report("sweep space (YAML)", COUNTS["space"])
    report("sweep results (results.csv)", COUNTS["results"])
