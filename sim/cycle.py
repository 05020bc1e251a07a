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
`Timing`, the one place calibrated against the RTL (see `Timing`):

- fetch: bursts of `fetch_burst` instructions into a `fetch_buffer`-entry buffer (a burst is
  requested once it fits), `fetch_burst_overhead` cycles per burst plus ceil(insn_bytes / bus_bytes)
  beats per instruction; at most one dispatch per `dispatch_cycles`.
- every unit instruction: `command_cycles` to take it (hidden under the previous instruction's
  push when it was already waiting), `issue_cycles` from popping its tokens to starting its body,
  the body, `push_cycles` to push its tokens (when there is room).
- LOAD body of y_size rows of x_size elements (element = one scratchpad row of that memory):
  `dma_latency + rows(y_size, x_size * max(1, element_bytes / bus_bytes))` plus
  `pad_cycles_per_element` for each zero element (y_pad rows and x_pad columns), where
  rows(y, r) = r + (y - 1) * max(dma_row_min, r) + y * dma_row_overhead; its beats
  (y_size * ceil(x_size * element_bytes / bus_bytes)) wait for the DRAM read channel, which fetch
  and the four read DMAs share first come, first served.
- STORE body: `rows(y_size, x_size * max(1, out_row_bytes / bus_bytes)) + store_response`.
- the run: `start_cycles` before fetch's first request, `done_cycles` after the last push.
- GEMM / ALU body over n = iter_out * iter_in * (uop_end - uop_begin) micro-ops:
  `n * gemm_ii + gemm_latency` / `n * alu_ii + alu_latency` (reset too: it writes n rows).
- FINISH body: 0.

Not modelled: the round-robin interleaving of bursts on the read channel (the model serves whole
instructions in the order they ask) and DRAM that stalls. `estimate_cycles` does not check addresses: run the
functional simulator for that.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..configs import AccelConfig
from ..errors import TensorweaveError
from ..isa import Insn, Program, build_isa, element_bytes

UNITS = ("load", "compute", "store")
QUEUES = {("load", "compute"): "load->compute", ("compute", "load"): "compute->load",
          ("compute", "store"): "compute->store", ("store", "compute"): "store->compute"}
_PREV = {"load": None, "compute": "load", "store": "compute"}
_NEXT = {"load": "compute", "compute": "store", "store": None}


class CycleModelError(TensorweaveError, RuntimeError):
    """The program cannot run (deadlock, bad token flag, unknown memory); the message names the instruction."""


