"""The units of the accelerator, the queues between them, and which unit runs an instruction.

VTA's decoupled access-execute: `fetch` reads the instructions and dispatches each, in order, into
the command queue of the unit that runs it (`unit_of`); the units `load`, `compute` and `store`
run their queues in order and order themselves only through dependency-token queues between
neighbours (`prev` / `next` in `UNITS` order): load <-> compute <-> store. Every engine (the
functional simulator, the cycle model, the hardware and its UNIT_STATE register) reads this.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..isa import ISA, Insn, ISAError

FETCH = "fetch"
# The units with a command queue, in pipeline order (also their order in UNIT_STATE and the PCs).
UNITS: tuple[str, ...] = ("load", "compute", "store")
SIDES: tuple[str, ...] = ("prev", "next")

# Each unit's neighbour on either side (None: the unit has no stage there).
PREV: Mapping[str, str | None] = MappingProxyType({"load": None, "compute": "load", "store": "compute"})
NEXT: Mapping[str, str | None] = MappingProxyType({"load": "compute", "compute": "store", "store": None})


def _token_queues() -> dict[tuple[str, str], str]:
    queues = {}
    for unit, after in zip(UNITS, UNITS[1:]):
        for producer, consumer in ((unit, after), (after, unit)):
            queues[(producer, consumer)] = f"{producer}->{consumer}"
    return queues


# Token queues, named by (producer, consumer): load->compute, compute->load, compute->store, store->compute.
TOKEN_QUEUES: Mapping[tuple[str, str], str] = MappingProxyType(_token_queues())

# Dispatch: which unit runs a LOAD of each memory (VTA's rule), and the one memory a STORE reads.
LOAD_UNIT: Mapping[str, str] = MappingProxyType({"INP": "load", "WGT": "load", "UOP": "compute", "ACC": "compute"})
STORE_MEMORY = "OUT"


def neighbour(unit: str, side: str) -> str | None:
    """The unit on `side` ('prev' or 'next') of `unit`, or None at the end of the pipeline."""
    return (PREV if side == "prev" else NEXT)[unit]


def sides_of(unit: str) -> tuple[str, ...]:
    """The sides ('prev', 'next') on which `unit` has a neighbour, so token queues and flags."""
    return tuple(side for side in SIDES if neighbour(unit, side) is not None)


def token_queue(unit: str, side: str, kind: str) -> str | None:
    """The token queue `unit` pops from ('pop') or pushes to ('push') on `side`; None without a neighbour."""
    other = neighbour(unit, side)
    if other is None:
        return None
    return TOKEN_QUEUES[(other, unit)] if kind == "pop" else TOKEN_QUEUES[(unit, other)]


def unit_of_memory(op: str, memory: str) -> str:
    """The unit that runs a LOAD or STORE (`op`) of `memory` (a memory_id name); ISAError if none can."""
    if op == "STORE":
        if memory != STORE_MEMORY:
            raise ISAError(f"STORE must use memory_id {STORE_MEMORY}, not {memory}")
        return "store"
    if memory not in LOAD_UNIT:
        raise ISAError(f"LOAD cannot target memory {memory}")
    return LOAD_UNIT[memory]


def unit_of(isa: ISA, insn: Insn) -> str:
    """The unit that runs `insn` (VTA's dispatch rule, shared by every engine): 'load' for LOADs of
    INP/WGT, 'store' for STOREs (which must target OUT), 'compute' for the rest. An instruction
    no unit can run raises `isa.ISAError`, naming the memory."""
    if insn.op not in ("LOAD", "STORE"):
        return "compute"
    return unit_of_memory(insn.op, isa.enum_name("memory_id", insn.memory_id))
