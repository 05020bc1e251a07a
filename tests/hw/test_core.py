"""The tensor core alone (with its scratchpads): GEMM and ALU loops against NumPy and the ALU
records' semantics (contract/alu.py), and the timing promise of `hw/core.py`: one micro-op per
cycle, n + 4 cycles for n micro-ops; an ALU with use_imm=0 (two accumulator reads on the one read port) 2n + 3."""

import dataclasses

import numpy as np
import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from tensorweave.configs import load_config
from tensorweave.contract import alu
from tensorweave.hw import core
from tensorweave.hw.core import HARDWARE_ORDER, AluHardwareError, TensorCore, check_alu_ops
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
        self.acc = Scratchpad(c.acc_depth, c.acc_row_bytes * 8, chunks["ACC"], (True,))
        self.acc_chunks = chunks["ACC"]

    def elaborate(self, platform):
        m = Module()
        m.submodules.core, m.submodules.uop, m.submodules.inp = self.core, self.uop, self.inp
        m.submodules.wgt, m.submodules.acc = self.wgt, self.acc
        wiring.connect(m, self.core.uop_read, self.uop.read0)
        wiring.connect(m, self.core.inp_read, self.inp.read0)
        wiring.connect(m, self.core.wgt_read, self.wgt.read0)
        wiring.connect(m, self.core.acc_read, self.acc.read0)
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
    assert got["cycles"] == 2 * 6 + 3         # two accumulator reads per micro-op on the one port


def test_alu_with_immediate_and_reset_keep_one_micro_op_per_cycle():
    config = load_config("tiny")
    isa = build_isa(config)
    acc = np.arange(-12, 12).reshape(6, 4)
    words = [isa.encode_uop(Uop(1, 0, 0)), isa.encode_uop(Uop(1, 0, 0)), isa.encode_uop(Uop(2, 1, 0))]
    fields = {"uop_begin": 0, "uop_end": 3, "iter_out": 2, "iter_in": 1, "dst_factor_out": 3, "src_factor_out": 3}
    got = _run(config, Insn("ALU", {**fields, "alu_opcode": 2, "use_imm": 1, "imm": -5}), words,
               np.zeros((1, 4), int), np.zeros((1, 16), int), acc)
    expected = acc.copy()
    for d, _, _ in _loop(Insn("ALU", fields), [(1, 0, 0), (1, 0, 0), (2, 1, 0)]):
        expected[d] = expected[d] - 5
    assert np.array_equal(got["acc"], expected) and got["cycles"] == 6 + 4
    got = _run(config, Insn("ALU", {**fields, "alu_opcode": 2, "reset": 1}), words,
               np.zeros((1, 4), int), np.zeros((1, 16), int), acc)
    expected = acc.copy()
    expected[[1, 2, 4, 5]] = 0
    assert np.array_equal(got["acc"], expected) and got["cycles"] == 6 + 4


def _alu_case(config, op: str, a_rows, b_rows=None, imm: int | None = None):
    """Run ALU `op` over rows 0..n-1 (dst) with sources n..2n-1 (or `imm`); (hardware, expected) rows."""
    isa = build_isa(config)
    n = len(a_rows)
    acc = np.concatenate([a_rows, b_rows if b_rows is not None else np.zeros_like(a_rows)])
    opcode = isa.enums["alu_opcode"][op]
    fields = {"uop_begin": 0, "uop_end": 1, "iter_out": n, "iter_in": 1, "dst_factor_out": 1,
              "src_factor_out": 1, "alu_opcode": opcode}
    if imm is not None:
        fields.update(use_imm=1, imm=imm)
    got = _run(config, Insn("ALU", fields), [isa.encode_uop(Uop(0, n, 0))], np.zeros((1, config.block_in), int),
               np.zeros((1, config.block_in * config.block_out), int), acc)
    b = imm if imm is not None else np.asarray(b_rows, dtype=np.int64)
    expected = alu.apply(op, np.asarray(a_rows, dtype=np.int64), b, config.acc_width)
    return got["acc"][:n], expected, got["cycles"]


