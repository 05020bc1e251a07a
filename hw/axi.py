"""AXI signatures of the accelerator's ports, and the internal read/write port streams.

`AXI4Signature` is the DRAM master port and `AXI4LiteSignature` the control slave port of
`tensorweave.hw.top.Accelerator`; members are the lowercase AXI names with directions as seen by
the master (so the top level uses `Out(AXI4Signature(...))` and `In(AXI4LiteSignature(...))`).
Only INCR bursts are issued (no IDs, cache, prot or lock members: a board wrapper ties those).

Inside the design, each DMA engine talks to the arbiter through a `ReadPortSignature`: a stream of
burst requests (byte address of the first bus word, `len` = beats - 1) and a stream of data beats.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

BURST_MAX_BEATS = 256
BOUNDARY_BYTES = 4096


class AXI4Signature(wiring.Signature):
    """An AXI4 master (directions as seen by the master): read and write address/data channels."""

    def __init__(self, addr_width: int = 32, data_width: int = 64):
        if data_width not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"AXI data_width must be a power of two from 32 to 1024, not {data_width}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "araddr": Out(addr_width), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
            "awaddr": Out(addr_width), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
            "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        })

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AXI4Signature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self) -> str:
        return f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4LiteSignature(wiring.Signature):
    """An AXI4-Lite master (directions as seen by the master); the accelerator flips it."""

    def __init__(self, addr_width: int = 8, data_width: int = 32):
        if data_width not in (32, 64):
            raise ValueError(f"AXI4-Lite data_width must be 32 or 64, not {data_width}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AXI4LiteSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self) -> str:
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


def burst_layout(addr_width: int = 32) -> data.StructLayout:
    """One burst request: the byte address of its first bus word and its beat count minus one."""
    return data.StructLayout({"addr": unsigned(addr_width), "len": unsigned(8)})


def beat_layout(data_width: int) -> data.StructLayout:
    return data.StructLayout({"data": unsigned(data_width), "last": unsigned(1)})


class ReadPortSignature(wiring.Signature):
    """A DMA engine's read port (directions as seen by the engine): `ar` requests, `r` beats back."""

    def __init__(self, data_width: int, addr_width: int = 32):
        self.data_width = data_width
        self.addr_width = addr_width
        super().__init__({
            "ar": Out(stream.Signature(burst_layout(addr_width))),
            "r": In(stream.Signature(beat_layout(data_width))),
        })

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ReadPortSignature) and other.data_width == self.data_width
                and other.addr_width == self.addr_width)


class WritePortSignature(wiring.Signature):
    """The store unit's write port (directions as seen by the writer): bursts, beats, responses."""

    def __init__(self, data_width: int, addr_width: int = 32):
        self.data_width = data_width
        self.addr_width = addr_width
        super().__init__({
            "aw": Out(stream.Signature(burst_layout(addr_width))),
            "w": Out(stream.Signature(data.StructLayout({
                "data": unsigned(data_width), "strb": unsigned(data_width // 8), "last": unsigned(1)}))),
            "b": In(stream.Signature(unsigned(2))),
        })

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, WritePortSignature) and other.data_width == self.data_width
                and other.addr_width == self.addr_width)


def burst_beats(m: Module, addr: Signal, beats_left: Signal, bus_bytes: int) -> Signal:
    """Beats of the next burst from `addr` (bus-aligned): at most 256, never crossing 4 KiB."""
    shift = (bus_bytes - 1).bit_length()
    to_boundary = Signal(range(BOUNDARY_BYTES // bus_bytes + 1))
    m.d.comb += to_boundary.eq((BOUNDARY_BYTES >> shift) - addr[shift:12])
    limit = min(BURST_MAX_BEATS, BOUNDARY_BYTES // bus_bytes)
    beats = Signal(range(limit + 1))
    with m.If((beats_left < to_boundary) & (beats_left < limit)):
        m.d.comb += beats.eq(beats_left)
    with m.Elif(to_boundary < limit):
        m.d.comb += beats.eq(to_boundary)
    with m.Else():
        m.d.comb += beats.eq(limit)
    return beats


__all__ = ["AXI4LiteSignature", "AXI4Signature", "ReadPortSignature", "beat_layout", "burst_beats",
           "burst_layout", "WritePortSignature"]
