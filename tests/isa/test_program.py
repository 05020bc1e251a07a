"""Program files: save/load, sub-byte packing, placement, and clear errors on bad files."""

import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorweave.configs import load_config
from tensorweave.isa import Program, ProgramError, Tensor, assemble
from tensorweave.isa.program import pack, unpack
from tensorweave.sim.programs import blocked_gemm


@settings(max_examples=50, deadline=None)
@given(st.sampled_from([2, 4, 8, 16, 32]), st.data())
def test_pack_unpack_round_trip(bits, data):
    count = data.draw(st.integers(1, 40)) * (8 // bits if bits < 8 else 1)
    values = data.draw(st.lists(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1), min_size=count, max_size=count))
    raw = pack(np.array(values), bits)
    assert len(raw) == count * bits // 8
    assert unpack(raw, bits, count, signed=True).tolist() == values


def test_int4_packs_low_nibble_first():
    assert pack(np.array([1, -1, 7, -8]), 4) == bytes([0xF1, 0x87])


def test_save_load_round_trip(tmp_path):
    config = load_config("w4a8")
    program = assemble(blocked_gemm(config, 16, 32, 16), config)
    path = tmp_path / "p.twp"
    program.save(path)
    again = Program.load(path)
    assert again.config == config and again.insns == program.insns and again.uops == program.uops
    assert again.tensors == program.tensors and again.dram_image() == program.dram_image()


def test_corrupted_file_is_named(tmp_path):
    path = tmp_path / "bad.twp"
    path.write_bytes(b"not a zip")
    with pytest.raises(ProgramError, match=r"bad.twp: damaged program file \(BadZipFile"):
        Program.load(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", '{"format": "something-else"}')
    with pytest.raises(ProgramError, match="format 'something-else' is not 'tensorweave-program': not a tensorweave"):
        Program.load(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", '{"format": "tensorweave-program", "version": 2}')
    with pytest.raises(ProgramError, match=r"manifest.json: missing field 'sha256'"):
        Program.load(path)


def test_missing_file():
    with pytest.raises(ProgramError, match="does not exist"):
        Program.load("/nonexistent/p.twp")


def test_overlapping_tensors_refused():
    config = load_config("tiny")
    with pytest.raises(ProgramError, match="tensors 'A' and 'B' overlap in DRAM"):
        Program.build(config, [], [], [Tensor("A", "input", "int8", (64,), 64), Tensor("B", "input", "int8", (4,), 96)])
    with pytest.raises(ProgramError, match="overlaps the instructions"):
        Program.build(config, [0] * 8, [], [Tensor("A", "input", "int8", (4,), 64)])
    with pytest.raises(ProgramError, match="offset 3 is not a multiple of 16 bytes"):
        Program.build(config, [], [], [Tensor("A", "input", "int8", (4,), 3)])


def test_wrong_input_shape_named():
    config = load_config("tiny")
    program = Program.build(config, [], [], [Tensor("A", "input", "int8", (2, 4))])
    with pytest.raises(ProgramError, match=r"tensor 'A': values of shape \(4,\) given, declared \(2, 4\)"):
        program.dram_image({"A": np.zeros(4, dtype=np.int8)})
    with pytest.raises(ProgramError, match="values must be integers"):
        program.dram_image({"A": np.zeros((2, 4))})
