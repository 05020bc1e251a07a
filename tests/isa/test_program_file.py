"""Program files (issue 17, finding 3): a format version and a SHA-256 checked on load, every manifest
field validated, and any damage -- a flipped bit, a cut, an unknown compression -- a ProgramError
naming the file, never zlib.error / OSError / EOFError / NotImplementedError or a later OverflowError."""

import io
import json
import zipfile

import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.isa import Program, ProgramError, assemble
from tensorweave.isa.program import FORMAT_VERSION, payload_digest
from tensorweave.sim.programs import blocked_gemm

TINY = load_config("tiny")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "p.twp"
    assemble(blocked_gemm(TINY, 2, 8, 8), TINY).save(path)
    return path


def parts(path):
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    return manifest, members


def write(path, manifest, members, sign=True):
    if sign:
        body = {k: v for k, v in manifest.items() if k != "sha256"}
        manifest = body | {"sha256": payload_digest(body, members)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, raw in members.items():
            zf.writestr(name, raw)
    return path


def test_file_carries_version_and_checksum(saved):
    manifest, members = parts(saved)
    assert manifest["format"] == "tensorweave-program" and manifest["version"] == FORMAT_VERSION == 2
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    assert manifest["sha256"] == payload_digest(body, members) and len(manifest["sha256"]) == 64
    again = Program.load(saved)
    assert again.insns == assemble(blocked_gemm(TINY, 2, 8, 8), TINY).insns


@pytest.mark.parametrize("key, index, word, message", [
    ("insns", 0, f"{1 << 128:x}", r"instruction 0: word 0x1(0){32} does not fit the 128-bit instruction word "
                                  r"\(allowed 0 <= word < 2\*\*128\)"),
    ("insns", 1, "-5", r"field 'insns'\[1\]: '-5' is not a word; allowed: lower-case hex digits"),
    ("insns", 0, "0x12", r"field 'insns'\[0\]: '0x12' is not a word"),
    ("insns", 0, 12, r"field 'insns'\[0\]: 12 is not a word"),
    ("uops", 0, f"{1 << 32:x}", r"micro-op 0: word 0x100000000 does not fit the 32-bit micro-op word"),
])
def test_words_checked_against_their_width(saved, tmp_path, key, index, word, message):
    """Words wider than the instruction were accepted, and the simulator died with OverflowError."""
    manifest, members = parts(saved)
    manifest[key][index] = word
    with pytest.raises(ProgramError, match=message):
        Program.load(write(tmp_path / "w.twp", manifest, members))


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(offset=1 << 40), r"field 'tensors'\[0\] \('A'\): offset 1099511627776; allowed: a byte offset"),
    (lambda t: t.update(offset=-16), r"offset -16; allowed"),
    (lambda t: t.update(shape=[4, -1]), r"shape \[4, -1\]; allowed: a list of at most 16 integers"),
    (lambda t: t.update(shape=[1 << 31, 1 << 31]), r"ends at byte \d+, beyond the largest DRAM image"),
    (lambda t: t.update(name=["A"]), r"name \['A'\]; allowed: printable text"),
    (lambda t: t.update(dtype="float32"), r"dtype 'float32'; allowed roles: .*; dtypes: int2, int4"),
    (lambda t: t.pop("role"), r"allowed: a mapping of exactly name, role, dtype, shape, offset"),
    (lambda t: t.update(offset=0), r"tensor 'A' at byte 0 overlaps the instructions or micro-ops"),
])
def test_dram_layout_checked(saved, tmp_path, change, message):
    manifest, members = parts(saved)
    change(manifest["tensors"][0])
    with pytest.raises(ProgramError, match=message) as err:
        Program.load(write(tmp_path / "t.twp", manifest, members))
    assert str(err.value).startswith(str(tmp_path / "t.twp"))


