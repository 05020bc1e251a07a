"""The shape of the ISA description (isa.yaml), checked before anything is evaluated.

`check_spec(data, source)` refuses, with an `ISAError` naming the file, the place (`formats.GEMM.fields[3]`)
and what is allowed, every description the builder could not evaluate: missing or unknown sections,
values of the wrong type, duplicate or reserved field names, references to enums that do not exist,
enum values that are negative or shared by two members, opcodes without a format (or formats without
an opcode), and `pad_to` marks that go backwards. What depends on the config (the widths' values, a
format overflowing its word) is checked when `build_isa` evaluates the description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..configs.yaml_safe import excerpt
from ..errors import TensorweaveError


class ISAError(TensorweaveError, ValueError):
    """The ISA description does not fit the config, or an instruction does not fit its format."""


SECTIONS = ("instruction_width", "uop_width", "widths", "enums", "head", "formats", "uop")
FIELD_KEYS = ("name", "width", "signed", "enum", "doc")
# memory_id members the loaders, simulators and hardware address scratchpads by.
MEMORIES = ("UOP", "WGT", "INP", "ACC", "OUT")
UOP_FIELDS = ("dst", "src", "wgt")
MAX_EXPRESSION = 200   # characters of one width expression


def _fail(source: str, where: str, problem: str, allowed: str) -> ISAError:
    return ISAError(f"{source}: {where}: {problem}; allowed: {allowed}")


def _key(value: Any) -> str:
    """A mapping key as written in a place name: names bare, anything else as a short repr."""
    return value if isinstance(value, str) and value.isprintable() and len(value) <= 60 else excerpt(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name_ok(value: Any) -> bool:
    return isinstance(value, str) and value.isidentifier() and value.isascii()


def _check_expression(source: str, where: str, value: Any) -> None:
    if _is_int(value):
        return
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_EXPRESSION:
        raise _fail(source, where, f"{excerpt(value)} is not a width",
                    f"an integer or an expression of at most {MAX_EXPRESSION} characters "
                    "(config names, + - * //, clog2, max, min)")


def _mapping(source: str, where: str, value: Any, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, dict):
        raise _fail(source, where, f"a {type(value).__name__}, not a mapping", what)
    return value


def _entries(source: str, where: str, value: Any, empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or not (value or empty):
        raise _fail(source, where, f"{excerpt(value)} is not a list of fields",
                    "a " + ("" if empty else "non-empty ") +
                    "list of {name, width[, signed, enum, doc]} and {pad_to: BIT} entries")
    return value


def check_spec(data: Any, source: str) -> None:
    """Raise ISAError naming `source` and the place if `data` is not a well-formed ISA description."""
    spec = _mapping(source, "the top level", data, "a mapping with sections " + ", ".join(SECTIONS))
    for key in spec:
        if key not in SECTIONS:
            raise _fail(source, f"section '{_key(key)}'", "unknown section", ", ".join(SECTIONS))
    for key in SECTIONS:
        if key not in spec:
            raise _fail(source, f"section '{key}'", "missing", "every section of " + ", ".join(SECTIONS))
    _check_expression(source, "instruction_width", spec["instruction_width"])
    _check_expression(source, "uop_width", spec["uop_width"])
    widths = _mapping(source, "widths", spec["widths"], "a mapping of name: width expression")
    for key, expr in widths.items():
        if not _name_ok(key):
            raise _fail(source, f"widths.{_key(key)}", "not a name", "identifiers (letters, digits, '_')")
        _check_expression(source, f"widths.{key}", expr)
    enums = _check_enums(source, spec["enums"], widths)
    formats = _mapping(source, "formats", spec["formats"], "a mapping of instruction name: {doc, fields}")
    head = _entries(source, "head", spec["head"])
    first = head[0]
    if not (isinstance(first, dict) and first.get("name") == "opcode" and first.get("enum") == "opcode"):
        raise _fail(source, "head[0]", f"{excerpt(first)} is not the opcode",
                    "the head starts with {name: opcode, width: ..., enum: opcode} (decoding reads it first)")
    names = set(enums) | {"alu_opcode"}
    head_fields = _check_entries(source, "head", head, names, set())
    for name, body in formats.items():
        if not _name_ok(name):
            raise _fail(source, f"formats.{_key(name)}", "not a name", "identifiers (letters, digits, '_')")
        body = _mapping(source, f"formats.{name}", body, "{doc: TEXT, fields: [...]}")
        _check_body(source, f"formats.{name}", body)
        fields = _entries(source, f"formats.{name}.fields", body["fields"], empty=True)
        _check_entries(source, f"formats.{name}.fields", fields, names, set(head_fields))
    if set(formats) != set(enums["opcode"]):
        raise _fail(source, "formats", f"formats {sorted(formats)} and opcodes {sorted(enums['opcode'])} differ",
                    "one format per member of enums.opcode")
    uop = _mapping(source, "uop", spec["uop"], "{doc: TEXT, fields: [...]}")
    _check_body(source, "uop", uop)
    uop_fields = _check_entries(source, "uop.fields", _entries(source, "uop.fields", uop["fields"]), names, set())
    missing = [f for f in UOP_FIELDS if f not in uop_fields]
    if missing:
        raise _fail(source, "uop.fields", f"no field {', '.join(missing)}", "fields named dst, src and wgt")


def _check_body(source: str, where: str, body: Mapping[Any, Any]) -> None:
    for key in body:
        if key not in ("doc", "fields"):
            raise _fail(source, f"{where}.{_key(key)}", "unknown key", "doc, fields")
    if "fields" not in body:
        raise _fail(source, f"{where}.fields", "missing", "a list of fields")
    if not isinstance(body.get("doc", ""), str):
        raise _fail(source, f"{where}.doc", f"{excerpt(body['doc'])} is not text", "a string")


def _check_enums(source: str, value: Any, widths: Mapping[Any, Any]) -> dict[Any, Any]:
    enums = _mapping(source, "enums", value, "a mapping of enum name: {MEMBER: value}")
    if "alu_opcode" in enums:
        raise ISAError(f"{source}: enums.alu_opcode: enum alu_opcode comes from contract/alu.py (one record per "
                       "operation); remove it from the ISA description")
    for required in ("opcode", "memory_id"):
        if required not in enums:
            raise _fail(source, f"enums.{required}", "missing", "enums opcode and memory_id (and others)")
    for name, members in enums.items():
        where = f"enums.{_key(name)}"
        if not _name_ok(name):
            raise _fail(source, where, "not a name", "identifiers (letters, digits, '_')")
        if name not in widths:
            raise _fail(source, where, "has no width", f"a widths.{name} entry giving its bits")
        members = _mapping(source, where, members, "a mapping of MEMBER: non-negative integer")
        if not members:
            raise _fail(source, where, "no members", "at least one MEMBER: value")
        seen: dict[int, str] = {}
        for member, number in members.items():
            if not _name_ok(member):
                raise _fail(source, f"{where}.{_key(member)}", "not a name", "identifiers")
            if not _is_int(number) or number < 0:
                raise _fail(source, f"{where}.{member}", f"{excerpt(number)} is not a value",
                            "a non-negative integer")
            if number in seen:
                raise _fail(source, f"{where}.{member}", f"value {number} is also {seen[number]}",
                            "a distinct value per member")
            seen[number] = member
    missing = [m for m in MEMORIES if m not in enums["memory_id"]]
    if missing:
        raise _fail(source, "enums.memory_id", f"no member {', '.join(missing)}", "members " + ", ".join(MEMORIES))
    return dict(enums)


def _check_entries(source: str, where: str, entries: list[Any], enums: set[str], taken: set[str]) -> list[str]:
    """The field names of `entries` in order; each entry a field or a pad_to mark."""
    names: list[str] = []
    last_pad = -1
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise _fail(source, at, f"{excerpt(entry)} is not an entry", "{name, width, ...} or {pad_to: BIT}")
        if "pad_to" in entry:
            target = entry["pad_to"]
            if set(entry) != {"pad_to"}:
                raise _fail(source, at, "pad_to with other keys", "{pad_to: BIT} alone")
            if not _is_int(target) or target < 0:
                raise _fail(source, f"{at}.pad_to", f"{excerpt(target)} is not a bit position",
                            "a non-negative integer")
            if target < last_pad:
                raise _fail(source, f"{at}.pad_to", f"{target} goes back before pad_to {last_pad}",
                            "pad_to positions in increasing order")
            last_pad = target
            continue
        for key in entry:
            if key not in FIELD_KEYS:
                raise _fail(source, f"{at}.{_key(key)}", "unknown key", ", ".join(FIELD_KEYS) + " or pad_to")
        name = entry.get("name")
        if not isinstance(name, str) or not _name_ok(name) or name.startswith("unused_"):
            raise _fail(source, f"{at}.name", f"{excerpt(name)} is not a field name",
                        "an identifier not starting with 'unused_' (the names of padding)")
        if name in taken or name in names:
            raise _fail(source, f"{at}.name", f"field '{name}' is given twice", "distinct field names per format")
        names.append(name)
        if "width" not in entry:
            raise _fail(source, f"{at}.width", "missing", "a width: an integer or an expression")
        _check_expression(source, f"{at}.width", entry["width"])
        if not isinstance(entry.get("signed", False), bool):
            raise _fail(source, f"{at}.signed", f"{excerpt(entry['signed'])} is not a flag", "true or false")
        if "enum" in entry and not (isinstance(entry["enum"], str) and entry["enum"] in enums):
            raise _fail(source, f"{at}.enum", f"no enum {excerpt(entry['enum'])}", "one of " + ", ".join(sorted(enums)))
        if not isinstance(entry.get("doc", ""), str):
            raise _fail(source, f"{at}.doc", f"{excerpt(entry['doc'])} is not text", "a string")
    return names
