"""Scratchpads: transparent and plain read ports, chunk-granular writes."""

from amaranth.sim import Simulator
from tensorweave.hw.scratchpad import Scratchpad


def test_transparent_port_sees_same_cycle_write_and_chunks_write_separately():
    dut = Scratchpad(depth=8, width=32, chunks=2, transparent=(True, False))
    seen = []

    async def bench(ctx):
        ctx.set(dut.memory.data[3], 0x11112222)
        for port in (dut.read0, dut.read1):
            ctx.set(port.addr, 3)
            ctx.set(port.en, 1)
        ctx.set(dut.write.addr, 3)
        ctx.set(dut.write.data, 0xAAAABBBB)
        ctx.set(dut.write.en, 0b10)           # upper half only
        await ctx.tick()
        seen.append((ctx.get(dut.read0.data), ctx.get(dut.read1.data)))
        ctx.set(dut.write.en, 0)
        await ctx.tick()
        seen.append((ctx.get(dut.read0.data), ctx.get(dut.read1.data)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(0xAAAA2222, 0x11112222), (0xAAAA2222, 0xAAAA2222)]
