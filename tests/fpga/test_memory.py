"""The on-chip DRAM model: AXI4 INCR bursts with strobes, the host port, and out-of-range accesses."""

from __future__ import annotations

from amaranth.sim import Simulator
from tensorweave.fpga.memory import AXI4Memory


def test_bursts_strobes_and_host_port():
    init = bytes(range(64))
    dut = AXI4Memory(256, 64, init)
    seen: dict[str, object] = {}

    async def bench(ctx):
        bus = dut.bus
        # a 4-beat read burst from byte 8
        ctx.set(bus.araddr, 8)
        ctx.set(bus.arlen, 3)
        ctx.set(bus.arvalid, 1)
        while not ctx.get(bus.arready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        beats = []
        while len(beats) < 4:
            if ctx.get(bus.rvalid):
                beats.append((ctx.get(bus.rdata), ctx.get(bus.rlast)))
            await ctx.tick()
        ctx.set(bus.rready, 0)
        seen["read"] = beats
        # a 2-beat write burst at byte 16, second beat with only the low two bytes enabled
        ctx.set(bus.awaddr, 16)
        ctx.set(bus.awlen, 1)
        ctx.set(bus.awvalid, 1)
        while not ctx.get(bus.awready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(bus.awvalid, 0)
        for data, strobes, last in ((0x1111_2222_3333_4444, 0xFF, 0), (0xAAAA_BBBB_CCCC_DDDD, 0x03, 1)):
            ctx.set(bus.wdata, data)
            ctx.set(bus.wstrb, strobes)
            ctx.set(bus.wlast, last)
            ctx.set(bus.wvalid, 1)
            while not ctx.get(bus.wready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        while not ctx.get(bus.bvalid):
            await ctx.tick()
        await ctx.tick()
        ctx.set(bus.bready, 0)
        # host port: read the upper word of bus word 3 (byte 28), write byte 300 (out of range: dropped)
        words = []
        for address in (16, 20, 24, 28, 300):
            ctx.set(dut.host_addr, address)
            ctx.set(dut.host_read, 1)
            while not ctx.get(dut.host_done):
                await ctx.tick()
            words.append(ctx.get(dut.host_rdata))
            await ctx.tick()
            ctx.set(dut.host_read, 0)
            await ctx.tick()
        seen["host"] = words

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    expected = [(int.from_bytes(init[a:a + 8], "little"), int(a == 32)) for a in (8, 16, 24, 32)]
    assert seen["read"] == expected
    word3 = int.from_bytes(bytes([0xDD, 0xDD]) + init[26:32], "little")
    assert seen["host"][:4] == [0x3333_4444, 0x1111_2222, word3 & 0xFFFF_FFFF, word3 >> 32]
    assert seen["host"][4] == 0   # outside the 256-byte model: reads zero
