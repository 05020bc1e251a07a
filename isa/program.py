"""A Program: instruction words, micro-ops and a DRAM image with named tensors; one file on disk.

DRAM layout: instructions from byte 0, then the micro-ops, then each tensor, every region aligned
to the largest element any LOAD/STORE moves (so every DRAM address is a whole number of elements).
Tensors hold integers of a named dtype (int2/int4/int8/int16/int32, uint8), packed LSB first.

The file (.twp) is a zip of manifest.json and data/NAME.npy. manifest.json holds `format`
("tensorweave-program"), `version` (FORMAT_VERSION), `sha256`, the config, the instruction and
micro-op words (hex strings) and the tensors (name, role, dtype, shape, byte offset). `sha256` is the
SHA-256 of the manifest without it (canonical JSON) followed by every data member (name, length,
bytes, in name order), so any change after writing is caught on load. Files of version 1 (before the
checksum) are refused with a message to reassemble. Loading trusts nothing: zip damage, a checksum
mismatch, a field of the wrong type, a word wider than the instruction, a tensor outside the DRAM
image or data of the wrong size each raise a ProgramError naming the file and the part.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..configs import AccelConfig
from ..configs.yaml_safe import excerpt
from ..errors import TensorweaveError
from .spec import build_isa

ROLES = ("input", "weight", "const", "output", "scratch")
DTYPES = {"int2": (2, True), "int4": (4, True), "int8": (8, True), "uint8": (8, False),
          "int16": (16, True), "int32": (32, True)}
# 4 GiB: what 32-bit DRAM addresses reach (in bytes); bounds a hostile file's declared sizes too.
MAX_DRAM_BYTES = 1 << 32
MAX_ELEMENTS = MAX_DRAM_BYTES * 4   # of the narrowest dtype, int2


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
            check_shape(t.name, t.shape)
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
        """Write the program file: a zip of manifest.json and data/NAME.npy, versioned and checksummed."""
        save_program(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a program file; any damage or inconsistency raises ProgramError naming the file and the part."""
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


def check_shape(name: str, shape: tuple[int, ...]) -> None:
    """Refuse a shape that is not non-negative integers, or whose non-zero sizes multiply past what a
    DRAM image holds (numpy cannot even make an empty array of shape (0, 2**40, 2**40))."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProgramError(f"tensor '{name}': shape {shape} is not a list of non-negative integers")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise ProgramError(f"tensor '{name}': shape {shape} has more elements than a DRAM image of "
                           f"{MAX_DRAM_BYTES} bytes holds, even with one dimension 0")


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


# --- the program file (.twp) ------------------------------------------------------------------
FILE_FORMAT = "tensorweave-program"
FORMAT_VERSION = 2
_OLD_FORMATS = {"tensorweave-program/1": 1}
MANIFEST = "manifest.json"
_MANIFEST_KEYS = ("format", "version", "sha256", "config", "insns", "uops", "tensors")
_TENSOR_KEYS = ("name", "role", "dtype", "shape", "offset")
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_NPY_HEADER_BYTES = 4096   # room for an .npy header beyond the values
_HEX_WORD = re.compile(r"[0-9a-f]{1,256}")   # 256 hex digits: a 1024-bit word, the widest the ISA allows
# What zipfile, zlib and numpy raise on damaged bytes (a flipped bit, a cut file, an unknown method).
_DAMAGE = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError,
           KeyError, IndexError, struct.error, OverflowError, UnicodeError)


def payload_digest(body: dict[str, Any], members: dict[str, bytes]) -> str:
    """The SHA-256 stored in `sha256`: the manifest `body` (without sha256) and the data members."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(members):
        digest.update(name.encode() + b"\0" + len(members[name]).to_bytes(8, "little"))
        digest.update(members[name])
    return digest.hexdigest()


