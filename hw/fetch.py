"""Fetch: reads instructions from DRAM and dispatches them, in order, to the three command queues.

Routing (as `sim/functional.py`): STORE -> store queue; LOAD of INP/WGT -> load queue; LOAD of
UOP/ACC, GEMM, ALU, FINISH -> compute queue. Fetch stops after dispatching FINISH or at
INSN_COUNT. Decoding errors stop it and are reported on `error` for one cycle: illegal opcode
(code 1), LOAD/STORE of a memory it cannot move (code 2), a token flag toward a stage the unit does
not have (code 7, e.g. pop_prev on a load-queue LOAD).

Timing: instructions are read in bursts of up to `BURST` instructions into a local buffer that is
only requested when it has room, so fetch never holds the shared read channel; one instruction is
dispatched per cycle while its queue has room.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract import error_codes as errors
from ..contract.registers import DATA_WIDTH
from ..contract.topology import LOAD_UNIT, SIDES, STORE_MEMORY, UNITS, neighbour
from ..isa import build_isa
from ..isa.amaranth import enums, layouts
from .axi import ReadPortSignature
from .queues import INDEX_WIDTH, command_stream

BURST = 4  # instructions per fetch burst


class Fetch(wiring.Component):
    """Instruction fetch and dispatch; `start` begins at instruction 0 of the image at `base`."""

    def __init__(self, config: AccelConfig):
        self._config = config
        self._isa = build_isa(config)
        super().__init__({
            "start": In(1), "base": In(DATA_WIDTH), "count": In(INDEX_WIDTH), "halt": In(1),
            "port": Out(ReadPortSignature(config.bus_width)),
            **{unit: Out(command_stream(config)) for unit in UNITS},
            "finished": Out(1), "exhausted": Out(1), "idle": Out(1), "blocked": Out(1),
            "error": Out(1), "error_code": Out(errors.CODE_WIDTH), "error_insn": Out(INDEX_WIDTH),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self._config.bus_width
        insn_width = self._isa.instruction_width
        insn_bytes = insn_width // 8
        beats_per_insn = max(1, insn_width // bus)
        per_beat = max(1, bus // insn_width)
        kinds = enums(self._isa)
        opcode, memory = kinds["opcode"], kinds["memory_id"]
        head_layout = layouts(self._isa)["LOAD"]

        # --- reading: bursts of up to BURST instructions into `buffer` ----------------------------
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=insn_width, depth=2 * BURST)
        running = Signal()
        read_pc = Signal(INDEX_WIDTH)        # next instruction to request
        in_flight = Signal(range(2 * BURST + 1))  # requested but not yet in the buffer
        pending_insns = Signal(range(BURST + 1))  # instructions left in the current burst
        slot = Signal(range(max(per_beat, 2)))    # instruction position within a wide beat
        assembly = Signal(insn_width)
        beat = Signal(range(max(beats_per_insn, 2)))
        finished = Signal()
        stop = Signal()

        left = Signal(INDEX_WIDTH)
        m.d.comb += left.eq(self.count - read_pc)
        room = Signal(range(2 * BURST + 1))
        m.d.comb += room.eq(2 * BURST - buffer.level - in_flight)
        # Instructions up to the next 4 KiB boundary (DRAM_BASE is a multiple of the instruction size).
        address = Signal(32)
        m.d.comb += address.eq(self.base + read_pc * insn_bytes)
        to_boundary = Signal(range(4096 // insn_bytes + 1))
        m.d.comb += to_boundary.eq((4096 - address[:12]) // insn_bytes)
        want = Signal(range(BURST + 1))
        with m.If((left < BURST) & (left <= to_boundary)):
            m.d.comb += want.eq(left)
        with m.Elif(to_boundary < BURST):
            m.d.comb += want.eq(to_boundary)
        with m.Else():
            m.d.comb += want.eq(BURST)
        can_request = running & ~stop & ~finished & (want != 0) & (room >= want) & (pending_insns == 0)
        beats = want * beats_per_insn if per_beat == 1 else want
        m.d.comb += [self.port.ar.payload.addr.eq(address & ~(bus // 8 - 1)),
                     self.port.ar.payload.len.eq(beats - 1)]
        if per_beat > 1:
            # one instruction per burst when several share a bus word
            m.d.comb += self.port.ar.payload.len.eq(0)
        issue = Signal()
        m.d.comb += [self.port.ar.valid.eq(can_request), issue.eq(can_request & self.port.ar.ready)]
        issued = want if per_beat == 1 else 1
        with m.If(issue):
            m.d.sync += [read_pc.eq(read_pc + issued), pending_insns.eq(issued)]
            if per_beat > 1:
                m.d.sync += slot.eq(read_pc[:(per_beat - 1).bit_length()])
        got = Signal()
        m.d.comb += self.port.r.ready.eq(1)
        with m.If(self.port.r.valid):
            if beats_per_insn > 1:
                m.d.sync += [assembly.eq(Cat(assembly[bus:], self.port.r.payload.data)),
                             beat.eq(beat + 1)]
                with m.If(beat == beats_per_insn - 1):
                    m.d.sync += beat.eq(0)
                    m.d.comb += got.eq(1)
                full = Cat(assembly[bus:], self.port.r.payload.data)
            else:
                m.d.comb += got.eq(1)
                full = self.port.r.payload.data.word_select(slot, insn_width) if per_beat > 1 \
                    else self.port.r.payload.data
            with m.If(got):
                m.d.comb += [buffer.w_en.eq(~stop), buffer.w_data.eq(full)]
        count_in = issue.as_unsigned() * issued
        with m.If(got):
            m.d.sync += [pending_insns.eq(pending_insns - 1 + count_in), in_flight.eq(in_flight - 1 + count_in)]
        with m.Elif(issue):
            m.d.sync += in_flight.eq(in_flight + issued)

        # --- decode and dispatch ------------------------------------------------------------------
        pc = Signal(INDEX_WIDTH)
        word = buffer.r_data
        head = head_layout(word)
        op = head.opcode.as_value()
        mem = head.memory_id.as_value()
        targets = {unit: getattr(self, unit) for unit in UNITS}
        route = Signal(range(len(UNITS)))
        bad = Signal(errors.CODE_WIDTH)

        def flags_toward_nothing(unit: str) -> Value | None:
            """Any token flag of `head` toward a side where `unit` has no neighbour (None: it has both)."""
            flags = [getattr(head, f"{kind}_{side}") for side in SIDES if neighbour(unit, side) is None
                     for kind in ("pop", "push")]
            if not flags:
                return None
            found = flags[0]
            for flag in flags[1:]:
                found = found | flag
            return found

        # The dispatch rule of `contract.topology.unit_of`.
        with m.Switch(op):
            with m.Case(opcode.STORE.value):
                m.d.comb += route.eq(UNITS.index("store"))
                with m.If(mem != memory[STORE_MEMORY].value):
                    m.d.comb += bad.eq(errors.ILLEGAL_MEMORY)
                store_check = flags_toward_nothing("store")
                if store_check is not None:
                    with m.Elif(store_check):
                        m.d.comb += bad.eq(errors.TOKEN_FLAG)
            with m.Case(opcode.LOAD.value):
                with m.Switch(mem):
                    for unit in UNITS:
                        loaded = [memory[name].value for name, runs_it in LOAD_UNIT.items() if runs_it == unit]
                        if not loaded:
                            continue
                        with m.Case(*loaded):
                            m.d.comb += route.eq(UNITS.index(unit))
                            check = flags_toward_nothing(unit)
                            if check is not None:
                                with m.If(check):
                                    m.d.comb += bad.eq(errors.TOKEN_FLAG)
                    with m.Default():
                        m.d.comb += bad.eq(errors.ILLEGAL_MEMORY)
            with m.Case(opcode.GEMM.value, opcode.ALU.value, opcode.FINISH.value):
                m.d.comb += route.eq(UNITS.index("compute"))
            with m.Default():
                m.d.comb += bad.eq(errors.ILLEGAL_OPCODE)
        for target in targets.values():
            m.d.comb += [target.payload.insn.eq(word), target.payload.index.eq(pc)]
        can_dispatch = running & ~stop & ~finished & buffer.r_rdy
        with m.If(can_dispatch):
            with m.If(bad != 0):
                m.d.comb += [self.error.eq(1), self.error_code.eq(bad), self.error_insn.eq(pc)]
                m.d.sync += stop.eq(1)
            with m.Else():
                for i, target in enumerate(targets.values()):
                    with m.If(route == i):
                        m.d.comb += target.valid.eq(1)
                        with m.If(target.ready):
                            m.d.comb += buffer.r_en.eq(1)
                            m.d.sync += pc.eq(pc + 1)
                            with m.If(op == opcode.FINISH.value):
                                m.d.sync += finished.eq(1)
        with m.If(stop | finished):
            m.d.comb += buffer.r_en.eq(buffer.r_rdy)   # drop what was prefetched
        # Nothing more will come out of fetch until a queue drains (or ever).
        head_full = Signal()
        for i, target in enumerate(targets.values()):
            with m.If(route == i):
                m.d.comb += head_full.eq(~target.ready)
        m.d.comb += self.blocked.eq((in_flight == 0) & (stop | finished | (pc == self.count) |
                                                         (buffer.r_rdy & (bad == 0) & head_full)))

        with m.If(self.halt):
            m.d.sync += stop.eq(1)
        with m.If(self.start):
            m.d.sync += [running.eq(1), read_pc.eq(0), pc.eq(0), finished.eq(0), stop.eq(0)]
        m.d.comb += [
            self.finished.eq(finished),
            self.exhausted.eq(running & ~stop & ~finished & (pc == self.count) & (in_flight == 0)),
            self.idle.eq((in_flight == 0) & ~buffer.r_rdy & ~self.start &
                         (stop | finished | (pc == self.count) | ~running)),
        ]
        return m
