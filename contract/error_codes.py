"""Why the accelerator stopped: the values of the ERROR_CODE register and their messages.

Codes 1-6 are the checks every engine shares (the functional simulator raises `SimError` for the
same programs); 7-9 are what only the hardware needs a code for, because the functional simulator
raises at once: a token flag toward a stage the unit does not have (the simulator's "has no prev
stage"), INSN_COUNT instructions without a FINISH, and a deadlock (every unit waits on a token or
an empty queue and fetch can send nothing, for 8 cycles; ERROR_INSN is the blocked instruction of
the first such unit in the order load, compute, store).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

NONE = 0
ILLEGAL_OPCODE = 1
ILLEGAL_MEMORY = 2
SCRATCHPAD_RANGE = 3
UOP_RANGE = 4
ALU_OPCODE = 5
PADDING = 6
TOKEN_FLAG = 7
NO_FINISH = 8
DEADLOCK = 9


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str           # the C and Python constant's name (TW_ERROR_<name> in contract.h)
    message: str        # what the runtimes print after the code


ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(NONE, "NONE", "none"),
    ErrorCode(ILLEGAL_OPCODE, "ILLEGAL_OPCODE", "illegal opcode"),
    ErrorCode(ILLEGAL_MEMORY, "ILLEGAL_MEMORY", "illegal memory id"),
    ErrorCode(SCRATCHPAD_RANGE, "SCRATCHPAD_RANGE", "scratchpad address out of range"),
    ErrorCode(UOP_RANGE, "UOP_RANGE", "micro-op range out of range"),
    # Also an opcode with no operation at all: "not built" covers both.
    ErrorCode(ALU_OPCODE, "ALU_OPCODE", "ALU opcode not built"),
    ErrorCode(PADDING, "PADDING", "nonzero padding where none is allowed"),
    ErrorCode(TOKEN_FLAG, "TOKEN_FLAG", "token flag toward a stage the unit does not have"),
    ErrorCode(NO_FINISH, "NO_FINISH", "INSN_COUNT instructions without a FINISH"),
    ErrorCode(DEADLOCK, "DEADLOCK", "deadlock: every unit waits on a token or a command that cannot come"),
)
MESSAGES: Mapping[int, str] = MappingProxyType({e.code: e.message for e in ERROR_CODES})
# Bits of an error code on the units' status ports (the ERROR_CODE register itself is 32 bits).
CODE_WIDTH = max(MESSAGES).bit_length()


def message(code: int) -> str:
    """The message of ERROR_CODE value `code`; an unknown value says so with the number."""
    return MESSAGES.get(code, f"unknown error code {code}")
