"""Fetch alone: instructions read in bursts and routed to the three queues in order, stopping at FINISH;
a bad word is reported with its index."""

from amaranth.sim import Simulator
from tensorweave.hw.fetch import Fetch
from tensorweave.isa import assemble

PROGRAM = """
.uop dst=0 src=0 wgt=0
load.inp dram_base=0 y_size=1 x_size=1 x_stride=1
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
load.wgt dram_base=0 y_size=1 x_size=1 x_stride=1
gemm reset uop_begin=0 uop_end=1 iter_out=1 iter_in=1
store.out sram_base=0 dram_base=0 y_size=1 x_size=1 x_stride=1
load.acc dram_base=0 y_size=1 x_size=1 x_stride=1
alu.max use_imm imm=0 uop_begin=0 uop_end=1 iter_out=1 iter_in=1
finish
load.inp dram_base=0 y_size=1 x_size=1 x_stride=1
"""


def _run_fetch(config, words, count, responder, base=0x40, stall_store=0):
    dut = Fetch(config)
    ib = 16
    dram = bytearray(base + ib * len(words) + 64)
    for k, w in enumerate(words):
        dram[base + k * ib:base + (k + 1) * ib] = w.to_bytes(ib, "little")
    got = {"load": [], "compute": [], "store": []}
    errors = []
    finished = []
    axi = responder(dut.port, dram, config.bus_bytes)

    async def bench(ctx):
        ctx.set(dut.base, base)
        ctx.set(dut.count, count)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(400):
            axi.drive(ctx)
            for name in got:
                ctx.set(getattr(dut, name).ready, name != "store" or cycle >= stall_store)
            for name in got:
                stream = getattr(dut, name)
                if ctx.get(stream.valid) and ctx.get(stream.ready):
                    payload = ctx.get(stream.payload)
                    got[name].append((int(payload.index), int(payload.insn)))
            if ctx.get(dut.error):
                errors.append((ctx.get(dut.error_code), ctx.get(dut.error_insn)))
            idle = ctx.get(dut.idle)
            await ctx.tick()
            axi.advance()
            if idle and cycle > 4:
                break
        finished.append(ctx.get(dut.finished))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, errors, finished[0]


def test_routes_in_order_and_stops_after_finish(tiny, read_responder):
    program = assemble(PROGRAM, tiny)
    words = list(program.insns)
    got, errors, finished = _run_fetch(tiny, words, len(words), read_responder, stall_store=30)
    assert not errors and finished
    assert got["load"] == [(0, words[0]), (2, words[2])]
    assert got["store"] == [(4, words[4])]
    assert got["compute"] == [(k, words[k]) for k in (1, 3, 5, 6, 7)]   # the LOAD after FINISH is not sent


def test_stops_at_insn_count_without_finish(tiny, read_responder):
    words = list(assemble(PROGRAM, tiny).insns)
    got, errors, finished = _run_fetch(tiny, words, 3, read_responder)
    assert not finished and not errors
    assert sorted(i for q in got.values() for i, _ in q) == [0, 1, 2]


def test_illegal_opcode_reported_with_its_index(tiny, read_responder):
    words = list(assemble(PROGRAM, tiny).insns)
    words[3] = (words[3] & ~7) | 7
    got, errors, finished = _run_fetch(tiny, words, len(words), read_responder)
    assert errors == [(1, 3)] and not finished
    assert sorted(i for q in got.values() for i, _ in q) == [0, 1, 2]
