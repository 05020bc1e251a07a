"""The functional simulator: the executable definition of every tensorweave instruction.

Fetch reads the instruction words from DRAM and dispatches them in order into three bounded
command queues (load: LOAD of INP/WGT; compute: LOAD of UOP/ACC, GEMM, ALU, FINISH; store: STORE).
Each unit runs its queue in order. An instruction first takes its tokens (pop_prev / pop_next, all
of them or none), then acts, then gives its tokens (push_prev / push_next), waiting while a token
queue is full. Fetch stops after FINISH; the run is done when every queue has drained. When no
unit can move, the program would deadlock on the hardware too, and `SimError` names each stuck
unit, its instruction index and the token queue it waits on.

Every run has a budget of micro-op iterations (GEMM and ALU loop bodies, reset included; default
`DEFAULT_BUDGET` of `contract/engine.py`, far above any real model: ResNet-18's biggest layer takes
0.51 M on vta-default, 7.4 M on tiny). An instruction that would pass it stops the run before it
executes, with a `SimError` naming its unit and index.

The per-instruction definitions are `_load`, `_store`, `_gemm` and `_alu` below; the ISA
reference (isa/generated/*/ISA.md) links here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

import numpy as np

from ..configs import AccelConfig
from ..contract import alu
from ..contract.engine import DEFAULT_BUDGET, RunResult, Stats, charge_budget, check_budget_value
from ..contract.memories import memories
from ..contract.topology import SIDES, TOKEN_QUEUES, UNITS, token_queue, unit_of
from ..errors import TensorweaveError
from ..isa import Insn, ISAError, Program, build_isa, element_bytes
from ..isa.program import pack, unpack


class SimError(TensorweaveError, RuntimeError):
    """The program did something the hardware cannot do; the message names the instruction."""


def _wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap to `bits`."""
    half = 1 << (bits - 1)
    return ((values + half) & ((1 << bits) - 1)) - half


