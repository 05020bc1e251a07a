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


def test_output_buffer_holds_the_narrowed_lanes_of_chunk_and_row_writes():
    """The output buffer follows accumulator writes: two 64-bit chunks of 2 int32 lanes each map to
    two 16-bit chunks of the 4 int8 lanes (low bytes, two's complement), whole rows too."""
    from amaranth import Module
    from amaranth.lib import wiring
    from tensorweave.hw.scratchpad import RowWriteSignature, narrow_row_write

    class Pair(wiring.Component):
        def __init__(self):
            super().__init__({"write": wiring.In(RowWriteSignature(8, 128, 2))})
            self.acc = Scratchpad(depth=8, width=128, chunks=2, transparent=(True,))
            self.out = Scratchpad(depth=8, width=32, chunks=2, transparent=(False,))

        def elaborate(self, platform):
            m = Module()
            m.submodules.acc, m.submodules.out = self.acc, self.out
            wiring.connect(m, wiring.flipped(self.write), self.acc.write)
            narrow_row_write(m, self.write, self.out.write, 4, 32, 8)
            return m

    dut = Pair()
    lanes = [0x12345678, -2, 0x7FFFFF80, -129]
    row = sum((v & 0xFFFFFFFF) << (32 * k) for k, v in enumerate(lanes))
    narrow = sum((v & 0xFF) << (8 * k) for k, v in enumerate(lanes))

    async def bench(ctx):
        for addr, en in ((1, 0b01), (2, 0b10), (3, 0b11)):
            ctx.set(dut.write.addr, addr)
            ctx.set(dut.write.data, row)
            ctx.set(dut.write.en, en)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        await ctx.tick()
        assert [ctx.get(dut.out.memory.data[k]) for k in range(4)] == [0, narrow & 0xFFFF, narrow & 0xFFFF0000, narrow]
        assert ctx.get(dut.acc.memory.data[3]) == row

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_accumulator_chunks_hold_whole_lanes_for_every_legal_config():
    """Every config the rules allow (so every preset and sweep point) maps an ACC DMA chunk to whole
    lanes of the output buffer; `narrow_row_write` rejects a split lane, so none needs a config rule."""
    import itertools

    from tensorweave.configs import AccelConfig, load_config
    from tensorweave.hw.dma import geometry

    base = load_config("vta-default").to_dict()
    checked = 0
    for batch, block_out, acc_width, out_width, bus_width in itertools.product(
            (1, 2, 4, 8, 16), (2, 4, 8, 16, 32, 64), (16, 32), (4, 8), (32, 64, 128, 256, 512)):
        config = AccelConfig.from_dict({**base, "batch": batch, "block_out": block_out, "acc_width": acc_width,
                                        "out_width": out_width, "bus_width": bus_width})
        _, _, chunks = geometry(config, "ACC")
        lanes = batch * block_out
        assert lanes % chunks == 0 and (config.out_row_bytes * 8) % chunks == 0, config
        checked += 1
    assert checked == 600
