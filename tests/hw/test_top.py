"""The whole accelerator on Amaranth's simulator against the functional simulator, bit for bit."""

from pathlib import Path

import numpy as np
import pytest
from amaranth import Shape
from tensorweave.configs import load_config
from tensorweave.hw.simulate import simulate
from tensorweave.hw.top import Accelerator
from tensorweave.isa import assemble
from tensorweave.sim import run_functional
from tensorweave.sim.programs import blocked_gemm, gemm_reference, unpack_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_gemm_relu_shift_matches_functional(tiny, check):
    reference, hardware = check((EXAMPLES / "gemm_relu_shift.s").read_text(), tiny)
    assert hardware.outputs["C"].ravel().tolist() == [6, 7, 7, 7, 1, 9, 5, 5, 24, 24, 24, 24, 10, 10, 22, 30]
    assert 40 < hardware.cycles < 400


@pytest.mark.parametrize("dram_base", [0, 0x1000, 0x2FF0])
def test_blocked_gemm_matches_numpy_at_any_dram_base(tiny, dram_base):
    program = assemble(blocked_gemm(tiny, 4, 8, 8, shift=4), tiny)
    hardware = simulate(program, dram_base=dram_base)
    a, w = program.data["A"], program.data["W"]
    expected = gemm_reference(unpack_rows(a), unpack_rows(w), 4, tiny.out_width)
    assert np.array_equal(unpack_rows(hardware.outputs["C"]), expected)
    assert bytes(hardware.dram) == bytes(run_functional(program).dram)
    assert all(addr // 4096 == (addr + beats * tiny.bus_bytes - 1) // 4096 for _, addr, beats in hardware.bursts)


@pytest.mark.parametrize("name, shape", [("vta-default", (2, 32, 32)), ("w4a8", (2, 32, 32)),
                                         ("batch2-32x32", (4, 64, 64))])
def test_blocked_gemm_on_every_preset(name, shape):
    config = load_config(name)
    program = assemble(blocked_gemm(config, *shape, shift=6), config)
    reference = run_functional(program)
    hardware = simulate(program)
    assert hardware.done
    assert bytes(hardware.dram) == bytes(reference.dram)
    assert np.array_equal(hardware.outputs["C"], reference.outputs["C"])


def test_double_buffered_pipeline_overlaps_units(tiny, check, fmt):
    """Two tiles, ping-pong buffers: load, compute and store synchronised only by tokens."""
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, size=(4, 1, 4))
    w = rng.integers(-128, 128, size=(2, 4, 4))
    text = f"""
.tensor A input int8 4,1,4 init=values:{fmt(a)}
.tensor W weight int8 2,4,4 init=values:{fmt(w)}
.tensor C output int8 4,4
.uop dst=0 src=0 wgt=0
.uop dst=2 src=2 wgt=0
load.uop dram_base=@uops y_size=1 x_size=2 x_stride=2
load.wgt sram_base=0 dram_base=@W y_size=1 x_size=2 x_stride=2
load.inp sram_base=0 dram_base=@A y_size=1 x_size=2 x_stride=2 push_next
load.inp sram_base=2 dram_base=@A+2 y_size=1 x_size=2 x_stride=2 push_next
gemm reset uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1
gemm pop_prev uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1 src_factor_out=1 wgt_factor_out=1
alu.shr use_imm imm=5 uop_begin=0 uop_end=1 iter_out=2 iter_in=1 dst_factor_out=1 push_next
gemm reset uop_begin=1 uop_end=2 iter_out=2 iter_in=1 dst_factor_out=1
gemm pop_prev uop_begin=1 uop_end=2 iter_out=2 iter_in=1 dst_factor_out=1 src_factor_out=1 wgt_factor_out=1
alu.shr use_imm imm=5 uop_begin=1 uop_end=2 iter_out=2 iter_in=1 dst_factor_out=1 push_next
store.out pop_prev sram_base=0 dram_base=@C y_size=1 x_size=2 x_stride=2
store.out pop_prev push_prev sram_base=2 dram_base=@C+2 y_size=1 x_size=2 x_stride=2
finish pop_next
"""
    check(text, tiny)


