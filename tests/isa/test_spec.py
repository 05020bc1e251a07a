"""ISA from YAML: VTA's layout for vta-default, overflow errors, and encode/decode round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorweave.configs import AccelConfig, load_config, preset_names
from tensorweave.isa import Insn, ISAError, Uop, build_isa

# VTA's layout, transcribed from include/vta/hw_spec.h (apache/tvm-vta): field -> (msb, lsb).
VTA_LAYOUT = {
    "LOAD": {"opcode": (2, 0), "pop_prev": (3, 3), "pop_next": (4, 4), "push_prev": (5, 5), "push_next": (6, 6),
             "memory_id": (9, 7), "sram_base": (25, 10), "dram_base": (57, 26), "y_size": (79, 64),
             "x_size": (95, 80), "x_stride": (111, 96), "y_pad_0": (115, 112), "y_pad_1": (119, 116),
             "x_pad_0": (123, 120), "x_pad_1": (127, 124)},
    "GEMM": {"reset": (7, 7), "uop_begin": (20, 8), "uop_end": (34, 21), "iter_out": (48, 35),
             "iter_in": (62, 49), "dst_factor_out": (74, 64), "dst_factor_in": (85, 75),
             "src_factor_out": (96, 86), "src_factor_in": (107, 97), "wgt_factor_out": (117, 108),
             "wgt_factor_in": (127, 118)},
    "ALU": {"reset": (7, 7), "uop_begin": (20, 8), "uop_end": (34, 21), "iter_out": (48, 35),
            "iter_in": (62, 49), "dst_factor_out": (74, 64), "dst_factor_in": (85, 75),
            "src_factor_out": (96, 86), "src_factor_in": (107, 97), "alu_opcode": (110, 108),
            "use_imm": (111, 111), "imm": (127, 112)},
}


def test_vta_default_reproduces_vta_layout():
    isa = build_isa(load_config("vta-default"))
    assert isa.instruction_width == 128
    for fmt_name, fields in VTA_LAYOUT.items():
        fmt = isa.formats[fmt_name]
        for name, (msb, lsb) in fields.items():
            f = fmt.field(name)
            assert (f.msb, f.offset) == (msb, lsb), f"{fmt_name}.{name}"
    assert isa.formats["STORE"].fields == isa.formats["LOAD"].fields
    assert [(f.name, f.msb, f.offset) for f in isa.uop.fields] == [("dst", 10, 0), ("src", 21, 11), ("wgt", 31, 22)]
    assert isa.enums["opcode"] == {"LOAD": 0, "STORE": 1, "GEMM": 2, "FINISH": 3, "ALU": 4}
    assert isa.enums["memory_id"] == {"UOP": 0, "WGT": 1, "INP": 2, "ACC": 3, "OUT": 4}
    assert isa.enums["alu_opcode"] == {"MIN": 0, "MAX": 1, "ADD": 2, "SHR": 3, "MUL": 4, "RSHR": 5}
    assert isa.formats["ALU"].field("imm").signed


def test_widths_follow_the_config():
    tiny = build_isa(load_config("tiny"))
    assert tiny.formats["GEMM"].field("uop_begin").width == load_config("tiny").uop_index_width == 7
    assert tiny.uop.field("dst").width == 6


def test_format_overflow_named():
    """A 1 MiB accumulator needs 14-bit indices: GEMM's factors no longer fit the 128-bit word."""
    data = load_config("vta-default").to_dict() | {"name": "huge", "acc_buffer_bytes": 1024 * 1024}
    with pytest.raises(ISAError, match=r"the GEMM format needs 140 bits and overflows the 128-bit word by 12 bits "
                                       r"for config 'huge'"):
        build_isa(AccelConfig.from_dict(data))


def test_field_out_of_range_named():
    isa = build_isa(load_config("vta-default"))
    with pytest.raises(ISAError, match=r"GEMM.uop_begin = 8192 does not fit its 13 bits \(allowed 0..8191\)"):
        isa.encode(Insn("GEMM", {"uop_begin": 8192}))
    with pytest.raises(ISAError, match=r"ALU.imm = 40000 does not fit its 16 bits \(allowed -32768..32767\)"):
        isa.encode(Insn("ALU", {"imm": 40000}))
    with pytest.raises(ISAError, match="GEMM has no field"):
        isa.encode(Insn("GEMM", {"bogus": 1}))


def test_known_encoding():
    """A GEMM word assembled by hand from VTA's bit positions."""
    isa = build_isa(load_config("vta-default"))
    word = isa.encode(Insn("GEMM", {"reset": 1, "uop_begin": 5, "uop_end": 9, "iter_out": 3, "iter_in": 2,
                                    "dst_factor_out": 7, "wgt_factor_in": 1}))
    expected = 2 | 1 << 7 | 5 << 8 | 9 << 21 | 3 << 35 | 2 << 49 | 7 << 64 | 1 << 118
    assert word == expected
    assert isa.decode(expected).fields["uop_end"] == 9


def _insn_strategy(isa, name):
    fmt = isa.formats[name]
    fields = {f.name: st.integers(f.lo, f.hi) for f in fmt.named_fields if f.name != "opcode" and not f.enum}
    for f in fmt.named_fields:
        if f.enum and f.name != "opcode":
            fields[f.name] = st.sampled_from(sorted(isa.enums[f.enum].values()))
    return st.fixed_dictionaries(fields).map(lambda d: Insn(name, d))


@pytest.mark.parametrize("preset", preset_names())
@pytest.mark.parametrize("fmt", ["LOAD", "STORE", "GEMM", "ALU", "FINISH"])
def test_round_trip_every_format(preset, fmt):
    isa = build_isa(load_config(preset))

    @settings(max_examples=60, deadline=None)
    @given(_insn_strategy(isa, fmt))
    def check(insn):
        word = isa.encode(insn)
        assert 0 <= word < 1 << isa.instruction_width
        assert isa.decode(word) == insn

    check()


@pytest.mark.parametrize("preset", preset_names())
def test_uop_round_trip(preset):
    isa = build_isa(load_config(preset))
    dst, src, wgt = (isa.uop.field(n) for n in ("dst", "src", "wgt"))

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, dst.hi), st.integers(0, src.hi), st.integers(0, wgt.hi))
    def check(d, s, w):
        word = isa.encode_uop(Uop(d, s, w))
        assert word < 1 << isa.uop.word_width and isa.decode_uop(word) == Uop(d, s, w)

    check()


def test_illegal_opcode_on_decode():
    isa = build_isa(load_config("tiny"))
    with pytest.raises(ISAError, match="7 is not a valid opcode"):
        isa.decode(7)


def test_amaranth_layouts_match_encoder():
    from amaranth import Shape
    from tensorweave.isa.amaranth import enums, layouts
    isa = build_isa(load_config("vta-default"))
    lays = layouts(isa)
    for name, fmt in isa.formats.items():
        assert lays[name].size == isa.instruction_width
        for f in fmt.named_fields:
            assert lays[name][f.name].offset == f.offset
            assert Shape.cast(lays[name][f.name].shape).width == f.width
    assert lays["uop"].size == 32
    assert enums(isa)["opcode"].GEMM.value == 2


def test_amaranth_enums_are_shared_between_layouts():
    from tensorweave.isa.amaranth import enums, layouts
    isa = build_isa(load_config("tiny"))
    lays = layouts(isa)
    assert lays["LOAD"]["memory_id"].shape is lays["STORE"]["memory_id"].shape is enums(isa)["memory_id"]
