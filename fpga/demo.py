"""A small design with the accelerator's ports, to exercise the FPGA flow quickly.

`DotDemo` has the contract's signature (`dram` AXI4 master, `ctrl` AXI4-Lite slave, `irq`) and a
subset of its register map: writing CTRL bit 0 starts it; it reads INSN_COUNT bus words from
DRAM_BASE, sums (signed low half-word) x (signed high half-word) of each word into a 32-bit value,
writes that value (zero-extended to a bus word) to the next bus word, counts cycles and sets
STATUS.done. Synthesis sees registers, a multiplier, a burst-free AXI4 master and a register slave:
the same kinds of cells as the accelerator, in seconds instead of minutes.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..contract.registers import OFFSETS
from ..hw.axi import AXI4LiteSignature, AXI4Signature

DIGEST = 0xDE30DE30  # CONFIG_DIGEST of the demo design


class AXI4LiteRegisters(wiring.Component):
    """An AXI4-Lite slave in front of a simple register port: one access at a time, OKAY responses.

    `reg_addr` is the word-aligned byte address; a write shows as one cycle of `reg_write` with
    `reg_wdata`; a read samples `reg_rdata` one cycle after `reg_read` is high with `reg_addr` set.
    """

    def __init__(self, addr_width: int = 8):
        super().__init__({
            "bus": In(AXI4LiteSignature(addr_width, 32)),
            "reg_addr": Out(addr_width), "reg_write": Out(1), "reg_wdata": Out(32),
            "reg_read": Out(1), "reg_rdata": In(32),
        })
        self._addr_width = addr_width

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        m.d.comb += self.reg_write.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(bus.awvalid & bus.wvalid):
                    m.d.comb += [bus.awready.eq(1), bus.wready.eq(1), self.reg_write.eq(1),
                                 self.reg_addr.eq(bus.awaddr), self.reg_wdata.eq(bus.wdata)]
                    m.next = "write_response"
                with m.Elif(bus.arvalid):
                    m.d.comb += [bus.arready.eq(1), self.reg_read.eq(1), self.reg_addr.eq(bus.araddr)]
                    m.next = "read_data"
            with m.State("write_response"):
                m.d.comb += bus.bvalid.eq(1)
                with m.If(bus.bready):
                    m.next = "idle"
            with m.State("read_data"):
                m.d.comb += [bus.rvalid.eq(1), bus.rdata.eq(self.reg_rdata)]
                with m.If(bus.rready):
                    m.next = "idle"
        return m


class DotDemo(wiring.Component):
    """A register-controlled dot product over DRAM words (see the module docstring)."""

    def __init__(self, bus_width: int = 64):
        if bus_width not in (32, 64, 128):
            raise ValueError(f"bus_width must be 32, 64 or 128, not {bus_width}")
        self._bus_width = bus_width
        super().__init__({"dram": Out(AXI4Signature(32, bus_width)),
                          "ctrl": In(AXI4LiteSignature(8, 32)), "irq": Out(1)})

    @property
    def bus_width(self) -> int:
        return self._bus_width

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.regs = regs = AXI4LiteRegisters(8)
        wiring.connect(m, wiring.flipped(self.ctrl), regs.bus)

        bus_bytes = self._bus_width // 8
        busy, done = Signal(), Signal()
        count, base, cycles = Signal(32), Signal(32), Signal(64)
        index, total = Signal(32), Signal(32)
        rdata = Signal(32)
        m.d.comb += self.irq.eq(done)

        start = regs.reg_write & (regs.reg_addr == OFFSETS["CTRL"]) & regs.reg_wdata[0]
        with m.If(regs.reg_write & ~busy):
            with m.Switch(regs.reg_addr):
                with m.Case(OFFSETS["INSN_COUNT"]):
                    m.d.sync += count.eq(regs.reg_wdata)
                with m.Case(OFFSETS["DRAM_BASE_LO"]):
                    m.d.sync += base.eq(regs.reg_wdata)
        with m.Switch(regs.reg_addr):
            for name, value in {"STATUS": Cat(busy, done), "INSN_COUNT": count, "DRAM_BASE_LO": base,
                                "CYCLES_LO": cycles[:32], "CYCLES_HI": cycles[32:], "CONFIG_DIGEST": Const(DIGEST, 32),
                                "LOAD_PC": index}.items():
                with m.Case(OFFSETS[name]):
                    m.d.comb += rdata.eq(value)
        with m.If(regs.reg_read):
            m.d.sync += regs.reg_rdata.eq(rdata)

        dram = self.dram
        m.d.comb += [dram.arsize.eq(bus_bytes.bit_length() - 1), dram.awsize.eq(bus_bytes.bit_length() - 1),
                     dram.arburst.eq(1), dram.awburst.eq(1), dram.arlen.eq(0), dram.awlen.eq(0),
                     dram.wlast.eq(1), dram.wstrb.eq(-1)]
        low, high = Signal(range(-(1 << 15), 1 << 15)), Signal(range(-(1 << 15), 1 << 15))
        m.d.comb += [low.eq(dram.rdata[:16]), high.eq(dram.rdata[16:32])]
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.FSM():
            with m.State("idle"):
                with m.If(start & ~busy):
                    m.d.sync += [busy.eq(1), done.eq(0), index.eq(0), total.eq(0), cycles.eq(0)]
                    m.next = "address"
            with m.State("address"):
                with m.If(index == count):
                    m.next = "write_address"
                with m.Else():
                    m.d.comb += [dram.arvalid.eq(1), dram.araddr.eq(base + index * bus_bytes)]
                    with m.If(dram.arready):
                        m.next = "data"
            with m.State("data"):
                m.d.comb += dram.rready.eq(1)
                with m.If(dram.rvalid):
                    m.d.sync += [total.eq(total + low * high), index.eq(index + 1)]
                    m.next = "address"
            with m.State("write_address"):
                m.d.comb += [dram.awvalid.eq(1), dram.awaddr.eq(base + count * bus_bytes)]
                with m.If(dram.awready):
                    m.next = "write_data"
            with m.State("write_data"):
                m.d.comb += [dram.wvalid.eq(1), dram.wdata.eq(total)]
                with m.If(dram.wready):
                    m.next = "write_response"
            with m.State("write_response"):
                m.d.comb += dram.bready.eq(1)
                with m.If(dram.bvalid):
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "idle"
        return m
