"""A Program: instruction words, micro-ops and a DRAM image with named tensors; one file on disk.

DRAM layout: instructions from byte 0, then the micro-ops, then each tensor, every region aligned
to the largest element any LOAD/STORE moves (so every DRAM address is a whole number of elements).
Tensors hold integers of a named dtype (int2/int4/int8/int16/int32, uint8), packed LSB first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..configs import AccelConfig
from ..errors import TensorweaveError
from .spec import build_isa

ROLES = ("input", "weight", "const", "output", "scratch")
DTYPES = {"int2": (2, True), "int4": (4, True), "int8": (8, True), "uint8": (8, False),
          "int16": (16, True), "int32": (32, True)}
# 4 GiB: what 32-bit DRAM addresses reach (in bytes); bounds a hostile file's declared sizes too.
MAX_DRAM_BYTES = 1 << 32


class ProgramError(TensorweaveError, ValueError):
    """A malformed program or program file; the message names the tensor, field or file."""


def dtype_bits(dtype: str) -> tuple[int, bool]:
    if dtype not in DTYPES:
        raise ProgramError(f"unknown dtype '{dtype}'; dtypes: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def int_dtype(bits: int, signed: bool = True) -> str:
    return ("int" if signed else "uint") + str(bits)


def dtype_range(dtype: str) -> tuple[int, int]:
    bits, signed = dtype_bits(dtype)
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack integers (already in range) LSB first, `bits` each, into bytes."""
    flat = np.asarray(values).astype(np.int64).ravel() & ((1 << bits) - 1)
    if bits % 8 == 0:
        return flat.astype(f"<u{bits // 8}").tobytes()
    per_byte = 8 // bits
    if flat.size % per_byte:
        raise ProgramError(f"{flat.size} values of {bits} bits do not fill whole bytes")
    grouped = flat.reshape(-1, per_byte)
    shifts = np.arange(per_byte, dtype=np.int64) * bits
    return (grouped << shifts).sum(axis=1).astype(np.uint8).tobytes()


