"""Bad programs: the accelerator sets STATUS.error, ERROR_CODE and ERROR_INSN and stops cleanly."""

import dataclasses

import pytest
from tensorweave.configs import load_config
from tensorweave.hw.simulate import simulate
from tensorweave.isa import Insn, assemble, build_isa
from tensorweave.sim import SimError, run_functional

BASE = """
.tensor X input int8 8,4
.tensor C output int8 8,4
.uop dst=0 src=0 wgt=0
load.inp sram_base=0 dram_base=@X y_size=1 x_size=8 x_stride=8
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm reset uop_begin=0 uop_end=1 iter_out=8 iter_in=1 dst_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=8 x_stride=8
finish pop_next
"""
IDLE = 0b100_100_100  # every unit idle, waiting for a command


def _with_word(program, index, word):
    insns = list(program.insns)
    insns[index] = word
    return dataclasses.replace(program, insns=tuple(insns))


def _field_change(program, index, **fields):
    isa = build_isa(program.config)
    insn = isa.decode(program.insns[index])
    return _with_word(program, index, isa.encode(Insn(insn.op, {**insn.fields, **fields})))


def _cases(config):
    isa = build_isa(config)
    base = assemble(BASE, config)

    def edit(old: str, new: str):
        return assemble(BASE.replace(old, new), config)

    alu = isa.encode(Insn("ALU", {"alu_opcode": 6, "uop_begin": 0, "uop_end": 1, "iter_out": 1, "iter_in": 1,
                                  "push_next": 1}))
    return {
        "illegal opcode": (_with_word(base, 2, (base.insns[2] & ~7) | 5), 1, 2),
        "LOAD of OUT": (_field_change(base, 0, memory_id=4), 2, 0),
        "STORE of INP": (_field_change(base, 3, memory_id=2), 2, 3),
        "LOAD past the scratchpad": (edit("load.inp sram_base=0", "load.inp sram_base=60"), 3, 0),
        "STORE past the accumulators": (edit("store.out pop_prev push_prev sram_base=0",
                                             "store.out pop_prev push_prev sram_base=57"), 3, 3),
        "GEMM index past the accumulators": (edit("dst_factor_out=1 push_next", "dst_factor_out=10 push_next"), 3, 2),
        "uop_end past the micro-op buffer": (edit("uop_begin=0 uop_end=1", "uop_begin=0 uop_end=129"), 4, 2),
        "ALU opcode 6": (_with_word(base, 2, alu), 5, 2),
        "padding on a UOP LOAD": (edit("load.uop dram_base", "load.uop x_pad_0=1 dram_base"), 6, 1),
        "padding on a STORE": (edit("store.out pop_prev push_prev sram_base=0",
                                    "store.out pop_prev push_prev y_pad_1=2 sram_base=0"), 6, 3),
        "pop_prev on a load-unit LOAD": (edit("load.inp sram_base=0", "load.inp pop_prev sram_base=0"), 7, 0),
        "no FINISH": (dataclasses.replace(base, insns=base.insns[:4]), 8, 4),
    }


TINY_CASES = _cases(load_config("tiny"))


@pytest.mark.parametrize("name", list(TINY_CASES))
def test_error_stops_cleanly(name):
    program, code, index = TINY_CASES[name]
    with pytest.raises(SimError):
        run_functional(program)
    hardware = simulate(program, max_cycles=5000)
    regs = hardware.registers
    assert regs["STATUS"] == 0b100, regs          # error; not busy, not done
    assert (regs["ERROR_CODE"], regs["ERROR_INSN"]) == (code, index)
    assert regs["UNIT_STATE"] == IDLE


def test_alu_op_missing_from_config_is_code_5():
    config = load_config("w4a8")  # no MUL
    program = assemble("""
.uop dst=0 src=0 wgt=0
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
alu.mul use_imm imm=3 uop_begin=0 uop_end=1 iter_out=1 iter_in=1
finish
""", config)
    with pytest.raises(SimError, match="MUL"):
        run_functional(program)
    regs = simulate(program, max_cycles=5000).registers
    assert (regs["STATUS"], regs["ERROR_CODE"], regs["ERROR_INSN"]) == (0b100, 5, 1)


def test_good_program_runs_after_a_failed_one(tiny):
    """The error state clears on the next start: run a faulting program, then a good one, on one model."""
    from amaranth.sim import Simulator
    from tensorweave.contract.registers import OFFSETS as REGISTERS
    from tensorweave.hw.simulate import AxiDram, axil_read, axil_write, serve_dram
    from tensorweave.hw.top import Accelerator

    bad, code, index = TINY_CASES["STORE past the accumulators"]
    good = assemble(BASE, tiny)
    dut = Accelerator(tiny)
    model = AxiDram(0x3000, tiny.bus_bytes)
    seen = []

    async def bench(ctx):
        for program, base in ((bad, 0x1000), (good, 0x2000)):
            image = program.dram_image()
            model.mem[base:base + len(image)] = image
            await axil_write(ctx, dut.ctrl, REGISTERS["INSN_COUNT"], len(program.insns))
            await axil_write(ctx, dut.ctrl, REGISTERS["DRAM_BASE_LO"], base)
            await axil_write(ctx, dut.ctrl, REGISTERS["CTRL"], 1)
            for _ in range(3000):
                if ctx.get(dut.irq):
                    break
                await serve_dram(ctx, dut.dram, model)
            seen.append((await axil_read(ctx, dut.ctrl, REGISTERS["STATUS"]),
                         await axil_read(ctx, dut.ctrl, REGISTERS["ERROR_CODE"])))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(0b100, code), (0b010, 0)]
    reference = run_functional(good)
    assert model.mem[0x2000:0x2000 + len(reference.dram)] == reference.dram


DEADLOCKS = {
    "pop of a token never pushed": ("""
.uop dst=0 src=0 wgt=0
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm pop_prev uop_begin=0 uop_end=1 iter_out=1 iter_in=1
finish
""", 1),
    "push into a full token queue": ("\n".join(["load.inp push_next dram_base=0 y_size=1 x_size=1 x_stride=1"] * 20)
                                     + "\nfinish\n", 16),     # tiny.dep_queue_depth = 16
    "store waiting for compute": ("store.out pop_prev dram_base=0 y_size=1 x_size=1 x_stride=1\nfinish\n", 0),
}


@pytest.mark.parametrize("name", list(DEADLOCKS))
def test_deadlock_is_error_9_at_the_blocked_instruction(tiny, name):
    text, index = DEADLOCKS[name]
    program = assemble(text, tiny)
    with pytest.raises(SimError, match=f"deadlock: .* instruction {index} "):
        run_functional(program)
    regs = simulate(program, max_cycles=5000).registers
    assert (regs["STATUS"], regs["ERROR_CODE"], regs["ERROR_INSN"], regs["UNIT_STATE"]) == (0b100, 9, index, IDLE)
