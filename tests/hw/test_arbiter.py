"""The DRAM arbiter: bursts from several readers, round robin, each beat back to its reader."""

from amaranth.sim import Simulator
from tensorweave.hw.arbiter import DramArbiter
from tensorweave.hw.simulate import AxiDram, serve_dram


def test_three_readers_get_their_own_beats_round_robin():
    dut = DramArbiter(64, readers=3, max_outstanding=4)
    model = AxiDram(8192, 8, read_latency=2)
    for k in range(1024):
        model.mem[k * 8:(k + 1) * 8] = k.to_bytes(8, "little")
    requests = {0: [(0, 3), (800, 1)], 1: [(64, 2), (1600, 4)], 2: [(4000, 1)]}  # byte address, beats
    got = {i: [] for i in requests}
    order = []

    async def bench(ctx):
        pending = {i: list(r) for i, r in requests.items()}
        for _ in range(200):
            for i in range(3):
                port = dut.reader(i)
                if pending[i]:
                    addr, beats = pending[i][0]
                    ctx.set(port.ar.valid, 1)
                    ctx.set(port.ar.payload, {"addr": addr, "len": beats - 1})
                else:
                    ctx.set(port.ar.valid, 0)
                ctx.set(port.r.ready, 1)
            seen = {}

            def observe(ctx, seen=seen, pending=pending):
                seen["granted"] = [i for i in range(3) if pending[i] and ctx.get(dut.reader(i).ar.ready)]
                seen["beats"] = [(i, ctx.get(dut.reader(i).r.payload.data)) for i in range(3)
                                 if ctx.get(dut.reader(i).r.valid)]

            await serve_dram(ctx, dut.dram, model, observe)
            granted, beats = seen["granted"], seen["beats"]
            for i in granted:
                order.append(i)
                pending[i].pop(0)
            for i, data in beats:
                got[i].append(data)
            if not any(pending.values()) and ctx.get(dut.idle):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for i, reqs in requests.items():
        assert got[i] == [addr // 8 + k for addr, beats in reqs for k in range(beats)]
    assert order[:3] == [1, 2, 0] and sorted(order) == [0, 0, 1, 1, 2]
