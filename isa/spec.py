"""The instruction set for one config: isa.yaml evaluated into concrete bit layouts.

`build_isa(config)` turns the YAML (field widths as expressions of the config) into an `ISA` with a
`Format` per instruction and one for the micro-op, each a tuple of `Field`s with bit offsets.
Encoder, decoder, assembler, Amaranth layouts, the C header and the Markdown reference all read
this object, so none of them restates a width.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..configs import AccelConfig, clog2
from ..configs.yaml_safe import excerpt, read_yaml
from ..contract import alu
from .schema import ISAError, check_spec

__all__ = ["ISA", "ISA_YAML", "Field", "Format", "ISAError", "Insn", "Uop", "build_isa", "enum_members", "evaluate"]

ISA_YAML = Path(__file__).resolve().parent / "isa.yaml"
# The widest word or field the builder accepts: far beyond VTA's 128-bit instructions.
MAX_WORD_BITS = 1024
# Bound every intermediate value of a width expression (a width is at most MAX_WORD_BITS anyway).
_MAX_MAGNITUDE = 1 << 64


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    width: int
    signed: bool = False
    enum: str | None = None
    doc: str = ""
    reserved: bool = False

    @property
    def msb(self) -> int:
        return self.offset + self.width - 1

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


@dataclass(frozen=True)
class Format:
    name: str
    fields: tuple[Field, ...]
    word_width: int
    doc: str = ""

    @property
    def used_width(self) -> int:
        return max((f.msb + 1 for f in self.fields), default=0)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field '{name}'")

    @property
    def named_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.reserved)


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: its format name and every named field's value."""

    op: str
    fields: Mapping[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(f"{self.op} instruction has no field '{name}'") from None


@dataclass(frozen=True)
class Uop:
    dst: int
    src: int
    wgt: int


@dataclass(frozen=True)
class ISA:
    config: AccelConfig
    instruction_width: int
    uop: Format
    head: tuple[Field, ...]
    formats: Mapping[str, Format]
    enums: Mapping[str, Mapping[str, int]]
    widths: Mapping[str, int]

    def enum_name(self, enum: str, value: int) -> str:
        for name, v in self.enums[enum].items():
            if v == value:
                return name
        raise ISAError(f"{value} is not a valid {enum} (valid: {dict(self.enums[enum])})")

    # --- encoding ------------------------------------------------------------------------------
    def encode(self, insn: Insn) -> int:
        """Pack an instruction into its word; each field checked against its width."""
        if insn.op not in self.formats:
            raise ISAError(f"unknown instruction '{insn.op}'; instructions: {', '.join(self.formats)}")
        fmt = self.formats[insn.op]
        values = dict(insn.fields)
        values["opcode"] = self.enums["opcode"][insn.op]
        unknown = set(values) - {f.name for f in fmt.named_fields}
        if unknown:
            raise ISAError(f"{insn.op} has no field(s) {', '.join(sorted(unknown))}; "
                           f"fields: {', '.join(f.name for f in fmt.named_fields)}")
        return _pack(fmt, values)

    def decode(self, word: int) -> Insn:
        opcode = word & ((1 << self.head[0].width) - 1)
        op = self.enum_name("opcode", opcode)
        fmt = self.formats[op]
        values = _unpack(fmt, word)
        del values["opcode"]
        return Insn(op, values)

    def encode_uop(self, uop: Uop) -> int:
        return _pack(self.uop, {"dst": uop.dst, "src": uop.src, "wgt": uop.wgt})

    def decode_uop(self, word: int) -> Uop:
        v = _unpack(self.uop, word)
        return Uop(v["dst"], v["src"], v["wgt"])


def _pack(fmt: Format, values: Mapping[str, int]) -> int:
    word = 0
    for f in fmt.named_fields:
        value = int(values.get(f.name, 0))
        if not f.lo <= value <= f.hi:
            raise ISAError(f"{fmt.name}.{f.name} = {value} does not fit its {f.width} bits "
                           f"(allowed {f.lo}..{f.hi})")
        word |= (value & ((1 << f.width) - 1)) << f.offset
    return word


def _unpack(fmt: Format, word: int) -> dict[str, int]:
    values = {}
    for f in fmt.named_fields:
        raw = (word >> f.offset) & ((1 << f.width) - 1)
        if f.signed and raw >> (f.width - 1):
            raw -= 1 << f.width
        values[f.name] = raw
    return values


# --- building from YAML ------------------------------------------------------------------------
def _clog2(*args: int) -> int:
    if len(args) != 1:
        raise ValueError(f"clog2 takes one argument, not {len(args)}")
    return clog2(args[0])


def _extreme(pick: Callable[[list[int]], int]) -> Callable[..., int]:
    def call(*args: int) -> int:
        if not args:
            raise ValueError("needs at least one argument")
        return pick(list(args))
    return call


_FUNCS: dict[str, Callable[..., int]] = {"clog2": _clog2, "max": _extreme(max), "min": _extreme(min)}


def evaluate(expr: Any, names: Mapping[str, int], where: str) -> int:
    """Evaluate a width expression: integers, names, + - * //, and clog2/max/min calls."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        return expr
    text = str(expr)
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ISAError(f"{where}: cannot parse width expression {excerpt(expr)}") from None

    def ev(node: ast.AST) -> int:
        value = _node(node)
        if abs(value) > _MAX_MAGNITUDE:
            raise ISAError(f"{where}: {excerpt(expr)} reaches {excerpt(value)}, beyond any width")
        return value

    def _node(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ISAError(f"{where}: unknown name '{node.id}' in {excerpt(expr)}; names: {', '.join(names)}")
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise ISAError(f"{where}: division by zero in {excerpt(expr)}")
            return _BINOPS[type(node.op)](left, right)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            args = [ev(a) for a in node.args]
            try:
                return int(_FUNCS[node.func.id](*args))
            except ValueError as exc:
                raise ISAError(f"{where}: {node.func.id}() in {excerpt(expr)}: {exc}") from None
        raise ISAError(f"{where}: unsupported expression {excerpt(expr)} (use integers, config names, "
                       "+ - * //, clog2, max, min)")

    try:
        return ev(tree)
    except RecursionError:
        raise ISAError(f"{where}: width expression {excerpt(expr)} is nested too deeply") from None


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b}


def _config_names(config: AccelConfig) -> dict[str, int]:
    names = {k: v for k, v in config.to_dict().items() if isinstance(v, int)}
    names.update(config.derived())
    return names


def _width(expr: Any, names: Mapping[str, int], where: str, lo: int, hi: int, source: str) -> int:
    value = evaluate(expr, names, f"{source}: {where}")
    if not lo <= value <= hi:
        raise ISAError(f"{source}: {where}: {excerpt(expr)} gives {value} bits; allowed: {lo} to {hi}")
    return value


def _layout(name: str, entries: list[dict], widths: Mapping[str, int], word_width: int, doc: str,
            config_name: str, source: str = "") -> Format:
    fields: list[Field] = []
    pos = 0
    for entry in entries:
        if "pad_to" in entry:
            target = int(entry["pad_to"])
            if target > word_width:
                raise ISAError(f"{source}: {name}: pad_to {target} is beyond the {word_width}-bit word; "
                               f"allowed: 0 to {word_width}")
            if pos < target:
                fields.append(Field(f"unused_{pos}", pos, target - pos, reserved=True))
                pos = target
            continue
        width = _width(entry["width"], widths, f"{name}.{entry['name']}", 1, word_width, source)
        fields.append(Field(entry["name"], pos, width, bool(entry.get("signed", False)), entry.get("enum"),
                            str(entry.get("doc", ""))))
        pos += width
    if pos > word_width:
        raise ISAError(f"the {name} format needs {pos} bits and overflows the {word_width}-bit "
                       f"word by {pos - word_width} bits for config '{config_name}'")
    return Format(name, tuple(fields), word_width, " ".join(str(doc).split()))


@functools.lru_cache(maxsize=64)
def _load_spec(path: Path) -> dict:
    """The checked ISA description at `path` (see schema.py for what is checked)."""
    data = read_yaml(path, ISAError, "ISA description")
    check_spec(data, str(path))
    return data


def enum_members(enum: str, path: Path = ISA_YAML) -> dict[str, int]:
    """The members of the ISA enumeration `enum` (e.g. memory_id): the same for every config, so this
    needs no config that fits the instruction word."""
    return dict(_enum_items(enum, path))


@functools.lru_cache(maxsize=16)
def _enum_items(enum: str, path: Path) -> tuple[tuple[str, int], ...]:
    enums = _load_spec(path)["enums"]
    if enum not in enums:
        raise ISAError(f"{path}: no enum '{enum}'; enums: {', '.join(enums)}")
    return tuple(enums[enum].items())


@functools.lru_cache(maxsize=64)
def build_isa(config: AccelConfig, path: Path = ISA_YAML) -> ISA:
    """Evaluate the ISA description for `config`; raises ISAError naming the format that overflows."""
    spec = _load_spec(path)
    source = str(path)
    names = _config_names(config)
    widths: dict[str, int] = dict(names)
    for key, expr in spec["widths"].items():
        widths[key] = _width(expr, widths, f"widths.{key}", 1, MAX_WORD_BITS, source)
    insn_width = _word(spec["instruction_width"], names, "instruction_width", source)
    uop_width = _word(spec["uop_width"], names, "uop_width", source)
    head = _layout("head", spec["head"], widths, insn_width, "", config.name, source).fields
    formats = {}
    for name, body in spec["formats"].items():
        formats[name] = _layout(name, list(spec["head"]) + list(body["fields"]), widths, insn_width,
                                body.get("doc", ""), config.name, source)
    uop = _layout("micro-op", spec["uop"]["fields"], widths, uop_width, spec["uop"].get("doc", ""), config.name,
                  source)
    enums = {k: dict(v) for k, v in spec["enums"].items()}
    enums["alu_opcode"] = alu.opcodes()
    for enum, members in enums.items():
        if enum not in widths:
            raise ISAError(f"{source}: enums.{enum}: has no width; allowed: a widths.{enum} entry giving its bits")
        width = widths[enum]
        for member, value in members.items():
            if value >= 1 << width:
                raise ISAError(f"enum {enum}.{member} = {value} does not fit {width} bits")
    for fmt in (*formats.values(), uop):
        for f in fmt.named_fields:
            if f.enum and max(enums[f.enum].values()) >> f.width:
                raise ISAError(f"{source}: {fmt.name}.{f.name}: enum {f.enum} has values up to "
                               f"{max(enums[f.enum].values())}, more than its {f.width} bits hold")
    public_widths = {k: v for k, v in widths.items() if k in spec["widths"]}
    return ISA(config, insn_width, uop, head, formats, enums, public_widths)


def _word(expr: Any, names: Mapping[str, int], where: str, source: str) -> int:
    value = _width(expr, names, where, 8, MAX_WORD_BITS, source)
    if value % 8:
        raise ISAError(f"{source}: {where}: {value} bits is not whole bytes; allowed: a multiple of 8")
    return value
