"""A step of a compiled model: one accelerator layer or one CPU / GPU segment (shared by the model and its reports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .graph import Graph


@dataclass(eq=False)
class Step:
    """One unit of execution: an accelerator layer (one fused node) or a CPU segment (a subgraph)."""

    target: str                              # "accel", "cpu" or "gpu"
    name: str
    graph: Graph                             # the nodes this step runs, as a graph
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kernel: Any = None                       # AccelKernel (accel steps)
    executable: Any = None                   # CPUExecutable / GPU executable (cpu and gpu steps)
