"""Running a sweep: evaluate design points on a local process pool or a Ray cluster, streaming each
finished point into the results table, then write the Pareto plots and the HTML report.

- The results table is `<output>/results.csv` (and `results.parquet`; results.py), appended one
  whole row as each point finishes, so an interrupted sweep loses at most the points in flight. Run
  again with the same output folder and it resumes: points whose key is already in the table are
  not evaluated again (a failed point counts as finished: its error is recorded); a row torn by a
  crash is dropped with a warning on stderr and its point evaluated again.
- Pool workers die with the sweep: killed by the kernel when their parent process dies (Linux
  PR_SET_PDEATHSIG), and elsewhere each watches its parent and exits when it is gone, so a kill -9
  of the sweep leaves no orphan workers burning CPU.
- Points run in a process pool (`workers`, default the CPU count) or, with `ray_address`, as Ray
  tasks (`ray` is imported only then: install the `tensorweave[ray]` extra). The same code runs
  on both; only the executor differs. Points stream from the space (`SweepSpace.points`) to the
  workers as slots free up, so a space of millions of points starts at once; `max_points` stops
  drawing from the stream. Ctrl-C stops the workers at once, keeping every finished row.
- The same space and seed give the same points and the same numbers: the grid is ordered, random
  sampling and NSGA-II are seeded, and the model is deterministic. The table is sorted by point
  index when written, so finishing order does not show.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .evaluate import Task, evaluate_point
from .results import ResultsTable, Row
from .space import METRICS, RANDOM_LISTED, SweepError, SweepSpace, point_key

# --- executors: an iterable of tasks in, rows out as they finish ----------------------------------
Evaluate = Callable[[Task], Row]


def local_executor(workers: int) -> Callable[[Evaluate, Iterable[Task]], Iterator[Row]]:
    """Tasks on `workers` processes, taken from the iterable as slots free up (a stream of millions of
    points is never listed). On Ctrl-C the pool is torn down at once (queued points cancelled, running
    ones stopped); the rows already yielded are the sweep's to keep."""
    def run(evaluate: Evaluate, tasks: Iterable[Task]) -> Iterator[Row]:
        stream = iter(tasks)
        head = list(itertools.islice(stream, 2 * workers if workers > 1 else 1))
        if workers <= 1 or len(head) <= 1:
            yield from map(evaluate, itertools.chain(head, stream))
            return
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_start,
                                   initargs=(os.getpid(),))
        try:
            pending = {pool.submit(evaluate, t) for t in head}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                pending |= {pool.submit(evaluate, t) for t in itertools.islice(stream, len(done))}
        except BaseException:  # Ctrl-C, or the consumer stopped early: do not wait for queued points
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return run


def _worker_start(parent: int) -> None:
    """A worker's initializer: it leaves Ctrl-C to the parent, which stops it (no traceback from each
    worker), and it dies with the parent (`die_with_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """In a worker process: end it when the process `parent` ends (the pool's initializer)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the call: no signal will come
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def ray_executor(address: str) -> Callable[[Evaluate, Iterable[Task]], Iterator[Row]]:
    """Ray tasks on the cluster at `address` ('auto' finds a running one; 'local' starts one here)."""
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs the 'ray' package, which is not installed: "
                         "pip install 'tensorweave[ray]' (or run without --ray for the local pool)") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, logging_level="ERROR", log_to_driver=False)
    remote = ray.remote(_call)

    def run(evaluate: Evaluate, tasks: Iterable[Task]) -> Iterator[Row]:
        pending = [remote.remote(evaluate, t) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    return run


def _call(evaluate: Evaluate, task: Task) -> Row:
    return evaluate(task)


# --- the sweep ---------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    space: SweepSpace
    directory: Path
    rows: list[Row]                       # every row in the table, by point index
    evaluated: int                        # points evaluated by this run
    reused: int                           # points found in the table from an earlier run, not evaluated again
    complete: bool                        # False when stopped by max_points
    dropped: list[str] = field(default_factory=list)  # damaged rows of the table dropped on reading
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r["error"]]


