"""Malformed ISA descriptions: each refused with an ISAError naming the file, the place and what is
allowed (issue 17, finding 4: of 27 malformed files, 13 raised other exceptions and 4 were accepted)."""

import copy

import pytest
import yaml
from tensorweave.configs import load_config
from tensorweave.isa import ISAError, build_isa
from tensorweave.isa.spec import ISA_YAML, enum_members

BASE = yaml.safe_load(ISA_YAML.read_text())
TEXT = ISA_YAML.read_text()


def edit(fn):
    def make():
        data = copy.deepcopy(BASE)
        fn(data)
        return yaml.safe_dump(data, sort_keys=False)
    return make


def fmt_fields(data, name):
    return data["formats"][name]["fields"]


def _set(path, value):
    def fn(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit(fn)


def _delete(path):
    def fn(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit(fn)


CASES = {
    "empty file": (lambda: "", "the top level: a NoneType, not a mapping"),
    "a list": (lambda: "- 1\n- 2\n", "the top level: a list, not a mapping"),
    "binary": (lambda: "\x00\x01\x02", "a binary file, not YAML text"),
    "missing formats": (_delete(["formats"]), "section 'formats': missing"),
    "unknown section": (_set(["extra"], 1), "section 'extra': unknown section; allowed: instruction_width"),
    "widths a list": (_set(["widths"], [1, 2]), "widths: a list, not a mapping"),
    "negative width": (_set(["widths", "pad"], -4), "widths.pad: -4 gives -4 bits; allowed: 1 to 1024"),
    "zero width": (_set(["widths", "pad"], 0), "widths.pad: 0 gives 0 bits; allowed: 1 to 1024"),
    "unparsable width": (_set(["widths", "sram_addr"], "max(16,"), "widths.sram_addr: cannot parse width expression"),
    "unknown name": (_set(["widths", "size"], "nosuch + 1"), "widths.size: unknown name 'nosuch'"),
    "division by zero": (_set(["widths", "size"], "16 // (batch - 1)"), "widths.size: division by zero"),
    "power": (_set(["widths", "size"], "2 ** 9"), "widths.size: unsupported expression '2 \\*\\* 9'"),
    "runaway value": (_set(["widths", "size"], "99999999999 * 99999999999"), "reaches 9999999999800000000001"),
    "width a list": (_set(["widths", "size"], [16]), r"widths.size: \[16\] is not a width"),
    "width a float": (_set(["widths", "size"], 1.5), "widths.size: 1.5 is not a width"),
    "max of nothing": (_set(["widths", "size"], "max()"), r"max\(\) in 'max\(\)': needs at least one argument"),
    "clog2 of two": (_set(["widths", "size"], "clog2(4, 8)"), "clog2 takes one argument, not 2"),
    "huge width": (_set(["widths", "size"], 5000), "widths.size: 5000 gives 5000 bits; allowed: 1 to 1024"),
    "negative enum value": (_set(["enums", "memory_id", "OUT"], -1), r"enums.memory_id.OUT: -1 is not a value"),
    "duplicate enum value": (_set(["enums", "memory_id", "OUT"], 3), r"enums.memory_id.OUT: value 3 is also ACC"),
    "enum value text": (_set(["enums", "opcode", "ALU"], "four"), r"enums.opcode.ALU: 'four' is not a value"),
    "enum value too wide": (_set(["enums", "memory_id", "OUT"], 9), r"enum memory_id.OUT = 9 does not fit 3 bits"),
    "enum without width": (_set(["enums", "colour"], {"RED": 0}), r"enums.colour: has no width"),
    "memory_id without OUT": (_delete(["enums", "memory_id", "OUT"]), "enums.memory_id: no member OUT"),
    "opcode without format": (_set(["enums", "opcode", "NOP"], 5), r"formats: formats .* and opcodes .* differ"),
    "format without opcode": (_set(["formats", "NOP"], {"fields": []}), r"formats: formats .* and opcodes .* differ"),
    "enum alu_opcode in YAML": (_set(["enums", "alu_opcode"], {"MIN": 0}), "comes from contract/alu.py"),
    "unknown enum reference": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(enum="colour")),
                               r"formats.GEMM.fields\[0\].enum: no enum 'colour'"),
    "field without width": (edit(lambda d: fmt_fields(d, "GEMM")[0].pop("width")),
                            r"formats.GEMM.fields\[0\].width: missing"),
    "misspelt key": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(widht=1)),
                     r"formats.GEMM.fields\[0\].widht: unknown key"),
    "duplicate field": (edit(lambda d: fmt_fields(d, "GEMM").append(dict(fmt_fields(d, "GEMM")[0]))),
                        r"formats.GEMM.fields\[12\].name: field 'reset' is given twice"),
    "field named like padding": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(name="unused_3")),
                                 "'unused_3' is not a field name"),
    "field name a number": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(name=7)), "7 is not a field name"),
    "signed not a flag": (edit(lambda d: fmt_fields(d, "ALU")[-1].update(signed=2)), r"signed: 2 is not a flag"),
    "doc not text": (_set(["formats", "GEMM", "doc"], [1]), r"formats.GEMM.doc: \[1\] is not text"),
    "pad_to backwards": (edit(lambda d: fmt_fields(d, "GEMM").append({"pad_to": 32})),
                         r"pad_to: 32 goes back before pad_to 64"),
    "pad_to negative": (edit(lambda d: fmt_fields(d, "GEMM").insert(0, {"pad_to": -1})), "-1 is not a bit position"),
    "pad_to past the word": (edit(lambda d: fmt_fields(d, "GEMM").append({"pad_to": 200})),
                             "GEMM: pad_to 200 is beyond the 128-bit word"),
    "pad_to with a name": (edit(lambda d: fmt_fields(d, "GEMM").append({"pad_to": 100, "name": "x"})),
                           "pad_to with other keys"),
    "head without opcode": (edit(lambda d: d["head"].pop(0)), r"head\[0\]: .* is not the opcode"),
    "uop without dst": (edit(lambda d: d["uop"]["fields"].pop(0)), "uop.fields: no field dst"),
    "fields not a list": (_set(["formats", "GEMM", "fields"], "reset"), "formats.GEMM.fields: 'reset' is not a list"),
    "instruction width not bytes": (_set(["instruction_width"], 100), "instruction_width: 100 bits is not whole bytes"),
    "instruction width huge": (_set(["instruction_width"], 4096), "instruction_width: 4096 gives 4096 bits"),
    "format overflows": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(width=100)),
                         "the GEMM format needs 184 bits and overflows the 128-bit word by 56 bits"),
    "field wider than the word": (edit(lambda d: fmt_fields(d, "GEMM")[0].update(width=999)),
                                  r"GEMM.reset: 999 gives 999 bits; allowed: 1 to 128"),
    "enum field too narrow": (edit(lambda d: fmt_fields(d, "LOAD")[0].update(width=2)),
                              "LOAD.memory_id: enum memory_id has values up to 4, more than its 2 bits hold"),
    "duplicate YAML key": (lambda: TEXT.replace("  FINISH:\n", "  GEMM: {fields: []}\n  FINISH:\n"),
                           r"key 'GEMM' is given twice \(first on line"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_description_refused(case, tmp_path):
    make, message = CASES[case]
    path = tmp_path / "isa.yaml"
    path.write_text(make())
    with pytest.raises(ISAError, match=message) as err:
        build_isa(load_config("tiny"), path)
    assert str(err.value).startswith(str(path)) or "format needs" in str(err.value) or "does not fit" in str(err.value)


def test_unknown_enum_named(tmp_path):
    path = tmp_path / "isa.yaml"
    path.write_text(TEXT)
    assert enum_members("memory_id", path)["OUT"] == 4
    with pytest.raises(ISAError, match="no enum 'colour'; enums: opcode, memory_id"):
        enum_members("colour", path)


def test_the_real_description_passes():
    for preset in ("tiny", "vta-default"):
        assert build_isa(load_config(preset)).instruction_width == 128