def _registers(hardware):
    return hardware.registers


def test_registers_after_a_run(tiny):
    program = assemble((EXAMPLES / "gemm_relu_shift.s").read_text(), tiny)
    hardware = simulate(program, dram_base=0x2000)
    regs = _registers(hardware)
    assert regs["STATUS"] == 0b010                      # done, not busy, no error
    assert regs["INSN_COUNT"] == len(program.insns)
    assert regs["DRAM_BASE_LO"] == 0x2000 and regs["DRAM_BASE_HI"] == 0
    assert regs["CONFIG_DIGEST"] == int(tiny.digest[:8], 16)
    assert regs["CYCLES_LO"] == hardware.cycles and regs["CYCLES_HI"] == 0
    assert regs["ERROR_CODE"] == 0
    assert regs["UNIT_STATE"] == 0b100_100_100          # every unit idle, waiting for a command
    assert regs["COMPUTE_PC"] == len(program.insns) - 1  # the FINISH
    assert regs["STORE_PC"] == 7 and regs["LOAD_PC"] == 1


def test_signature_is_the_contract(tiny):
    top = Accelerator(tiny)
    top._MustUse__silence = True       # only the signature is inspected here; nothing is elaborated
    members = dict(top.signature.members)
    assert set(members) == {"dram", "ctrl", "irq"}
    dram = members["dram"].signature.members
    assert Shape.cast(dram["rdata"].shape).width == tiny.bus_width and Shape.cast(dram["araddr"].shape).width == 32
    assert Shape.cast(dram["wstrb"].shape).width == tiny.bus_width // 8 and Shape.cast(dram["arlen"].shape).width == 8
    ctrl = members["ctrl"].signature.members
    assert Shape.cast(ctrl["awaddr"].shape).width == 8 and Shape.cast(ctrl["wdata"].shape).width == 32


def _gemm_program(config, iterations: int) -> str:
    return f"""
.uop dst=0 src=0 wgt=0
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
gemm uop_begin=0 uop_end=1 iter_out={iterations} iter_in=1 dst_factor_out=1 src_factor_out=1
finish
"""


def test_gemm_costs_one_cycle_per_micro_op(tiny):
    """The whole machine, not just the core: 24 more micro-ops cost exactly 24 more cycles."""
    short = simulate(assemble(_gemm_program(tiny, 8), tiny))
    long = simulate(assemble(_gemm_program(tiny, 32), tiny))
    assert long.cycles - short.cycles == 24


def _alu_program(iterations: int, operand: str) -> str:
    return f"""
.uop dst=0 src=1 wgt=0
load.uop dram_base=@uops y_size=1 x_size=1 x_stride=1
alu.add {operand} uop_begin=0 uop_end=1 iter_out={iterations} iter_in=1 dst_factor_out=1 src_factor_out=1
finish
"""


@pytest.mark.parametrize("operand, per_micro_op", [("use_imm imm=3", 1), ("", 2)])
def test_alu_costs_one_cycle_per_micro_op_or_two_with_a_source_row(tiny, operand, per_micro_op):
    """The accumulator has one read port: an ALU reading acc[s] and acc[d] takes 2 cycles per micro-op."""
    short = simulate(assemble(_alu_program(8, operand), tiny))
    long = simulate(assemble(_alu_program(32, operand), tiny))
    assert long.cycles - short.cycles == 24 * per_micro_op


@pytest.mark.parametrize("bus_width", [32, 256])
def test_other_bus_widths(tiny, check, bus_width):
    """Elements equal to (32-bit bus) or narrower than (256-bit bus) a bus word, instructions over
    several beats or several per beat."""
    from tensorweave.configs import AccelConfig

    config = AccelConfig.from_dict({**tiny.to_dict(), "name": f"tiny-bus{bus_width}", "bus_width": bus_width})
    check(blocked_gemm(config, 4, 8, 8, shift=4), config)
    check((EXAMPLES / "gemm_relu_shift.s").read_text(), config)
