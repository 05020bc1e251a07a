"""Evaluating one design point: build its config, run each layer's program through the cycle model,
and estimate its resources. Runs in worker processes (local pool or Ray), so it takes and returns
plain data, and never raises: a failing point comes back with its error recorded.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TensorweaveError
from ..sim.cycle import estimate_cycles
from .area import estimate_area
from .space import SweepSpace, point_key
from .workloads import layer_program


@dataclass(frozen=True)
class Task:
    """One point to evaluate: its index in the sweep and its varied fields."""

    index: int
    point: dict[str, Any]


def evaluate_point(space: SweepSpace, task: Task) -> dict[str, Any]:
    """A results row: index, key, the point's fields, every metric, per-layer cycles, the config, and
    `error` (empty when the point succeeded)."""
    started = time.perf_counter()
    row: dict[str, Any] = {"index": task.index, "key": point_key(task.point)}
    row.update({k: _cell(v) for k, v in task.point.items()})
    try:
        config = space.config(task.point)
        row["config"] = json.dumps(config.to_dict(), sort_keys=True)
        cycles = macs = dram = 0
        per_layer = {}
        for layer in space.workloads:
            report = estimate_cycles(layer_program(config, layer, space.programs))
            per_layer[layer.name] = report.cycles
            cycles += report.cycles
            macs += report.macs
            dram += report.dram_bytes
        area = estimate_area(config)
        values = {"cycles": cycles, "latency_ms": cycles / (config.clock_mhz * 1e3),
                  "utilization": macs / (cycles * config.macs_per_cycle), "macs": macs, "dram_bytes": dram,
                  **area.as_dict()}
        row.update({m: values[m] for m in space.metrics})
        row["layer_cycles"] = json.dumps(per_layer)
        row["error"] = ""
    except TensorweaveError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug in one point must not stop the sweep; keep where it was
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row["error"] = f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def _cell(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def columns(space: SweepSpace) -> list[str]:
    """The results table's columns, in order."""
    return ["index", "key", *space.parameters, *space.metrics, "layer_cycles", "error", "seconds", "config"]


def metric_values(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(float(row[n]) for n in names)
