"""The one AXI4 DRAM port, shared: round-robin burst arbitration among the read engines.

Readers (fetch and the four DMA engines) each issue whole bursts; the arbiter grants one request
at a time in round-robin order, holds it on AR until accepted, and remembers which reader it
belongs to in a FIFO of outstanding bursts (`max_outstanding`), so R beats (in order, one AXI ID)
go back to their reader. A reader must accept its beats without waiting on anything else (fetch
only requests what it has room for), so no reader can block another. Only the store unit writes:
its write port passes straight through to AW/W/B.

Timing: a request is granted in the cycle it is seen if the AR register is empty, and AR is held
one cycle or more; so back-to-back bursts from different readers issue every other cycle.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature, ReadPortSignature, WritePortSignature


class DramArbiter(wiring.Component):
    """`readers` read ports and one write port onto a single AXI4 master `dram`."""

    def __init__(self, data_width: int, readers: int, max_outstanding: int = 8, addr_width: int = 32):
        if readers < 1:
            raise ValueError(f"DramArbiter needs at least one reader, not {readers}")
        self._readers = readers
        self._max_outstanding = max_outstanding
        self._data_width = data_width
        members = {f"reader{i}": In(ReadPortSignature(data_width, addr_width)) for i in range(readers)}
        members["writer"] = In(WritePortSignature(data_width, addr_width))
        members["dram"] = Out(AXI4Signature(addr_width, data_width))
        members["idle"] = Out(1)
        super().__init__(members)

    def reader(self, index: int):
        return getattr(self, f"reader{index}")

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self._readers
        dram = self.dram
        size = (self._data_width // 8 - 1).bit_length()
        m.d.comb += [dram.arsize.eq(size), dram.arburst.eq(1), dram.awsize.eq(size), dram.awburst.eq(1)]

        m.submodules.outstanding = pending = fifo.SyncFIFO(width=max(1, (n - 1).bit_length()),
                                                           depth=self._max_outstanding)
        ar_valid = Signal()
        last = Signal(range(max(n, 2)))
        with m.If(dram.arvalid & dram.arready):
            m.d.sync += ar_valid.eq(0)
        m.d.comb += dram.arvalid.eq(ar_valid)
        # Round robin: the first requesting reader after the last one granted.
        with m.If(~ar_valid & pending.w_rdy):
            for offset in range(n):
                cond = None
                for start in range(n):
                    idx = (start + 1 + offset) % n
                    earlier = [self.reader((start + 1 + k) % n).ar.valid for k in range(offset)]
                    term = (last == start) & self.reader(idx).ar.valid
                    for e in earlier:
                        term = term & ~e
                    cond = term if cond is None else cond | term
                with m.If(cond):
                    for start in range(n):
                        idx = (start + 1 + offset) % n
                        with m.If(last == start):
                            port = self.reader(idx).ar
                            m.d.comb += [port.ready.eq(1), pending.w_en.eq(1), pending.w_data.eq(idx)]
                            m.d.sync += [ar_valid.eq(1), dram.araddr.eq(port.payload.addr),
                                         dram.arlen.eq(port.payload.len), last.eq(idx)]
        # R beats back to the reader at the head of the outstanding FIFO.
        for i in range(n):
            port = self.reader(i).r
            with m.If(pending.r_rdy & (pending.r_data == i)):
                m.d.comb += [port.valid.eq(dram.rvalid), dram.rready.eq(port.ready)]
            m.d.comb += [port.payload.data.eq(dram.rdata), port.payload.last.eq(dram.rlast)]
        m.d.comb += pending.r_en.eq(dram.rvalid & dram.rready & dram.rlast)

        w = self.writer
        m.d.comb += [
            dram.awaddr.eq(w.aw.payload.addr), dram.awlen.eq(w.aw.payload.len), dram.awvalid.eq(w.aw.valid),
            w.aw.ready.eq(dram.awready),
            dram.wdata.eq(w.w.payload.data), dram.wstrb.eq(w.w.payload.strb), dram.wlast.eq(w.w.payload.last),
            dram.wvalid.eq(w.w.valid), w.w.ready.eq(dram.wready),
            w.b.payload.eq(dram.bresp), w.b.valid.eq(dram.bvalid), dram.bready.eq(w.b.ready),
        ]
        m.d.comb += self.idle.eq(~ar_valid & ~pending.r_rdy)
        return m
