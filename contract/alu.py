"""The vector ALU's operations: one record per operation, read by every layer.

An `AluOp` is an operation's name and opcode (the ISA's `alu_opcode` enum is built from them), its
semantics as a NumPy function (the functional simulator's definition, which the Amaranth ALU is
tested against bit for bit), and the facts the other layers need: whether it reads its second
operand (the cycle model charges the accumulator's one read port twice for `use_imm=0`), what
that operand means (random programs draw immediates by it), the loop-nest operation it
implements (the tensorizer's intrinsics), and its datapath cost (the area model).

Adding an operation = one record in `ALU_OPS` (an opcode free in the ISA's 3-bit field) plus its
case in the Amaranth ALU (`hw/core.py`); `tests/contract/test_alu.py` shows a new record reaching
every layer. This module depends on NumPy and the standard library only: `configs` and `isa` sit
below `contract` and still read it (config validation, the opcode enum).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import TensorweaveError

# (a, b, width) -> result: a and b are int64 arrays of one shape holding signed width-bit values.
Semantics = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
OPERAND_KINDS = ("value", "shift", "factor")


class AluError(TensorweaveError, ValueError):
    """An ALU operation that does not exist, or a record that cannot describe one."""


@dataclass(frozen=True)
class AluOp:
    """One ALU operation: acc[d] = semantics(acc[d], imm or acc[s], acc_width)."""

    name: str
    opcode: int
    semantics: Semantics
    doc: str
    area: Callable[[int], float]    # datapath LUTs per result bit, in adder-bit units, for an acc_width
    operand: str = "value"          # the second operand: a value, a signed shift amount, or a factor
    reads_operand: bool = True      # False: op(acc[d]) alone, the second operand is not read
    loopnest: str | None = None     # the loop-nest IR's Binary op with the same semantics (an intrinsic)
    multiplier: bool = False        # needs an acc_width x acc_width multiplier per lane (DSPs)

    def __post_init__(self) -> None:
        if not self.name.isalnum() or not self.name.isupper():
            raise AluError(f"ALU operation name {self.name!r} must be upper-case letters and digits")
        if self.opcode < 0:
            raise AluError(f"ALU operation {self.name}: opcode {self.opcode} must be >= 0")
        if self.operand not in OPERAND_KINDS:
            raise AluError(f"ALU operation {self.name}: operand {self.operand!r} is not one of "
                           f"{', '.join(OPERAND_KINDS)}")
        if self.loopnest is not None and not self.reads_operand:
            raise AluError(f"ALU operation {self.name}: a loop-nest form is binary and needs reads_operand")

    def apply(self, a: np.ndarray | int, b: np.ndarray | int, width: int) -> np.ndarray:
        """The operation on signed `width`-bit values (b broadcast to a's shape)."""
        a = np.asarray(a, dtype=np.int64)
        return self.semantics(a, np.broadcast_to(np.asarray(b, dtype=np.int64), a.shape), width)


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap to `bits`."""
    half = 1 << (bits - 1)
    return ((values + half) & ((1 << bits) - 1)) - half


def _shift_right(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """a >> b arithmetically (b clamped to width - 1); for b < 0, a << -b wrapping (amounts saturate at width)."""
    mask = (1 << width) - 1
    right = a >> np.clip(b, 0, width - 1)
    amount = np.clip(-b, 0, width).astype(np.uint64)
    shifted = ((a & mask).astype(np.uint64) << amount) & np.uint64(mask)
    left = wrap(shifted.astype(np.int64), width)
    return np.where(b >= 0, right, left)


def _round_shift(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """a / 2^n rounded to nearest, ties to even, for 1 <= n (exact: floor, remainder, compare)."""
    q = a >> n
    r = a - (q << n)
    half = np.int64(1) << (n - 1)
    return q + ((r > half) | ((r == half) & (q & 1 == 1)))


def _rounding_shift_right(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    return np.where(b > 0, _round_shift(a, np.clip(b, 1, width)), _shift_right(a, b, width))


ALU_OPS: tuple[AluOp, ...] = (
    AluOp("MIN", 0, lambda a, b, w: np.minimum(a, b), "signed minimum",
          area=lambda w: 2, loopnest="min"),
    AluOp("MAX", 1, lambda a, b, w: np.maximum(a, b), "signed maximum",
          area=lambda w: 2, loopnest="max"),
    AluOp("ADD", 2, lambda a, b, w: wrap(a + b, w), "sum, wrapping at acc_width bits",
          area=lambda w: 1, loopnest="add"),
    AluOp("SHR", 3, _shift_right,
          "arithmetic shift right by the signed amount (negative shifts left, wrapping); amounts beyond "
          "the width saturate", area=lambda w: math.log2(w), operand="shift"),
    AluOp("MUL", 4, lambda a, b, w: wrap(a * b, w), "product, wrapping at acc_width bits",
          area=lambda w: 1, operand="factor", loopnest="mul", multiplier=True),
    AluOp("RSHR", 5, _rounding_shift_right,
          "SHR rounded to nearest, ties to even (ONNX QuantizeLinear's rounding), for amounts > 0; right "
          "amounts saturate at acc_width", area=lambda w: math.log2(w) + 2, operand="shift"),
)
"""Every ALU operation, in opcode order. Lookups below read this table at call time."""


def names() -> tuple[str, ...]:
    return tuple(op.name for op in ALU_OPS)


def opcodes() -> dict[str, int]:
    """name -> opcode, in table order: the ISA's `alu_opcode` enum. Raises AluError on a repeated name or opcode."""
    codes: dict[str, int] = {}
    for op in ALU_OPS:
        twin = next((name for name, code in codes.items() if name == op.name or code == op.opcode), None)
        if twin is not None:
            raise AluError(f"ALU operation {op.name} (opcode {op.opcode}) repeats the name or opcode of {twin}")
        codes[op.name] = op.opcode
    return codes


def by_name(name: str) -> AluOp:
    for op in ALU_OPS:
        if op.name == name:
            return op
    raise AluError(f"unknown ALU operation '{name}'; operations: {', '.join(names())}")


def by_opcode(opcode: int) -> AluOp | None:
    """The operation with `opcode`, or None when no operation has it."""
    return next((op for op in ALU_OPS if op.opcode == opcode), None)


def apply(name: str, a: np.ndarray | int, b: np.ndarray | int, width: int) -> np.ndarray:
    """The operation `name` on signed `width`-bit values; results wrap to `width` bits."""
    return by_name(name).apply(a, b, width)
