"""An on-chip DRAM model: an AXI4 slave (INCR bursts) over block RAM, plus a host word port.

Used on boards without a hard CPU (ECP5): the accelerator's `dram` master reads its program and
tensors from here. The host port (32-bit words, one access per cycle, taking turns with AXI when
AXI is idle) lets the UART bridge load inputs and read outputs. Addresses are byte addresses within
the model (the SoC maps them to DRAM_BASE = 0); accesses outside it read zero and drop writes.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..hw.axi import AXI4Signature


class AXI4Memory(wiring.Component):
    """`size_bytes` of RAM behind an AXI4 slave port of `data_width` bits and a 32-bit host port."""

    def __init__(self, size_bytes: int, data_width: int = 64, init: bytes = b""):
        bus_bytes = data_width // 8
        if size_bytes % bus_bytes or size_bytes & (size_bytes - 1):
            raise ValueError(f"size_bytes must be a power of two multiple of {bus_bytes}, not {size_bytes}")
        if len(init) > size_bytes:
            raise ValueError(f"init is {len(init)} bytes, more than the memory's {size_bytes}")
        self._size_bytes, self._data_width = size_bytes, data_width
        padded = init + bytes(-len(init) % bus_bytes)
        self._init = [int.from_bytes(padded[i:i + bus_bytes], "little") for i in range(0, len(padded), bus_bytes)]
        super().__init__({
            "bus": In(AXI4Signature(32, data_width)),
            "host_addr": In(32), "host_wdata": In(32), "host_write": In(1), "host_read": In(1),
            "host_rdata": Out(32), "host_done": Out(1),
        })

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    def elaborate(self, platform) -> Module:
        m = Module()
        bus_bytes = self._data_width // 8
        depth = self._size_bytes // bus_bytes
        shift = bus_bytes.bit_length() - 1
        m.submodules.mem = mem = Memory(shape=self._data_width, depth=depth, init=self._init)
        read = mem.read_port()
        write = mem.write_port(granularity=8)
        bus = self.bus

        address = Signal(32)   # byte address of the current beat
        beats_left = Signal(8)
        host_lane = Signal(range(bus_bytes // 4))
        host_outside = Signal()
        m.d.comb += [bus.rresp.eq(0), bus.bresp.eq(0), read.addr.eq(address[shift:])]

        def in_range(byte_address):
            return byte_address < self._size_bytes

        with m.FSM():
            with m.State("idle"):
                with m.If(bus.arvalid):
                    m.d.comb += bus.arready.eq(1)
                    m.d.sync += [address.eq(bus.araddr), beats_left.eq(bus.arlen)]
                    m.next = "read"
                with m.Elif(bus.awvalid):
                    m.d.comb += bus.awready.eq(1)
                    m.d.sync += [address.eq(bus.awaddr), beats_left.eq(bus.awlen)]
                    m.next = "write"
                with m.Elif(self.host_write):
                    m.d.comb += [write.addr.eq(self.host_addr[shift:]), self.host_done.eq(1)]
                    lane_select = self.host_addr[2:shift] if shift > 2 else 0
                    for lane in range(bus_bytes // 4):
                        with m.If(lane_select == lane):
                            m.d.comb += [write.data.word_select(lane, 32).eq(self.host_wdata),
                                         write.en[4 * lane:4 * lane + 4].eq(0b1111)]
                    with m.If(~in_range(self.host_addr)):
                        m.d.comb += write.en.eq(0)
                with m.Elif(self.host_read):
                    m.d.comb += read.addr.eq(self.host_addr[shift:])
                    m.d.sync += [host_lane.eq(self.host_addr[2:shift] if shift > 2 else 0),
                                 host_outside.eq(~in_range(self.host_addr))]
                    m.next = "host_read"
            with m.State("host_read"):
                m.d.comb += [self.host_done.eq(1),
                             self.host_rdata.eq(Mux(host_outside, 0, read.data.word_select(host_lane, 32)))]
                m.next = "idle"
            with m.State("read"):
                # The read port registers its address: present the beat one cycle after addressing it.
                m.next = "read_beat"
            with m.State("read_beat"):
                m.d.comb += [bus.rvalid.eq(1), bus.rlast.eq(beats_left == 0),
                             bus.rdata.eq(read.data)]
                with m.If(~in_range(address)):
                    m.d.comb += bus.rdata.eq(0)
                with m.If(bus.rready):
                    m.d.sync += [address.eq(address + bus_bytes), beats_left.eq(beats_left - 1)]
                    with m.If(beats_left == 0):
                        m.next = "idle"
                    with m.Else():
                        m.d.comb += read.addr.eq((address + bus_bytes)[shift:])
                        m.next = "read_beat_next"
            with m.State("read_beat_next"):
                m.next = "read_beat"
            with m.State("write"):
                m.d.comb += [bus.wready.eq(1), write.addr.eq(address[shift:]), write.data.eq(bus.wdata)]
                with m.If(bus.wvalid):
                    with m.If(in_range(address)):
                        m.d.comb += write.en.eq(bus.wstrb)
                    m.d.sync += address.eq(address + bus_bytes)
                    with m.If(bus.wlast):
                        m.next = "write_response"
            with m.State("write_response"):
                m.d.comb += bus.bvalid.eq(1)
                with m.If(bus.bready):
                    m.next = "idle"
        return m
