"""The accelerator's control registers: the AXI4-Lite register map and the meaning of its bits.

32-bit registers at byte offsets of an 8-bit address space. `access` is what the hardware does:
"r" read-only (writes are ignored), "w" write-only (reads 0), "rw" both. The Amaranth register file
(`hw/top.py`), the board runtime (`fpga/runtime.py`), the cocotb testbench and the C++ harness
(through the generated `contract.h`) all read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..configs import AccelConfig
from .topology import UNITS

DATA_WIDTH = 32
ADDR_WIDTH = 8


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str         # "r", "w" or "rw"
    doc: str

    @property
    def readable(self) -> bool:
        return "r" in self.access

    @property
    def writable(self) -> bool:
        return "w" in self.access


REGISTERS: tuple[Register, ...] = (
    Register("CTRL", 0x00, "w", "write bit0 = 1 to start a run (clears done and error); ignored while busy"),
    Register("STATUS", 0x04, "r", "bit0 busy, bit1 done, bit2 error"),
    Register("INSN_COUNT", 0x08, "rw", "instructions to fetch from DRAM_BASE"),
    Register("DRAM_BASE_LO", 0x0C, "rw", "byte address of the program's DRAM image (low bits below the "
             "alignment are dropped)"),
    Register("DRAM_BASE_HI", 0x10, "w", "high 32 address bits: ignored, addresses are 32 bits (reads 0)"),
    Register("CYCLES_LO", 0x14, "r", "cycles from start to done or error, low 32 bits"),
    Register("CYCLES_HI", 0x18, "r", "cycles from start to done or error, high 32 bits"),
    Register("ERROR_CODE", 0x1C, "r", "why the run stopped with STATUS.error (contract/error_codes.py)"),
    Register("ERROR_INSN", 0x20, "r", "index of the instruction the error is about"),
    Register("CONFIG_DIGEST", 0x24, "r", "first 8 hex digits of the config digest the hardware was built for"),
    Register("LOAD_PC", 0x28, "r", "index of the load unit's current (or last) instruction"),
    Register("COMPUTE_PC", 0x2C, "r", "index of the compute unit's current (or last) instruction"),
    Register("STORE_PC", 0x30, "r", "index of the store unit's current (or last) instruction"),
    Register("UNIT_STATE", 0x34, "r", "per unit, 3 bits at 3 * unit index (load 0, compute 1, store 2): "
             "bit0 busy, bit1 waiting for a token, bit2 waiting for a command"),
)
OFFSETS: Mapping[str, int] = MappingProxyType({r.name: r.offset for r in REGISTERS})

CTRL_START = 1 << 0
STATUS_BUSY, STATUS_DONE, STATUS_ERROR = 1 << 0, 1 << 1, 1 << 2

# UNIT_STATE: UNIT_STATE_BITS bits per unit, in `topology.UNITS` order from bit 0.
UNIT_STATE_BITS = 3
UNIT_BUSY, UNIT_TOKEN_WAIT, UNIT_COMMAND_WAIT = 1 << 0, 1 << 1, 1 << 2
UNIT_STATE_FLAGS: tuple[tuple[int, str], ...] = (
    (UNIT_BUSY, "busy"), (UNIT_TOKEN_WAIT, "waiting for a token"), (UNIT_COMMAND_WAIT, "waiting for a command"))
UNIT_STATE_WIDTH = UNIT_STATE_BITS * len(UNITS)


def pc_register(unit: str) -> str:
    """The register holding `unit`'s instruction index (LOAD_PC, COMPUTE_PC, STORE_PC)."""
    return f"{unit.upper()}_PC"


def unit_state_bits(unit_state: int, unit: str) -> int:
    """`unit`'s UNIT_STATE_BITS bits of a UNIT_STATE value."""
    return unit_state >> (UNIT_STATE_BITS * UNITS.index(unit)) & ((1 << UNIT_STATE_BITS) - 1)


def unit_states(unit_state: int) -> dict[str, list[str]]:
    """UNIT_STATE decoded: per unit, which of busy / waiting for a token / waiting for a command hold."""
    return {unit: [name for bit, name in UNIT_STATE_FLAGS if unit_state_bits(unit_state, unit) & bit]
            for unit in UNITS}


def config_digest_value(config: AccelConfig) -> int:
    """CONFIG_DIGEST as the hardware built for `config` reports it: the first 8 hex digits of its digest."""
    return int(config.digest[:8], 16)
