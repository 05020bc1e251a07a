"""The on-chip scratchpads: one `amaranth.lib.memory.Memory` each, and their port signatures.

A scratchpad row is the raw bytes of one element as it lies in DRAM (values packed LSB first), so
DMA engines copy bytes and only the tensor core and the store unit look inside a row. Each
scratchpad has one write port (byte-chunk granular where a DMA fills a row over several bus
beats) and one or more synchronous read ports; read ports marked transparent return the value
written in the same cycle (the tensor core relies on this for read-after-write on accumulators).

The accumulator has a single read port (the tensor core's); the store unit reads the output buffer
instead, `acc_depth` rows of the accumulator's lanes narrowed to out_width bits, written through
`narrow_row_write` whenever the accumulator is written, so it always equals narrow(accumulator).
Each memory with one write and one read port maps to one copy of block RAM.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class ReadSignature(wiring.Signature):
    """A synchronous read port as seen by the reader: data of `addr` one cycle after `en`."""

    def __init__(self, depth: int, width: int):
        self.depth, self.width = depth, width
        super().__init__({"addr": Out(range(depth)), "en": Out(1), "data": In(width)})


class RowWriteSignature(wiring.Signature):
    """A write port as seen by the writer: `en` has one bit per chunk of width // chunks bits."""

    def __init__(self, depth: int, width: int, chunks: int):
        self.depth, self.width, self.chunks = depth, width, chunks
        super().__init__({"addr": Out(range(depth)), "data": Out(width), "en": Out(chunks)})


def chunk_write_to_row(m: Module, chunk_write, row_write, chunks: int) -> None:
    """Drive a row write port from a DMA chunk write (`chunk`, or a whole zero row with `zero`)."""
    m.d.comb += row_write.addr.eq(chunk_write.addr)
    if chunks == 1:
        m.d.comb += [row_write.data.eq(Mux(chunk_write.zero, 0, chunk_write.data)),
                     row_write.en.eq(chunk_write.en)]
        return
    data = chunk_write.data.replicate(chunks)
    m.d.comb += row_write.data.eq(Mux(chunk_write.zero, 0, data))
    with m.If(chunk_write.en):
        with m.If(chunk_write.zero):
            m.d.comb += row_write.en.eq((1 << chunks) - 1)
        with m.Else():
            m.d.comb += row_write.en.eq(1 << chunk_write.chunk)


def narrow_row_write(m: Module, acc_write, out_write, lanes: int, acc_width: int, out_width: int) -> None:
    """Drive the output buffer's write port from the accumulator's: each lane's low out_width bits.

    Both ports have the same number of chunks, each holding a whole number of lanes (the accumulator
    chunk of a DMA write is min(row, bus) bits, a power of two >= 32 >= acc_width), so an accumulator
    chunk maps to the same-numbered slice of the narrowed row.
    """
    chunks = acc_write.signature.chunks
    if chunks != out_write.signature.chunks or lanes % chunks:
        raise ValueError(f"{lanes} lanes do not split into {chunks} accumulator chunks")
    data = acc_write.data
    m.d.comb += [out_write.addr.eq(acc_write.addr), out_write.en.eq(acc_write.en),
                 out_write.data.eq(Cat(*[data[k * acc_width:k * acc_width + out_width] for k in range(lanes)]))]


class Scratchpad(wiring.Component):
    """`depth` rows of `width` bits; a write port of `chunks` chunks and read ports `read0`, ...

    `transparent[k]` says whether read port k sees a write to the same row in the same cycle.
    """

    def __init__(self, depth: int, width: int, chunks: int, transparent: tuple[bool, ...]):
        if width % chunks:
            raise ValueError(f"scratchpad width {width} is not a multiple of {chunks} chunks")
        self._depth, self._width, self._chunks = depth, width, chunks
        self._transparent = transparent
        members = {"write": In(RowWriteSignature(depth, width, chunks))}
        members.update({f"read{k}": In(ReadSignature(depth, width)) for k in range(len(transparent))})
        super().__init__(members)
        self.memory = Memory(shape=unsigned(width), depth=depth, init=[])

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.memory = memory = self.memory
        granularity = self._width // self._chunks if self._chunks > 1 else None
        wp = memory.write_port(granularity=granularity)
        m.d.comb += [wp.addr.eq(self.write.addr), wp.data.eq(self.write.data), wp.en.eq(self.write.en)]
        for k, transparent in enumerate(self._transparent):
            rp = memory.read_port(transparent_for=(wp,) if transparent else ())
            port = getattr(self, f"read{k}")
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        return m