def run_sweep(space: SweepSpace, directory: str | Path, workers: int | None = None, ray_address: str | None = None,
              fresh: bool = False, progress: bool = True, max_points: int | None = None,
              report: bool = True) -> SweepResult:
    """Run (or resume) `space`, writing results and reports under `directory`."""
    directory = Path(directory)
    execute = ray_executor(ray_address) if ray_address else local_executor(workers or os.cpu_count() or 1)
    table = ResultsTable(directory, space, fresh)
    for warning in table.dropped:
        print(f"warning: {warning}", file=sys.stderr)
    (directory / "space.json").write_text(json.dumps(space.to_dict(), indent=1, default=list))
    evaluate = functools.partial(evaluate_point, space)
    state: dict[str, Any] = {"evaluated": 0, "submitted": 0, "reused": 0, "complete": True}
    earlier = set(table.rows)  # keys finished by an earlier run
    counted: set[str] = set()
    bar = tqdm(total=_total(space), desc=f"sweep {space.name}", unit="point", disable=not progress,
               dynamic_ncols=True)

    def run_batch(tasks: Iterable[Task]) -> dict[str, Row]:
        """Evaluate the tasks not yet in the table, as a stream; returns the rows of all of them by key."""
        keys: list[str] = []
        submitted: set[str] = set()

        def todo() -> Iterator[Task]:
            for task in tasks:
                key = point_key(task.point)
                keys.append(key)
                if key in table.rows or key in submitted:
                    if key in earlier and key not in counted:
                        state["reused"] += 1
                        counted.add(key)
                    bar.update(1)
                elif max_points is not None and state["submitted"] >= max_points:
                    state["complete"] = False  # --max-points: stop drawing points from the stream here
                    return
                else:
                    submitted.add(key)
                    state["submitted"] += 1
                    yield task

        for row in execute(evaluate, todo()):
            table.add(row)
            state["evaluated"] += 1
            bar.update(1)
            bar.set_postfix_str(f"last {row['key']} {'failed' if row['error'] else 'ok'}")
        return {key: table.rows[key] for key in keys if key in table.rows}

    try:
        if space.search.method == "nsga2":
            _nsga2(space, run_batch, state)
        else:
            run_batch(Task(i, p) for i, p in enumerate(space.points()))
    finally:
        bar.close()
    result = SweepResult(space, directory, table.sorted(), state["evaluated"], state["reused"], state["complete"],
                         table.dropped)
    result.paths = {"csv": table.csv_path}
    if table.parquet_path.exists():
        result.paths["parquet"] = table.parquet_path
    if report and result.rows:
        from .report import write_report
        result.paths.update(write_report(result))
    return result


def _total(space: SweepSpace) -> int | None:
    """The progress bar's length: the points to evaluate where knowing it is cheap, else None (a count)."""
    if space.search.method == "nsga2":
        return space.search.trials
    if space.size > RANDOM_LISTED:
        return space.search.samples if space.search.method == "random" else None
    return sum(1 for _ in space.points())


def _nsga2(space: SweepSpace, run_batch: Callable[[Iterable[Task]], dict[str, Row]], state: dict[str, Any]) -> None:
    """optuna's NSGA-II, one generation (population) at a time so a generation runs in parallel."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = space.search
    directions = [optuna.study.StudyDirection.MAXIMIZE if METRICS[o][1] == "maximize"
                  else optuna.study.StudyDirection.MINIMIZE for o in search.objectives]
    sampler = optuna.samplers.NSGAIISampler(population_size=search.population, seed=search.seed)
    study = optuna.create_study(directions=directions, sampler=sampler)
    choices = {name: [_choice(v) for v in values] for name, values in space.parameters.items()}
    index, asked = 0, 0
    while index < search.trials and state["complete"]:
        batch: list[tuple[Any, Task]] = []
        while len(batch) < min(search.population, search.trials - index):
            asked += 1
            if asked > 50 * search.trials:
                raise SweepError(f"{space.source}: NSGA-II drew {asked} points and too few met the constraints; "
                                 f"loosen the constraints or use method: grid")
            trial = study.ask()
            point = {name: space.parameters[name][choices[name].index(trial.suggest_categorical(name, choices[name]))]
                     for name in space.parameters}
            if space.check(point) is None:
                study.tell(trial, state=TrialState.FAIL)
                continue
            batch.append((trial, Task(index + len(batch), point)))
        rows = run_batch([task for _, task in batch])
        for trial, task in batch:
            row = rows.get(point_key(task.point))
            if row is None or row["error"]:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, [float(row[o]) for o in search.objectives])
        index += len(batch)


def _choice(value: Any) -> Any:
    """optuna's categorical choices must be scalars: lists (alu_ops) go as their text."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def rows_ok(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if not r["error"]]