def test_checksum_mismatch_named(saved, tmp_path):
    manifest, members = parts(saved)
    manifest["insns"][0] = "0"
    with pytest.raises(ProgramError, match=r"t.twp: checksum mismatch: the file was damaged or edited after it was "
                                           "written; reassemble or recompile it"):
        Program.load(write(tmp_path / "t.twp", manifest, members, sign=False))
    name = next(iter(members))
    members[name] = members[name][:-1] + b"\x01"
    manifest, _ = parts(saved)
    with pytest.raises(ProgramError, match="checksum mismatch"):
        Program.load(write(tmp_path / "t.twp", manifest, members, sign=False))


def test_old_and_newer_versions(saved, tmp_path):
    manifest, members = parts(saved)
    old = {k: v for k, v in manifest.items() if k not in ("version", "sha256")} | {"format": "tensorweave-program/1"}
    with pytest.raises(ProgramError, match=r"written by an older tensorweave \(program format version 1, without a "
                                           r"checksum\); this one reads version 2: reassemble it \(tensorweave asm\)"):
        Program.load(write(tmp_path / "o.twp", old, members, sign=False))
    with pytest.raises(ProgramError, match="program format version 3 is newer than this tensorweave reads; allowed: 2"):
        Program.load(write(tmp_path / "n.twp", manifest | {"version": 3}, members))
    with pytest.raises(ProgramError, match="program format version 2.0 is not one tensorweave wrote"):
        Program.load(write(tmp_path / "n.twp", manifest | {"version": 2.0}, members))


def test_data_members_checked(saved, tmp_path):
    manifest, members = parts(saved)
    name = next(iter(members))
    big = io.BytesIO()
    np.save(big, np.zeros(100_000, dtype=np.int64))
    with pytest.raises(ProgramError, match=fr"member '{name}' is 800128 bytes, more than its tensor's values take"):
        Program.load(write(tmp_path / "d.twp", manifest, members | {name: big.getvalue()}))
    with pytest.raises(ProgramError, match="member 'data/nobody.npy' is no tensor's data"):
        Program.load(write(tmp_path / "d.twp", manifest, members | {"data/nobody.npy": b""}))
    with pytest.raises(ProgramError, match=fr"member '{name}' is not a readable array \(ValueError"):
        Program.load(write(tmp_path / "d.twp", manifest, members | {name: b"\x93NUMPY garbage"}))
    floats = io.BytesIO()
    np.save(floats, np.zeros(np.load(io.BytesIO(members[name])).shape))
    with pytest.raises(ProgramError, match="values must be integers, got float64"):
        Program.load(write(tmp_path / "d.twp", manifest, members | {name: floats.getvalue()}))


def test_every_flipped_byte_and_every_cut_is_a_program_error(saved, tmp_path):
    """One flipped bit gave a raw zlib.error; other damage OSError / EOFError."""
    raw = saved.read_bytes()
    path = tmp_path / "x.twp"
    outcomes = set()
    for pos in range(len(raw)):
        path.write_bytes(raw[:pos] + bytes([raw[pos] ^ (1 << (pos % 8))]) + raw[pos + 1:])
        try:
            Program.load(path)
            outcomes.add("loaded")  # a flip in a field zip ignores (e.g. a timestamp)
        except ProgramError as exc:
            outcomes.add(str(exc).split(": ")[1].split(" (")[0])
    for cut in range(0, len(raw), 7):
        path.write_bytes(raw[:cut])
        with pytest.raises(ProgramError):
            Program.load(path)
    assert {"damaged program file", "checksum mismatch"} <= outcomes


def test_unsupported_compression_method(saved, tmp_path):
    """NotImplementedError from zipfile before."""
    raw = bytearray(saved.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = raw.find(signature)
        raw[at + offset:at + offset + 2] = (99).to_bytes(2, "little")
    (tmp_path / "m.twp").write_bytes(bytes(raw))
    with pytest.raises(ProgramError, match=r"m.twp: damaged program file \(NotImplementedError"):
        Program.load(tmp_path / "m.twp")


def test_duplicate_member_refused(saved, tmp_path):
    manifest, members = parts(saved)
    path = write(tmp_path / "d.twp", manifest, members)
    with zipfile.ZipFile(path, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("manifest.json", "{}")
    with pytest.raises(ProgramError, match="a member is stored twice"):
        Program.load(path)