def save_program(program: Program, path: Path) -> None:
    body: dict[str, Any] = {
        "format": FILE_FORMAT,
        "version": FORMAT_VERSION,
        "config": program.config.to_dict(),
        "insns": [f"{w:x}" for w in program.insns],
        "uops": [f"{w:x}" for w in program.uops],
        "tensors": [{"name": t.name, "role": t.role, "dtype": t.dtype, "shape": list(t.shape),
                     "offset": t.offset} for t in program.tensors],
    }
    members = {}
    for name, array in program.data.items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(array, dtype=np.int64), allow_pickle=False)
        members[f"data/{name}.npy"] = buf.getvalue()
    manifest = body | {"sha256": payload_digest(body, members)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, raw in members.items():
            zf.writestr(name, raw)


def load_program(path: Path) -> Program:
    if not path.is_file():
        raise ProgramError(f"program file '{path}' does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            manifest = _read_manifest(zf, infos, path)
            tensors = _tensors(manifest["tensors"], path)
            members = _read_members(zf, infos, tensors, path)
        body = {k: v for k, v in manifest.items() if k != "sha256"}
        digest = payload_digest(body, members)
    except ProgramError:
        raise
    except _DAMAGE as exc:
        raise ProgramError(f"{path}: damaged program file ({type(exc).__name__}: {excerpt(str(exc))}); "
                           "reassemble or recompile it") from None
    if digest != manifest["sha256"]:
        raise ProgramError(f"{path}: checksum mismatch: the file was damaged or edited after it was written; "
                           "reassemble or recompile it")
    try:
        config = AccelConfig.from_dict(manifest["config"], source=f"{path} (embedded config)")
        insns = _words(manifest["insns"], "insns")
        uops = _words(manifest["uops"], "uops")
        data = {name[len("data/"):-len(".npy")]: _array(raw, name) for name, raw in members.items()}
        return Program.build(config, insns, uops, tensors, data)
    except ProgramError as exc:
        raise ProgramError(f"{path}: {exc}") from None
    except TensorweaveError as exc:
        text = str(exc)
        raise ProgramError(text if text.startswith(str(path)) else f"{path}: {text}") from None


def _read_manifest(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: Path) -> dict[str, Any]:
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise ProgramError(f"{path}: a member is stored twice; allowed: each member once")
    if MANIFEST not in names:
        raise ProgramError(f"{path}: not a tensorweave program (no {MANIFEST})")
    info = zf.getinfo(MANIFEST)
    if info.file_size > _MAX_MANIFEST_BYTES:
        raise ProgramError(f"{path}: {MANIFEST} is {info.file_size} bytes; allowed: at most {_MAX_MANIFEST_BYTES}")
    manifest = json.loads(zf.read(info))
    if not isinstance(manifest, dict):
        raise ProgramError(f"{path}: {MANIFEST} is a {type(manifest).__name__}, not a mapping")
    fmt = manifest.get("format")
    if isinstance(fmt, str) and fmt in _OLD_FORMATS:
        raise ProgramError(f"{path}: written by an older tensorweave (program format version {_OLD_FORMATS[fmt]}, "
                           f"without a checksum); this one reads version {FORMAT_VERSION}: reassemble it "
                           "(tensorweave asm) or recompile the model")
    if fmt != FILE_FORMAT:
        raise ProgramError(f"{path}: format {excerpt(fmt)} is not {FILE_FORMAT!r}: not a tensorweave program")
    version = manifest.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise ProgramError(f"{path}: program format version {excerpt(version)}"
                           + (" is newer than this tensorweave reads" if newer else " is not one tensorweave wrote")
                           + f"; allowed: {FORMAT_VERSION}")
    for key in manifest:
        if key not in _MANIFEST_KEYS:
            raise ProgramError(f"{path}: {MANIFEST}: unknown field {excerpt(key)}; fields: {', '.join(_MANIFEST_KEYS)}")
    for key in _MANIFEST_KEYS:
        if key not in manifest:
            raise ProgramError(f"{path}: {MANIFEST}: missing field '{key}'")
    digest = manifest["sha256"]
    if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise ProgramError(f"{path}: {MANIFEST}: field 'sha256' {excerpt(digest)} is not 64 hex digits")
    return manifest


def _tensors(raw: Any, path: Path) -> list[Tensor]:
    where = f"{path}: {MANIFEST}: field 'tensors'"
    if not isinstance(raw, list):
        raise ProgramError(f"{where}: a {type(raw).__name__}, not a list")
    tensors = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict) or sorted(entry) != sorted(_TENSOR_KEYS):
            raise ProgramError(f"{at}: {excerpt(entry)}; allowed: a mapping of exactly {', '.join(_TENSOR_KEYS)}")
        name, role, dtype, shape, offset = (entry[k] for k in _TENSOR_KEYS)
        if not (isinstance(name, str) and name and len(name) <= 256 and name.isprintable()):
            raise ProgramError(f"{at}: name {excerpt(name)}; allowed: printable text of 1 to 256 characters")
        if not (isinstance(role, str) and role in ROLES and isinstance(dtype, str) and dtype in DTYPES):
            raise ProgramError(f"{at} ('{name}'): role {excerpt(role)} / dtype {excerpt(dtype)}; allowed roles: "
                               f"{', '.join(ROLES)}; dtypes: {', '.join(DTYPES)}")
        if not (isinstance(shape, list) and len(shape) <= 16 and all(_count(d) for d in shape)):
            raise ProgramError(f"{at} ('{name}'): shape {excerpt(shape)}; allowed: a list of at most 16 "
                               f"integers from 0 to {MAX_DRAM_BYTES}")
        if not _count(offset):
            raise ProgramError(f"{at} ('{name}'): offset {excerpt(offset)}; allowed: a byte offset from 0 "
                               f"to {MAX_DRAM_BYTES}")
        tensor = Tensor(name, role, dtype, tuple(shape), offset)
        if tensor.offset + tensor.nbytes > MAX_DRAM_BYTES:
            raise ProgramError(f"{at} ('{name}'): ends at byte {tensor.offset + tensor.nbytes}, beyond the largest "
                               f"DRAM image ({MAX_DRAM_BYTES} bytes)")
        tensors.append(tensor)
    return tensors


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DRAM_BYTES


def _read_members(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], tensors: list[Tensor],
                  path: Path) -> dict[str, bytes]:
    sizes = {f"data/{t.name}.npy": t.size * 8 + _NPY_HEADER_BYTES for t in tensors}
    members = {}
    for info in infos:
        if info.filename == MANIFEST:
            continue
        if info.filename not in sizes:
            raise ProgramError(f"{path}: member {excerpt(info.filename)} is no tensor's data; allowed: "
                               f"{MANIFEST} and data/NAME.npy for a tensor NAME of the manifest")
        if info.file_size > sizes[info.filename]:
            raise ProgramError(f"{path}: member '{info.filename}' is {info.file_size} bytes, more than its "
                               f"tensor's values take ({sizes[info.filename]} bytes at most)")
        members[info.filename] = zf.read(info)
    return members


def _words(raw: Any, key: str) -> list[int]:
    if not isinstance(raw, list):
        raise ProgramError(f"{MANIFEST}: field '{key}': a {type(raw).__name__}, not a list of hex words")
    for i, word in enumerate(raw):
        if not (isinstance(word, str) and _HEX_WORD.fullmatch(word)):
            raise ProgramError(f"{MANIFEST}: field '{key}'[{i}]: {excerpt(word)} is not a word; allowed: "
                               "lower-case hex digits")
    return [int(w, 16) for w in raw]


def _array(raw: bytes, name: str) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except _DAMAGE as exc:
        raise ProgramError(f"member '{name}' is not a readable array ({type(exc).__name__}: {exc})") from None
    if not isinstance(array, np.ndarray):
        raise ProgramError(f"member '{name}' is not an array")
    return array
