"""The tensor core: the GEMM/ALU micro-op loop as a 4-stage pipeline on one accumulator read port.

Stages (one cycle each, no stalls):
  S0  loop generator: (i, j, u) in the order of `sim/functional.py`; reads uop[u].
  S1  index: d, s, w = micro-op fields + i*factor_out + j*factor_in (kept as running sums); range
      check (error code 3 stops the loop); reads inp[s] and wgt[w]; an ALU micro-op with a
      source row (use_imm=0, no reset) reads acc[s] here.
  S2  GEMM: batch x block_out dot products of block_in int products (plain `*` of signed values,
      so synthesis may use DSPs or LUTs) and an adder tree; reads acc[d]; holds the acc[s] row.
  S3  write-back: acc[d] = acc[d] + sum (wrapping at acc_width), ALU op(acc[d], imm or acc[s]),
      or 0 with reset.
The accumulator has ONE read port (the store unit reads the output buffer, `hw/top.py`), so a
micro-op reading two rows takes two cycles: GEMM and ALU with an immediate (or reset) issue one
micro-op per cycle, an ALU micro-op with use_imm=0 one every other cycle (acc[s] in its S1, acc[d]
in its S2, while the neighbouring micro-ops are in the other stages). The read port is transparent
to the write port; a micro-op's first read is in the cycle of the previous micro-op's write, and no
other write falls between its reads and its own write, so a micro-op always sees every earlier
micro-op's result: read-after-write on the same row needs neither stalls nor forwarding, and
results equal the in-order definition.
Latency: 4 cycles from the first micro-op to its write; a loop of n micro-ops takes n + 4 cycles,
or 2n + 3 for an ALU with use_imm=0 (without reset). Only the ALU operations in `config.alu_ops`
are built, one case each (`TensorCore._case`); which operations exist, their opcodes and their
semantics (which the cases match bit for bit, tests/hw/test_core.py) are the records of
contract/alu.py.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..configs import AccelConfig
from ..contract import alu
from ..errors import TensorweaveError
from ..isa import build_isa
from ..isa.amaranth import enums, layouts
from .scratchpad import ReadSignature, RowWriteSignature
from .widths import loop_counter_width

# Running sums base + i * factor_out + j * factor_in: wider than any index and loop product can reach.
OFFSET_WIDTH = 32


def adder_tree(m: Module, values: list) -> object:
    """Sum of `values` as a balanced tree of two-input additions (grows one bit per level)."""
    level = list(values)
    while len(level) > 1:
        nxt = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# The ALU operations this core has a case for (`_case`), in the order the cases are emitted (the
# Verilog depends on it). Which operations exist, their opcodes and semantics: contract/alu.py.
HARDWARE_ORDER = ("MIN", "MAX", "ADD", "MUL", "SHR", "RSHR")
SHIFTER_USERS = {"SHR", "RSHR"}    # the cases that share one barrel shifter per lane


class AluHardwareError(TensorweaveError, ValueError):
    """The config asks for an ALU operation the tensor core cannot build."""


def check_alu_ops(config: AccelConfig) -> None:
    """Raise AluHardwareError unless the core has a hardware case for every operation in config.alu_ops."""
    for name in config.alu_ops:
        record = alu.by_name(name)
        if name not in HARDWARE_ORDER:
            raise AluHardwareError(
                f"config '{config.name}': ALU operation {name} (opcode {record.opcode}) has a record in "
                f"contract/alu.py but no hardware case in hw/core.py (TensorCore._case); cases exist for "
                f"{', '.join(HARDWARE_ORDER)}")
        if not record.reads_operand:
            raise AluHardwareError(
                f"config '{config.name}': ALU operation {name} reads no second operand, but the tensor core "
                "reads acc[s] for every ALU micro-op with use_imm=0 (hw/core.py)")


class TensorCore(wiring.Component):
    """Runs one GEMM or ALU instruction's micro-op loop; `busy` until its last write."""

    def __init__(self, config: AccelConfig):
        check_alu_ops(config)
        self._config = config
        isa = self._isa = build_isa(config)
        self._layouts = layouts(isa)
        c = config
        super().__init__({
            "start": In(1), "insn": In(self._layouts["GEMM"].size), "is_alu": In(1),
            "busy": Out(1), "error": Out(1),
            "uop_read": Out(ReadSignature(c.uop_depth, c.uop_width)),
            "inp_read": Out(ReadSignature(c.inp_depth, c.inp_row_bytes * 8)),
            "wgt_read": Out(ReadSignature(c.wgt_depth, c.wgt_row_bytes * 8)),
            "acc_read": Out(ReadSignature(c.acc_depth, c.acc_row_bytes * 8)),
            "acc_write": Out(RowWriteSignature(c.acc_depth, c.acc_row_bytes * 8, 1)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        gemm_insn = Signal(self._layouts["GEMM"])
        alu_insn = self._layouts["ALU"](gemm_insn.as_value())
        is_alu = Signal()
        with m.If(self.start):
            m.d.sync += [gemm_insn.eq(self.insn), is_alu.eq(self.is_alu)]
        g = gemm_insn

        # --- S0: loop generator -------------------------------------------------------------------
        running = Signal()
        u = Signal(range(c.uop_depth + 1))
        i = Signal(loop_counter_width(self._isa))
        j = Signal(loop_counter_width(self._isa))
        names = ("dst", "src", "wgt")
        off_i = {n: Signal(OFFSET_WIDTH, name=f"{n}_off_i") for n in names}
        off = {n: Signal(OFFSET_WIDTH, name=f"{n}_off") for n in names}

        # An ALU micro-op with a source row reads the accumulator twice: issue one every other cycle.
        two_reads = Signal()
        m.d.comb += two_reads.eq(is_alu & ~g.reset & ~alu_insn.use_imm)
        v1 = Signal()
        issue = Signal()
        m.d.comb += issue.eq(running & ~(two_reads & v1))
        off1 = {n: Signal(OFFSET_WIDTH, name=f"{n}_off1") for n in names}
        m.d.comb += [self.uop_read.addr.eq(u), self.uop_read.en.eq(1)]
        m.d.sync += v1.eq(issue)
        m.d.sync += [off1[n].eq(off[n]) for n in names]
        with m.If(self.start):
            insn = self._layouts["GEMM"](self.insn)
            m.d.sync += [u.eq(insn.uop_begin), i.eq(0), j.eq(0),
                         running.eq((insn.iter_out != 0) & (insn.iter_in != 0) & (insn.uop_begin < insn.uop_end))]
            m.d.sync += [off_i[n].eq(0) for n in names] + [off[n].eq(0) for n in names]
        with m.Elif(issue):
            with m.If(u == g.uop_end - 1):
                m.d.sync += u.eq(g.uop_begin)
                with m.If(j == g.iter_in - 1):
                    m.d.sync += j.eq(0)
                    with m.If(i == g.iter_out - 1):
                        m.d.sync += running.eq(0)
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                        for n in names:
                            fo = self._factor(g, alu_insn, is_alu, n, "out")
                            m.d.sync += [off_i[n].eq(off_i[n] + fo), off[n].eq(off_i[n] + fo)]
                with m.Else():
                    m.d.sync += j.eq(j + 1)
                    for n in names:
                        m.d.sync += off[n].eq(off[n] + self._factor(g, alu_insn, is_alu, n, "in"))
            with m.Else():
                m.d.sync += u.eq(u + 1)

        # --- S1: indices, range check, inp/wgt reads ----------------------------------------------
        uop = self._layouts["uop"](self.uop_read.data)
        d1 = Signal(OFFSET_WIDTH + 1)
        s1 = Signal(OFFSET_WIDTH + 1)
        w1 = Signal(OFFSET_WIDTH + 1)
        m.d.comb += [d1.eq(uop.dst + off1["dst"]), s1.eq(uop.src + off1["src"]), w1.eq(uop.wgt + off1["wgt"])]
        bad = Signal()
        gemm_reads = ~is_alu & ~g.reset
        src_reads = is_alu & ~g.reset & ~alu_insn.use_imm
        m.d.comb += bad.eq((d1 >= c.acc_depth) | (gemm_reads & ((s1 >= c.inp_depth) | (w1 >= c.wgt_depth))) |
                           (src_reads & (s1 >= c.acc_depth)))
        m.d.comb += [self.inp_read.addr.eq(s1), self.inp_read.en.eq(1),
                     self.wgt_read.addr.eq(w1), self.wgt_read.en.eq(1)]
        v2 = Signal()
        d2 = Signal(range(c.acc_depth))
        m.d.sync += [v2.eq(v1 & ~bad), d2.eq(d1)]
        with m.If(v1 & bad):
            m.d.comb += self.error.eq(1)
            m.d.sync += [running.eq(0), v1.eq(0)]

        # --- S2: products and adder trees; accumulator reads -----------------------------------------
        iw, ww, aw = c.inp_width, c.wgt_width, c.acc_width
        inp_row = self.inp_read.data
        wgt_row = self.wgt_read.data
        sums = []
        for b in range(c.batch):
            for o in range(c.block_out):
                products = []
                for k in range(c.block_in):
                    a = inp_row[(b * c.block_in + k) * iw:(b * c.block_in + k + 1) * iw].as_signed()
                    w = wgt_row[(o * c.block_in + k) * ww:(o * c.block_in + k + 1) * ww].as_signed()
                    products.append(a * w)
                sums.append(adder_tree(m, products))
        sum_width = iw + ww + max(1, (c.block_in - 1).bit_length())
        sum3 = [Signal(signed(sum_width), name=f"sum3_{k}") for k in range(len(sums))]
        v3 = Signal()
        d3 = Signal(range(c.acc_depth))
        m.d.sync += [v3.eq(v2), d3.eq(d2)] + [s.eq(v) for s, v in zip(sum3, sums)]
        # The one accumulator read port: acc[s] in S1 of a two-read micro-op (no micro-op is in S2
        # then), else acc[d] in S2. The acc[s] row arrives in S2 and is held for S3.
        src_row = Signal(c.acc_row_bytes * 8)
        m.d.comb += [self.acc_read.addr.eq(Mux(two_reads & v1, s1, d2)), self.acc_read.en.eq(1)]
        m.d.sync += src_row.eq(self.acc_read.data)

        # --- S3: accumulate / ALU / reset, write back -------------------------------------------------
        lanes = c.batch * c.block_out
        acc_row = self.acc_read.data
        results = []
        alu_results = self._alu(m, alu_insn, acc_row, src_row, lanes)
        for k in range(lanes):
            acc = acc_row[k * aw:(k + 1) * aw].as_signed()
            total = (acc + sum3[k])[:aw]
            results.append(Mux(is_alu, alu_results[k], total))
        m.d.comb += [self.acc_write.addr.eq(d3), self.acc_write.en.eq(v3),
                     self.acc_write.data.eq(Mux(g.reset, 0, Cat(*results)))]
        m.d.comb += self.busy.eq(running | v1 | v2 | v3 | self.start)
        return m

    @staticmethod
    def _factor(g, alu_insn, is_alu, name: str, where: str):
        field = f"{name}_factor_{where}"
        if name == "wgt":   # ALU words have no weight factors (those bits hold the opcode and imm)
            return Mux(is_alu, 0, getattr(g, field))
        return Mux(is_alu, getattr(alu_insn, field), getattr(g, field))

    def _alu(self, m: Module, insn, acc_row, src_row, lanes: int) -> list:
        c = self._config
        aw = c.acc_width
        codes = enums(build_isa(c))["alu_opcode"]
        built = [op for op in HARDWARE_ORDER if c.alu_has(op)]
        imm = Signal(signed(aw))
        m.d.comb += imm.eq(insn.imm)
        out = []
        for k in range(lanes):
            a = acc_row[k * aw:(k + 1) * aw].as_signed()
            b = Signal(signed(aw), name=f"alu_b_{k}")
            m.d.comb += b.eq(Mux(insn.use_imm, imm, src_row[k * aw:(k + 1) * aw].as_signed()))
            r = Signal(aw, name=f"alu_r_{k}")
            shifted = self._shift(m, a, b, k) if SHIFTER_USERS & set(built) else None
            with m.Switch(insn.alu_opcode.as_value()):
                for name in built:
                    with m.Case(getattr(codes, name).value):
                        m.d.comb += r.eq(self._case(m, name, a, b, shifted, k))
            out.append(r)
        return out

    def _case(self, m: Module, name: str, a, b, shifted, k: int):
        """The hardware of ALU operation `name` (its semantics: contract/alu.py) on lane k's a and b."""
        if name == "MIN":
            return Mux(a < b, a, b)
        if name == "MAX":
            return Mux(a > b, a, b)
        if name == "ADD":
            return a + b
        if name == "MUL":
            return a * b
        if name == "SHR":
            return shifted
        assert name == "RSHR", name    # HARDWARE_ORDER lists exactly the cases above
        return Mux(b > 0, self._round_shift(m, a, b, k), shifted)

    def _shift(self, m: Module, a, b, k: int):
        """SHR: a >> b for b >= 0 (arithmetic, b clamped to acc_width - 1), a << -b (wrapping) for b < 0."""
        aw = self._config.acc_width
        right = Signal(range(aw), name=f"shr_right_{k}")
        left = Signal(range(aw + 1), name=f"shr_left_{k}")
        m.d.comb += [right.eq(Mux(b < 0, 0, Mux(b > aw - 1, aw - 1, b))),
                     left.eq(Mux(b >= 0, 0, Mux(-b > aw, aw, -b)))]
        return Mux(b < 0, (a << left)[:aw], a >> right)

    def _round_shift(self, m: Module, a, b, k: int):
        """RSHR for b > 0: a / 2^n, n = min(b, acc_width), rounded to nearest, ties to even.

        q = a >> n (floor); round up iff bit n-1 of a is set and (a bit below it is set or q is odd).
        """
        aw = self._config.acc_width
        n1 = Signal(range(aw), name=f"rshr_n1_{k}")          # n - 1
        m.d.comb += n1.eq(Mux(b > aw, aw - 1, b - 1))
        q = Signal(signed(aw), name=f"rshr_q_{k}")
        m.d.comb += q.eq((a >> n1) >> 1)
        half = a.as_unsigned().bit_select(n1, 1)
        up = Signal(range(aw + 1), name=f"rshr_up_{k}")
        below = Signal(aw, name=f"rshr_below_{k}")            # the n - 1 bits below bit n - 1, at the top
        m.d.comb += [up.eq(aw - n1), below.eq((a.as_unsigned() << up)[:aw])]
        return (q + (half & ((below != 0) | q[0])))[:aw]
