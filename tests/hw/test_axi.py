"""AXI signatures and the burst-splitting rule (<= 256 beats, never across 4 KiB)."""

import pytest
from amaranth import Module, Shape, Signal
from amaranth.sim import Simulator
from tensorweave.hw.axi import AXI4LiteSignature, AXI4Signature, burst_beats


def test_axi4_members_and_widths():
    members = AXI4Signature(32, 128).members
    assert Shape.cast(members["rdata"].shape).width == 128 and Shape.cast(members["wstrb"].shape).width == 16
    names = {"araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rdata", "rresp", "rlast", "rvalid",
             "rready", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata", "wstrb", "wlast",
             "wvalid", "wready", "bresp", "bvalid", "bready"}
    assert set(members) == names
    lite = AXI4LiteSignature(8, 32).members
    assert set(lite) == {"awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
                         "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready"}
    with pytest.raises(ValueError, match="data_width"):
        AXI4Signature(32, 48)


@pytest.mark.parametrize("bus_bytes", [8, 64])
def test_burst_beats(bus_bytes):
    m = Module()
    addr = Signal(32)
    left = Signal(32)
    beats = burst_beats(m, addr, left, bus_bytes)
    cases = [(0, 3), (0, 1000), (4096 - 2 * bus_bytes, 10), (4096 + 8 * bus_bytes, 5), (0x12000, 4096)]
    got = []

    async def bench(ctx):
        for a, n in cases:
            ctx.set(addr, a)
            ctx.set(left, n)
            got.append(ctx.get(beats))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    limit = min(256, 4096 // bus_bytes)
    expected = [min(n, limit, (4096 - a % 4096) // bus_bytes) for a, n in cases]
    assert got == expected
