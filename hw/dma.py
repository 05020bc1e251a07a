"""A 2-D strided DMA read engine: DRAM tile -> one scratchpad, with zero padding on four sides.

`ReadDMA(config, memory)` executes the data part of one LOAD of `memory` (INP, WGT, UOP or ACC):
it issues INCR bursts for each of the y_size DRAM rows (split at 256 beats and at 4 KiB) on its
read port and writes the padded tile, (y_pad_0 + y_size + y_pad_1) x (x_pad_0 + x_size + x_pad_1)
scratchpad rows, to consecutive rows from sram_base. Elements are powers of two of bytes, so with
DRAM_BASE aligned to the bus word an element either fills whole bus words (written one chunk per
beat through a byte-granular port) or sits in one slot of a word (several elements per beat).

Timing: a padding element takes one cycle; a data element takes max(1, element_bytes / bus_bytes)
cycles when beats arrive back to back. The requester runs ahead of the writer (one cycle per row to
set up, then one cycle per burst request), bounded only by the arbiter's outstanding-burst limit.
Range checks are the caller's job (the unit checks before `start`).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract.registers import DATA_WIDTH
from ..isa import build_isa, element_bytes
from ..isa.amaranth import layouts
from .axi import ReadPortSignature, burst_beats
from .widths import element_address_width, size_counter_width, tile_side_width


class ScratchpadWriteSignature(wiring.Signature):
    """Writes into a scratchpad (as seen by the writer): one chunk, or a whole zero row."""

    def __init__(self, depth: int, chunk_bits: int, chunks: int):
        self.depth, self.chunk_bits, self.chunks = depth, chunk_bits, chunks
        super().__init__({
            "en": Out(1), "addr": Out(range(depth)), "data": Out(chunk_bits),
            "chunk": Out(range(max(chunks, 2))), "zero": Out(1),
        })


def geometry(config: AccelConfig, memory: str) -> tuple[int, int, int]:
    """(element bytes, chunk bytes, chunks per element) of a LOAD of `memory` on this config's bus."""
    size = element_bytes(config, memory)
    chunk = min(size, config.bus_bytes)
    return size, chunk, size // chunk


def depth_of(config: AccelConfig, memory: str) -> int:
    return {"INP": config.inp_depth, "WGT": config.wgt_depth, "ACC": config.acc_depth,
            "UOP": config.uop_depth}[memory]


