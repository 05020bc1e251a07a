"""The ALU records (contract/alu.py): the table, its lookups, the definitions it holds, and a new record
reaching every layer (config validation, ISA enum, assembler, functional simulator, cycle model, area
model, tensorizer intrinsics, random programs, generated reference) with no other edit."""

import dataclasses

import numpy as np
import pytest
from tensorweave.configs import ALU_OPS, AccelConfig, ConfigError, load_config
from tensorweave.contract import alu
from tensorweave.isa import assemble, build_isa, disassemble
from tensorweave.isa.codegen import markdown

SUB = alu.AluOp("SUB", 6, lambda a, b, w: alu.wrap(a - b, w), "difference, wrapping at acc_width bits",
                area=lambda w: 1, loopnest="sub")
NEG = alu.AluOp("NEG", 7, lambda a, b, w: alu.wrap(-a, w), "negation, wrapping", area=lambda w: 1,
                reads_operand=False)


def test_table_is_in_opcode_order_with_unique_names_and_opcodes():
    assert alu.names() == ("MIN", "MAX", "ADD", "SHR", "MUL", "RSHR") == ALU_OPS
    assert alu.opcodes() == {"MIN": 0, "MAX": 1, "ADD": 2, "SHR": 3, "MUL": 4, "RSHR": 5}
    assert [op.opcode for op in alu.ALU_OPS] == sorted(op.opcode for op in alu.ALU_OPS)
    assert alu.by_name("RSHR").opcode == 5 and alu.by_opcode(3).name == "SHR" and alu.by_opcode(7) is None
    with pytest.raises(alu.AluError, match="unknown ALU operation 'DIV'; operations: MIN, MAX"):
        alu.by_name("DIV")


def test_a_repeated_opcode_or_a_bad_record_is_refused(monkeypatch):
    monkeypatch.setattr(alu, "ALU_OPS", alu.ALU_OPS + (dataclasses.replace(SUB, opcode=4),))
    with pytest.raises(alu.AluError, match="SUB .opcode 4. repeats the name or opcode of MUL"):
        alu.opcodes()
    with pytest.raises(alu.AluError, match="operand 'amount' is not one of value, shift, factor"):
        dataclasses.replace(SUB, operand="amount")
    with pytest.raises(alu.AluError, match="needs reads_operand"):
        dataclasses.replace(NEG, loopnest="sub")


W = 32
TOP = 2 ** (W - 1)


