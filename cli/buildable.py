"""One gate for every command that takes a config: it must load *and* fit the instruction set.

A config can be valid field by field and still describe no accelerator: its scratchpads may need
more index bits than the instruction word has room for. `build_isa` finds that out; here the
finding becomes an error that says which format overflows, by how much, and which single change
of a config field makes it fit (each candidate is tried against the ISA, not guessed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..configs import AccelConfig, ConfigError, load_config
from ..isa import build_isa
from ..isa.spec import ISAError

# The fields whose sizes set the index widths of the formats: a smaller buffer needs fewer index
# bits. (A wider micro-op word is no fix with today's isa.yaml: every micro-op field appears twice in
# the GEMM instruction, which overflows first.)
_SHRINK = ("inp_buffer_bytes", "wgt_buffer_bytes", "acc_buffer_bytes", "uop_buffer_bytes")


def _changed(config: AccelConfig, **change: int) -> AccelConfig | None:
    """`config` with `change`, or None where the change leaves the field's allowed range."""
    try:
        return AccelConfig.from_dict({**config.to_dict(), **change}, source=config.source)
    except ConfigError:
        return None


def _fits(config: AccelConfig | None) -> bool:
    if config is None:
        return False
    try:
        build_isa(config)
    except ISAError:
        return False
    return True


def fixes(config: AccelConfig) -> list[str]:
    """Single-field changes that make `config` fit its instruction formats, e.g.
    'inp_buffer_bytes <= 32768 (now 65536)'; each was checked by building the ISA."""
    found = []
    for name in _SHRINK:
        value = getattr(config, name) // 2
        while (candidate := _changed(config, **{name: value})) is not None:
            if _fits(candidate):
                found.append(f"{name} <= {value} (now {getattr(config, name)})")
                break
            value //= 2
    return found


def check_buildable(config: AccelConfig) -> None:
    """Raise ConfigError when `config`'s fields do not fit the ISA's instruction or micro-op word,
    naming the overflowing format, the bits needed and available, and the changes that fit."""
    try:
        build_isa(config)
    except ISAError as exc:
        changes = fixes(config)
        advice = ("; changes that fit (any one): " + ", or ".join(changes)) if changes else \
            "; no single change of a buffer size makes it fit"
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
