"""One gate for every command that takes a config: it must load *and* fit the instruction set.

A config can be valid field by field and still describe no accelerator: its scratchpads may need
more index bits than the instruction word has room for. `build_isa` finds that out; here the
finding becomes an error that says which format overflows, by how much, and which single change
of a config field makes it fit (each candidate is tried against the ISA, not guessed).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..configs import AccelConfig, ConfigError, load_config
from ..isa import build_isa
from ..isa.spec import ISAError

# The fields whose size sets the index widths of the instruction and micro-op formats, and the
# direction in which a change frees bits (smaller buffers need fewer index bits; a wider micro-op
# word has room for wider micro-op fields).
_SHRINK = ("inp_buffer_bytes", "wgt_buffer_bytes", "acc_buffer_bytes", "uop_buffer_bytes")
_WIDEN = {"uop_width": (32, 64)}


def _fits(config: AccelConfig, **change: int) -> bool:
    try:
        build_isa(dataclasses.replace(config, **change))
    except (ConfigError, ISAError):
        return False
    return True


def fixes(config: AccelConfig) -> list[str]:
    """Single-field changes that make `config` fit its instruction formats, e.g.
    'inp_buffer_bytes <= 32768 (now 65536)'; each was checked by building the ISA."""
    found = []
    for name in _SHRINK:
        value = getattr(config, name) // 2
        while value >= 1:
            try:
                if _fits(config, **{name: value}):
                    found.append(f"{name} <= {value} (now {getattr(config, name)})")
                    break
            except ConfigError:  # below the field's range: no smaller value of it fits
                break
            value //= 2
    for name, choices in _WIDEN.items():
        wider = [v for v in choices if v > getattr(config, name) and _fits(config, **{name: v})]
        if wider:
            found.append(f"{name}: {wider[0]} (now {getattr(config, name)})")
    return found


def check_buildable(config: AccelConfig) -> None:
    """Raise ConfigError when `config`'s fields do not fit the ISA's instruction or micro-op word,
    naming the overflowing format, the bits needed and available, and the changes that fit."""
    try:
        build_isa(config)
    except ISAError as exc:
        changes = fixes(config)
        advice = ("; changes that fit (any one): " + ", or ".join(changes)) if changes else \
            "; no single change of a buffer size or uop_width makes it fit"
        raise ConfigError(f"{config.source}: config '{config.name}' cannot be built: {exc}{advice}") from None


def load_buildable(name_or_path: str | Path) -> AccelConfig:
    """`load_config`, then `check_buildable`: what every command taking --config uses."""
    config = load_config(name_or_path)
    check_buildable(config)
    return config


def check_args(args: argparse.Namespace) -> None:
    """The gate `main` runs before any command: a command's `config` argument (an option or a
    positional), when given, must name a buildable config. The FPGA flows' small demo design is not
    a config and passes."""
    from ..fpga.design import DEMO

    name = getattr(args, "config", None)
    if isinstance(name, str) and not (getattr(args, "command", None) == "fpga" and name == DEMO):
        load_buildable(name)
