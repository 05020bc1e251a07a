"""The load unit: LOADs of INP and WGT from its command queue, through two DMA engines.

Tokens: pop_next takes a token from compute (compute->load), push_next gives one to compute
(load->compute). Checks before moving any data: the padded tile must fit the scratchpad (code 3).
Timing per LOAD: 1 cycle to take the command, 1 to take tokens, 1 to check and start, then the
DMA (see `hw/dma.py`), 1 to push tokens.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract import error_codes as errors
from ..contract.registers import DATA_WIDTH, UNIT_BUSY, UNIT_COMMAND_WAIT
from ..contract.topology import sides_of
from ..isa import build_isa
from ..isa.amaranth import enums, layouts
from .axi import ReadPortSignature
from .dma import ReadDMA, ScratchpadWriteSignature, depth_of, geometry
from .queues import command_stream
from .unit import Sequencer, status_members, token_members

SIDES = sides_of("load")


def tile_end(m: Module, head) -> Signal:
    """sram_base + (y_pad_0 + y_size + y_pad_1) * (x_pad_0 + x_size + x_pad_1): one past the last row."""
    end = Signal(40)
    m.d.comb += end.eq(head.sram_base + (head.y_pad_0 + head.y_size + head.y_pad_1) *
                       (head.x_pad_0 + head.x_size + head.x_pad_1))
    return end


def write_members(config: AccelConfig, memory: str) -> dict[str, object]:
    size, chunk, chunks = geometry(config, memory)
    return {f"{memory.lower()}_write": Out(ScratchpadWriteSignature(depth_of(config, memory), chunk * 8, chunks))}


class LoadUnit(wiring.Component):
    def __init__(self, config: AccelConfig):
        self._config = config
        members = {"cmd": In(command_stream(config)), "base": In(DATA_WIDTH),
                   "inp_port": Out(ReadPortSignature(config.bus_width)),
                   "wgt_port": Out(ReadPortSignature(config.bus_width))}
        members.update(write_members(config, "INP"))
        members.update(write_members(config, "WGT"))
        members.update(token_members(SIDES))
        members.update(status_members())
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        isa = build_isa(self._config)
        memory = enums(isa)["memory_id"]
        m.submodules.inp_dma = inp = ReadDMA(self._config, "INP")
        m.submodules.wgt_dma = wgt = ReadDMA(self._config, "WGT")
        wiring.connect(m, wiring.flipped(self.inp_port), inp.port)
        wiring.connect(m, wiring.flipped(self.wgt_port), wgt.port)
        wiring.connect(m, wiring.flipped(self.inp_write), inp.write)
        wiring.connect(m, wiring.flipped(self.wgt_write), wgt.write)

        seq = Sequencer(self, layouts(isa)["LOAD"], SIDES)
        head = seq.head
        is_inp = head.memory_id.as_value() == memory.INP.value
        end = tile_end(m, head)
        depth = Signal(32)
        with m.If(is_inp):
            m.d.comb += depth.eq(self._config.inp_depth)
        with m.Else():
            m.d.comb += depth.eq(self._config.wgt_depth)
        for dma in (inp, wgt):
            m.d.comb += [dma.cmd.eq(head), dma.base.eq(self.base)]
        halted = self.halt
        with m.FSM():
            seq.head_states(m, "CHECK", halted)
            with m.State("CHECK"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(end > depth):
                    seq.fail(m, errors.SCRATCHPAD_RANGE)
                with m.Else():
                    m.d.comb += [inp.start.eq(is_inp), wgt.start.eq(~is_inp)]
                    m.next = "MOVE"
            with m.State("MOVE"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(~inp.busy & ~wgt.busy):
                    m.next = "PUSH"
            seq.push_state(m, halted)
        m.d.comb += [self.pc.eq(seq.index), self.idle.eq((self.state == UNIT_COMMAND_WAIT) & ~self.cmd.valid)]
        return m
