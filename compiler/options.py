"""What a model is compiled for: `TargetOptions`, saved with a compiled model and read back by `load_compiled`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import TensorweaveError

TARGETS = ("accel", "cpu", "gpu")
GPU_APIS = ("auto", "opencl", "cuda")


class PipelineError(TensorweaveError):
    """A model that cannot be compiled or run as asked (the message names the layer or setting)."""


@dataclass(frozen=True)
class TargetOptions:
    """Every setting `compile_model` takes besides the model and its input shapes.

    `config` / `config_digest` name the accelerator config (None without one: the config itself is saved
    beside the options); `engine` is the engine `CompiledModel.run` uses when none is given and
    `cost_model` the one that measured the accelerator tilings (both names, see `contract.engine`).
    """

    target: str = "accel"
    config: str | None = None
    config_digest: str | None = None
    gpu_api: str = "auto"
    tensor_cores: bool = False
    engine: str = "functional"
    cost_model: str = "cycle"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise PipelineError(f"target must be one of {', '.join(TARGETS)}, not '{self.target}'")
        if self.gpu_api not in GPU_APIS:
            raise PipelineError(f"gpu_api must be one of {', '.join(GPU_APIS)}, not '{self.gpu_api}'")
        if not isinstance(self.tensor_cores, bool):
            raise PipelineError(f"tensor_cores must be true or false, not {self.tensor_cores!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "settings") -> TargetOptions:
        """Options from `to_dict`'s output; missing keys take their defaults (folders saved before they existed)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PipelineError(f"{source}: unknown target option(s) {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
        return cls(**data)
