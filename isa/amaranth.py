"""Amaranth data layouts and opcode enums generated from the ISA for the hardware (hw/).

Built at run time from the same `ISA` object as the encoder, so a layout field is always where
the encoder puts it. Every instruction format becomes a `StructLayout` of the full word width
(reserved gaps as `unused_<bit>` fields), the micro-op likewise, and each ISA enumeration an
`amaranth.lib.enum.Enum` with the ISA's width.
"""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data, enum

from .spec import ISA, Format


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_ENUMS: dict[int, tuple[ISA, dict[str, type[enum.Enum]]]] = {}


def enums(isa: ISA) -> dict[str, type[enum.Enum]]:
    """One Amaranth enum per ISA enumeration, e.g. enums(isa)["opcode"].GEMM.

    Built once per ISA object, so fields of different layouts of the same ISA compare equal.
    """
    cached = _ENUMS.get(id(isa))
    if cached is not None and cached[0] is isa:
        return cached[1]
    out = {}
    for name, members in isa.enums.items():
        shape = unsigned(isa.widths[name])
        namespace = enum.EnumType.__prepare__(_camel(name), (enum.Enum,), shape=shape)
        for member, value in members.items():
            namespace[member] = value
        out[name] = enum.EnumType(_camel(name), (enum.Enum,), namespace, shape=shape)
    _ENUMS[id(isa)] = (isa, out)
    return out


def layout(fmt: Format, isa: ISA) -> data.StructLayout:
    """The format as a StructLayout covering the whole word (fields in bit order)."""
    kinds = enums(isa)
    members: dict[str, object] = {}
    for f in fmt.fields:
        if f.enum:
            members[f.name] = kinds[f.enum]
        else:
            members[f.name] = signed(f.width) if f.signed else unsigned(f.width)
    used = fmt.used_width
    if used < fmt.word_width:
        members[f"unused_{used}"] = unsigned(fmt.word_width - used)
    return data.StructLayout(members)


def layouts(isa: ISA) -> dict[str, data.StructLayout]:
    """Layouts of every instruction format, plus 'uop' for the micro-op."""
    out = {name: layout(fmt, isa) for name, fmt in isa.formats.items()}
    out["uop"] = layout(isa.uop, isa)
    return out
