"""The store unit: STOREs from its command queue, output-buffer rows to DRAM.

Tokens: pop_prev (compute->store), push_prev (store->compute). Checks, in the order of
`sim/functional.py`: nonzero padding (code 6), rows past the accumulator scratchpad (code 3).
An output element (batch x block_out values, each the low out_width bits of its accumulator, as
the output buffer holds them: `hw/top.py`) is out_row_bytes; it fills whole bus beats or one slot
of a beat (slots of one row's elements share a beat, with byte strobes). Write bursts follow the
same rule as reads (<= 256 beats, not crossing 4 KiB); the data path reads one output-buffer row
per cycle and sends one beat per cycle. The instruction completes (and pushes its tokens) after
the last write response.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract import error_codes as errors
from ..contract.registers import DATA_WIDTH, UNIT_BUSY, UNIT_COMMAND_WAIT
from ..contract.topology import sides_of
from ..isa import build_isa
from ..isa.amaranth import layouts
from .axi import WritePortSignature, burst_beats
from .queues import command_stream
from .scratchpad import ReadSignature
from .unit import Sequencer, status_members, token_members
from .widths import element_address_width, size_counter_width

SIDES = sides_of("store")


class StoreUnit(wiring.Component):
    def __init__(self, config: AccelConfig):
        self._config = config
        c = config
        members = {"cmd": In(command_stream(config)), "base": In(DATA_WIDTH),
                   "port": Out(WritePortSignature(c.bus_width)),
                   "out_read": Out(ReadSignature(c.acc_depth, c.out_row_bytes * 8))}
        members.update(token_members(SIDES))
        members.update(status_members())
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        isa = build_isa(c)
        bus_bytes = c.bus_bytes
        size = c.out_row_bytes
        size_shift = (size - 1).bit_length()
        bus_shift = (bus_bytes - 1).bit_length()
        chunks = max(1, size // bus_bytes)
        slots = max(1, bus_bytes // size)

        seq = Sequencer(self, layouts(isa)["STORE"], SIDES)
        cmd = seq.head
        start = Signal()

        # --- write-address requester (as the DMA read requester), burst lengths to the data path ----
        m.submodules.lens = lens = fifo.SyncFIFO(width=8, depth=4)
        req_busy = Signal()
        rows_left = Signal(size_counter_width(isa))
        row_elem = Signal(element_address_width(isa))
        word_addr = Signal(32)
        beats_left = Signal(32)
        start_byte = Signal(32)
        end_byte = Signal(33)
        m.d.comb += [start_byte.eq(self.base + (row_elem << size_shift)),
                     end_byte.eq(start_byte + (cmd.x_size << size_shift) - 1)]
        beats = burst_beats(m, word_addr, beats_left, bus_bytes)
        outstanding = Signal(16)
        aw_done = Signal()
        with m.FSM(name="requester"):
            with m.State("IDLE"):
                with m.If(start):
                    m.d.sync += [rows_left.eq(cmd.y_size), row_elem.eq(cmd.dram_base)]
                    m.next = "ROW"
            with m.State("ROW"):
                m.d.comb += req_busy.eq(1)
                with m.If((rows_left == 0) | (cmd.x_size == 0)):
                    m.next = "IDLE"
                with m.Else():
                    first = start_byte[bus_shift:]
                    last = end_byte[bus_shift:32]
                    m.d.sync += [word_addr.eq(first << bus_shift), beats_left.eq(last - first + 1)]
                    m.next = "BURST"
            with m.State("BURST"):
                m.d.comb += [req_busy.eq(1), self.port.aw.valid.eq(lens.w_rdy),
                             self.port.aw.payload.addr.eq(word_addr), self.port.aw.payload.len.eq(beats - 1),
                             lens.w_data.eq(beats - 1)]
                with m.If(self.port.aw.ready & lens.w_rdy):
                    m.d.comb += [lens.w_en.eq(1), aw_done.eq(1)]
                    m.d.sync += [word_addr.eq(word_addr + (beats << bus_shift)), beats_left.eq(beats_left - beats)]
                    with m.If(beats_left == beats):
                        m.d.sync += [rows_left.eq(rows_left - 1), row_elem.eq(row_elem + cmd.x_stride)]
                        m.next = "ROW"
        m.d.comb += self.port.b.ready.eq(1)
        b_done = self.port.b.valid
        with m.If(aw_done & ~b_done):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(b_done & ~aw_done):
            m.d.sync += outstanding.eq(outstanding - 1)

        # --- element reader: output-buffer rows in order, one per cycle, held while the packer waits ---
        fetching = Signal()
        left = Signal(33)            # elements still to read
        x = Signal(size_counter_width(isa))
        data_row_elem = Signal(element_address_width(isa))
        addr = Signal(range(c.acc_depth))
        valid_d = Signal()
        slot_d = Signal(range(max(slots, 2)))
        last_d = Signal()            # last element of its DRAM row
        take = Signal()
        advance = ~valid_d | take
        m.d.comb += [self.out_read.addr.eq(addr), self.out_read.en.eq(advance)]
        with m.If(start):
            m.d.sync += [fetching.eq(1), left.eq(cmd.y_size * cmd.x_size), x.eq(0), addr.eq(cmd.sram_base),
                         data_row_elem.eq(cmd.dram_base)]
        with m.Elif(advance):
            m.d.sync += valid_d.eq(fetching & (left != 0))
            with m.If(fetching & (left != 0)):
                elem = data_row_elem + x
                m.d.sync += [left.eq(left - 1), addr.eq(addr + 1), last_d.eq(x == cmd.x_size - 1)]
                if slots > 1:
                    m.d.sync += slot_d.eq(elem[:(slots - 1).bit_length()])
                with m.If(x == cmd.x_size - 1):
                    m.d.sync += [x.eq(0), data_row_elem.eq(data_row_elem + cmd.x_stride)]
                with m.Else():
                    m.d.sync += x.eq(x + 1)
            with m.Else():
                m.d.sync += fetching.eq(0)
        narrowed = self.out_read.data

        # --- packer: beats with strobes, wlast from the burst lengths ------------------------------
        beat_in_burst = Signal(8)
        w = self.port.w
        m.d.comb += w.payload.last.eq(beat_in_burst == lens.r_data)
        send = Signal()
        m.d.comb += send.eq(w.valid & w.ready)
        with m.If(send):
            with m.If(w.payload.last):
                m.d.comb += lens.r_en.eq(1)
                m.d.sync += beat_in_burst.eq(0)
            with m.Else():
                m.d.sync += beat_in_burst.eq(beat_in_burst + 1)
        if chunks > 1:
            chunk = Signal(range(chunks))
            m.d.comb += [w.valid.eq(valid_d & lens.r_rdy),
                         w.payload.data.eq(narrowed.word_select(chunk, bus_bytes * 8)),
                         w.payload.strb.eq((1 << bus_bytes) - 1)]
            with m.If(send):
                m.d.sync += chunk.eq(Mux(chunk == chunks - 1, 0, chunk + 1))
                m.d.comb += take.eq(chunk == chunks - 1)
        else:
            beat = Signal(bus_bytes * 8)
            strobes = Signal(bus_bytes)
            placed = Signal(bus_bytes * 8)
            placed_strobes = Signal(bus_bytes)
            m.d.comb += [placed.eq(beat | (narrowed << (slot_d * size * 8))),
                         placed_strobes.eq(strobes | (((1 << size) - 1) << (slot_d * size)))]
            emit = Signal()    # this element completes its bus word
            m.d.comb += emit.eq(last_d | (slot_d == slots - 1) if slots > 1 else 1)
            m.d.comb += [w.payload.data.eq(placed), w.payload.strb.eq(placed_strobes)]
            with m.If(valid_d):
                with m.If(emit):
                    m.d.comb += [w.valid.eq(lens.r_rdy), take.eq(send)]
                    with m.If(send):
                        m.d.sync += [beat.eq(0), strobes.eq(0)]
                with m.Else():
                    m.d.comb += take.eq(1)
                    m.d.sync += [beat.eq(placed), strobes.eq(placed_strobes)]

        # --- the instruction sequence ---------------------------------------------------------------
        halted = self.halt
        end = Signal(40)
        m.d.comb += end.eq(cmd.sram_base + cmd.y_size * cmd.x_size)
        pads = cmd.y_pad_0 | cmd.y_pad_1 | cmd.x_pad_0 | cmd.x_pad_1
        busy = Signal()
        m.d.comb += busy.eq(req_busy | fetching | valid_d | (outstanding != 0) | lens.r_rdy | aw_done)
        with m.FSM():
            seq.head_states(m, "CHECK", halted)
            with m.State("CHECK"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(pads != 0):
                    seq.fail(m, errors.PADDING)
                with m.Elif(end > c.acc_depth):
                    seq.fail(m, errors.SCRATCHPAD_RANGE)
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(~busy & ~start):
                    m.next = "PUSH"
            seq.push_state(m, halted)
        m.d.comb += [self.pc.eq(seq.index), self.idle.eq((self.state == UNIT_COMMAND_WAIT) & ~self.cmd.valid)]
        return m
