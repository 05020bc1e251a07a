"""A small stand-in with the accelerator's ports and register map, to test the harness on its own.

On CTRL.start it reads the INSN_COUNT bus words at DRAM_BASE one single-beat burst at a time and
writes each word, inverted, INSN_COUNT words further on; then it raises STATUS.done. INSN_COUNT 0
raises STATUS.error with ERROR_CODE 1 and ERROR_INSN 0. CONFIG_DIGEST reads 0x1234ABCD.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ECHO_DIGEST = 0x1234ABCD


def axi4_signature(data_width: int) -> wiring.Signature:
    return wiring.Signature({
        "araddr": Out(32), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        "awaddr": Out(32), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1)})


def axi4_lite_signature() -> wiring.Signature:
    return wiring.Signature({
        "awaddr": Out(8), "awvalid": Out(1), "awready": In(1), "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1),
        "wready": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1), "araddr": Out(8), "arvalid": Out(1),
        "arready": In(1), "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1)})


class EchoTop(wiring.Component):
    def __init__(self, bus_width: int = 64):
        self.bus_width = bus_width
        super().__init__({"dram": Out(axi4_signature(bus_width)), "ctrl": In(axi4_lite_signature()), "irq": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        bus_bytes = self.bus_width // 8
        d, c = self.dram, self.ctrl
        busy, done, error = Signal(), Signal(), Signal()
        count, base, cycles, index = Signal(32), Signal(32), Signal(64), Signal(32)
        code = Signal(32)
        word = Signal(self.bus_width)
        m.d.comb += self.irq.eq(done | error)
        # AXI4-Lite: writes take address and data together.
        m.d.comb += [c.awready.eq(c.awvalid & c.wvalid & ~c.bvalid), c.wready.eq(c.awready)]
        with m.If(c.awready):
            m.d.sync += c.bvalid.eq(1)
            with m.Switch(c.awaddr):
                with m.Case(0x00):
                    with m.If(c.wdata[0]):
                        m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), cycles.eq(0), index.eq(0), code.eq(0)]
                with m.Case(0x08):
                    m.d.sync += count.eq(c.wdata)
                with m.Case(0x0C):
                    m.d.sync += base.eq(c.wdata)
        with m.If(c.bvalid & c.bready):
            m.d.sync += c.bvalid.eq(0)
        m.d.comb += c.arready.eq(~c.rvalid)
        with m.If(c.arvalid & c.arready):
            m.d.sync += c.rvalid.eq(1)
            with m.Switch(c.araddr):
                with m.Case(0x04):
                    m.d.sync += c.rdata.eq(busy | (done << 1) | (error << 2))
                with m.Case(0x08):
                    m.d.sync += c.rdata.eq(count)
                with m.Case(0x14):
                    m.d.sync += c.rdata.eq(cycles[:32])
                with m.Case(0x18):
                    m.d.sync += c.rdata.eq(cycles[32:])
                with m.Case(0x1C):
                    m.d.sync += c.rdata.eq(code)
                with m.Case(0x24):
                    m.d.sync += c.rdata.eq(ECHO_DIGEST)
                with m.Case(0x28):
                    m.d.sync += c.rdata.eq(index)
                with m.Default():
                    m.d.sync += c.rdata.eq(0)
        with m.If(c.rvalid & c.rready):
            m.d.sync += c.rvalid.eq(0)
        # The echo engine.
        size = (bus_bytes - 1).bit_length()
        m.d.comb += [d.arlen.eq(0), d.arsize.eq(size), d.arburst.eq(1), d.awlen.eq(0), d.awsize.eq(size),
                     d.awburst.eq(1), d.wstrb.eq((1 << bus_bytes) - 1), d.wlast.eq(1)]
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        with m.FSM():
            with m.State("idle"):
                with m.If(busy):
                    with m.If(count == 0):
                        m.d.sync += [error.eq(1), code.eq(1), busy.eq(0)]
                    with m.Else():
                        m.next = "ar"
            with m.State("ar"):
                m.d.comb += [d.arvalid.eq(1), d.araddr.eq(base + index * bus_bytes)]
                with m.If(d.arready):
                    m.next = "r"
            with m.State("r"):
                m.d.comb += d.rready.eq(1)
                with m.If(d.rvalid):
                    m.d.sync += word.eq(~d.rdata)
                    m.next = "aw"
            with m.State("aw"):
                m.d.comb += [d.awvalid.eq(1), d.awaddr.eq(base + (index + count) * bus_bytes)]
                with m.If(d.awready):
                    m.next = "w"
            with m.State("w"):
                m.d.comb += [d.wvalid.eq(1), d.wdata.eq(word)]
                with m.If(d.wready):
                    m.next = "b"
            with m.State("b"):
                m.d.comb += d.bready.eq(1)
                with m.If(d.bvalid):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index + 1 == count):
                        m.d.sync += [busy.eq(0), done.eq(1)]
                        m.next = "idle"
                    with m.Else():
                        m.next = "ar"
        return m