def unpack(raw: bytes | bytearray | np.ndarray, bits: int, count: int, signed: bool) -> np.ndarray:
    """Inverse of `pack`: `count` integers of `bits` each, sign-extended if `signed`."""
    buf = np.frombuffer(bytes(raw), dtype=np.uint8)
    if bits % 8 == 0:
        out = buf[: count * bits // 8].view(f"<u{bits // 8}").astype(np.int64)
    else:
        per_byte = 8 // bits
        nbytes = -(-count // per_byte)
        shifts = np.arange(per_byte, dtype=np.int64) * bits
        out = ((buf[:nbytes, None].astype(np.int64) >> shifts) & ((1 << bits) - 1)).ravel()[:count]
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


@dataclass(frozen=True)
class Tensor:
    name: str
    role: str
    dtype: str
    shape: tuple[int, ...]
    offset: int = -1  # byte offset in DRAM; -1 until placed

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python ints: a hostile shape cannot wrap around

    @property
    def nbytes(self) -> int:
        bits, _ = dtype_bits(self.dtype)
        return -(-self.size * bits // 8)


def element_alignment(config: AccelConfig) -> int:
    """Bytes every DRAM region is aligned to: the largest element a LOAD or STORE moves."""
    return max(config.inp_row_bytes, config.wgt_row_bytes, config.acc_row_bytes,
               config.out_row_bytes, config.uop_bytes, 16)


def _align(value: int, to: int) -> int:
    return -(-value // to) * to


@dataclass(frozen=True)
class Program:
    """Everything one run of the accelerator needs. Build with `Program.build`."""

    config: AccelConfig
    insns: tuple[int, ...]
    uops: tuple[int, ...]
    tensors: tuple[Tensor, ...]
    data: Mapping[str, np.ndarray] = field(default_factory=dict)
    insn_bytes: int = 0
    uop_offset: int = 0
    dram_bytes: int = 0

    @classmethod
    def build(cls, config: AccelConfig, insns: list[int], uops: list[int], tensors: list[Tensor],
              data: Mapping[str, np.ndarray] | None = None) -> Program:
        """Place the regions in DRAM (tensors with an offset keep it) and check the initial data."""
        isa = build_isa(config)
        insn_bytes = isa.instruction_width // 8
        _check_words(insns, isa.instruction_width, "instruction")
        _check_words(uops, isa.uop.word_width, "micro-op")
        align = element_alignment(config)
        uop_offset = _align(len(insns) * insn_bytes, align)
        cursor = _align(uop_offset + len(uops) * config.uop_bytes, align)
        placed = []
        names = set()
        for t in tensors:
            if t.name in names:
                raise ProgramError(f"tensor '{t.name}' is declared twice")
            names.add(t.name)
            if t.role not in ROLES:
                raise ProgramError(f"tensor '{t.name}': role '{t.role}' is not one of {', '.join(ROLES)}")
            dtype_bits(t.dtype)
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in t.shape):
                raise ProgramError(f"tensor '{t.name}': shape {t.shape} is not a list of non-negative integers")
            if t.offset < -1:
                raise ProgramError(f"tensor '{t.name}': offset {t.offset} is negative")
            if t.offset < 0:
                t = replace(t, offset=cursor)
            elif t.offset % align:
                raise ProgramError(f"tensor '{t.name}': offset {t.offset} is not a multiple of {align} bytes")
            cursor = max(cursor, _align(t.offset + t.nbytes, align))
            if cursor > MAX_DRAM_BYTES:
                raise ProgramError(f"tensor '{t.name}' ends at byte {t.offset + t.nbytes}, beyond the largest "
                                   f"DRAM image tensorweave builds ({MAX_DRAM_BYTES} bytes)")
            placed.append(t)
        _check_overlaps(placed, _align(uop_offset + len(uops) * config.uop_bytes, align))
        checked = {}
        for name, values in (data or {}).items():
            checked[name] = _checked_values(_find(placed, name), values)
        return cls(config, tuple(insns), tuple(uops), tuple(placed), checked, insn_bytes, uop_offset, cursor)

    def tensor(self, name: str) -> Tensor:
        return _find(self.tensors, name)

    @property
    def inputs(self) -> list[Tensor]:
        return [t for t in self.tensors if t.role == "input"]

    @property
    def outputs(self) -> list[Tensor]:
        return [t for t in self.tensors if t.role == "output"]

    def dram_image(self, inputs: Mapping[str, np.ndarray] | None = None) -> bytearray:
        """The initial DRAM contents: instructions, micro-ops and tensor data (inputs override data)."""
        image = bytearray(self.dram_bytes)
        for i, word in enumerate(self.insns):
            image[i * self.insn_bytes:(i + 1) * self.insn_bytes] = word.to_bytes(self.insn_bytes, "little")
        ub = self.config.uop_bytes
        for i, word in enumerate(self.uops):
            image[self.uop_offset + i * ub:self.uop_offset + (i + 1) * ub] = word.to_bytes(ub, "little")
        values = dict(self.data)
        for name, array in (inputs or {}).items():
            values[name] = _checked_values(self.tensor(name), array)
        for name, array in values.items():
            t = self.tensor(name)
            image[t.offset:t.offset + t.nbytes] = pack(array, dtype_bits(t.dtype)[0])
        return image

    def read_tensor(self, dram: bytes | bytearray, name: str) -> np.ndarray:
        t = self.tensor(name)
        bits, signed = dtype_bits(t.dtype)
        flat = unpack(bytes(dram[t.offset:t.offset + t.nbytes]), bits, t.size, signed)
        return flat.reshape(t.shape)

    # --- the file -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the program file (see program_file.py: a zip of manifest.json and data/NAME.npy, checksummed)."""
        from .program_file import save_program
        save_program(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a program file; any damage or inconsistency raises ProgramError naming the file and the part."""
        from .program_file import load_program
        return load_program(Path(path))


def _find(tensors: tuple[Tensor, ...] | list[Tensor], name: str) -> Tensor:
    for t in tensors:
        if t.name == name:
            return t
    raise ProgramError(f"no tensor named '{name}'; tensors: {', '.join(t.name for t in tensors) or '(none)'}")


def _checked_values(t: Tensor, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != t.shape:
        raise ProgramError(f"tensor '{t.name}': values of shape {array.shape} given, declared {t.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ProgramError(f"tensor '{t.name}': values must be integers, got {array.dtype}")
    lo, hi = dtype_range(t.dtype)
    if array.size and (array.min() < lo or array.max() > hi):
        raise ProgramError(f"tensor '{t.name}': values span {array.min()}..{array.max()}, "
                           f"outside {t.dtype} ({lo}..{hi})")
    return array.astype(np.int64)


def _check_words(words: list[int], width: int, what: str) -> None:
    for i, word in enumerate(words):
        if not isinstance(word, int) or isinstance(word, bool) or not 0 <= word < 1 << width:
            shown = f"0x{word:x}" if isinstance(word, int) else repr(word)
            raise ProgramError(f"{what} {i}: word {shown} does not fit the {width}-bit {what} word "
                               f"(allowed 0 <= word < 2**{width})")


def _check_overlaps(tensors: list[Tensor], first_free: int) -> None:
    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors)
    for t_start, _, name in spans:
        if t_start < first_free:
            raise ProgramError(f"tensor '{name}' at byte {t_start} overlaps the instructions or micro-ops "
                               f"(which end at byte {first_free})")
    for (_, a1, an), (b0, _, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ProgramError(f"tensors '{an}' and '{bn}' overlap in DRAM (bytes {b0}..{a1})")
