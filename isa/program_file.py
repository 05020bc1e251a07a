"""The program file (.twp): a zip of manifest.json and data/NAME.npy, versioned and checksummed.

manifest.json holds `format` ("tensorweave-program"), `version` (FORMAT_VERSION), `sha256`, the
config, the instruction and micro-op words (hex strings) and the tensors (name, role, dtype, shape,
byte offset). `sha256` is the SHA-256 of the manifest without it (canonical JSON) followed by every
data member (name, length, bytes, in name order), so any change to the file after it was written is
caught on load. Files of version 1 (before the checksum) are refused with a message to reassemble.

`load_program` trusts nothing: zip damage, a checksum mismatch, a field of the wrong type, a word
wider than the instruction, a tensor outside the DRAM image or data of the wrong size each raise a
ProgramError naming the file and the part.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..configs import AccelConfig
from ..configs.yaml_safe import excerpt
from ..errors import TensorweaveError
from .program import DTYPES, MAX_DRAM_BYTES, ROLES, Program, ProgramError, Tensor

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
