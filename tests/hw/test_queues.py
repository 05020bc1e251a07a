"""Token queues (saturating counters) and command queues (FIFOs) on Amaranth's simulator."""

from amaranth.sim import Simulator
from tensorweave.hw.queues import CommandQueue, TokenQueue


def test_token_queue_counts_saturates_and_clears():
    dut = TokenQueue(3)
    seen = []

    async def bench(ctx):
        assert not ctx.get(dut.can_pop) and ctx.get(dut.can_push)
        ctx.set(dut.push, 1)
        for _ in range(5):                      # 5 pushes offered, only 3 fit
            await ctx.tick()
            seen.append(ctx.get(dut.count))
        assert not ctx.get(dut.can_push)
        ctx.set(dut.pop, 1)                     # push and pop together when full: pop only
        await ctx.tick()
        seen.append(ctx.get(dut.count))
        await ctx.tick()                        # now both succeed: count stays
        seen.append(ctx.get(dut.count))
        ctx.set(dut.push, 0)
        await ctx.tick()
        seen.append(ctx.get(dut.count))
        ctx.set(dut.pop, 0)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        seen.append(ctx.get(dut.count))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [1, 2, 3, 3, 3, 2, 2, 1, 0]


def test_command_queue_keeps_order_and_depth(tiny):
    dut = CommandQueue(tiny)           # tiny.cmd_queue_depth = 16
    out = []

    async def bench(ctx):
        accepted = 0
        ctx.set(dut.w.valid, 1)
        for k in range(20):
            ctx.set(dut.w.payload, {"insn": 1000 + k, "index": k})
            if ctx.get(dut.w.ready):
                accepted += 1
            else:
                break
            await ctx.tick()
        ctx.set(dut.w.valid, 0)
        assert accepted == tiny.cmd_queue_depth
        assert not ctx.get(dut.empty)
        ctx.set(dut.r.ready, 1)
        for _ in range(40):
            if ctx.get(dut.r.valid):
                payload = ctx.get(dut.r.payload)
                out.append((int(payload.insn), int(payload.index)))
            await ctx.tick()
        assert ctx.get(dut.empty)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out == [(1000 + k, k) for k in range(16)]
