"""The DMA read engine alone: bursts requested, and the padded tile written row by row."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from tensorweave.hw.dma import ReadDMA, geometry
from tensorweave.isa import Insn, build_isa


def _run_dma(config, memory, fields, dram: bytes, base: int, responder):
    isa = build_isa(config)
    dut = ReadDMA(config, memory)
    size, chunk, chunks = geometry(config, memory)
    writes = {}
    axi = responder(dut.port, dram, config.bus_bytes)

    async def bench(ctx):
        ctx.set(dut.cmd.as_value(), isa.encode(Insn("LOAD", fields)))
        ctx.set(dut.base, base)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(2000):
            axi.drive(ctx)
            if ctx.get(dut.write.en):
                addr, data = ctx.get(dut.write.addr), ctx.get(dut.write.data)
                row = writes.setdefault(addr, [None] * chunks)
                if ctx.get(dut.write.zero):
                    row[:] = [0] * chunks
                else:
                    row[ctx.get(dut.write.chunk) if chunks > 1 else 0] = data
            busy = ctx.get(dut.busy)
            await ctx.tick()
            axi.advance()
            if not busy:
                break
        assert not axi.queue

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    rows = {a: b"".join(c.to_bytes(chunk, "little") for c in r) for a, r in writes.items()}
    return rows, axi.bursts


def _expected(fields, dram: bytes, base: int, size: int) -> dict[int, bytes]:
    rows = fields["y_pad_0"] + fields["y_size"] + fields["y_pad_1"]
    width = fields["x_pad_0"] + fields["x_size"] + fields["x_pad_1"]
    out = {}
    for y in range(rows):
        for x in range(width):
            addr = fields["sram_base"] + y * width + x
            yy, xx = y - fields["y_pad_0"], x - fields["x_pad_0"]
            if 0 <= yy < fields["y_size"] and 0 <= xx < fields["x_size"]:
                start = base + (fields["dram_base"] + yy * fields["x_stride"] + xx) * size
                out[addr] = dram[start:start + size]
            else:
                out[addr] = bytes(size)
    return out


@pytest.mark.parametrize("memory", ["INP", "WGT", "ACC"])
def test_padded_strided_tile(tiny, memory, read_responder):
    size = geometry(tiny, memory)[0]
    rng = np.random.default_rng(5)
    dram = bytes(rng.integers(0, 256, size=4096, dtype=np.uint8))
    fields = {"memory_id": build_isa(tiny).enums["memory_id"][memory], "sram_base": 2, "dram_base": 3,
              "y_size": 3, "x_size": 3, "x_stride": 5, "y_pad_0": 1, "y_pad_1": 1, "x_pad_0": 2, "x_pad_1": 1}
    rows, bursts = _run_dma(tiny, memory, fields, dram, base=0x100, responder=read_responder)
    assert rows == _expected(fields, dram, 0x100, size)
    bus = tiny.bus_bytes
    # one burst per DRAM row, covering exactly the bus words of that row
    for y, (addr, beats) in enumerate(bursts):
        first = 0x100 + (3 + 5 * y) * size
        last = first + 3 * size - 1
        assert (addr, beats) == (first // bus * bus, last // bus - first // bus + 1)
    assert len(bursts) == 3
