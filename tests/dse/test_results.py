"""The results table survives a crash at any byte: a torn or damaged row is dropped with a warning and its
point evaluated again; the sweep's worker processes die with it."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorweave.dse.results import ResultsTable
from tensorweave.dse.runner import run_sweep
from tensorweave.dse.space import SweepError, parse_space

SMALL = {
    "name": "small",
    "base": "vta-default",
    "parameters": {"block_out": [16, 32], "bus_width": [64, 128]},
    "workloads": [{"matmul": "fc", "m": 4, "k": 256, "n": 64}],
    "metrics": ["cycles", "latency_ms", "lut"],
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep's folder and its rows (4 points)."""
    folder = tmp_path_factory.mktemp("sweep")
    result = run_sweep(parse_space(SMALL), folder, workers=1, progress=False, report=False)
    assert result.evaluated == 4
    return folder, (folder / "results.csv").read_bytes(), result.rows


def numbers(rows):
    return sorted((r["key"], r["cycles"], r["lut"]) for r in rows)


def resume(folder, capsys):
    result = run_sweep(parse_space(SMALL), folder, workers=1, progress=False)
    err = capsys.readouterr().err
    return result, err


def test_a_row_cut_among_the_numbers_is_recomputed(finished, tmp_path, capsys):
    folder, data, rows = finished
    last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[1]
    cut = data.index(last) + last.index(b",", len(last) // 3) + 3  # inside a number of the last row
    (tmp_path / "results.csv").write_bytes(data[:cut])
    result, err = resume(tmp_path, capsys)
    assert "dropped a torn last row" in err and "evaluated again" in err
    assert (result.evaluated, result.reused, len(result.rows)) == (1, 3, 4)
    assert numbers(result.rows) == numbers(rows)
    # the table on disk is whole again: a second resume finds everything and warns of nothing
    again, err = resume(tmp_path, capsys)
    assert (again.evaluated, again.reused, err) == (0, 4, "")


def test_a_row_cut_inside_the_quoted_config_does_not_swallow_the_next(finished, tmp_path, capsys):
    folder, data, rows = finished
    lines = data.split(b"\n")
    # cut the second row inside its quoted config, and append the next rows as a crashed run would have
    second = lines[2]
    inside = second.index(b'"{') + 20
    torn = b"\n".join(lines[:2]) + b"\n" + second[:inside]
    (tmp_path / "results.csv").write_bytes(torn + b"\n".join(lines[3:]))
    result, err = resume(tmp_path, capsys)
    assert "dropped" in err
    assert len(result.rows) == 4 and numbers(result.rows) == numbers(rows)
    assert result.evaluated == 2  # the torn row and the one glued to it; the others are kept
    with (tmp_path / "results.csv").open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert result.paths["html"].read_text().count("<details>") == 4


def test_every_cut_of_the_table_resumes(finished, tmp_path, capsys):
    """A crash can stop the write at any byte: each prefix of the file resumes to the full table."""
    folder, data, rows = finished
    space = parse_space(SMALL)
    for cut in range(0, len(data), 7):
        (tmp_path / "results.csv").write_bytes(data[:cut])
        table = ResultsTable(tmp_path, space)
        kept = set(table.rows)
        assert kept <= {r["key"] for r in rows}
        assert all(table.rows[k]["cycles"] == next(r for r in rows if r["key"] == k)["cycles"] for k in kept)
        complete_rows = data[:cut].count(b"\n") - 1
        assert len(kept) == max(complete_rows, 0)


def test_a_file_of_something_else_is_named(tmp_path):
    (tmp_path / "results.csv").write_text("name,age\nbob,3\n")
    with pytest.raises(SweepError, match="results.csv has columns"):
        ResultsTable(tmp_path, parse_space(SMALL))
    (tmp_path / "results.csv").write_bytes(b"\x00\xff garbage\nmore\n")
    with pytest.raises(SweepError, match="results.csv"):
        ResultsTable(tmp_path, parse_space(SMALL))


WORKERS = """
import multiprocessing, sys, threading, time
sys.path.insert(0, {here!r})
import slow
from tensorweave.dse.evaluate import Task
from tensorweave.dse.runner import local_executor

def consume():
    for _ in local_executor(2)(slow.evaluate, [Task(0, {{}}), Task(1, {{}})]):
        pass
threading.Thread(target=consume, daemon=True).start()
while len(multiprocessing.active_children()) < 2:
    time.sleep(0.1)
time.sleep(1.0)  # the workers have started their tasks
print(" ".join(str(p.pid) for p in multiprocessing.active_children() if p.name.startswith("SpawnProcess")),
      flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent entry is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_the_sweep(tmp_path):
    (tmp_path / "slow.py").write_text("import time\n\ndef evaluate(task):\n    time.sleep(120)\n    return {}\n")
    parent = subprocess.Popen([sys.executable, "-c", WORKERS.format(here=str(tmp_path))], stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy())
    try:
        line = parent.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 2 and all(alive(p) for p in pids), line
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "workers outlived the killed sweep"
    finally:
        parent.kill()
        for pid in pids if "pids" in locals() else ():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
