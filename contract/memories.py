"""The accelerator's memories, one description each: UOP, WGT, INP, ACC and the output buffer OUT.

A memory is `depth` rows; a row is one element of a LOAD or STORE (the unit a DRAM address counts)
and holds `lanes` values of `element_bits` bits (the micro-op buffer: one word, no lanes). OUT is
the output buffer the store unit reads: as deep as the accumulator, each lane narrowed to out_width.
Everything is derived from the `AccelConfig` and the ISA's memory_id enumeration (so also for a config
whose instructions would not fit the word, as design-space sweeps try).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..configs import AccelConfig, clog2
from ..isa import ISAError
from ..isa.spec import enum_members

NAMES: tuple[str, ...] = ("UOP", "WGT", "INP", "ACC", "OUT")


@dataclass(frozen=True)
class Memory:
    name: str                   # the memory_id enumeration name
    memory_id: int
    depth: int                  # rows
    lanes: tuple[int, ...]      # the shape of one row's values: () for a micro-op word
    element_bits: int           # bits of one value
    signed: bool

    @property
    def row_bits(self) -> int:
        return self.element_bits * int(np.prod(self.lanes, dtype=np.int64))

    @property
    def row_bytes(self) -> int:
        return self.row_bits // 8

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the whole memory as an array of values: (depth, *lanes)."""
        return (self.depth, *self.lanes)

    @property
    def dtype(self) -> np.dtype:
        """The smallest NumPy integer type that holds one value."""
        bits = next(b for b in (8, 16, 32, 64) if self.element_bits <= b)
        return np.dtype(f"{'int' if self.signed else 'uint'}{bits}")

    @property
    def index_width(self) -> int:
        """Bits of a row index."""
        return clog2(self.depth)

    def zeros(self) -> np.ndarray:
        """The memory as an int64 array of zeros (the simulators' working form)."""
        return np.zeros(self.shape, dtype=np.int64)


def memories(config: AccelConfig) -> dict[str, Memory]:
    """Every memory of `config`, by name (UOP, WGT, INP, ACC, OUT)."""
    c = config
    ids = enum_members("memory_id")
    spec = {"UOP": (c.uop_depth, (), c.uop_width, False),
            "WGT": (c.wgt_depth, (c.block_out, c.block_in), c.wgt_width, True),
            "INP": (c.inp_depth, (c.batch, c.block_in), c.inp_width, True),
            "ACC": (c.acc_depth, (c.batch, c.block_out), c.acc_width, True),
            "OUT": (c.acc_depth, (c.batch, c.block_out), c.out_width, True)}
    return {name: Memory(name, ids[name], *spec[name]) for name in NAMES}


def memory(config: AccelConfig, name: str) -> Memory:
    """The memory `name` (a memory_id name) of `config`."""
    found = memories(config)
    if name not in found:
        raise ISAError(f"no memory '{name}'; memories: {', '.join(NAMES)}")
    return found[name]
