"""The accelerator design point: a frozen, validated config loaded from YAML.

Every other part of tensorweave (ISA widths, hardware, simulator, compiler, sweeps) derives what
it needs from an `AccelConfig`; no size is typed anywhere else. Derived values (buffer depths,
index widths, tile sizes in bytes) are properties, never stored.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import alu
from ..errors import TensorweaveError
from .yaml_safe import excerpt, read_yaml

__all__ = ["ALU_OPS", "AccelConfig", "ConfigError", "clog2", "load_config", "preset_names", "read_yaml"]

PRESET_DIR = Path(__file__).resolve().parent

# The default alu_ops: every operation of contract/alu.py (the one upward edge: the op list lives there).
ALU_OPS = alu.names()


class ConfigError(TensorweaveError, ValueError):
    """A config that cannot describe a buildable accelerator; the message names the field."""


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def clog2(value: int) -> int:
    """Bits needed to index `value` entries (at least 1)."""
    return max(1, (value - 1).bit_length())


@dataclass(frozen=True)
class _Rule:
    """How one config field is checked: a type, and a predicate with its human description."""

    kind: type
    check: Callable[[Any], bool]
    describe: str | Callable[[], str]    # a callable when the allowed values are read at check time

    @property
    def allowed(self) -> str:
        return self.describe if isinstance(self.describe, str) else self.describe()


def _pow2_between(lo: int, hi: int) -> _Rule:
    return _Rule(int, lambda v: _power_of_two(v) and lo <= v <= hi, f"a power of two from {lo} to {hi}")


def _one_of(*choices: int) -> _Rule:
    return _Rule(int, lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def _int_between(lo: int, hi: int) -> _Rule:
    return _Rule(int, lambda v: lo <= v <= hi, f"an integer from {lo} to {hi}")


_KIB = 1024
_RULES: dict[str, _Rule] = {
    "name": _Rule(str, lambda v: bool(v) and v.replace("-", "").replace("_", "").isalnum(),
                  "a non-empty name of letters, digits, '-' and '_'"),
    "batch": _pow2_between(1, 16),
    "block_in": _pow2_between(2, 64),
    "block_out": _pow2_between(2, 64),
    "inp_width": _one_of(2, 4, 8),
    "wgt_width": _one_of(2, 4, 8),
    "acc_width": _one_of(16, 32),
    "out_width": _one_of(4, 8),
    "uop_width": _one_of(32, 64),
    "uop_buffer_bytes": _pow2_between(64, 1024 * _KIB),
    "inp_buffer_bytes": _pow2_between(16, 4096 * _KIB),
    "wgt_buffer_bytes": _pow2_between(16, 4096 * _KIB),
    "acc_buffer_bytes": _pow2_between(16, 4096 * _KIB),
    "alu_ops": _Rule(tuple, lambda v: len(v) > 0 and all(isinstance(op, str) for op in v)
                     and len(set(v)) == len(v) and set(v) <= set(alu.names()),
                     lambda: "a non-empty list without repeats drawn from " + ", ".join(alu.names())),
    "bus_width": _one_of(32, 64, 128, 256, 512),
    "clock_mhz": _int_between(1, 2000),
    "cmd_queue_depth": _pow2_between(2, 4096),
    "dep_queue_depth": _pow2_between(2, 4096),
}


@dataclass(frozen=True)
class AccelConfig:
    """One accelerator design point. Construct with `load_config` or `AccelConfig.from_dict`."""

    name: str
    batch: int
    block_in: int
    block_out: int
    inp_width: int
    wgt_width: int
    acc_width: int
    out_width: int
    uop_buffer_bytes: int
    inp_buffer_bytes: int
    wgt_buffer_bytes: int
    acc_buffer_bytes: int
    alu_ops: tuple[str, ...] = ALU_OPS
    uop_width: int = 32
    bus_width: int = 64
    clock_mhz: int = 100
    cmd_queue_depth: int = 256
    dep_queue_depth: int = 256
    source: str = field(default="<dict>", compare=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            _check_field(self.source, f.name, getattr(self, f.name))
        for kind, across in (("inp", "batch x block_in"), ("wgt", "block_out x block_in"),
                             ("acc", "batch x block_out"), ("out", "batch x block_out")):
            # sub-byte widths pack several values per byte, but a row must still fill whole bytes
            bits = {"inp": self.batch * self.block_in * self.inp_width,
                    "wgt": self.block_out * self.block_in * self.wgt_width,
                    "acc": self.batch * self.block_out * self.acc_width,
                    "out": self.batch * self.block_out * self.out_width}[kind]
            if bits % 8:
                raise ConfigError(
                    f"{self.source}: field '{kind}_width': one {kind} row ({across} values of {kind}_width bits) "
                    f"is {bits} bits, not a whole number of bytes; allowed: widths and block sizes whose row "
                    "fills whole bytes (e.g. a larger block_in, or 8-bit values)")
        for kind in ("inp", "wgt", "acc"):
            depth = getattr(self, f"{kind}_depth")
            if depth < 1:
                raise ConfigError(
                    f"{self.source}: field '{kind}_buffer_bytes': {getattr(self, f'{kind}_buffer_bytes')} bytes "
                    f"holds no {kind} row of {getattr(self, f'{kind}_row_bytes')} bytes; allowed: at least one row")
        if self.uop_depth < 1:
            raise ConfigError(f"{self.source}: field 'uop_buffer_bytes': smaller than one micro-op")

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def macs_per_cycle(self) -> int:
        return self.batch * self.block_in * self.block_out

    @property
    def inp_row_bytes(self) -> int:
        """Bytes of one input-scratchpad row: a batch x block_in tile."""
        return self.batch * self.block_in * self.inp_width // 8

    @property
    def wgt_row_bytes(self) -> int:
        """Bytes of one weight-scratchpad row: a block_out x block_in tile."""
        return self.block_out * self.block_in * self.wgt_width // 8

    @property
    def acc_row_bytes(self) -> int:
        """Bytes of one accumulator row: a batch x block_out tile of accumulators."""
        return self.batch * self.block_out * self.acc_width // 8

    @property
    def out_row_bytes(self) -> int:
        """Bytes of one stored output tile: a batch x block_out tile narrowed to out_width."""
        return self.batch * self.block_out * self.out_width // 8

    @property
    def uop_bytes(self) -> int:
        """Bytes of one micro-op word (the ISA packs its fields into uop_width bits)."""
        return self.uop_width // 8

    @property
    def inp_depth(self) -> int:
        return self.inp_buffer_bytes // self.inp_row_bytes

    @property
    def wgt_depth(self) -> int:
        return self.wgt_buffer_bytes // self.wgt_row_bytes

    @property
    def acc_depth(self) -> int:
        return self.acc_buffer_bytes // self.acc_row_bytes

    @property
    def uop_depth(self) -> int:
        return self.uop_buffer_bytes // self.uop_bytes

    @property
    def inp_index_width(self) -> int:
        return clog2(self.inp_depth)

    @property
    def wgt_index_width(self) -> int:
        return clog2(self.wgt_depth)

    @property
    def acc_index_width(self) -> int:
        return clog2(self.acc_depth)

    @property
    def uop_index_width(self) -> int:
        return clog2(self.uop_depth)

    @property
    def bus_bytes(self) -> int:
        return self.bus_width // 8

    def alu_has(self, op: str) -> bool:
        return op in self.alu_ops

    # --- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        d["alu_ops"] = list(self.alu_ops)
        return d

    @property
    def digest(self) -> str:
        """A short hash of every field: names the design point in caches and generated files."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def derived(self) -> dict[str, int]:
        """The derived values shown by `tensorweave config show` and usable in ISA expressions."""
        return {
            "macs_per_cycle": self.macs_per_cycle,
            "inp_row_bytes": self.inp_row_bytes, "wgt_row_bytes": self.wgt_row_bytes,
            "acc_row_bytes": self.acc_row_bytes, "out_row_bytes": self.out_row_bytes,
            "uop_depth": self.uop_depth, "inp_depth": self.inp_depth,
            "wgt_depth": self.wgt_depth, "acc_depth": self.acc_depth,
            "uop_index_width": self.uop_index_width, "inp_index_width": self.inp_index_width,
            "wgt_index_width": self.wgt_index_width, "acc_index_width": self.acc_index_width,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> AccelConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a config is a mapping of field: value, not {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        for key in data:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                guess = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(f"{source}: unknown field '{key}'{guess}; known fields: {', '.join(known)}")
        for key in required:
            if key not in data:
                raise ConfigError(f"{source}: missing field '{key}'; allowed: {_RULES[key].allowed}")
        values = dict(data)
        if "alu_ops" in values and isinstance(values["alu_ops"], list):
            values["alu_ops"] = tuple(values["alu_ops"])
        return cls(source=source, **values)


def _check_field(source: str, name: str, value: Any) -> None:
    rule = _RULES[name]
    ok_type = isinstance(value, rule.kind) and not (rule.kind is int and isinstance(value, bool))
    if not ok_type or not rule.check(value):
        shown = list(value) if isinstance(value, tuple) else value
        raise ConfigError(f"{source}: field '{name}': {excerpt(shown)} is not allowed; allowed: {rule.allowed}")



def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _config_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The YAML file of a preset name or a path (a relative path from `relative_to`, else the working folder)."""
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute() and (path.suffix or len(path.parts) > 1):
        path = relative_to / path
    if not path.suffix and not path.exists():
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(f"no config preset named '{name_or_path}'; presets: {', '.join(preset_names())}"
                              " (or give a path to a .yaml file)")
    return path


def _resolve_base(data: Any, path: Path, chain: tuple[Path, ...] = ()) -> Any:
    """`data` (read from `path`) with its `base: NAME` replaced by the base's fields, `data`'s own fields
    overriding them. NAME is a preset name or a YAML path (relative to `path`'s folder); a base may
    have a base of its own. Without `name:` a derived config is named after its file. Each file's
    fields are checked by name here (so an unknown field names the file it is in); values are checked
    once, on the merged config, by `AccelConfig.from_dict`."""
    if not isinstance(data, dict) or "base" not in data:
        return data
    here = path.resolve()
    chain = (*chain, here)
    spec = data["base"]
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"{path}: field 'base': {spec!r} is not allowed; allowed: a preset name "
                          f"({', '.join(preset_names())}) or the path of a config YAML file")
    try:
        base_path = _config_path(spec, relative_to=path.parent)
        if base_path.resolve() in chain:
            cycle = " -> ".join(str(p) for p in (*chain, base_path.resolve()))
            raise ConfigError(f"'{spec}' leads back to a config already in the chain: {cycle}")
        base_data = read_yaml(base_path, ConfigError, "base config file")
    except ConfigError as exc:
        raise ConfigError(f"{path}: field 'base': {exc}") from None
    base = _resolve_base(base_data, base_path, chain)
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: a config is a mapping of field: value, not {type(base).__name__}")
    known = [f.name for f in dataclasses.fields(AccelConfig) if f.name != "source"]
    for key in [k for k in data if k != "base"]:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            guess = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{path}: unknown field '{key}'{guess}; known fields: base, {', '.join(known)}")
    merged = {**base, **{k: v for k, v in data.items() if k != "base"}}
    if "name" not in data:  # a derived config is another design: not named after its base
        merged["name"] = "".join(c if c.isalnum() or c in "-_" else "-" for c in path.stem) or "config"
    return merged


def load_config(name_or_path: str | Path) -> AccelConfig:
    """Load a preset by name (e.g. 'vta-default') or any YAML file by path. A file may start from
    another config with `base: NAME` (a preset name or a path) and give only the fields it changes."""
    path = _config_path(name_or_path)
    data = _resolve_base(read_yaml(path, ConfigError, "config file"), path)
    return AccelConfig.from_dict(data, source=str(path.name if path.parent == PRESET_DIR else path))
