"""The cycle model: a fast estimate of how many cycles a Program takes on the accelerator.

It follows the functional simulator's structure (`sim/functional.py`) and the RTL's documented
timing (`hw/top.py` and each unit's module): fetch reads the instruction words in bursts and
dispatches them in order into three bounded command queues (load, compute, store); each unit runs
its queue in order; an instruction takes its command, then its dependency tokens, runs, then gives
its tokens, waiting while a token queue is full. Instead of stepping cycles, the model walks the
instruction stream once and gives every event a time: when fetch has an instruction's words and
dispatches it, when its unit takes it (the unit is free and it was dispatched), when it pops its
tokens (every token it pops has been pushed), when its body ends, and when it has pushed (a token
queue holding `dep_queue_depth` tokens has room once the consumer popped the oldest). Fetch waits
while the target command queue holds `cmd_queue_depth` instructions no unit has taken. So loads,
compute and stores overlap exactly as far as the tokens and queues allow.

Every duration is a formula of the config (bus width, element sizes) and of the constants in
`Timing`, checked against the RTL (see `Timing`):

- the DRAM read channel (`hw/arbiter.py`, `hw/dma.py`) is modelled burst by burst
  (`sim/dram_channel.py`): fetch and the
  four read DMAs (UOP, ACC, INP, WGT) each request whole bursts; the arbiter grants one every
  `dma_row_min` cycles, round-robin among the readers asking, with at most 8 bursts outstanding;
  R beats come back in grant order, back to back while the head burst's reader takes them, so a
  burst waits for every burst granted before it, and a reader that takes its beats slowly (one
  element per cycle when several share a beat, padding written in between) holds up the others.
  The channel keeps the grants before the current event fixed and re-projects the pending LOADs'
  ends whenever a new transfer arrives.
- fetch: bursts of `fetch_burst` instructions into a `fetch_buffer`-entry buffer, requested once the
  previous burst is in and the buffer has room (independently of dispatch); ceil(insn_bytes /
  bus_bytes) beats per instruction, the first `fetch_burst_overhead` after the grant; an instruction
  is dispatched `fetch_buffer_cycles` after its last beat, at most one per `dispatch_cycles`, when
  its command queue has room.
- every unit instruction: a dispatched command reaches the queue's head after `queue_cycles`;
  `command_cycles` to take it (hidden under the previous instruction's push when it was already
  waiting), `issue_cycles` from popping its tokens to starting its body, the body, `push_cycles` to
  push its tokens (when there is room).
- LOAD body: from its start the DMA asks for one burst per DRAM row (split at 256 beats and 4 KiB),
  the first one cycle after the body starts; a burst's first beat comes `dma_latency - 2` cycles after
  its grant at the earliest; the DMA writes `pad_cycles_per_element` per zero element in row-major
  order (leading zeros while it waits for the first beat) and takes one beat per cycle (one element
  per cycle when several share a beat); the body ends one cycle after its last element.
- STORE body: `y_size * max(dma_row_min, x_size * max(1, out_row_bytes / bus_bytes)) + store_response`
  (+ `store_wide_cycles` when an element spans several beats). Writes do not share the read channel.
- the run: `start_cycles` before fetch's first request, `done_cycles` after the last push.
- GEMM / ALU body over n = iter_out * iter_in * (uop_end - uop_begin) micro-ops:
  `n * gemm_ii + gemm_latency` / `n * alu_ii + alu_latency` (reset too: it writes n rows); an ALU
  with use_imm=0 (and no reset) whose operation reads its second operand (`contract/alu.py`) reads
  acc[s] and acc[d] through the accumulator's one read port: `n * alu_src_ii + alu_src_latency`.
- FINISH body: 0.

Budget: `estimate_cycles` refuses a program whose GEMM / ALU instructions declare more micro-op
iterations than `budget` (default `DEFAULT_BUDGET` of `contract/engine.py`, the functional simulator's
too), naming the first instruction past it and its unit, so the models agree on what they run.

Not modelled: DRAM that stalls (the harness's `stall_percent`), and a fetch burst's grant moving
after fetch dispatched from it (a later LOAD that outranks it in the round robin). `estimate_cycles`
does not check addresses: run the functional simulator for that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..configs import AccelConfig
from ..contract import alu
from ..contract.engine import DEFAULT_BUDGET, charge_budget, check_budget_value
from ..contract.topology import SIDES, TOKEN_QUEUES, UNITS, token_queue, unit_of
from ..errors import TensorweaveError
from ..isa import Insn, ISAError, Program, build_isa, element_bytes
from .dram_channel import BOUNDARY_BYTES, BURST_MAX_BEATS, READER_UNIT, BurstChannel, Reader


class CycleModelError(TensorweaveError, RuntimeError):
    """The program cannot run (deadlock, bad token flag, unknown memory); the message names the instruction."""


@dataclass(frozen=True)
class Timing:
    """Microarchitecture timing constants, in cycles: the cycle model's only free parameters.

    The structure and the defaults follow the RTL (`hw/top.py`: take command 1, pop 1, check 1, body,
    push 1; micro-op loops n + 4, 2n + 3 for an ALU with use_imm=0; one AR every other cycle; the
    DMA's and fetch's buffers), each value checked on the Verilator harness with single-instruction
    programs and program prefixes; the validation set of `tests/sim/test_cycle.py`
    (`benchmarks/cycle_model.py`) is within 2 % of the
    RTL. `calibrate` fits chosen fields to measured cycle counts.
    """

    start_cycles: int = 1             # from CTRL.start to fetch's first request
    done_cycles: int = 0              # from the last unit's push to STATUS.done (CYCLES stops)
    fetch_burst: int = 4              # instructions per fetch burst (hw/fetch.py BURST)
    fetch_buffer: int = 8             # fetch's instruction buffer entries
    fetch_burst_overhead: int = 2     # request to first beat of a fetch burst
    fetch_buffer_cycles: int = 1      # an instruction's last beat to its dispatch (the buffer's read latency)
    dispatch_cycles: int = 1          # between two dispatches
    queue_cycles: int = 2             # a dispatched command reaches the head of its command queue
    command_cycles: int = 1           # a unit takes the command at its queue's head
    issue_cycles: int = 2             # pop tokens, then check and start
    push_cycles: int = 1              # push tokens at the end (also when there are none)
    dma_latency: int = 4              # start of a LOAD's body to its first beat, alone (AR grant + 2)
    dma_row_overhead: int = 0         # per DRAM row of a LOAD or STORE, beyond its beats
    dma_row_min: int = 2              # cycles between two AR grants (per reader and on the bus), per STORE row
    pad_cycles_per_element: int = 1   # a zero element written by LOAD padding
    store_response: int = 3           # start of a STORE's body, plus last write beat to its response
    store_wide_cycles: int = 1        # a STORE whose elements span several beats: the packer's extra cycle
    gemm_ii: int = 1                  # cycles between GEMM micro-ops
    gemm_latency: int = 4             # the tensor core's pipeline drain (hw/core.py)
    alu_ii: int = 1                   # cycles between ALU micro-ops
    alu_latency: int = 4
    alu_src_ii: int = 2               # ALU micro-ops with use_imm=0: two reads on the one accumulator port
    alu_src_latency: int = 3          # (hw/core.py: 2n + 3)
    empty_loop_cycles: int = 1        # a GEMM/ALU whose loop has no micro-op (no pipeline drain)
    token_latency: int = 0            # a token pushed in cycle t can be popped in cycle t + this

    def replace(self, **changes: int) -> Timing:
        return Timing(**{**self.__dict__, **changes})


DEFAULT_TIMING = Timing()


@dataclass
class CycleReport:
    """What `estimate_cycles` found. Times are cycles from reset; bytes are DRAM bytes."""

    config: AccelConfig
    cycles: int
    busy: dict[str, int]             # per unit (and 'fetch'): cycles spent running instructions
    stall: dict[str, int]            # per unit: cycles an instruction waited for tokens or a full token
    #                                  queue; 'fetch': cycles fetch waited for a full command queue
    insns: dict[str, int]            # instructions per unit
    gemm_iterations: int             # GEMM micro-op iterations that multiply (reset excluded)
    alu_iterations: int
    dram_read_bytes: int             # LOAD traffic (all memories), as the functional simulator counts it
    dram_write_bytes: int            # STORE traffic
    fetch_bytes: int                 # instruction words read by fetch
    timeline: list[tuple[int, str, str, int, int]] = field(default_factory=list, repr=False)
    # (instruction index, unit, mnemonic, start, end) for every instruction, in completion order

    @property
    def macs(self) -> int:
        return self.gemm_iterations * self.config.macs_per_cycle

    @property
    def utilization(self) -> float:
        """MACs / (cycles x macs_per_cycle): 1.0 means the GEMM core did useful work every cycle."""
        return self.macs / (self.cycles * self.config.macs_per_cycle) if self.cycles else 0.0

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes + self.fetch_bytes

    @property
    def latency_s(self) -> float:
        """Seconds at the config's clock."""
        return self.cycles / (self.config.clock_mhz * 1e6)

    def table(self) -> str:
        rows = [("cycles", self.cycles), ("latency", f"{self.latency_s * 1e3:.4f} ms at {self.config.clock_mhz} MHz"),
                ("MACs", self.macs), ("utilization", f"{self.utilization:.2%}")]
        for unit in ("fetch",) + UNITS:
            rows.append((f"{unit} busy / stall", f"{self.busy.get(unit, 0)} / {self.stall.get(unit, 0)}"))
        rows += [("DRAM read bytes", self.dram_read_bytes), ("DRAM write bytes", self.dram_write_bytes),
                 ("instruction bytes", self.fetch_bytes)]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _beats(nbytes: int, bus_bytes: int) -> int:
    return -(-nbytes // bus_bytes)


class _Model:
    """Timings of single instructions for one config."""

    def __init__(self, config: AccelConfig, timing: Timing):
        self.config, self.timing = config, timing
        self.isa = build_isa(config)
        self.memories = {value: name for name, value in self.isa.enums["memory_id"].items()}
        self.insn_bytes = self.isa.instruction_width // 8
        self.insn_beats = _beats(self.insn_bytes, config.bus_bytes)
        self.shapes: dict[int, tuple[list[tuple[int, int, int]], int, int]] = {}
        self.tokens: dict[tuple[int, str], list[str]] = {}

    def token_queues(self, unit: str, index: int, insn: Insn, kind: str) -> list[str]:
        """The token queues instruction `index` pops from (kind 'pop') or pushes to ('push')."""
        queues = self.tokens.get((index, kind))
        if queues is None:
            queues = self.tokens[(index, kind)] = _token_queues(unit, index, insn, kind)
        return queues

    def memory(self, index: int, insn: Insn) -> str:
        name = self.memories.get(insn.memory_id)
        if name is None:
            raise CycleModelError(f"instruction {index}: memory_id {insn.memory_id} is not a memory")
        return name

    def route(self, index: int, insn: Insn) -> str:
        try:
            return unit_of(self.isa, insn)
        except ISAError as exc:
            raise CycleModelError(f"instruction {index}: {exc}") from None

    def mnemonic(self, index: int, insn: Insn) -> str:
        if insn.op in ("LOAD", "STORE"):
            return f"{insn.op.lower()}.{self.memory(index, insn).lower()}"
        return insn.op.lower()

    def element_cycles(self, nbytes: int) -> int:
        """Cycles per element: whole beats, or one cycle when several elements share a beat."""
        return max(1, _beats(nbytes, self.config.bus_bytes))

    @staticmethod
    def iterations(insn: Insn) -> int:
        return insn.iter_out * insn.iter_in * max(0, insn.uop_end - insn.uop_begin)

    def load_reader(self, index: int, insn: Insn, begin: int) -> Reader:
        """A LOAD's transfer on the read channel, its body starting at `begin`: one burst per DRAM row
        (split at 256 beats and 4 KiB), requested from `begin + 1`, padding written as it comes."""
        shape = self.shapes.get(index)
        if shape is None:
            shape = self.shapes[index] = self.load_shape(index, insn)
        bursts, lead, tail = shape
        return Reader(bursts, 0, begin + 1, begin + lead, tail, self.timing.dma_latency - 2,
                       begin + max(1, lead + tail), index)

    def load_shape(self, index: int, insn: Insn) -> tuple[list[tuple[int, int, int]], int, int]:
        """(bursts, leading padding cycles, trailing cycles) of a LOAD; see `Reader`."""
        t, bus = self.timing, self.config.bus_bytes
        size = element_bytes(self.config, self.memory(index, insn))
        slots = max(1, bus // size)
        pad = t.pad_cycles_per_element
        width = insn.x_pad_0 + insn.x_size + insn.x_pad_1
        lead = (insn.y_pad_0 * width + insn.x_pad_0) * pad
        tail = (insn.x_pad_1 + insn.y_pad_1 * width) * pad
        gap = (insn.x_pad_0 + insn.x_pad_1) * pad + t.dma_row_overhead
        bursts: list[tuple[int, int, int]] = []
        boundary = BOUNDARY_BYTES // bus if bus <= BOUNDARY_BYTES else 1
        rows = insn.y_size if insn.x_size else 0
        for y in range(rows):
            element = insn.dram_base + y * insn.x_stride
            first = element * size // bus
            last = ((element + insn.x_size) * size - 1) // bus
            offset = element % slots
            word = first
            while word <= last:
                n = min(last - word + 1, boundary - word % boundary, BURST_MAX_BEATS)
                if slots == 1:
                    occupancy = consume = n
                else:   # one element per cycle; a beat is taken by the first element of its word
                    lo, hi, end = (_first_element(w, first, slots, offset, insn.x_size)
                                   for w in (word, word + n - 1, word + n))
                    occupancy, consume = hi - lo + 1, end - lo
                word += n
                bursts.append((occupancy, consume, gap if word > last and y < rows - 1 else 0))
        if bursts:
            tail += t.dma_row_overhead
        return bursts, lead, tail

    def load_alone(self, index: int, insn: Insn) -> int:
        """A LOAD's body (to its end, before pushing tokens) with the read channel to itself."""
        reader = self.load_reader(index, insn, 0)
        channel = BurstChannel(self.timing.dma_row_min)
        key = self.memory(index, insn)
        return channel.arrive(key, 0, reader)[key][1] + 1

    def body(self, index: int, insn: Insn) -> int:
        """Cycles from starting an instruction's body to its end (before pushing tokens), alone on the bus."""
        t = self.timing
        if insn.op == "LOAD":
            return self.load_alone(index, insn)
        if insn.op == "STORE":
            # Every row takes at least `dma_row_min` (one AW every other cycle), the first one too;
            # elements wider than a beat cost one cycle more in the packer.
            per_element = self.element_cycles(self.config.out_row_bytes)
            rows = insn.y_size if insn.x_size else 0
            wide = t.store_wide_cycles if self.config.out_row_bytes > self.config.bus_bytes else 0
            return rows * (max(t.dma_row_min, insn.x_size * per_element) + t.dma_row_overhead) + t.store_response + wide
        if insn.op in ("GEMM", "ALU"):
            n = self.iterations(insn)
            if n == 0:
                return t.empty_loop_cycles
            if insn.op == "GEMM":
                return n * t.gemm_ii + t.gemm_latency
            if not insn.reset and not insn.fields.get("use_imm") and _reads_operand(insn):
                return n * t.alu_src_ii + t.alu_src_latency
            return n * t.alu_ii + t.alu_latency
        return 0


def _reads_operand(insn: Insn) -> bool:
    """Whether an ALU instruction's operation reads its second operand (`contract/alu.py`); an
    unknown opcode counts as reading it (the hardware stops on it before the loop anyway)."""
    record = alu.by_opcode(insn.alu_opcode)
    return record is None or record.reads_operand


def _token_queues(unit: str, index: int, insn: Insn, kind: str) -> list[str]:
    queues = []
    for side in SIDES:
        if insn.fields.get(f"{kind}_{side}"):
            queue = token_queue(unit, side, kind)
            if queue is None:
                raise CycleModelError(f"instruction {index} ({insn.op.lower()}) in the {unit} unit sets "
                                      f"{kind}_{side}, but the {unit} unit has no {side} stage")
            queues.append(queue)
    return queues


def estimate_cycles(program: Program, timing: Timing = DEFAULT_TIMING, keep_timeline: bool = False,
                    budget: int = DEFAULT_BUDGET) -> CycleReport:
    """Estimate the cycles `program` takes on its config's accelerator (see the module docstring); a
    program past `budget` micro-op iterations is refused."""
    config = program.config
    model = _Model(config, timing)
    check_budget_value(budget)
    decoded: list[tuple[str, Insn]] = []
    spent = 0
    for index, word in enumerate(program.insns):
        try:
            insn = model.isa.decode(word)
        except ValueError as exc:
            raise CycleModelError(f"instruction {index}: illegal instruction word {word:#x} ({exc})") from None
        unit = model.route(index, insn)
        spent = charge_budget(spent, budget, unit, index, insn, CycleModelError)
        decoded.append((unit, insn))
        if insn.op == "FINISH":
            break
    else:
        raise CycleModelError(f"the program's {len(program.insns)} instructions have no FINISH; end it with 'finish'")
    return _Walk(model, decoded, keep_timeline).run()


class _Walk:
    """The event walk. Events are taken in time order (the earliest one whose inputs are known),
    so the DRAM read channel can be handed out first come, first served."""

    def __init__(self, model: _Model, decoded: list[tuple[str, Insn]], keep_timeline: bool):
        self.model, self.decoded, self.keep_timeline = model, decoded, keep_timeline
        self.t = t = model.timing
        config = model.config
        self.depth_cmd, self.depth_dep = config.cmd_queue_depth, config.dep_queue_depth
        self.queue: dict[str, deque[tuple[int, int]]] = {u: deque() for u in UNITS}  # (index, dispatch time)
        self.taken: dict[str, list[int]] = {u: [] for u in UNITS}   # when each instruction left its queue
        self.dispatched = {u: 0 for u in UNITS}
        self.free = {u: 0 for u in UNITS}
        self.pending: dict[str, tuple[int, int, int] | None] = {u: None for u in UNITS}  # (index, start, end)
        self.head_taken: dict[str, int | None] = {u: None for u in UNITS}  # when the queue's head was taken
        self.pushes: dict[str, list[int]] = {q: [] for q in TOKEN_QUEUES.values()}  # cycle each token can be popped
        self.pops: dict[str, list[int]] = {q: [] for q in TOKEN_QUEUES.values()}    # cycle each token was popped
        self.busy = {u: 0 for u in ("fetch",) + UNITS}
        self.stall = {u: 0 for u in ("fetch",) + UNITS}
        self.report = CycleReport(config, 0, self.busy, self.stall, {u: 0 for u in UNITS}, 0, 0, 0, 0,
                                  len(decoded) * model.insn_bytes)
        self.dispatch_times: list[int] = []
        self.pc = 0                        # the next instruction to dispatch
        self.req_pc = 0                    # the next instruction to request
        self.words = t.start_cycles        # when the latest burst's last beat arrived
        self.burst_first: list[int] = []   # per burst: its first beat
        self.stall_slot = 0
        self.last_dispatch = -t.dispatch_cycles
        self.channel = BurstChannel(t.dma_row_min)
        self.alone: dict[str, int] = {}    # per unit: its pending body's cycles had it the bus alone

    # --- fetch ---------------------------------------------------------------------------------
    def fetch_event(self) -> tuple[int, int] | None:
        """(time, kind) of fetch's next event: kind 1 requests the next burst, kind 0 dispatches the
        next instruction; None if neither can be timed yet."""
        t = self.t
        events = []
        if self.req_pc < len(self.decoded):
            # A burst is requested once the previous one is in and the buffer has room for it.
            room_after = self.req_pc - (t.fetch_buffer - t.fetch_burst) - 1
            if room_after < len(self.dispatch_times):
                events.append((max(self.words, self.dispatch_times[room_after] + 1 if room_after >= 0 else 0), 1))
        if self.pc < self.req_pc:
            unit = self.decoded[self.pc][0]
            words = self.burst_first[self.pc // t.fetch_burst] + (self.pc % t.fetch_burst + 1) * self.model.insn_beats
            when = max(words + t.fetch_buffer_cycles, self.last_dispatch + t.dispatch_cycles)
            if self.dispatched[unit] >= self.depth_cmd:
                # The queue has room once the instruction depth_cmd places ahead was taken.
                ahead = self.dispatched[unit] - self.depth_cmd
                if ahead < len(self.taken[unit]):
                    slot = self.taken[unit][ahead] + 1
                    self.stall_slot = max(0, slot - when)
                    events.append((max(when, slot), 0))
            else:
                self.stall_slot = 0
                events.append((when, 0))
        return min(events) if events else None

    def fetch_commit(self, when: int, kind: int) -> None:
        t, model = self.t, self.model
        if kind == 1:
            # Its beats queue on the read channel behind the bursts granted before it.
            count = min(t.fetch_burst, len(self.decoded) - self.req_pc)
            beats = count * model.insn_beats
            reader = Reader([(beats, beats, 0)], 0, when, 0, 0, t.fetch_burst_overhead)
            ends = self.channel.arrive("fetch", when, reader)
            self._reproject(ends)
            self.burst_first.append(ends["fetch"][1])
            self.words = ends["fetch"][1] + beats
            self.req_pc += count
            self.busy["fetch"] += t.fetch_burst_overhead + beats
            return
        self.stall["fetch"] += self.stall_slot
        self.dispatch_times.append(when)
        self.last_dispatch = when
        unit = self.decoded[self.pc][0]
        self.queue[unit].append((self.pc, when))
        self.dispatched[unit] += 1
        self.pc += 1

    def _reproject(self, ends: dict[str, tuple[int, int]]) -> None:
        """Move the end of every unit's pending LOAD to its transfer's projected end."""
        for key, (owner, done) in ends.items():
            unit = READER_UNIT.get(key)
            if unit is None:
                continue
            pending = self.pending[unit]
            if pending is not None and pending[0] == owner:
                self.pending[unit] = (owner, pending[1], done + 1)

    # --- units ---------------------------------------------------------------------------------
    def unit_event(self, unit: str) -> int | None:
        """The time of the unit's next event (pop, or push when its body is done), or None."""
        pending = self.pending[unit]
        if pending is not None:
            index, _, end = pending
            room = end
            for q in self.model.token_queues(unit, index, self.decoded[index][1], "push"):
                k = len(self.pushes[q])
                if k >= self.depth_dep:
                    if k - self.depth_dep >= len(self.pops[q]):
                        return None
                    room = max(room, self.pops[q][k - self.depth_dep] + 1)
            return room
        if not self.queue[unit]:
            return None
        index, arrival = self.queue[unit][0]
        # A command already waiting is taken while the previous instruction pushes its tokens; taking
        # it frees its command-queue slot before its tokens are there.
        pop = max(self.free[unit], arrival + self.t.queue_cycles + self.t.command_cycles)
        if self.head_taken[unit] is None:
            return pop - self.t.command_cycles
        for q in self.model.token_queues(unit, index, self.decoded[index][1], "pop"):
            k = len(self.pops[q])
            if k >= len(self.pushes[q]):
                return None
            pop = max(pop, self.pushes[q][k])
        return pop

    def unit_commit(self, unit: str, when: int) -> None:
        t, model = self.t, self.model
        pending = self.pending[unit]
        if pending is not None:  # push
            index, start, end = pending
            insn = self.decoded[index][1]
            done = when + t.push_cycles
            for q in self.model.token_queues(unit, index, insn, "push"):
                self.pushes[q].append(done + t.token_latency)
            shared = max(0, (end - start - t.issue_cycles) - self.alone[unit])  # waiting for the read channel
            self.stall[unit] += when - end + shared
            self.free[unit] = done
            self.pending[unit] = None
            if self.keep_timeline:
                self.report.timeline.append((index, unit, model.mnemonic(index, insn), start, end))
            return
        if self.head_taken[unit] is None:  # take the command
            self.head_taken[unit] = when
            self.taken[unit].append(when)
            return
        self.head_taken[unit] = None
        index, arrival = self.queue[unit].popleft()
        insn = self.decoded[index][1]
        ready = max(self.free[unit], arrival + t.queue_cycles + t.command_cycles)
        for q in self.model.token_queues(unit, index, insn, "pop"):
            self.pops[q].append(when)
        self.stall[unit] += when - ready
        body = model.body(index, insn)
        begin = when + t.issue_cycles
        self.alone[unit] = body
        self.busy[unit] += t.command_cycles + t.issue_cycles + body + t.push_cycles
        self.report.insns[unit] += 1
        _account(self.report, model, index, insn)
        self.pending[unit] = (index, when, begin + body)
        if insn.op == "LOAD":
            ends = self.channel.arrive(model.memory(index, insn), when, model.load_reader(index, insn, begin))
            self._reproject(ends)

    def run(self) -> CycleReport:
        while True:
            best: tuple[int, int, str] | None = None
            fetch = self.fetch_event()
            if fetch is not None:
                best = (fetch[0], 0, "fetch")
            for order, unit in enumerate(UNITS, start=1):
                when = self.unit_event(unit)
                if when is not None and (best is None or (when, order) < best[:2]):
                    best = (when, order, unit)
            if best is None:
                if self.pc == len(self.decoded) and not any(self.queue.values()) and \
                        all(p is None for p in self.pending.values()):
                    break
                raise CycleModelError("deadlock: " + "; ".join(
                    _stuck(self.decoded, self.queue, self.pending, self.pushes, self.pops)))
            if best[2] == "fetch" and fetch is not None:
                self.fetch_commit(*fetch)
            else:
                self.unit_commit(best[2], best[0])
        self.report.cycles = max(self.free.values()) + self.t.done_cycles
        return self.report


def _first_element(word: int, first: int, slots: int, offset: int, count: int) -> int:
    """Index in its row of the first of `count` elements that lies in bus word `word` (the row starts at
    slot `offset` of word `first`); `count` past the row's last word."""
    return min(count, max(0, (word - first) * slots - offset))


def _account(report: CycleReport, model: _Model, index: int, insn: Insn) -> None:
    config = model.config
    if insn.op == "LOAD":
        report.dram_read_bytes += insn.y_size * insn.x_size * element_bytes(config, model.memory(index, insn))
    elif insn.op == "STORE":
        report.dram_write_bytes += insn.y_size * insn.x_size * config.out_row_bytes
    elif insn.op == "GEMM" and not insn.reset:
        report.gemm_iterations += model.iterations(insn)
    elif insn.op == "ALU" and not insn.reset:
        report.alu_iterations += model.iterations(insn)


def _stuck(decoded, queue, pending, pushes, pops) -> list[str]:
    out = []
    for unit in UNITS:
        if pending[unit] is not None:
            index = pending[unit][0]
            full = _token_queues(unit, index, decoded[index][1], "push")
            out.append(f"{unit} unit at instruction {index} ({decoded[index][1].op.lower()}) waits to push to the "
                       f"full token queue {', '.join(full)}")
        elif queue[unit]:
            index = queue[unit][0][0]
            insn = decoded[index][1]
            empty = [q for q in _token_queues(unit, index, insn, "pop") if len(pops[q]) >= len(pushes[q])]
            out.append(f"{unit} unit at instruction {index} ({insn.op.lower()}) waits to pop an empty token "
                       f"queue {', '.join(empty)}")
    return out or ["fetch is blocked by a full command queue"]


def calibrate(samples: list[tuple[Program, int]], base: Timing = DEFAULT_TIMING,
              fields: tuple[str, ...] = ("fetch_burst_overhead", "dma_latency", "dma_row_overhead",
                                         "store_response", "issue_cycles", "token_latency"),
              span: int = 8) -> tuple[Timing, float]:
    """Fit `fields` of the timing to (program, measured cycles) samples: coordinate descent over
    integers within +-span of `base`, minimising the sum of squared relative errors. Returns the
    timing and its worst relative error."""
    if not samples:
        raise CycleModelError("calibrate needs at least one (program, cycles) sample")

    def errors(t: Timing) -> list[float]:
        return [(estimate_cycles(p, t).cycles - c) / c for p, c in samples]

    def cost(t: Timing) -> float:
        return sum(e * e for e in errors(t))

    best, best_err = base, cost(base)
    for _ in range(10):
        improved = False
        for name in fields:
            centre = getattr(best, name)
            for value in range(max(0, centre - span), centre + span + 1):
                candidate = best.replace(**{name: value})
                err = cost(candidate)
                if err < best_err - 1e-15:
                    best, best_err, improved = candidate, err, True
        if not improved:
            break
    return best, max(abs(e) for e in errors(best))