class ReadDMA(wiring.Component):
    """Moves one LOAD's tile from DRAM into the scratchpad of `memory`; `busy` until written."""

    def __init__(self, config: AccelConfig, memory: str):
        if memory not in ("INP", "WGT", "UOP", "ACC"):
            raise ValueError(f"ReadDMA memory must be INP, WGT, UOP or ACC, not {memory!r}")
        self._config = config
        self._memory = memory
        self._size, self._chunk, self._chunks = geometry(config, memory)
        self._isa = build_isa(config)
        layout = layouts(self._isa)["LOAD"]
        super().__init__({
            "start": In(1), "cmd": In(layout), "base": In(DATA_WIDTH), "busy": Out(1),
            "port": Out(ReadPortSignature(config.bus_width)),
            "write": Out(ScratchpadWriteSignature(depth_of(config, memory), self._chunk * 8, self._chunks)),
        })

    @property
    def memory(self) -> str:
        return self._memory

    def elaborate(self, platform) -> Module:
        m = Module()
        isa = self._isa
        bus_bytes = self._config.bus_bytes
        size, chunks = self._size, self._chunks
        size_shift = (size - 1).bit_length()
        bus_shift = (bus_bytes - 1).bit_length()
        slots = max(1, bus_bytes // size)

        cmd = Signal.like(self.cmd)
        base = Signal(DATA_WIDTH)
        with m.If(self.start):
            m.d.sync += [cmd.eq(self.cmd), base.eq(self.base)]

        # --- requester: bursts for each DRAM row -----------------------------------------------
        req_busy = Signal()
        rows_left = Signal(size_counter_width(isa))
        row_elem = Signal(element_address_width(isa))   # element address of the current DRAM row
        word_addr = Signal(32)         # byte address of the next burst
        beats_left = Signal(32)
        row_bytes = Signal(32)
        m.d.comb += row_bytes.eq(cmd.x_size << size_shift)
        start_byte = Signal(32)
        m.d.comb += start_byte.eq(base + (row_elem << size_shift))
        end_byte = Signal(33)
        m.d.comb += end_byte.eq(start_byte + row_bytes - 1)
        beats = burst_beats(m, word_addr, beats_left, bus_bytes)
        with m.FSM(name="requester"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [rows_left.eq(self.cmd.y_size), row_elem.eq(self.cmd.dram_base)]
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
                m.d.comb += [req_busy.eq(1), self.port.ar.valid.eq(1),
                             self.port.ar.payload.addr.eq(word_addr), self.port.ar.payload.len.eq(beats - 1)]
                with m.If(self.port.ar.ready):
                    m.d.sync += [word_addr.eq(word_addr + (beats << bus_shift)), beats_left.eq(beats_left - beats)]
                    with m.If(beats_left == beats):
                        m.d.sync += [rows_left.eq(rows_left - 1), row_elem.eq(row_elem + cmd.x_stride)]
                        m.next = "ROW"

        # --- writer: the padded tile, row-major, into consecutive scratchpad rows -------------------
        active = Signal()
        y = Signal(tile_side_width(isa))
        x = Signal(tile_side_width(isa))
        chunk = Signal(range(max(chunks, 2)))
        addr = Signal(range(depth_of(self._config, self._memory)))
        data_row_elem = Signal(element_address_width(isa))     # element address of the current data row
        hold = Signal(self._config.bus_width)
        rows = Signal(tile_side_width(isa))
        width = Signal(tile_side_width(isa))
        m.d.comb += [rows.eq(cmd.y_pad_0 + cmd.y_size + cmd.y_pad_1),
                     width.eq(cmd.x_pad_0 + cmd.x_size + cmd.x_pad_1)]
        in_y = (y >= cmd.y_pad_0) & (y < cmd.y_pad_0 + cmd.y_size)
        in_x = (x >= cmd.x_pad_0) & (x < cmd.x_pad_0 + cmd.x_size)
        advance = Signal()
        m.d.comb += [self.write.addr.eq(addr), self.write.chunk.eq(chunk)]
        with m.If(self.start):
            m.d.sync += [active.eq(1), y.eq(0), x.eq(0), chunk.eq(0), addr.eq(self.cmd.sram_base),
                         data_row_elem.eq(self.cmd.dram_base)]
        with m.Elif(active):
            with m.If((rows == 0) | (width == 0)):
                m.d.sync += active.eq(0)
            with m.Elif(~(in_y & in_x)):
                m.d.comb += [self.write.en.eq(1), self.write.zero.eq(1), advance.eq(1)]
            with m.Else():
                if chunks > 1:
                    m.d.comb += self.port.r.ready.eq(1)
                    with m.If(self.port.r.valid):
                        m.d.comb += [self.write.en.eq(1), self.write.data.eq(self.port.r.payload.data)]
                        m.d.sync += chunk.eq(Mux(chunk == chunks - 1, 0, chunk + 1))
                        m.d.comb += advance.eq(chunk == chunks - 1)
                else:
                    elem = Signal(element_address_width(isa))
                    m.d.comb += elem.eq(data_row_elem + x - cmd.x_pad_0)
                    slot = elem[:(slots - 1).bit_length()] if slots > 1 else 0
                    need = Signal()    # this element starts a new bus word
                    m.d.comb += need.eq((x == cmd.x_pad_0) | (slot == 0) if slots > 1 else 1)
                    word = Signal(self._config.bus_width)
                    with m.If(need):
                        m.d.comb += [self.port.r.ready.eq(1), word.eq(self.port.r.payload.data)]
                        m.d.sync += hold.eq(self.port.r.payload.data)
                    with m.Else():
                        m.d.comb += word.eq(hold)
                    with m.If(~need | self.port.r.valid):
                        m.d.comb += [self.write.en.eq(1), advance.eq(1),
                                     self.write.data.eq(word.word_select(slot, size * 8) if slots > 1 else word)]
            with m.If(advance):
                m.d.sync += [x.eq(x + 1), addr.eq(addr + 1)]
                with m.If(x == width - 1):
                    m.d.sync += [x.eq(0), y.eq(y + 1)]
                    with m.If(in_y):
                        m.d.sync += data_row_elem.eq(data_row_elem + cmd.x_stride)
                    with m.If(y == rows - 1):
                        m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active | req_busy | self.start)
        return m