class FunctionalSim:
    """Runs Programs for one config; `run` returns outputs and instruction statistics.

    Every `run` starts from zeroed scratchpads, so a reused simulator gives the same answer as a fresh one.
    `budget`: the most micro-op iterations one run may execute (see the module docstring).
    """

    def __init__(self, config: AccelConfig, budget: int = DEFAULT_BUDGET):
        self.config = config
        self.budget = check_budget_value(budget)
        self.isa = build_isa(config)
        self.memories = memories(config)
        self._uop_fields = {f.name: (f.offset, (1 << f.width) - 1) for f in self.isa.uop.named_fields}
        self._clear_scratchpads()

    def _clear_scratchpads(self) -> None:
        self.inp, self.wgt, self.acc, self.uop = (self.memories[m].zeros() for m in ("INP", "WGT", "ACC", "UOP"))

    # --- the run loop --------------------------------------------------------------------------
    def run(self, program: Program, inputs: Mapping[str, np.ndarray] | None = None) -> RunResult:
        if program.config != self.config:
            raise SimError(f"program was built for config '{program.config.name}' ({program.config.digest}), "
                           f"not '{self.config.name}' ({self.config.digest})")
        self._clear_scratchpads()
        self.dram = program.dram_image(inputs)
        self.stats = Stats()
        self._spent = 0
        depth_cmd, depth_dep = self.config.cmd_queue_depth, self.config.dep_queue_depth
        commands: dict[str, deque[tuple[int, Insn]]] = {u: deque() for u in UNITS}
        tokens = {q: 0 for q in TOKEN_QUEUES.values()}
        phase = {u: "pop" for u in UNITS}  # pop -> (act) -> push, per head instruction
        pc, count, finished = 0, len(program.insns), False
        ib = program.insn_bytes
        while True:
            progress = False
            # Fetch: one instruction per step, in order, while its queue has room.
            if not finished and pc < count:
                word = int.from_bytes(self.dram[pc * ib:(pc + 1) * ib], "little")
                insn = self._decode(word, pc)
                unit = self._route(insn, pc)
                if len(commands[unit]) < depth_cmd:
                    commands[unit].append((pc, insn))
                    finished = insn.op == "FINISH"
                    pc += 1
                    progress = True
            for unit in UNITS:
                while commands[unit]:
                    index, insn = commands[unit][0]
                    moved = self._step(unit, index, insn, phase, tokens, depth_dep)
                    if not moved:
                        break
                    progress = True
                    if phase[unit] == "done":
                        commands[unit].popleft()
                        phase[unit] = "pop"
            drained = not any(commands.values())
            if drained and (finished or pc == count):
                break
            if not progress:
                raise SimError("deadlock: " + "; ".join(self._stuck(commands, phase, tokens)))
        if not finished:
            raise SimError(f"the program's {count} instructions ran without a FINISH; end it with 'finish'")
        self.stats.tokens_left = {q: n for q, n in tokens.items() if n}
        outputs = {t.name: program.read_tensor(self.dram, t.name) for t in program.outputs}
        return RunResult(outputs, self.stats, self.dram)

    def _step(self, unit: str, index: int, insn: Insn, phase: dict[str, str], tokens: dict[str, int],
              depth: int) -> bool:
        pops = self._token_queues(unit, insn, "pop")
        pushes = self._token_queues(unit, insn, "push")
        if phase[unit] == "pop":
            if not all(tokens[q] > 0 for q in pops):
                return False
            for q in pops:
                tokens[q] -= 1
            self._execute(unit, index, insn)
            phase[unit] = "push"
            return True
        if not all(tokens[q] < depth for q in pushes):
            return False
        for q in pushes:
            tokens[q] += 1
        phase[unit] = "done"
        return True

    def _token_queues(self, unit: str, insn: Insn, kind: str) -> list[str]:
        queues = []
        for side in SIDES:
            if insn.fields.get(f"{kind}_{side}"):
                queue = token_queue(unit, side, kind)
                if queue is None:
                    raise SimError(f"instruction {insn.op.lower()} in the {unit} unit sets {kind}_{side}, "
                                   f"but the {unit} unit has no {side} stage")
                queues.append(queue)
        return queues

    def _stuck(self, commands, phase, tokens) -> list[str]:
        out = []
        for unit in UNITS:
            if not commands[unit]:
                continue
            index, insn = commands[unit][0]
            if phase[unit] == "pop":
                waits = [q for q in self._token_queues(unit, insn, "pop") if tokens[q] == 0]
                out.append(f"{unit} unit at instruction {index} ({insn.op.lower()}) waits to pop an empty "
                           f"token queue {', '.join(waits)}")
            else:
                waits = self._token_queues(unit, insn, "push")
                out.append(f"{unit} unit at instruction {index} ({insn.op.lower()}) waits to push to the full "
                           f"token queue {', '.join(waits)}")
        return out or ["fetch is blocked by a full command queue"]

    def _decode(self, word: int, index: int) -> Insn:
        try:
            return self.isa.decode(word)
        except ValueError as exc:
            raise SimError(f"instruction {index}: illegal instruction word {word:#x} ({exc})") from None

    def _route(self, insn: Insn, index: int) -> str:
        try:
            return unit_of(self.isa, insn)
        except ISAError as exc:
            raise SimError(f"instruction {index}: {exc}") from None

    def _memory(self, insn: Insn, index: int) -> str:
        try:
            return self.isa.enum_name("memory_id", insn.memory_id)
        except ValueError:
            raise SimError(f"instruction {index}: memory_id {insn.memory_id} is not a memory") from None

    def _execute(self, unit: str, index: int, insn: Insn) -> None:
        self._spent = charge_budget(self._spent, self.budget, unit, index, insn, SimError)
        self.stats.insns[unit] += 1
        if insn.op == "LOAD":
            self._load(index, insn)
        elif insn.op == "STORE":
            self._store(index, insn)
        elif insn.op == "GEMM":
            self._gemm(index, insn)
        elif insn.op == "ALU":
            self._alu(index, insn)
        else:
            self.stats.ops["finish"] += 1

    # --- instruction definitions ---------------------------------------------------------------
    def _buffer(self, memory: str) -> np.ndarray:
        return {"INP": self.inp, "WGT": self.wgt, "ACC": self.acc, "UOP": self.uop}[memory]

    def _element_codec(self, memory: str) -> tuple[int, bool]:
        found = self.memories[memory]
        return found.element_bits, found.signed

    def _load(self, index: int, insn: Insn) -> None:
        """LOAD: a y_size x x_size tile of elements from DRAM, zero-padded on four sides."""
        memory = self._memory(insn, index)
        self.stats.ops[f"load.{memory.lower()}"] += 1
        pads = (insn.y_pad_0, insn.y_pad_1, insn.x_pad_0, insn.x_pad_1)
        if memory == "UOP" and any(pads):
            raise SimError(f"instruction {index}: UOP loads take no padding, got pads {pads}")
        buffer = self._buffer(memory)
        size = element_bytes(self.config, memory)
        bits, signed = self._element_codec(memory)
        rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
        width = insn.x_pad_0 + insn.x_size + insn.x_pad_1
        end = insn.sram_base + rows * width
        if end > buffer.shape[0]:
            raise SimError(f"instruction {index} (load.{memory.lower()}): writes {memory} rows "
                           f"{insn.sram_base}..{end - 1}, past the scratchpad's {buffer.shape[0]} rows")
        tile = np.zeros((rows, width) + buffer.shape[1:], dtype=np.int64)
        per_row = insn.x_size * size
        for y in range(insn.y_size):
            start = (insn.dram_base + y * insn.x_stride) * size
            self._check_dram(index, start, per_row)
            count = insn.x_size * int(np.prod(buffer.shape[1:]))
            values = unpack(self.dram[start:start + per_row], bits, count, signed)
            tile[insn.y_pad_0 + y, insn.x_pad_0:insn.x_pad_0 + insn.x_size] = values.reshape(
                (insn.x_size,) + buffer.shape[1:])
        self.stats.dram_read_bytes += per_row * insn.y_size
        buffer[insn.sram_base:end] = tile.reshape((rows * width,) + buffer.shape[1:])

    def _store(self, index: int, insn: Insn) -> None:
        """STORE: y_size x x_size accumulator rows to DRAM, each value truncated to out_width bits."""
        self.stats.ops["store"] += 1
        if any((insn.y_pad_0, insn.y_pad_1, insn.x_pad_0, insn.x_pad_1)):
            raise SimError(f"instruction {index}: STORE takes no padding")
        end = insn.sram_base + insn.y_size * insn.x_size
        if end > self.acc.shape[0]:
            raise SimError(f"instruction {index} (store): reads accumulator rows {insn.sram_base}..{end - 1}, "
                           f"past the scratchpad's {self.acc.shape[0]} rows")
        size = self.config.out_row_bytes
        for y in range(insn.y_size):
            rows = self.acc[insn.sram_base + y * insn.x_size:insn.sram_base + (y + 1) * insn.x_size]
            start = (insn.dram_base + y * insn.x_stride) * size
            self._check_dram(index, start, insn.x_size * size)
            self.dram[start:start + insn.x_size * size] = pack(rows, self.config.out_width)
        self.stats.dram_write_bytes += insn.y_size * insn.x_size * size

    def _check_dram(self, index: int, start: int, nbytes: int) -> None:
        if start < 0 or start + nbytes > len(self.dram):
            raise SimError(f"instruction {index}: DRAM bytes {start}..{start + nbytes - 1} are outside the "
                           f"program's {len(self.dram)}-byte DRAM image")

    def _loop_chunks(self, index: int, insn: Insn, chunk: int = 1 << 15) -> Iterator[dict[str, np.ndarray]]:
        """The (iter_out, iter_in, uop) loop of GEMM/ALU as flat index arrays, in execution order, about
        `chunk` micro-ops at a time (a loop within the budget can still be too big to hold at once)."""
        words = self._uop_words(index, insn)
        count = insn.iter_out * insn.iter_in
        if not words.size:
            return
        factors = {name: (insn.fields.get(f"{name}_factor_out", 0), insn.fields.get(f"{name}_factor_in", 0))
                   for name in ("dst", "src", "wgt")}
        bases = {name: (words >> offset) & mask for name, (offset, mask) in self._uop_fields.items()
                 if name in factors}
        step = max(1, chunk // words.size)
        for lo in range(0, count, step):
            k = np.arange(lo, min(count, lo + step))
            i, j = (k // insn.iter_in)[:, None], (k % insn.iter_in)[:, None]
            yield {name: (bases[name][None, :] + i * fo + j * fi).ravel() for name, (fo, fi) in factors.items()}

    def _uop_words(self, index: int, insn: Insn) -> np.ndarray:
        if insn.uop_end > self.uop.shape[0]:
            raise SimError(f"instruction {index} ({insn.op.lower()}): uop_end {insn.uop_end} is past the "
                           f"micro-op buffer's {self.uop.shape[0]} entries")
        return self.uop[insn.uop_begin:insn.uop_end]

    def _loop_max(self, index: int, insn: Insn, name: str) -> int:
        """The largest `name` (dst, src, wgt) index the loop reaches, -1 for an empty loop."""
        words = self._uop_words(index, insn)
        if not words.size or not insn.iter_out or not insn.iter_in:
            return -1
        offset, mask = self._uop_fields[name]
        fo, fi = insn.fields.get(f"{name}_factor_out", 0), insn.fields.get(f"{name}_factor_in", 0)
        return int(((words >> offset) & mask).max()) + (insn.iter_out - 1) * fo + (insn.iter_in - 1) * fi

    def _check_rows(self, index: int, insn: Insn, name: str, what: str, depth: int, memory: str) -> None:
        last = self._loop_max(index, insn, name)
        if last >= depth:
            raise SimError(f"instruction {index} ({insn.op.lower()}): {what} index {last} is past "
                           f"the {memory} scratchpad's {depth} rows")

    def _gemm(self, index: int, insn: Insn) -> None:
        """GEMM: acc[d] += inp[s] . wgt[w]^T over the micro-op loop (or acc[d] = 0 with reset)."""
        self.stats.ops["gemm.reset" if insn.reset else "gemm"] += 1
        self._check_rows(index, insn, "dst", "accumulator", self.acc.shape[0], "accumulator")
        if insn.reset:
            for idx in self._loop_chunks(index, insn):
                self.acc[idx["dst"]] = 0
            return
        self._check_rows(index, insn, "src", "input", self.inp.shape[0], "input")
        self._check_rows(index, insn, "wgt", "weight", self.wgt.shape[0], "weight")
        touched = np.zeros(self.acc.shape[0], dtype=bool)
        for idx in self._loop_chunks(index, insn):
            d, s, w = idx["dst"], idx["src"], idx["wgt"]
            self.stats.gemm_iterations += d.size
            np.add.at(self.acc, d, np.einsum("nbi,noi->nbo", self.inp[s], self.wgt[w]))
            touched[d] = True
        rows = np.flatnonzero(touched)
        self.acc[rows] = _wrap(self.acc[rows], self.config.acc_width)

    def _alu(self, index: int, insn: Insn) -> None:
        """ALU: acc[d] = op(acc[d], imm or acc[s]) over the micro-op loop, in order; op is the record
        of `contract/alu.py` with the instruction's opcode."""
        record = alu.by_opcode(insn.alu_opcode)
        if record is None or not self.config.alu_has(record.name):
            shown = record.name if record else f"opcode {insn.alu_opcode}"
            raise SimError(f"instruction {index}: ALU operation {shown} is not in config "
                           f"'{self.config.name}' (alu_ops: {', '.join(self.config.alu_ops)})")
        op = record.name
        self.stats.ops[f"alu.{op.lower()}" + (".reset" if insn.reset else "")] += 1
        self._check_rows(index, insn, "dst", "destination", self.acc.shape[0], "accumulator")
        if insn.reset:
            for idx in self._loop_chunks(index, insn):
                self.acc[idx["dst"]] = 0
            return
        reads_source = not insn.use_imm and record.reads_operand
        if reads_source:
            self._check_rows(index, insn, "src", "source", self.acc.shape[0], "accumulator")
        width = self.config.acc_width
        chunks = self._loop_chunks(index, insn, chunk=max(self.acc.shape[0], 1 << 15))
        for idx in chunks:
            dst, src = idx["dst"], idx["src"]
            self.stats.alu_iterations += dst.size
            # One chunk holds the whole loop whenever its destinations can all differ (no more of them
            # than accumulator rows); only then can it run as one vector operation.
            independent = np.unique(dst).size == dst.size and (
                not reads_source or np.all(src == dst) or not np.intersect1d(src, dst).size)
            if independent:
                operand = self.acc[src] if reads_source else insn.imm
                self.acc[dst] = record.apply(self.acc[dst], operand, width)
            else:
                for d, s in zip(dst, src):
                    operand = self.acc[s] if reads_source else insn.imm
                    self.acc[d] = record.apply(self.acc[d], operand, width)


def alu_apply(op: str, a: np.ndarray, b: np.ndarray | int, width: int) -> np.ndarray:
    """One ALU operation on signed `width`-bit values, by name (`contract/alu.py` holds the definitions)."""
    return alu.apply(op, a, b, width)


def run_functional(program: Program, inputs: Mapping[str, np.ndarray] | None = None,
                   budget: int = DEFAULT_BUDGET) -> RunResult:
    """Run `program` on a fresh functional simulator of its own config, within `budget` micro-op iterations."""
    return FunctionalSim(program.config, budget).run(program, inputs)
