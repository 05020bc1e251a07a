"""The tensor core alone (with its scratchpads): GEMM and ALU loops against NumPy, and the timing
promise of `hw/core.py`: one micro-op per cycle, n + 4 cycles for n micro-ops."""

import numpy as np
import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from tensorweave.configs import load_config
from tensorweave.hw.core import TensorCore
from tensorweave.hw.dma import geometry
from tensorweave.hw.scratchpad import Scratchpad
from tensorweave.isa import Insn, Uop, build_isa
from tensorweave.isa.program import pack, unpack


class CoreWithScratchpads(Elaboratable):
    def __init__(self, config):
        c = config
        self.core = TensorCore(c)
        # chunked as in the top level (Amaranth's simulator cannot compile an 8 Kibit-wide unchunked write)
        chunks = {memory: geometry(c, memory)[2] for memory in ("UOP", "INP", "WGT", "ACC")}
        self.uop = Scratchpad(c.uop_depth, c.uop_width, chunks["UOP"], (False,))
        self.inp = Scratchpad(c.inp_depth, c.inp_row_bytes * 8, chunks["INP"], (False,))
        self.wgt = Scratchpad(c.wgt_depth, c.wgt_row_bytes * 8, chunks["WGT"], (False,))
        self.acc = Scratchpad(c.acc_depth, c.acc_row_bytes * 8, chunks["ACC"], (True, True))
        self.acc_chunks = chunks["ACC"]

    def elaborate(self, platform):
        m = Module()
        m.submodules.core, m.submodules.uop, m.submodules.inp = self.core, self.uop, self.inp
        m.submodules.wgt, m.submodules.acc = self.wgt, self.acc
        wiring.connect(m, self.core.uop_read, self.uop.read0)
        wiring.connect(m, self.core.inp_read, self.inp.read0)
        wiring.connect(m, self.core.wgt_read, self.wgt.read0)
        wiring.connect(m, self.core.acc_read, self.acc.read0)
        wiring.connect(m, self.core.src_read, self.acc.read1)
        write = self.core.acc_write
        m.d.comb += [self.acc.write.addr.eq(write.addr), self.acc.write.data.eq(write.data),
                     self.acc.write.en.eq(write.en.replicate(self.acc_chunks))]
        return m


def _run(config, insn: Insn, uops, inp, wgt, acc):
    isa = build_isa(config)
    dut = CoreWithScratchpads(config)
    out = {}

    async def bench(ctx):
        for k, word in enumerate(uops):
            ctx.set(dut.uop.memory.data[k], word)
        for k, row in enumerate(inp):
            ctx.set(dut.inp.memory.data[k], int.from_bytes(pack(row, config.inp_width), "little"))
        for k, row in enumerate(wgt):
            ctx.set(dut.wgt.memory.data[k], int.from_bytes(pack(row, config.wgt_width), "little"))
        for k, row in enumerate(acc):
            ctx.set(dut.acc.memory.data[k], int.from_bytes(pack(row, config.acc_width), "little"))
        ctx.set(dut.core.insn, isa.encode(insn))
        ctx.set(dut.core.is_alu, insn.op == "ALU")
        ctx.set(dut.core.start, 1)
        await ctx.tick()
        ctx.set(dut.core.start, 0)
        cycles = 1
        while ctx.get(dut.core.busy):
            assert not ctx.get(dut.core.error)
            await ctx.tick()
            cycles += 1
        out["cycles"] = cycles
        nbytes = config.acc_row_bytes
        out["acc"] = np.stack([unpack(ctx.get(dut.acc.memory.data[k]).to_bytes(nbytes, "little"),
                                      config.acc_width, config.batch * config.block_out, True)
                               for k in range(len(acc))])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def _loop(insn: Insn, uops):
    for i in range(insn.iter_out):
        for j in range(insn.iter_in):
            for dst, src, wgt in uops:
                yield (dst + i * insn.fields.get("dst_factor_out", 0) + j * insn.fields.get("dst_factor_in", 0),
                       src + i * insn.fields.get("src_factor_out", 0) + j * insn.fields.get("src_factor_in", 0),
                       wgt + i * insn.fields.get("wgt_factor_out", 0) + j * insn.fields.get("wgt_factor_in", 0))


@pytest.mark.parametrize("name", ["tiny", "batch2-32x32"])
def test_gemm_one_micro_op_per_cycle_with_accumulation_hazards(name):
    config = load_config(name)
    isa = build_isa(config)
    rng = np.random.default_rng(11)
    lanes_in, lanes_out = config.batch * config.block_in, config.batch * config.block_out
    inp = rng.integers(-128, 128, size=(8, lanes_in))
    wgt = rng.integers(-128, 128, size=(6, config.block_out * config.block_in))
    acc = rng.integers(-2**31, 2**31, size=(6, lanes_out))
    uops = [(0, 1, 2), (0, 2, 3), (1, 0, 0)]      # two back-to-back micro-ops on row 0
    insn = Insn("GEMM", {"uop_begin": 0, "uop_end": 3, "iter_out": 2, "iter_in": 2, "dst_factor_out": 2,
                         "dst_factor_in": 1, "src_factor_out": 3, "src_factor_in": 1, "wgt_factor_in": 1})
    words = [isa.encode_uop(Uop(*u)) for u in uops]
    got = _run(config, insn, words, inp, wgt, acc)
    expected = acc.astype(np.int64).copy()
    b, bi, bo = config.batch, config.block_in, config.block_out
    for d, s, w in _loop(insn, uops):
        x = inp[s].reshape(b, bi)
        expected[d] += (x @ wgt[w].reshape(bo, bi).T).ravel()
    expected = ((expected + 2**31) % 2**32) - 2**31
    assert np.array_equal(got["acc"], expected)
    n = 2 * 2 * 3
    assert got["cycles"] == n + 4            # from start to idle: n micro-ops and the pipeline drain


def test_alu_chain_reads_the_previous_micro_ops_result():
    config = load_config("tiny")
    isa = build_isa(config)
    acc = np.arange(1, 25).reshape(6, 4)
    uops = [(1, 0, 0), (2, 1, 0), (3, 2, 0)]      # each adds the row just written
    insn = Insn("ALU", {"uop_begin": 0, "uop_end": 3, "iter_out": 2, "iter_in": 1, "alu_opcode": 2})
    words = [isa.encode_uop(Uop(*u)) for u in uops]
    got = _run(config, insn, words, np.zeros((1, 4), int), np.zeros((1, 16), int), acc)
    expected = acc.copy()
    for d, s, _ in _loop(insn, uops):
        expected[d] = expected[d] + expected[s]
    assert np.array_equal(got["acc"], expected)
    assert got["cycles"] == 6 + 4