@dataclass(frozen=True)
class Timing:
    """Microarchitecture timing constants, in cycles: the cycle model's only free parameters.

    The structure and the defaults follow the RTL's documented timing (`hw/top.py`: take command 1,
    pop 1, check 1, body, push 1; micro-op loops n + 4; a setup cycle per DMA row), with the
    DRAM-side values calibrated by `calibrate` on RTL cycle counts (`benchmarks/cycle_model.py`).
    """

    start_cycles: int = 2             # from CTRL.start to fetch's first request
    done_cycles: int = 2              # from the last unit's push to STATUS.done (CYCLES stops)
    fetch_burst: int = 4              # instructions per fetch burst (hw/fetch.py BURST)
    fetch_buffer: int = 8             # fetch's instruction buffer entries
    fetch_burst_overhead: int = 2     # request to first beat of a fetch burst
    dispatch_cycles: int = 1          # between two dispatches
    command_cycles: int = 1           # a unit takes the command at its queue's head
    issue_cycles: int = 2             # pop tokens, then check and start
    push_cycles: int = 1              # push tokens at the end (also when there are none)
    dma_latency: int = 4              # start of a LOAD's body to its first scratchpad write
    dma_row_overhead: int = 0         # per DRAM row of a LOAD or STORE, beyond its beats
    dma_row_min: int = 2              # cycles per row at least (one AR every other cycle)
    pad_cycles_per_element: int = 1   # a zero element written by LOAD padding
    store_response: int = 3           # start of a STORE's body, plus last write beat to its response
    gemm_ii: int = 1                  # cycles between GEMM micro-ops
    gemm_latency: int = 4             # the tensor core's pipeline drain (hw/core.py)
    alu_ii: int = 1                   # cycles between ALU micro-ops
    alu_latency: int = 4
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

    def memory(self, index: int, insn: Insn) -> str:
        name = self.memories.get(insn.memory_id)
        if name is None:
            raise CycleModelError(f"instruction {index}: memory_id {insn.memory_id} is not a memory")
        return name

    def route(self, index: int, insn: Insn) -> str:
        if insn.op == "STORE":
            return "store"
        if insn.op == "LOAD":
            memory = self.memory(index, insn)
            if memory in ("INP", "WGT"):
                return "load"
            if memory in ("UOP", "ACC"):
                return "compute"
            raise CycleModelError(f"instruction {index}: LOAD cannot target memory {memory}")
        return "compute"

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

    def rows(self, rows: int, row_cycles: int) -> int:
        """Cycles to move `rows` DRAM rows of `row_cycles` each: every row after the first takes at
        least `dma_row_min` (one burst request every other cycle)."""
        if rows <= 0:
            return 0
        t = self.timing
        return row_cycles + t.dma_row_overhead * rows + (rows - 1) * max(t.dma_row_min, row_cycles)

    def read_cycles(self, index: int, insn: Insn) -> int:
        """Cycles a LOAD holds the shared DRAM read channel: its data beats, or one cycle per element
        when elements share a beat (R beats come back in order, as fast as the DMA takes them)."""
        per_element = self.element_cycles(element_bytes(self.config, self.memory(index, insn)))
        return insn.y_size * insn.x_size * per_element

    def body(self, index: int, insn: Insn) -> int:
        """Cycles from starting an instruction's body to its end (before pushing tokens), alone on the bus."""
        t = self.timing
        if insn.op == "LOAD":
            per_element = self.element_cycles(element_bytes(self.config, self.memory(index, insn)))
            width = insn.x_pad_0 + insn.x_size + insn.x_pad_1
            zeros = (insn.y_pad_0 + insn.y_pad_1) * width + insn.y_size * (insn.x_pad_0 + insn.x_pad_1)
            return t.dma_latency + self.rows(insn.y_size, insn.x_size * per_element) + zeros * t.pad_cycles_per_element
        if insn.op == "STORE":
            per_element = self.element_cycles(self.config.out_row_bytes)
            return self.rows(insn.y_size, insn.x_size * per_element) + t.store_response
        if insn.op in ("GEMM", "ALU"):
            n = self.iterations(insn)
            if n == 0:
                return t.empty_loop_cycles
            return n * t.gemm_ii + t.gemm_latency if insn.op == "GEMM" else n * t.alu_ii + t.alu_latency
        return 0


def _token_queues(unit: str, index: int, insn: Insn, kind: str) -> list[str]:
    queues = []
    for side, neighbour in (("prev", _PREV[unit]), ("next", _NEXT[unit])):
        if insn.fields.get(f"{kind}_{side}"):
            if neighbour is None:
                raise CycleModelError(f"instruction {index} ({insn.op.lower()}) in the {unit} unit sets "
                                      f"{kind}_{side}, but the {unit} unit has no {side} stage")
            queues.append(QUEUES[(neighbour, unit)] if kind == "pop" else QUEUES[(unit, neighbour)])
    return queues


def estimate_cycles(program: Program, timing: Timing = DEFAULT_TIMING, keep_timeline: bool = False) -> CycleReport:
    """Estimate the cycles `program` takes on its config's accelerator (see the module docstring)."""
    config = program.config
    model = _Model(config, timing)
    decoded: list[tuple[str, Insn]] = []
    for index, word in enumerate(program.insns):
        try:
            insn = model.isa.decode(word)
        except ValueError as exc:
            raise CycleModelError(f"instruction {index}: illegal instruction word {word:#x} ({exc})") from None
        decoded.append((model.route(index, insn), insn))
        if insn.op == "FINISH":
            break
    else:
        raise CycleModelError(f"the program's {len(program.insns)} instructions have no FINISH; end it with 'finish'")
    return _Walk(model, decoded, keep_timeline).run()


