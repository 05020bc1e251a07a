"""The compiled model: its steps in order, run on an engine, explained, saved to a folder.

`CompiledModel.save(dir)` writes model.onnx, settings.json (the `TargetOptions`, the accelerator config
and the input shapes), plan.txt and each accelerator layer's program; `read_settings(dir)` reads the
settings back, and `pipeline.load_compiled(dir)` recompiles from them (compiling is deterministic and
the CPU code is cached by content hash).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..configs import AccelConfig
from ..contract.engine import Engine, EngineError, get_engine
from ..errors import TensorweaveError
from . import report
from .graph import Graph
from .options import PipelineError, TargetOptions
from .step import Step

__all__ = ["CompiledModel", "Settings", "Step", "read_settings"]

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Settings:
    """What settings.json holds: the options, the accelerator config and the input shapes."""

    options: TargetOptions
    config: AccelConfig | None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


class CompiledModel:
    """A model compiled for one target: the steps in order, runnable and explainable."""

    def __init__(self, model: onnx.ModelProto, graph: Graph, fused: Graph, steps: list[Step],
                 config: AccelConfig | None, options: TargetOptions, refused: Mapping[str, str],
                 input_shapes: Mapping[str, Sequence[int]] | None) -> None:
        self.model, self.graph, self.fused, self.steps = model, graph, fused, steps
        self.config, self.options, self.refused = config, options, dict(refused)
        self.input_shapes = {k: tuple(v) for k, v in (input_shapes or {}).items()}
        self.layers = report.layer_reports(steps, fused, config, self.refused)

    @property
    def target(self) -> str:
        return self.options.target

    # -- reports --
    @property
    def total_cycles(self) -> int:
        return sum(r.cycles or 0 for r in self.layers)

    def table(self, timings: bool = False) -> str:
        """The per-layer table: layer, op, where it runs, MACs, estimated cycles, utilization."""
        return report.table(self, timings)

    def offload_warning(self) -> str | None:
        """A loud line when a compile for the accelerator offloaded no MACs, with the reason; else None."""
        return report.offload_warning(self)

    def explain(self) -> str:
        """Which op runs where, the accelerator's tiles and instruction counts, cycles per layer and a total."""
        return report.explain(self)

    # -- running --
    def run(self, inputs: Mapping[str, np.ndarray], engine: str | Engine | None = None, progress: bool = False
            ) -> dict[str, np.ndarray]:
        """Run every step in order on `engine` (default: the options' engine); returns the graph outputs.

        Per-layer host times (and cycles, where the engine counts them) land in `layers`."""
        try:
            runner = get_engine(self.options.engine if engine is None else engine)
        except EngineError as exc:
            raise PipelineError(str(exc)) from None
        values = self._check_inputs(inputs)
        iterator: Any = self.steps
        if progress:
            from tqdm import tqdm
            iterator = tqdm(self.steps, desc="layers", unit="step", leave=False, disable=None)
        seconds: dict[str, float] = {}
        counted: dict[str, int] = {}
        for step in iterator:
            start = time.perf_counter()
            if step.target == "accel":
                (x,) = (values[v] for v in step.inputs)
                y, stats = step.kernel.run(x, engine=runner)
                if stats.cycle_source == "engine":
                    counted[step.name] = int(stats.cycles)
                values[step.outputs[0]] = np.asarray(y).reshape(self.fused.types[step.outputs[0]].shape)
            else:
                results = step.executable.run({v: values[v] for v in step.inputs})
                for v in step.outputs:
                    values[v] = results[v]
            seconds[step.name] = time.perf_counter() - start
        for row in self.layers:
            row.seconds = seconds.get(row.layer, 0.0)
            row.run_cycles = counted.get(row.layer)
        return {v: values[v] for v in self.graph.outputs}

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for name in self.graph.inputs:
            if name not in inputs:
                raise PipelineError(f"missing input '{name}' (the model's inputs are {', '.join(self.graph.inputs)})")
            t = self.graph.types[name]
            array = np.asarray(inputs[name])
            if array.shape != t.shape or array.dtype.name != t.dtype:
                raise PipelineError(f"input '{name}' is {array.dtype.name}{list(array.shape)}; the model wants {t}")
            values[name] = array
        return values

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded random inputs: standard normal floats, small non-negative integers."""
        rng = np.random.default_rng(seed)
        out = {}
        for name in self.graph.inputs:
            t = self.graph.types[name]
            kind = np.dtype(t.dtype).kind
            values = rng.standard_normal(t.shape) if kind == "f" else rng.integers(0, 8, t.shape)
            out[name] = values.astype(t.dtype)
        return out

    # -- saving --
    def save(self, path: str | Path) -> Path:
        """Write a directory: model.onnx, settings.json, plan.txt and layers/<name>.twp per accelerator layer."""
        path = Path(path)
        (path / "layers").mkdir(parents=True, exist_ok=True)
        onnx.save(self.model, str(path / "model.onnx"))
        settings = {"options": self.options.to_dict(),
                    "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
                    "config": self.config.to_dict() if self.config else None}
        (path / SETTINGS_FILE).write_text(json.dumps(settings, indent=1))
        (path / "plan.txt").write_text(self.explain() + "\n")
        for i, step in enumerate(s for s in self.steps if s.target == "accel"):
            step.kernel.program.save(path / "layers" / f"{i:03d}_{_safe(step.name)}.twp")
        return path


def read_settings(path: str | Path) -> Settings:
    """The settings a saved compiled model was compiled with; the config's digest must match the saved one.

    A settings.json that is unreadable, not JSON, or holds a field of the wrong kind (a hand edit, a
    truncated write) is a PipelineError naming the file and the field."""
    path = Path(path)
    settings_file = path / SETTINGS_FILE
    if not settings_file.is_file():
        raise PipelineError(f"'{path}' is not a compiled-model directory (no {SETTINGS_FILE})")
    try:
        data = json.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc) or type(exc).__name__
        raise PipelineError(f"{settings_file}: not a readable settings file ({reason}); compile the model again "
                            "with `tensorweave compile -o`") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{settings_file}: must hold a JSON object, not {type(data).__name__}")
    raw = data.get("options")
    if raw is None:  # written before the options were saved: only the target was
        if not isinstance(data.get("target"), str):
            raise PipelineError(f"{settings_file}: has neither field 'options' nor field 'target'")
        raw = {"target": data["target"]}
    if not isinstance(raw, dict):
        raise PipelineError(f"{settings_file}: field 'options' must be an object, not {type(raw).__name__}")
    for key, value in raw.items():
        optional = key in ("config", "config_digest")
        if key in _STRING_OPTIONS and not (isinstance(value, str) or (optional and value is None)):
            raise PipelineError(f"{settings_file}: field 'options.{key}' must be a string"
                                f"{' or null' if optional else ''}, not {value!r}")
    options = TargetOptions.from_dict(raw, source=str(settings_file))
    config = _settings_config(data.get("config"), settings_file)
    if config is not None and options.config_digest is not None and config.digest != options.config_digest:
        raise PipelineError(f"{settings_file}: field 'config' has digest {config.digest}, but the model was compiled "
                            f"for digest {options.config_digest} (the config format changed; compile again)")
    if options.target == "accel" and config is None:
        raise PipelineError(f"{settings_file}: target 'accel' needs field 'config' (an accelerator config)")
    raw_shapes = data.get("input_shapes") or {}
    if not isinstance(raw_shapes, dict):
        raise PipelineError(f"{settings_file}: field 'input_shapes' must map input names to shapes")
    shapes: dict[str, tuple[int, ...]] = {}
    for name, dims in raw_shapes.items():
        if not isinstance(dims, list) or not dims or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**31 for d in dims):
            raise PipelineError(f"{settings_file}: field 'input_shapes.{name}' must be a list of positive "
                                f"integers, not {dims!r}")
        shapes[name] = tuple(dims)
    return Settings(options, config, shapes)


_STRING_OPTIONS = ("target", "config", "config_digest", "gpu_api", "engine", "cost_model")


def _settings_config(raw: object, settings_file: Path) -> AccelConfig | None:
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise PipelineError(f"{settings_file}: field 'config' must be an object, not {type(raw).__name__}")
    try:
        return AccelConfig.from_dict(raw, source=str(settings_file))
    except TensorweaveError:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure of a hand-edited config is still its fault
        raise PipelineError(f"{settings_file}: field 'config' is not a valid accelerator config ({exc})") from None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
