"""Random VALID programs for any config, for differential testing (functional simulator vs RTL).

A program is a sequence of phases. Phase p works in one of two windows ("halves") of every
scratchpad, window p % 2, so the load of phase p + 1 may overlap the compute of phase p:

    load     [pop_next if p >= 2]  LOAD INP/WGT tiles ... covering this phase's windows  [push_next]
    compute  [pop_prev, pop_next if p >= 2]  LOAD UOP, acc init (LOAD ACC / reset), GEMM, ALU ...
             [push_prev if p + 2 < phases] [push_next]
    store    [pop_prev]  STORE ...  [push_prev if p + 2 < phases or last phase]
    finish   pop_next (waits for the last store)

Why this is race-free: load and compute only meet in the INP/WGT windows, compute and store only in
the ACC windows. Phase p's window is written by one unit and read by the other only between the
token that closes phase p - 2 on the reader and the token that opens phase p, so every cross-unit
read-after-write and write-after-read is ordered. DRAM inputs are never written; the output
tensor is written by the store unit alone, in order. Every token a unit pops was pushed by an
instruction earlier in program order, so in-order fetch with bounded queues cannot deadlock.
Every scratchpad row a phase reads was written first (windows are covered fully by loads or
resets in the first two phases), so the result never depends on the RTL's power-on contents.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

from ..configs import AccelConfig
from ..contract import alu
from ..contract.topology import unit_of_memory
from ..isa import Program, assemble, build_isa
from ..isa.program import int_dtype

LOAD_FLAGS = ("pop_next", "push_next")
COMPUTE_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")
STORE_FLAGS = ("pop_prev", "push_prev")


@dataclass(frozen=True)
class Windows:
    """Rows of each scratchpad one phase may touch: window w covers [w * size, (w + 1) * size)."""

    inp: int
    wgt: int
    acc: int
    uop: int


class _Gen:
    def __init__(self, config: AccelConfig, seed: int, phases: int | None, max_rows: int | None):
        self.c = config
        self.rng = random.Random(seed)
        self.seed = seed
        self.isa = build_isa(config)
        r = self.rng
        self.phases = phases if phases is not None else r.randint(1, 6)
        cap = max(1, max_rows if max_rows is not None else r.choice((4, 8, 8, 16, 32)))
        self.win = Windows(inp=r.randint(1, min(cap, config.inp_depth // 2) or 1),
                           wgt=r.randint(1, min(cap, config.wgt_depth // 2) or 1),
                           acc=r.randint(1, min(cap, config.acc_depth // 2) or 1),
                           uop=max(1, min(64, config.uop_depth // 2)))
        # DRAM source tensors: a few windows' worth of rows each, so strides have room.
        self.rows = {"INP": 4 * self.win.inp + 8, "WGT": 4 * self.win.wgt + 8, "ACC": 4 * self.win.acc + 8}
        self.out_rows = 4 * self.win.acc + 8
        self.uops: list[str] = []
        self.lines: dict[str, list[list[str]]] = {"load": [], "compute": [], "store": []}

    # --- helpers --------------------------------------------------------------------------------
    def width(self, fmt: str, name: str) -> int:
        return self.isa.formats[fmt].field(name).width

    def base(self, memory: str, window: int) -> int:
        size = getattr(self.win, memory.lower())
        return (window % 2) * size

    def pads(self, room: int, allow: bool) -> tuple[int, int, int, int]:
        if not allow or self.rng.random() < 0.4:
            return (0, 0, 0, 0)
        limit = min(3, (1 << self.width("LOAD", "y_pad_0")) - 1)
        y0, y1, x0, x1 = (self.rng.randint(0, limit) if self.rng.random() < 0.6 else 0 for _ in range(4))
        return (y0, y1, x0, x1)

    def load_tile(self, memory: str, sram: int, room: int, tensor: str) -> tuple[str, int]:
        """One LOAD of `memory` writing at most `room` rows from `sram`; returns (line, rows written)."""
        r = self.rng
        padded = memory != "UOP"
        for _ in range(20):
            yp0, yp1, xp0, xp1 = self.pads(room, padded)
            x_size = r.randint(1, max(1, min(8, room)))
            y_size = r.randint(1, max(1, min(4, room // x_size)))
            rows = (yp0 + y_size + yp1) * (xp0 + x_size + xp1)
            if rows <= room:
                break
        else:
            yp0 = yp1 = xp0 = xp1 = 0
            x_size, y_size, rows = room, 1, room
        stride = x_size + (r.randint(0, 3) if y_size > 1 and r.random() < 0.6 else 0)
        if y_size > 1 and r.random() < 0.05:
            stride = r.randint(0, x_size)  # rows that overlap in DRAM are legal for loads
        span = (y_size - 1) * stride + x_size
        start = r.randint(0, self.rows[memory] - span)
        line = (f"load.{memory.lower()} sram_base={sram} dram_base=@{tensor}+{start} y_size={y_size} "
                f"x_size={x_size} x_stride={stride}")
        pads = dict(y_pad_0=yp0, y_pad_1=yp1, x_pad_0=xp0, x_pad_1=xp1)
        line += "".join(f" {k}={v}" for k, v in pads.items() if v)
        return line, rows

    def cover(self, memory: str, window: int, tensor: str) -> list[str]:
        """LOADs that together write every row of `memory`'s window (with random padding)."""
        size = getattr(self.win, memory.lower())
        lo, out, done = self.base(memory, window), [], 0
        while done < size:
            line, rows = self.load_tile(memory, lo + done, size - done, tensor)
            out.append(line)
            done += rows
        return out

    def loop(self, fmt: str, names: tuple[str, ...], windows: dict[str, tuple[int, int]]) -> tuple[str, list[str]]:
        """Random iter/factor fields and micro-ops whose every index stays inside its window."""
        r = self.rng
        iter_out, iter_in = r.randint(1, 3), r.randint(1, 3)
        if r.random() < 0.15:
            iter_out, iter_in = r.randint(1, 12), r.randint(1, 6)  # long loops keep the pipelines full
        fields = [f"iter_out={iter_out}", f"iter_in={iter_in}"]
        bases: dict[str, tuple[int, int]] = {}
        for name in names:
            lo, size = windows[name]
            fo = r.randint(0, min(3, (1 << self.width(fmt, f"{name}_factor_out")) - 1))
            fi = r.randint(0, min(3, (1 << self.width(fmt, f"{name}_factor_in")) - 1))
            if (iter_out - 1) * fo + (iter_in - 1) * fi >= size:
                fo = fi = 0
            if fo:
                fields.append(f"{name}_factor_out={fo}")
            if fi:
                fields.append(f"{name}_factor_in={fi}")
            bases[name] = (lo, size - (iter_out - 1) * fo - (iter_in - 1) * fi)
        count = r.randint(1, 3)
        uops = []
        for _ in range(count):
            parts = {n: bases[n][0] + r.randrange(bases[n][1]) if n in bases else 0 for n in ("dst", "src", "wgt")}
            uops.append(f".uop dst={parts['dst']} src={parts['src']} wgt={parts['wgt']}")
        return " ".join(fields), uops

    # --- phases ---------------------------------------------------------------------------------
    def phase(self, p: int) -> None:
        r, c = self.rng, self.c
        w = p % 2
        # Load unit: cover the INP and WGT windows (only partly refreshed after the first two phases).
        loads = self.cover("INP", w, "inp_src") + self.cover("WGT", w, "wgt_src")
        if p >= 2:
            loads = r.sample(loads, r.randint(1, len(loads)))
        self.lines["load"].append(loads)

        # Compute unit: micro-ops, accumulator initialisation, then GEMM / ALU instructions.
        acc_lo, acc_n = self.base("ACC", w), self.win.acc
        inp_lo, wgt_lo = self.base("INP", w), self.base("WGT", w)
        ops: list[tuple[str, str, list[str]]] = []  # (head, loop fields, micro-ops)
        init = p < 2 or r.random() < 0.5
        body: list[str] = []
        if init:
            choice = r.choice(("load", "gemm", "alu") if c.alu_ops else ("load", "gemm"))
            if choice == "load":
                body += self.cover("ACC", w, "acc_src")
            else:
                head = "gemm reset" if choice == "gemm" else f"alu.{r.choice(c.alu_ops).lower()} reset"
                ops.append((head, f"iter_out={acc_n} iter_in=1 dst_factor_out=1", [f".uop dst={acc_lo} src=0 wgt=0"]))
        for _ in range(r.randint(1, 4)):
            kind = r.random()
            if kind < 0.45:
                fields, uops = self.loop("GEMM", ("dst", "src", "wgt"),
                                         {"dst": (acc_lo, acc_n), "src": (inp_lo, self.win.inp),
                                          "wgt": (wgt_lo, self.win.wgt)})
                ops.append(("gemm", fields, uops))
            elif kind < 0.5:
                fields, uops = self.loop("GEMM", ("dst",), {"dst": (acc_lo, acc_n)})
                ops.append(("gemm reset", fields, uops))
            elif kind < 0.55:
                ops.append(("@raw", "", self.cover("ACC", w, "acc_src")))
            else:
                op = r.choice(c.alu_ops)
                use_imm = r.random() < 0.5
                fields, uops = self.loop("ALU", ("dst", "src"), {"dst": (acc_lo, acc_n), "src": (acc_lo, acc_n)})
                head = f"alu.{op.lower()}"
                if r.random() < 0.05:
                    head += " reset"
                elif use_imm:
                    head += f" use_imm imm={self.immediate(op)}"
                ops.append((head, fields, uops))
        # Lay the micro-ops of this phase out in the UOP window, load them (maybe in strided rows).
        uop_lo = self.base("UOP", w)
        flat: list[str] = []
        placed: list[tuple[str, int, int]] = []
        for head, _fields, uops in ops:
            if head == "@raw":
                continue
            placed.append((head, uop_lo + len(flat), uop_lo + len(flat) + len(uops)))
            flat += uops
        uop_lines: list[str] = []
        if flat:
            uop_lines = self.place_uops(flat, uop_lo)
        body = uop_lines + body
        k = 0
        for head, fields, uops in ops:
            if head == "@raw":
                body += uops
                continue
            _, begin, end = placed[k]
            k += 1
            body.append(f"{head} uop_begin={begin} uop_end={end} {fields}")
        self.lines["compute"].append(body)

        # Store unit: a few tiles of accumulator rows to the output tensor.
        stores = []
        for _ in range(r.randint(1, 3)):
            x_size = r.randint(1, acc_n)
            y_size = r.randint(1, max(1, acc_n // x_size))
            sram = acc_lo + r.randint(0, acc_n - x_size * y_size)
            stride = x_size + (r.randint(0, 2) if y_size > 1 else 0)
            span = (y_size - 1) * stride + x_size
            start = r.randint(0, self.out_rows - span)
            stores.append(f"store.out sram_base={sram} dram_base=@out+{start} y_size={y_size} x_size={x_size} "
                          f"x_stride={stride}")
        self.lines["store"].append(stores)

    def immediate(self, op: str) -> int:
        r, width = self.rng, self.c.acc_width
        operand = alu.by_name(op).operand     # what the immediate means to the operation (contract/alu.py)
        if operand == "shift":
            return r.randint(-width - 2, width + 2)
        if operand == "factor":
            return r.randint(-8, 8)
        return r.choice((r.randint(-128, 127), r.randint(-(1 << 15), (1 << 15) - 1)))

    def place_uops(self, flat: list[str], uop_lo: int) -> list[str]:
        """Append the micro-ops to the program's list (maybe split in strided rows) and load them."""
        r, n = self.rng, len(flat)
        start = len(self.uops)
        if n >= 2 and r.random() < 0.4:
            x_size = r.choice([d for d in range(1, n + 1) if n % d == 0 and d < n] or [n])
            y_size, gap = n // x_size, r.randint(1, 3)
            for y in range(y_size):
                self.uops += flat[y * x_size:(y + 1) * x_size]
                self.uops += [".uop dst=0 src=0 wgt=0"] * gap  # never loaded
            stride = x_size + gap
        else:
            self.uops += flat
            x_size, y_size, stride = n, 1, n
        return [f"load.uop sram_base={uop_lo} dram_base=@uops+{start} y_size={y_size} x_size={x_size} "
                f"x_stride={stride}"]

    # --- tokens and text ------------------------------------------------------------------------
    def text(self) -> str:
        for p in range(self.phases):
            self.phase(p)
        n, c = self.phases, self.c
        out = [f"# random program, config '{c.name}', seed {self.seed}, {n} phases, windows {self.win}"]
        out.append(f".tensor inp_src input {int_dtype(c.inp_width)} {self.rows['INP']},{c.batch * c.block_in} "
                   f"init=random:{self.seed * 4 + 1}")
        out.append(f".tensor wgt_src weight {int_dtype(c.wgt_width)} {self.rows['WGT']},{c.block_out * c.block_in} "
                   f"init=random:{self.seed * 4 + 2}")
        out.append(f".tensor acc_src const {int_dtype(c.acc_width)} {self.rows['ACC']},{c.batch * c.block_out} "
                   f"init=random:{self.seed * 4 + 3}")
        out.append(f".tensor out output {int_dtype(c.out_width)} {self.out_rows},{c.batch * c.block_out}")
        out += self.uops or [".uop dst=0 src=0 wgt=0"]
        for p in range(n):
            out += _flag(self.lines["load"][p], first=["pop_next"] if p >= 2 else [], last=["push_next"])
            compute = self.lines["compute"][p]
            out += _flag(compute, first=["pop_prev"] + (["pop_next"] if p >= 2 else []),
                         last=(["push_prev"] if p + 2 < n else []) + ["push_next"])
            out += _flag(self.lines["store"][p], first=["pop_prev"],
                         last=["push_prev"] if p + 2 < n or p == n - 1 else [])
        out.append("finish pop_next")
        return "\n".join(out) + "\n"


def _flag(lines: list[str], first: list[str], last: list[str]) -> list[str]:
    lines = list(lines)
    if first:
        lines[0] += " " + " ".join(first)
    if last:
        lines[-1] += " " + " ".join(last)
    return lines


def random_program_text(config: AccelConfig, seed: int, phases: int | None = None, max_rows: int | None = None) -> str:
    """Assembler text of the random program `seed` for `config` (see the module docstring)."""
    return _Gen(config, seed, phases, max_rows).text()


def random_program(config: AccelConfig, seed: int, phases: int | None = None, max_rows: int | None = None) -> Program:
    """The random valid program `seed` for `config`; the same seed always gives the same program."""
    return assemble(random_program_text(config, seed, phases, max_rows), config, source=f"<random seed {seed}>")


def coverage(program: Program) -> Counter:
    """What a program exercises: opcodes, memories, ALU ops, padding, reset and token flags per unit."""
    isa = build_isa(program.config)
    seen: Counter = Counter()
    for word in program.insns:
        insn = isa.decode(word)
        seen[f"op.{insn.op}"] += 1
        if insn.op in ("LOAD", "STORE"):
            memory = isa.enum_name("memory_id", insn.memory_id)
            seen[f"{insn.op.lower()}.{memory}"] += 1
            unit = unit_of_memory(insn.op, memory)
            if any(insn.fields[k] for k in ("y_pad_0", "y_pad_1", "x_pad_0", "x_pad_1")):
                seen[f"pad.{memory}"] += 1
            if insn.y_size > 1 and insn.x_stride > insn.x_size:
                seen[f"stride.{memory}"] += 1
        else:
            unit = "compute"
        if insn.op == "ALU":
            op = isa.enum_name("alu_opcode", insn.alu_opcode)
            seen[f"alu.{op}" + (".imm" if insn.use_imm else ".acc")] += 1
        if insn.op in ("GEMM", "ALU") and insn.reset:
            seen[f"reset.{insn.op}"] += 1
        for flag in ("pop_prev", "pop_next", "push_prev", "push_next"):
            if insn.fields.get(flag):
                seen[f"token.{unit}.{flag}"] += 1
    return seen


# --- validity check: every cross-unit conflict ordered by tokens -----------------------------------
_UNIT_INDEX = {"load": 0, "compute": 1, "store": 2}
_NEIGHBOURS = {"load": (None, "compute"), "compute": ("load", "store"), "store": ("compute", None)}


@dataclass(frozen=True)
class _Access:
    reads: frozenset[tuple[str, int]]   # (space, index): scratchpad rows ('INP', 3) or DRAM bytes ('DRAM', 96)
    writes: frozenset[tuple[str, int]]


def _accesses(program: Program, insn, uop_table: dict[int, int]) -> tuple[str, _Access]:
    """The unit that runs `insn` and the scratchpad rows / DRAM bytes it reads and writes.

    `uop_table` is the micro-op buffer as the compute unit's earlier LOAD UOPs left it; a LOAD UOP
    updates it (the compute unit runs in program order, so this is its state at `insn`)."""
    from ..isa.asm import element_bytes

    isa, c = build_isa(program.config), program.config
    reads: set[tuple[str, int]] = set()
    writes: set[tuple[str, int]] = set()
    f = insn.fields
    if insn.op in ("LOAD", "STORE"):
        memory = isa.enum_name("memory_id", f["memory_id"])
        size = element_bytes(c, memory)
        # DRAM in granules: every element size is a multiple of the granule, so no overlap is missed.
        granule = math.gcd(*(element_bytes(c, m) for m in ("UOP", "INP", "WGT", "ACC", "OUT")))
        dram = {("DRAM", ((f["dram_base"] + y * f["x_stride"]) * size) // granule + b)
                for y in range(f["y_size"]) for b in range(f["x_size"] * size // granule)}
        if insn.op == "STORE":
            unit = "store"
            reads |= {("ACC", f["sram_base"] + k) for k in range(f["y_size"] * f["x_size"])}
            writes |= dram
        else:
            unit = unit_of_memory("LOAD", memory)
            width = f["x_pad_0"] + f["x_size"] + f["x_pad_1"]
            rows = (f["y_pad_0"] + f["y_size"] + f["y_pad_1"]) * width
            writes |= {(memory, f["sram_base"] + k) for k in range(rows)}
            reads |= dram
            if memory == "UOP":
                first = program.uop_offset // c.uop_bytes
                for y in range(f["y_size"]):
                    for x in range(f["x_size"]):
                        k = f["dram_base"] + y * f["x_stride"] + x - first
                        uop_table[f["sram_base"] + y * width + x] = program.uops[k] if 0 <= k < len(program.uops) else 0
    elif insn.op in ("GEMM", "ALU"):
        unit = "compute"
        uop_rows = range(f["uop_begin"], f["uop_end"])
        reads |= {("UOP", u) for u in uop_rows}
        decoded = [isa.decode_uop(uop_table.get(u, 0)) for u in uop_rows]
        for i in range(f["iter_out"]):
            for j in range(f["iter_in"]):
                for uop in decoded:
                    d = uop.dst + i * f["dst_factor_out"] + j * f["dst_factor_in"]
                    s = uop.src + i * f["src_factor_out"] + j * f["src_factor_in"]
                    writes.add(("ACC", d))
                    if f["reset"]:
                        continue
                    reads.add(("ACC", d))
                    if insn.op == "GEMM":
                        w = uop.wgt + i * f["wgt_factor_out"] + j * f["wgt_factor_in"]
                        reads |= {("INP", s), ("WGT", w)}
                    elif not f["use_imm"]:
                        reads.add(("ACC", s))
    else:
        unit = "compute"
    return unit, _Access(frozenset(reads), frozenset(writes))


def find_races(program: Program) -> list[str]:
    """Cross-unit conflicts not ordered by dependency tokens, and reads of never-written scratchpad rows.

    Happens-before: program order inside a unit, and the k-th pop of a token queue after the k-th
    push to it. An empty list means every legal timing of the program gives the same result."""
    isa = build_isa(program.config)
    decoded = [isa.decode(w) for w in program.insns]
    uop_table: dict[int, int] = {}
    info = [_accesses(program, insn, uop_table) for insn in decoded]
    queues: dict[tuple[str, str], list[list[int]]] = {}  # (producer, consumer) -> vector clocks of pushes
    popped: dict[tuple[str, str], int] = {}
    clocks: list[list[int] | None] = [None] * len(decoded)
    per_unit = {u: [i for i, (unit, _) in enumerate(info) if unit == u] for u in _UNIT_INDEX}
    pos = dict.fromkeys(_UNIT_INDEX, 0)
    last = {u: [0, 0, 0] for u in _UNIT_INDEX}
    progress = True
    while progress:
        progress = False
        for unit in _UNIT_INDEX:
            while pos[unit] < len(per_unit[unit]):
                i = per_unit[unit][pos[unit]]
                f = decoded[i].fields
                prev, nxt = _NEIGHBOURS[unit]
                sources = [(n, unit) for side, n in (("prev", prev), ("next", nxt)) if n and f.get(f"pop_{side}")]
                if any(len(queues.get(q, [])) <= popped.get(q, 0) for q in sources):
                    break
                vc = list(last[unit])
                for q in sources:
                    vc = [max(a, b) for a, b in zip(vc, queues[q][popped.get(q, 0)])]
                    popped[q] = popped.get(q, 0) + 1
                vc[_UNIT_INDEX[unit]] = pos[unit] + 1
                clocks[i] = vc
                last[unit] = vc
                for side, n in (("prev", prev), ("next", nxt)):
                    if n and f.get(f"push_{side}"):
                        queues.setdefault((unit, n), []).append(vc)
                pos[unit] += 1
                progress = True
    problems = [f"{u} unit never runs instruction {per_unit[u][pos[u]]}: it waits for a token nobody gives"
                for u in _UNIT_INDEX if pos[u] < len(per_unit[u])]
    if problems:
        return problems

    def before(a: int, b: int) -> bool:
        ua = _UNIT_INDEX[info[a][0]]
        return clocks[a][ua] <= clocks[b][ua]  # type: ignore[index]

    writers: dict[tuple[str, int], list[int]] = {}
    readers: dict[tuple[str, int], list[int]] = {}
    for i, (_, acc) in enumerate(info):
        for key in acc.writes:
            writers.setdefault(key, []).append(i)
        for key in acc.reads:
            readers.setdefault(key, []).append(i)
    races = []
    for key, ws in writers.items():
        for k, a in enumerate(ws):
            for b in ws[k + 1:] + readers.get(key, []):
                if a != b and info[a][0] != info[b][0] and not before(a, b) and not before(b, a):
                    races.append(f"instructions {a} and {b} both touch {key[0]} {key[1]} with no token ordering them")
    for key, rs in readers.items():
        if key[0] == "DRAM":
            continue
        for b in rs:
            if not any(a != b and before(a, b) for a in writers.get(key, [])):
                races.append(f"instruction {b} reads {key[0]} row {key[1]}, which nothing wrote before it")
    return sorted(set(races))