class _ReadChannel:
    """The DRAM read channel, shared by fetch and the read DMAs: the arbiter interleaves their bursts
    round-robin, modelled as processor sharing (n active transfers each get 1/n beat per cycle).
    A transfer also lasts at least its own `min_cycles` (elements smaller than a beat, row setup)."""

    def __init__(self) -> None:
        self.time = 0.0
        self.active: dict[str, list[float]] = {}   # key -> [beats left, earliest end]

    def _advance(self, until: float) -> None:
        while self.active and self.time < until:
            n = len(self.active)
            step = min(until - self.time, min(left for left, _ in self.active.values()) * n)
            for item in self.active.values():
                item[0] -= step / n
            self.time += step
            for key in [k for k, (left, _) in self.active.items() if left <= 1e-9]:
                del self.active[key]
        self.time = max(self.time, until)

    def arrive(self, key: str, when: int, beats: int, min_cycles: int) -> dict[str, int]:
        """Start a transfer of `beats` at `when`; returns every active transfer's projected end."""
        start = max(float(when), self.time)
        self._advance(start)
        self.active[key] = [float(beats), start + min_cycles]
        return self.projection()

    def projection(self) -> dict[str, int]:
        """End times if no other transfer arrives: the smallest finishes first, then rates rise."""
        ends, t, served = {}, self.time, 0.0
        order = sorted(self.active.items(), key=lambda kv: kv[1][0])
        n = len(order)
        for i, (key, (left, earliest)) in enumerate(order):
            t += (left - served) * (n - i)
            served = left
            ends[key] = max(math.ceil(t - 1e-9), int(earliest))
        return ends


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
        self.pushes: dict[str, list[int]] = {q: [] for q in QUEUES.values()}  # cycle each token can be popped
        self.pops: dict[str, list[int]] = {q: [] for q in QUEUES.values()}    # cycle each token was popped
        self.busy = {u: 0 for u in ("fetch",) + UNITS}
        self.stall = {u: 0 for u in ("fetch",) + UNITS}
        self.report = CycleReport(config, 0, self.busy, self.stall, {u: 0 for u in UNITS}, 0, 0, 0, 0,
                                  len(decoded) * model.insn_bytes)
        self.dispatch_times: list[int] = []
        self.pc = 0
        self.words = t.start_cycles        # when fetch's latest instruction words arrived
        self.last_dispatch = -t.dispatch_cycles
        self.channel = _ReadChannel()
        self.tails: dict[str, int] = {}    # per unit: cycles of its pending LOAD after its last beat
        self.alone: dict[str, int] = {}    # per unit: its pending body's cycles had it the bus alone

    # --- fetch ---------------------------------------------------------------------------------
    def fetch_event(self) -> tuple[int, int] | None:
        """(time, dispatch slot) of the next dispatch, or None if it waits on something unknown."""
        if self.pc >= len(self.decoded):
            return None
        unit = self.decoded[self.pc][0]
        slot = 0
        if self.dispatched[unit] >= self.depth_cmd:
            # The queue has room once the instruction depth_cmd places ahead was taken.
            ahead = self.dispatched[unit] - self.depth_cmd
            if ahead >= len(self.taken[unit]):
                return None
            slot = self.taken[unit][ahead] + 1
        if self.pc % self.t.fetch_burst == 0:
            room_after = self.pc - (self.t.fetch_buffer - self.t.fetch_burst) - 1
            request = max(self.words, self.dispatch_times[room_after] if room_after >= 0 else 0)
            return request, slot
        return max(self.words, self.last_dispatch + self.t.dispatch_cycles), slot

    def fetch_commit(self, request: int, slot: int) -> None:
        t, model = self.t, self.model
        if self.pc % t.fetch_burst == 0:
            # A burst is requested once the buffer has room; its beats queue on the read channel.
            count = min(t.fetch_burst, len(self.decoded) - self.pc)
            first = request + t.fetch_burst_overhead
            beats = count * model.insn_beats
            ends = self.channel.arrive("fetch", first, beats, beats)
            self._reproject(ends)
            self.burst_first = ends["fetch"] - beats  # a shared channel spreads the burst: later words
            self.busy["fetch"] += t.fetch_burst_overhead
        words = self.burst_first + (self.pc % t.fetch_burst + 1) * model.insn_beats
        self.busy["fetch"] += model.insn_beats
        earliest = max(words, self.last_dispatch + t.dispatch_cycles)
        when = max(earliest, slot)
        self.stall["fetch"] += when - earliest
        self.words = words
        self.dispatch_times.append(when)
        self.last_dispatch = when
        unit = self.decoded[self.pc][0]
        self.queue[unit].append((self.pc, when))
        self.dispatched[unit] += 1
        self.pc += 1

    def _reproject(self, ends: dict[str, int]) -> None:
        """Move the end of every unit's pending LOAD to its transfer's projected end."""
        for unit, data_end in ends.items():
            pending = self.pending.get(unit)
            if pending is not None:
                index, start, _ = pending
                self.pending[unit] = (index, start, data_end + self.tails[unit])

    # --- units ---------------------------------------------------------------------------------
    def unit_event(self, unit: str) -> int | None:
        """The time of the unit's next event (pop, or push when its body is done), or None."""
        pending = self.pending[unit]
        if pending is not None:
            index, _, end = pending
            room = end
            for q in _token_queues(unit, index, self.decoded[index][1], "push"):
                k = len(self.pushes[q])
                if k >= self.depth_dep:
                    if k - self.depth_dep >= len(self.pops[q]):
                        return None
                    room = max(room, self.pops[q][k - self.depth_dep] + 1)
            return room
        if not self.queue[unit]:
            return None
        index, arrival = self.queue[unit][0]
        # A command already waiting is taken while the previous instruction pushes its tokens.
        pop = max(self.free[unit], arrival + self.t.command_cycles)
        for q in _token_queues(unit, index, self.decoded[index][1], "pop"):
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
            for q in _token_queues(unit, index, insn, "push"):
                self.pushes[q].append(done + t.token_latency)
            shared = (end - start - t.issue_cycles) - self.alone[unit]  # waiting for the read channel
            self.stall[unit] += when - end + shared
            self.free[unit] = done
            self.pending[unit] = None
            if self.keep_timeline:
                self.report.timeline.append((index, unit, model.mnemonic(index, insn), start, end))
            return
        index, arrival = self.queue[unit].popleft()
        insn = self.decoded[index][1]
        ready = max(self.free[unit], arrival + t.command_cycles)
        for q in _token_queues(unit, index, insn, "pop"):
            self.pops[q].append(when)
        self.taken[unit].append(ready - t.command_cycles)
        self.stall[unit] += when - ready
        body = model.body(index, insn)
        begin = when + t.issue_cycles
        self.alone[unit] = body
        self.busy[unit] += t.command_cycles + t.issue_cycles + body + t.push_cycles
        self.report.insns[unit] += 1
        _account(self.report, model, index, insn)
        self.pending[unit] = (index, when, begin + body)
        if insn.op == "LOAD":
            # Its beats share the read channel from the first one on; padding is written after.
            padding = body - model.body(index, _unpadded(insn))
            ends = self.channel.arrive(unit, begin + t.dma_latency, model.read_cycles(index, insn),
                                       body - t.dma_latency - padding)
            self.tails[unit] = padding
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


def _unpadded(insn: Insn) -> Insn:
    return Insn(insn.op, {**insn.fields, "y_pad_0": 0, "y_pad_1": 0, "x_pad_0": 0, "x_pad_1": 0})


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