def test_semantics_wrap_shift_saturate_and_round_ties_to_even():
    """The definitions the functional simulator and the hardware are checked against, on known values."""
    a = np.array([TOP - 1, -TOP, 5, -5, 6, 7, -7, 1])
    assert alu.apply("ADD", a, 1, W).tolist() == [-TOP, -TOP + 1, 6, -4, 7, 8, -6, 2]
    assert alu.apply("MUL", a, 2, W).tolist() == [-2, 0, 10, -10, 12, 14, -14, 2]
    assert alu.apply("MIN", a, 0, W).tolist() == [0, -TOP, 0, -5, 0, 0, -7, 0]
    assert alu.apply("MAX", a, 0, W).tolist() == [TOP - 1, 0, 5, 0, 6, 7, 0, 1]
    assert alu.apply("SHR", a, 1, W).tolist() == [TOP // 2 - 1, -TOP // 2, 2, -3, 3, 3, -4, 0]
    assert alu.apply("SHR", a, -1, W).tolist() == [-2, 0, 10, -10, 12, 14, -14, 2]          # shifts left, wraps
    assert alu.apply("SHR", a, 40, W).tolist() == [0, -1, 0, -1, 0, 0, -1, 0]              # saturates at width - 1
    assert alu.apply("SHR", a, -40, W).tolist() == [0] * 8                                # all bits shifted out
    assert alu.apply("RSHR", a, 1, W).tolist() == [TOP // 2, -TOP // 2, 2, -2, 3, 4, -4, 0]  # ties to even
    assert alu.apply("RSHR", np.array([3, -3, 2, 6]), 2, W).tolist() == [1, -1, 0, 2]
    assert alu.apply("RSHR", a, 40, W).tolist() == [0] * 8                               # right amounts saturate at width
    assert alu.apply("RSHR", a, -1, W).tolist() == alu.apply("SHR", a, -1, W).tolist()
    b = np.array([3, -3, 0, 1, -1, 2, 5, -8])
    assert alu.apply("MIN", a, b, W).tolist() == np.minimum(a, b).tolist()


def test_facts_the_other_layers_read():
    assert [op.loopnest for op in alu.ALU_OPS] == ["min", "max", "add", None, "mul", None]
    assert [op.name for op in alu.ALU_OPS if op.operand == "shift"] == ["SHR", "RSHR"]
    assert [op.name for op in alu.ALU_OPS if op.multiplier] == ["MUL"]
    assert all(op.reads_operand for op in alu.ALU_OPS)
    assert [op.area(32) for op in alu.ALU_OPS] == [2, 2, 1, 5.0, 1, 7.0]


@pytest.fixture
def with_new_ops(monkeypatch):
    """The table with SUB (binary, loop-nest form 'sub') and NEG (reads no second operand) added."""
    monkeypatch.setattr(alu, "ALU_OPS", alu.ALU_OPS + (SUB, NEG))
    yield
    build_isa.cache_clear()       # the ISAs built meanwhile carry the patched enum


def _config(*extra: str) -> AccelConfig:
    return dataclasses.replace(load_config("tiny"), name="tiny-" + "-".join(e.lower() for e in extra),
                               alu_ops=ALU_OPS + extra)


ACC = np.array([5, -7, TOP - 1, -TOP, 100, -100, 3, 0, 17, -17, 1 << 20, -(1 << 20),
                2**30, 12345, -1, 64, 1, -1, 31, 32, -31, -32, 40, -40, 2, -2, 0, 7, 9, -9, 77, 2]).reshape(8, 1, 4)


def _program(op: str, operand: str = "", src: int = 4) -> str:
    values = ",".join(str(int(v)) for v in ACC.ravel())
    return f"""
.tensor B const int32 8,1,4 init=values:{values}
.uop dst=0 src={src} wgt=0
load.acc sram_base=0 dram_base=@B y_size=1 x_size=8 x_stride=8
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
alu.{op} {operand} uop_begin=0 uop_end=1 iter_out=4 iter_in=1 dst_factor_out=1 src_factor_out=1
finish
"""


def test_without_the_record_the_op_exists_nowhere():
    with pytest.raises(ConfigError, match=r"'alu_ops': \[.*'SUB'\] is not allowed; allowed: .* MUL, RSHR$"):
        _config("SUB")
    assert "SUB" not in build_isa(load_config("tiny")).enums["alu_opcode"]


def test_a_new_record_reaches_every_layer(with_new_ops):
    from tensorweave.compiler.loopnest import accel_alu_ops
    from tensorweave.dse.area import AreaModel, features
    from tensorweave.hw.core import AluHardwareError, TensorCore
    from tensorweave.sim.cycle import estimate_cycles
    from tensorweave.sim.functional import FunctionalSim
    from tensorweave.sim.random_programs import coverage, random_program

    # configs: validation accepts it (and the error message lists it)
    config = _config("SUB", "NEG")
    assert AccelConfig.from_dict({**config.to_dict(), "name": "x"}).alu_ops[-2:] == ("SUB", "NEG")
    with pytest.raises(ConfigError, match="drawn from MIN, MAX, ADD, SHR, MUL, RSHR, SUB, NEG"):
        dataclasses.replace(config, alu_ops=("DIV",))

    # isa: the enum encodes it, the assembler assembles it, the reference lists it
    isa = build_isa(config)
    assert isa.enums["alu_opcode"]["SUB"] == 6 and isa.enums["alu_opcode"]["NEG"] == 7
    program = assemble(_program("sub"), config)
    assert program.insns and "alu.sub" in disassemble(program)
    assert "| 6 | `SUB` | yes | difference, wrapping at acc_width bits |" in markdown(isa)

    # functional simulator: the record's semantics
    sim = FunctionalSim(config)
    sim.run(program)
    expected = ACC.copy()
    expected[:4] = alu.wrap(ACC[:4] - ACC[4:], 32)
    assert np.array_equal(sim.acc[:8], expected)
    sim = FunctionalSim(config)
    sim.run(assemble(_program("neg", src=63), config))     # NEG reads no source row: rows past the end are fine
    assert np.array_equal(sim.acc[:4], alu.wrap(-ACC[:4], 32)) and np.array_equal(sim.acc[4:8], ACC[4:])

    # cycle model: SUB from a source row pays the second accumulator read, NEG does not
    def cycles(text: str) -> int:
        return estimate_cycles(assemble(text, config)).cycles
    assert cycles(_program("sub")) == cycles(_program("add")) > cycles(_program("add", "use_imm imm=1"))
    assert cycles(_program("neg")) == cycles(_program("add", "use_imm imm=1"))

    # area model: priced by its record
    tiny = load_config("tiny")
    lanes_bits = tiny.batch * tiny.block_out * tiny.acc_width
    assert features(config)["alu_op_bits"] == features(tiny)["alu_op_bits"] + lanes_bits * (1 + 1)
    assert AreaModel().estimate(config).lut > AreaModel().estimate(tiny).lut

    # tensorizer: SUB has a loop-nest form, NEG has none
    names = [i.name for i in accel_alu_ops(config)]
    assert names[-2:] == [f"{config.name}.alu.sub.imm", f"{config.name}.alu.sub"]
    assert not any(".neg" in n for n in names)
    assert accel_alu_ops(config)[-1].nest.body.op == "sub"

    # random programs: generated with the new operations
    seen = sum((coverage(random_program(config, seed)) for seed in range(60)), start=coverage(program))
    assert seen["alu.SUB.acc"] and seen["alu.SUB.imm"] and seen["alu.NEG.imm"]

    # hardware: no case yet, and it says so
    with pytest.raises(AluHardwareError, match=r"ALU operation SUB \(opcode 6\) has a record in contract/alu.py "
                                               r"but no hardware case in hw/core.py"):
        TensorCore(config)