def _edge_values(width: int) -> np.ndarray:
    top = 2 ** (width - 1)
    return np.array([0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 7, -7, 8, -8, 12, -12, top - 1, -top, -top + 1,
                     top // 2, -top // 2, top // 2 + 1, -top // 2 - 1, 0x1234, -0x1234, 0x5A5A - top // 4, 0x2AAA])


@pytest.mark.parametrize("name", ["tiny", "w4a8"])
def test_rshr_rounds_to_nearest_even_as_the_functional_simulator(name):
    """RSHR against its record's semantics: every shift from -width - 2 to width + 2 on edge values
    (ties, odd and even quotients, extremes), from a source row and as an immediate."""
    config = load_config(name)
    w, lanes = config.acc_width, config.batch * config.block_out
    values, shifts = _edge_values(w), np.arange(-w - 2, w + 3)
    pairs = np.array([(v, b) for v in values for b in shifts])            # every value with every shift
    pairs = np.concatenate([pairs, pairs[:-len(pairs) % lanes]])          # whole rows of lanes
    a, b = pairs[:, 0].reshape(-1, lanes), pairs[:, 1].reshape(-1, lanes)
    rows = min(len(a), config.acc_depth // 2)
    for start in range(0, len(a), rows):
        got, expected, cycles = _alu_case(config, "RSHR", a[start:start + rows], b[start:start + rows])
        assert np.array_equal(got, expected)
        assert cycles == 2 * len(got) + 3
    half = _alu_case(config, "RSHR", np.resize([1, 3, -1, -3, 5, -5, 2, 6], (2, lanes)), imm=1)[0]
    assert half[0, :8].tolist() == [0, 2, 0, -2, 2, -2, 1, 3][:lanes]     # ties go to the even neighbour
    rng = np.random.default_rng(3)
    for imm in (1, 2, 3, w - 1, w, w + 1, 0, -1, -3):
        rows = rng.integers(-2 ** (w - 1), 2 ** (w - 1), size=(3, lanes))
        rows[0, :len(values[:lanes])] = values[:lanes]
        got, expected, cycles = _alu_case(config, "RSHR", rows, imm=imm)
        assert np.array_equal(got, expected), imm
        assert cycles == 3 + 4


def test_every_alu_record_has_a_hardware_case_and_the_core_refuses_what_it_cannot_build(monkeypatch):
    assert sorted(HARDWARE_ORDER) == sorted(alu.names())
    neg = alu.AluOp("NEG", 7, lambda a, b, w: alu.wrap(-a, w), "negation", area=lambda w: 1, reads_operand=False)
    monkeypatch.setattr(alu, "ALU_OPS", alu.ALU_OPS + (neg,))
    config = dataclasses.replace(load_config("tiny"), name="tiny-neg", alu_ops=("MIN", "NEG"))
    with pytest.raises(AluHardwareError, match=r"NEG \(opcode 7\) has a record .* but no hardware case"):
        check_alu_ops(config)
    monkeypatch.setattr(core, "HARDWARE_ORDER", HARDWARE_ORDER + ("NEG",))
    with pytest.raises(AluHardwareError, match="NEG reads no second operand"):
        check_alu_ops(config)


def _operands(config, record, rng, shape):
    """Random second operands for `record`: shift amounts around +-acc_width, else any acc_width value."""
    w = config.acc_width
    if record.operand == "shift":
        return rng.integers(-w - 2, w + 3, size=shape)
    return rng.integers(-2 ** (w - 1), 2 ** (w - 1), size=shape)


@pytest.mark.parametrize("name", ["tiny", "w4a8"])
@pytest.mark.parametrize("op", alu.names())
def test_every_alu_record_matches_the_hardware_bit_for_bit(name, op):
    """Each record's NumPy semantics (contract/alu.py) against the Amaranth ALU on random operands,
    from a source row and as immediates (16-bit immediates, sign-extended)."""
    config = load_config(name)
    if not config.alu_has(op):
        pytest.skip(f"{name} has no {op}")
    record = alu.by_name(op)
    w, lanes = config.acc_width, config.batch * config.block_out
    rng = np.random.default_rng(7 + record.opcode)
    a = rng.integers(-2 ** (w - 1), 2 ** (w - 1), size=(8, lanes))
    got, expected, _ = _alu_case(config, op, a, _operands(config, record, rng, (8, lanes)))
    assert np.array_equal(got, expected)
    imms = _operands(load_config("w4a8"), record, rng, 3)       # within the 16-bit immediate field
    for imm in imms:
        got, expected, _ = _alu_case(config, op, a[:2], imm=int(imm))
        assert np.array_equal(got, expected), imm
