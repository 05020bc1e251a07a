"""The text form of programs: an assembler and a disassembler derived from the ISA.

Syntax (one statement per line, `#` starts a comment):

    .tensor NAME ROLE DTYPE SHAPE [offset=BYTES] [init=zeros|random:SEED|values:V,V,...]
    .uop dst=D src=S wgt=W
    OP[.MEMBER] field=value ... flag ...

OP is a format name (LOAD, STORE, GEMM, ALU, FINISH; any case). `.MEMBER` sets the format's enum
field (`load.inp` sets memory_id=INP, `alu.max` sets alu_opcode=MAX). Field names are the ISA's;
a one-bit field may be written bare to set it. A value is an integer, an enum member name, or
`@NAME[+K]`: the DRAM address of tensor NAME (or `@uops`) in units of the instruction's element.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..configs import AccelConfig
from ..configs.yaml_safe import read_file_bytes
from ..errors import TensorweaveError
from .program import Program, ProgramError, Tensor, check_shape, dtype_range
from .spec import ISA, Insn, ISAError, Uop, build_isa


class AsmError(TensorweaveError, ValueError):
    """A line the assembler cannot read; the message names the line number and the problem."""


# `init=` materialises values in memory: bigger tensors take their data from an input file instead.
MAX_INIT_ELEMENTS = 1 << 24
MAX_SOURCE_BYTES = 64 * 1024 * 1024


def read_source(path: str | Path) -> str:
    """The text of an assembler source file; a missing, binary or non-UTF-8 file raises AsmError naming it."""
    path = Path(path)
    raw = read_file_bytes(path, AsmError, "assembler source")
    if len(raw) > MAX_SOURCE_BYTES:
        raise AsmError(f"{path}: {len(raw)} bytes; allowed: an assembler source of at most {MAX_SOURCE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AsmError(f"{path}:{line}: byte {exc.start} is not UTF-8 text; allowed: UTF-8 assembler text") from None
    if "\0" in text:
        line = text[:text.index("\0")].count("\n") + 1
        raise AsmError(f"{path}:{line}: a NUL character: a binary file, not assembler text")
    return text


@dataclass
class _Pending:
    line: int
    op: str
    fields: dict[str, int]
    refs: dict[str, tuple[str, int]]


def element_bytes(config: AccelConfig, memory: str) -> int:
    """Bytes of one element moved by a LOAD/STORE of `memory` (the unit of dram_base and sizes)."""
    return {"UOP": config.uop_bytes, "INP": config.inp_row_bytes, "WGT": config.wgt_row_bytes,
            "ACC": config.acc_row_bytes, "OUT": config.out_row_bytes}[memory]


def assemble(text: str, config: AccelConfig, source: str = "<asm>") -> Program:
    isa = build_isa(config)
    tensors: list[Tensor] = []
    data: dict[str, np.ndarray] = {}
    uops: list[int] = []
    pending: list[_Pending] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        try:
            words = line.split()
            head = words[0].lower()
            if head == ".tensor":
                tensor, init = _parse_tensor(words[1:], where)
                tensors.append(tensor)
                if init is not None:
                    data[tensor.name] = _initial_values(tensor, init, where)
            elif head == ".uop":
                kv = _key_values(words[1:], where)
                unknown = set(kv) - {"dst", "src", "wgt"}
                if unknown:
                    raise AsmError(f"{where}: .uop takes dst=, src=, wgt=, not {', '.join(sorted(unknown))}")
                uops.append(isa.encode_uop(Uop(*(_int(kv.get(k, "0"), where) for k in ("dst", "src", "wgt")))))
            else:
                pending.append(_parse_insn(isa, words, where, number))
        except ISAError as exc:
            raise AsmError(f"{where}: {exc}") from None
    try:
        draft = Program.build(config, [0] * len(pending), uops, tensors, data)
    except ProgramError as exc:
        raise AsmError(f"{source}: {exc}") from None
    words_out = []
    for p in pending:
        try:
            for fname, (target, plus) in p.refs.items():
                p.fields[fname] = _resolve(draft, p, target, plus, f"{source}:{p.line}")
            words_out.append(isa.encode(Insn(p.op, p.fields)))
        except ISAError as exc:
            raise AsmError(f"{source}:{p.line}: {exc}") from None
    return Program.build(config, words_out, uops, list(draft.tensors), data)


def _parse_insn(isa: ISA, words: list[str], where: str, number: int) -> _Pending:
    op, _, member = words[0].partition(".")
    op = op.upper()
    if op not in isa.formats:
        raise AsmError(f"{where}: unknown instruction '{words[0]}'; instructions: {', '.join(isa.formats)}")
    fmt = isa.formats[op]
    fields: dict[str, int] = {}
    refs: dict[str, tuple[str, int]] = {}
    enum_fields = [f for f in fmt.named_fields if f.enum and f.name != "opcode"]
    if member:
        if not enum_fields:
            raise AsmError(f"{where}: {op} takes no '.{member}' suffix")
        f = enum_fields[0]
        fields[f.name] = _enum_value(isa, f.enum or "", member, where)
    for word in words[1:]:
        name, eq, value = word.partition("=")
        try:
            f = fmt.field(name)
        except KeyError:
            raise AsmError(f"{where}: {op} has no field '{name}'; fields: "
                           f"{', '.join(x.name for x in fmt.named_fields if x.name != 'opcode')}") from None
        if f.reserved or f.name == "opcode":
            raise AsmError(f"{where}: field '{name}' cannot be set")
        if not eq:
            if f.width != 1:
                raise AsmError(f"{where}: field '{name}' needs a value ({name}=...)")
            fields[name] = 1
        elif value.startswith("@"):
            target, _, plus = value[1:].partition("+")
            refs[name] = (target, _int(plus or "0", where))
        elif f.enum:
            fields[name] = _enum_value(isa, f.enum, value, where)
        else:
            fields[name] = _int(value, where)
    return _Pending(number, op, fields, refs)


def _resolve(program: Program, p: _Pending, target: str, plus: int, where: str) -> int:
    if "memory_id" not in p.fields:
        raise AsmError(f"{where}: @{target} needs the memory_id set first (e.g. load.inp)")
    isa = build_isa(program.config)
    memory = isa.enum_name("memory_id", p.fields["memory_id"])
    size = element_bytes(program.config, memory)
    offset = program.uop_offset if target == "uops" else _tensor_offset(program, target, where)
    if offset % size:
        raise AsmError(f"{where}: @{target} at byte {offset} is not a whole {memory} element ({size} bytes)")
    return offset // size + plus


def _tensor_offset(program: Program, name: str, where: str) -> int:
    try:
        return program.tensor(name).offset
    except ProgramError as exc:
        raise AsmError(f"{where}: {exc}") from None


def _parse_tensor(words: list[str], where: str) -> tuple[Tensor, str | None]:
    if len(words) < 4:
        raise AsmError(f"{where}: .tensor needs NAME ROLE DTYPE SHAPE, e.g. '.tensor A input int8 1,16'")
    name, role, dtype, shape_text = words[:4]
    try:
        shape = tuple(int(s) for s in shape_text.split(","))
    except ValueError:
        raise AsmError(f"{where}: shape '{shape_text}' is not a comma-separated list of integers") from None
    kv = _key_values(words[4:], where)
    unknown = set(kv) - {"offset", "init"}
    if unknown:
        raise AsmError(f"{where}: .tensor takes offset= and init=, not {', '.join(sorted(unknown))}")
    if any(d < 0 for d in shape):
        raise AsmError(f"{where}: shape '{shape_text}' has a negative dimension; allowed: sizes >= 0")
    try:
        check_shape(name, shape)
    except ProgramError as exc:
        raise AsmError(f"{where}: {exc}") from None
    offset = _int(kv["offset"], where) if "offset" in kv else -1
    if offset < 0 and "offset" in kv:
        raise AsmError(f"{where}: offset {offset} is negative; allowed: a byte offset >= 0")
    return Tensor(name, role, dtype, shape, offset), kv.get("init")


def _initial_values(tensor: Tensor, init: str, where: str) -> np.ndarray:
    try:
        lo, hi = dtype_range(tensor.dtype)
    except ProgramError as exc:
        raise AsmError(f"{where}: {exc}") from None
    kind, _, arg = init.partition(":")
    if kind in ("zeros", "random", "values") and tensor.size > MAX_INIT_ELEMENTS:
        raise AsmError(f"{where}: tensor '{tensor.name}' has {tensor.size} elements; init= allows at most "
                       f"{MAX_INIT_ELEMENTS} (give bigger tensors their values as inputs)")
    if kind == "zeros":
        return np.zeros(tensor.shape, dtype=np.int64)
    if kind == "random":
        seed = _int(arg or "0", where)
        if seed < 0:
            raise AsmError(f"{where}: seed {seed} is negative; allowed: random:SEED with SEED >= 0")
        rng = np.random.default_rng(seed)
        return rng.integers(lo, hi + 1, size=tensor.shape, dtype=np.int64)
    if kind == "values":
        values = [_int(v, where) for v in arg.split(",") if v]
        if len(values) != tensor.size:
            raise AsmError(f"{where}: tensor '{tensor.name}' has {tensor.size} elements, {len(values)} values given")
        return np.array(values, dtype=np.int64).reshape(tensor.shape)
    raise AsmError(f"{where}: init '{init}' is not zeros, random:SEED or values:V,V,...")


def _key_values(words: list[str], where: str) -> dict[str, str]:
    kv = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise AsmError(f"{where}: expected key=value, got '{word}'")
        kv[key] = value
    return kv


def _int(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise AsmError(f"{where}: '{text}' is not an integer") from None


def _enum_value(isa: ISA, enum: str, member: str, where: str) -> int:
    members = isa.enums[enum]
    key = member.upper()
    if key not in members:
        raise AsmError(f"{where}: '{member}' is not a {enum}; one of {', '.join(members)}")
    return members[key]


# --- disassembly -------------------------------------------------------------------------------
def disassemble_insn(isa: ISA, insn: Insn) -> str:
    fmt = isa.formats[insn.op]
    parts = [insn.op.lower()]
    enum_fields = [f for f in fmt.named_fields if f.enum and f.name != "opcode"]
    skip = set()
    if enum_fields:
        f = enum_fields[0]
        parts[0] += "." + isa.enum_name(f.enum or "", insn.fields[f.name]).lower()
        skip.add(f.name)
    for f in fmt.named_fields:
        value = insn.fields.get(f.name, 0)
        if f.name == "opcode" or f.name in skip or value == 0:
            continue
        parts.append(f.name if f.width == 1 else f"{f.name}={value}")
    return " ".join(parts)


def disassemble(program: Program) -> str:
    """The program as assembler text; assembling it gives the same words and tensors back."""
    isa = build_isa(program.config)
    lines = [f"# tensorweave program for config '{program.config.name}' ({program.config.digest})"]
    for t in program.tensors:
        line = f".tensor {t.name} {t.role} {t.dtype} {','.join(map(str, t.shape))} offset={t.offset}"
        if t.name in program.data:
            line += " init=values:" + ",".join(str(int(v)) for v in np.asarray(program.data[t.name]).ravel())
        lines.append(line)
    for word in program.uops:
        u = isa.decode_uop(word)
        lines.append(f".uop dst={u.dst} src={u.src} wgt={u.wgt}")
    for i, word in enumerate(program.insns):
        lines.append(f"{disassemble_insn(isa, isa.decode(word)):<70} # {i}")
    return "\n".join(lines) + "\n"
