"""The compute unit: LOAD of UOP/ACC, GEMM, ALU and FINISH from its command queue.

Tokens: pop_prev (load->compute), pop_next (store->compute), push_prev (compute->load), push_next
(compute->store). Checks, in the order of `sim/functional.py`: a UOP LOAD with padding (code 6), a
tile past its scratchpad (code 3); an ALU operation not in `config.alu_ops` (code 5); uop_end past
the micro-op buffer (code 4); then the tensor core checks each index as it runs (code 3).
Timing per instruction: 1 cycle to take the command, 1 to take tokens, 1 to check and start, the
body (DMA, see `hw/dma.py`; or n micro-ops + 4 cycles, 2n + 3 for an ALU with use_imm=0 and no
reset, see `hw/core.py`; FINISH: 0), 1 to push.
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
from .core import TensorCore
from .dma import ReadDMA, geometry
from .load import tile_end, write_members
from .queues import command_stream
from .scratchpad import ReadSignature, RowWriteSignature, chunk_write_to_row
from .unit import Sequencer, status_members, token_members

SIDES = sides_of("compute")


class ComputeUnit(wiring.Component):
    def __init__(self, config: AccelConfig):
        self._config = config
        c = config
        _, _, acc_chunks = geometry(config, "ACC")
        members = {"cmd": In(command_stream(config)), "base": In(DATA_WIDTH),
                   "uop_port": Out(ReadPortSignature(c.bus_width)),
                   "acc_port": Out(ReadPortSignature(c.bus_width)),
                   "uop_read": Out(ReadSignature(c.uop_depth, c.uop_width)),
                   "inp_read": Out(ReadSignature(c.inp_depth, c.inp_row_bytes * 8)),
                   "wgt_read": Out(ReadSignature(c.wgt_depth, c.wgt_row_bytes * 8)),
                   "acc_read": Out(ReadSignature(c.acc_depth, c.acc_row_bytes * 8)),
                   "acc_write": Out(RowWriteSignature(c.acc_depth, c.acc_row_bytes * 8, acc_chunks))}
        members.update(write_members(config, "UOP"))
        members.update(token_members(SIDES))
        members.update(status_members())
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        isa = build_isa(c)
        kinds = enums(isa)
        opcode, memory, alu_opcode = kinds["opcode"], kinds["memory_id"], kinds["alu_opcode"]
        forms = layouts(isa)
        m.submodules.uop_dma = uop_dma = ReadDMA(c, "UOP")
        m.submodules.acc_dma = acc_dma = ReadDMA(c, "ACC")
        m.submodules.core = core = TensorCore(c)
        wiring.connect(m, wiring.flipped(self.uop_port), uop_dma.port)
        wiring.connect(m, wiring.flipped(self.acc_port), acc_dma.port)
        wiring.connect(m, wiring.flipped(self.uop_write), uop_dma.write)
        for name in ("uop_read", "inp_read", "wgt_read", "acc_read"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))

        # The accumulator write port: the ACC DMA's chunks, or the core's whole rows.
        _, _, acc_chunks = geometry(c, "ACC")
        dma_row = RowWriteSignature(c.acc_depth, c.acc_row_bytes * 8, acc_chunks).create()
        chunk_write_to_row(m, acc_dma.write, dma_row, acc_chunks)
        with m.If(core.acc_write.en):
            m.d.comb += [self.acc_write.addr.eq(core.acc_write.addr), self.acc_write.data.eq(core.acc_write.data),
                         self.acc_write.en.eq((1 << acc_chunks) - 1)]
        with m.Else():
            m.d.comb += [self.acc_write.addr.eq(dma_row.addr), self.acc_write.data.eq(dma_row.data),
                         self.acc_write.en.eq(dma_row.en)]

        seq = Sequencer(self, forms["LOAD"], SIDES)
        load = seq.head
        alu = forms["ALU"](seq.word)
        gemm = forms["GEMM"](seq.word)
        is_uop = load.memory_id.as_value() == memory.UOP.value
        end = tile_end(m, load)
        depth = Signal(32)
        with m.If(is_uop):
            m.d.comb += depth.eq(c.uop_depth)
        with m.Else():
            m.d.comb += depth.eq(c.acc_depth)
        for dma in (uop_dma, acc_dma):
            m.d.comb += [dma.cmd.eq(load), dma.base.eq(self.base)]
        m.d.comb += [core.insn.eq(seq.word), core.is_alu.eq(load.opcode.as_value() == opcode.ALU.value)]
        alu_known = Signal()
        with m.Switch(alu.alu_opcode.as_value()):
            for name in c.alu_ops:
                with m.Case(getattr(alu_opcode, name).value):
                    m.d.comb += alu_known.eq(1)

        halted = self.halt
        with m.FSM():
            seq.head_states(m, "CHECK", halted)
            with m.State("CHECK"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.Switch(load.opcode.as_value()):
                    with m.Case(opcode.LOAD.value):
                        pads = load.y_pad_0 | load.y_pad_1 | load.x_pad_0 | load.x_pad_1
                        with m.If(is_uop & (pads != 0)):
                            seq.fail(m, errors.PADDING)
                        with m.Elif(end > depth):
                            seq.fail(m, errors.SCRATCHPAD_RANGE)
                        with m.Else():
                            m.d.comb += [uop_dma.start.eq(is_uop), acc_dma.start.eq(~is_uop)]
                            m.next = "MOVE"
                    with m.Case(opcode.GEMM.value, opcode.ALU.value):
                        with m.If((load.opcode.as_value() == opcode.ALU.value) & ~alu_known):
                            seq.fail(m, errors.ALU_OPCODE)
                        with m.Elif(gemm.uop_end > c.uop_depth):
                            seq.fail(m, errors.UOP_RANGE)
                        with m.Else():
                            m.d.comb += core.start.eq(1)
                            m.next = "LOOP"
                    with m.Default():      # FINISH
                        m.next = "PUSH"
            with m.State("MOVE"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(~uop_dma.busy & ~acc_dma.busy):
                    m.next = "PUSH"
            with m.State("LOOP"):
                m.d.comb += self.state.eq(UNIT_BUSY)
                with m.If(core.error):
                    seq.fail(m, errors.SCRATCHPAD_RANGE)
                with m.Elif(~core.busy):
                    m.next = "PUSH"
            seq.push_state(m, halted)
        m.d.comb += [self.pc.eq(seq.index),
                     self.idle.eq((self.state == UNIT_COMMAND_WAIT) & ~self.cmd.valid & ~core.busy)]
        return m
